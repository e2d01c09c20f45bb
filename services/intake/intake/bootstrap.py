"""Wiring of the intake service: settings, runtime, subscriptions, workers, HTTP routes."""

from __future__ import annotations

from pathlib import Path

from intake.adapters.privacy import IntakePersonalData, forget_export_keys_after
from intake.adapters.unit_of_work import PostgresIntakeUnitOfWork
from intake.config import IntakeSettings
from intake.domain.submission import SubmissionPolicy
from intake.entrypoints.commands import subscribe_commands
from intake.entrypoints.http import build_router
from intake.entrypoints.privacy import privacy_router, subscribe_privacy_replies
from intake.entrypoints.scheduler import consultation_phase_changes
from intake.service.group_commit import SubmissionBatcher
from intake.service.handlers import IntakeService
from shared.clock import Clock, utc_now
from shared.contracts.topics import Topic
from shared.platform.database import PERSON_KEYS_MIGRATIONS
from shared.platform.privacy import install_privacy
from shared.platform.retention import retention_worker
from shared.platform.runtime import (
    Service,
    ServiceDefinition,
    ServiceRuntime,
    create_http_app,
)
from shared.platform.schedule import due_work_worker

NAME = "intake"
DESCRIPTION = (
    "Intake: the mayor's office opens consultations with a time window; residents, village "
    "councils, entrepreneurs and organisations submit needs and proposals through any "
    "channel; intake validates, stores, issues a receipt and publishes the submission."
)
# Its own, and the person-key tables of crypto-shredding (shared/platform/shredding.py).
MIGRATIONS = (Path(__file__).parent / "migrations", PERSON_KEYS_MIGRATIONS)


def build(settings: IntakeSettings, *, clock: Clock = utc_now) -> Service:
    runtime = ServiceRuntime(
        name=NAME,
        settings=settings,
        migrations=MIGRATIONS,
        unit_of_work=PostgresIntakeUnitOfWork,
    )
    service = IntakeService(
        zone=settings.gmina().zone,
        clock=clock,
        policy=SubmissionPolicy(paper_max_age_days=settings.paper_max_age_days),
    )
    subscribe_commands(runtime.consumer, service)
    runtime.document_publication(
        Topic.INTAKE_CONSULTATIONS, "Consultation life cycle, keyed by consultation id"
    )
    runtime.document_publication(
        Topic.INTAKE_SUBMISSIONS, "Accepted submissions, keyed by submission id"
    )

    runtime.document_publication(
        Topic.INTAKE_PERSON_KEYS,
        "Per-person data keys of sealed fields (crypto-shredding), compacted, keyed by key "
        "id; a null value (tombstone) when the person is erased",
    )
    install_privacy(runtime, IntakePersonalData(), person_keys=Topic.INTAKE_PERSON_KEYS)
    subscribe_privacy_replies(runtime, settings.privacy_services)
    runtime.document_publication(
        Topic.INTAKE_PRIVACY_REQUESTS,
        "Data-subject requests (erasure, export) for every service, keyed by request id",
    )

    runtime.add_worker(
        "consultation-scheduler",
        due_work_worker(
            consultation_phase_changes(service, runtime.unit_of_work),
            max_interval=settings.scheduler_interval_seconds,
        ),
    )
    export_days = settings.gmina().personal_data.exports_days
    runtime.add_worker(
        "retention",
        retention_worker(runtime, {"export-keys": forget_export_keys_after(export_days)}),
    )
    submissions = SubmissionBatcher(service, runtime.unit_of_work)
    router = build_router(
        service,
        runtime.unit_of_work,
        runtime.auth,
        submissions,
        public_write_limit=runtime.rate_limiter.limit(
            "submissions", settings.rate_limit_per_minute
        ),
    )
    privacy = privacy_router(
        runtime.unit_of_work,
        runtime.auth,
        services=settings.privacy_services,
        phone_region=settings.phone_region,
    )
    return Service(
        runtime=runtime, app=create_http_app(runtime, [router, privacy], description=DESCRIPTION)
    )


SERVICE = ServiceDefinition(
    name=NAME, description=DESCRIPTION, settings=IntakeSettings, build=build
)
