"""Wiring of the intake service: settings, runtime, subscriptions, workers, HTTP routes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from intake.config import IntakeSettings
from intake.entrypoints.commands import subscribe_commands
from intake.entrypoints.http import build_router
from intake.entrypoints.scheduler import run_scheduler
from intake.service.handlers import Clock, IntakeService, IntakeTopics, utc_now
from shared.contracts.intake import (
    ConsultationAnnounced,
    ConsultationClosed,
    ConsultationOpened,
    ConsultationWindowChanged,
    SubmissionReceived,
)
from shared.platform.gmina import current_profile
from shared.platform.runtime import ServiceRuntime, create_http_app

DESCRIPTION = (
    "Intake: the mayor's office opens consultations with a time window; residents, village "
    "councils, entrepreneurs and organisations submit needs and proposals through any "
    "channel; intake validates, stores, issues a receipt and publishes the submission."
)
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class Intake:
    runtime: ServiceRuntime
    service: IntakeService
    app: FastAPI


def default_settings() -> IntakeSettings:
    return IntakeSettings()


def build_runtime(settings: IntakeSettings) -> ServiceRuntime:
    return build(settings).runtime


def build(
    settings: IntakeSettings,
    *,
    clock: Clock = utc_now,
    consumer_name: str = "intake",
    topics: IntakeTopics = IntakeTopics(),  # noqa: B008 - frozen, so sharing is safe
) -> Intake:
    runtime = ServiceRuntime(
        name="intake", settings=settings, migrations=MIGRATIONS, consumer_name=consumer_name
    )
    service = IntakeService(
        lambda: runtime.pool, zone=current_profile().zone, clock=clock, topics=topics
    )
    subscribe_commands(runtime.consumer, service, topics.commands)
    runtime.document_publication(
        topics.consultations,
        [ConsultationAnnounced, ConsultationOpened, ConsultationClosed, ConsultationWindowChanged],
        "Consultation life cycle, keyed by consultation id",
    )
    runtime.document_publication(
        topics.submissions,
        [SubmissionReceived],
        "Accepted submissions, keyed by submission id",
    )

    async def scheduler(_: ServiceRuntime) -> None:
        await run_scheduler(service, max_interval=settings.scheduler_interval_seconds)

    runtime.add_worker("consultation-scheduler", scheduler)
    router = build_router(service, runtime.auth, page_size_max=settings.page_size_max)
    app = create_http_app(runtime, [router], description=DESCRIPTION)
    return Intake(runtime=runtime, service=service, app=app)


def build_app(settings: IntakeSettings) -> FastAPI:
    return build(settings).app
