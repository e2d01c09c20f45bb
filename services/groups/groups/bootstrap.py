"""Wiring of the groups service: settings, runtime, subscriptions, workers, HTTP routes."""

from __future__ import annotations

from pathlib import Path

from groups.adapters.personal_data import GroupsPersonalData
from groups.adapters.unit_of_work import PostgresGroupsUnitOfWork
from groups.config import GroupsSettings
from groups.domain.formation import GroupPolicy
from groups.domain.trends import TrendSettings
from groups.entrypoints.http import build_router
from groups.entrypoints.kafka import document_publications, register_subscriptions
from groups.entrypoints.workers import (
    run_housekeeping,
    run_trends_worker,
    warm_up_text_models,
)
from groups.service.outcomes import Outcomes
from groups.service.review import SubmissionReview
from groups.service.volunteering import Lifetimes, Volunteering
from shared.clock import Clock, utc_now
from shared.contracts.topics import Topic
from shared.platform.database import PERSON_KEYS_MIGRATIONS
from shared.platform.privacy import install_privacy
from shared.platform.runtime import (
    Service,
    ServiceDefinition,
    ServiceRuntime,
    create_http_app,
)

NAME = "groups"
DESCRIPTION = (
    "Thematic working groups: volunteers sign up and groups form by themselves as enough "
    "of them confirm; submissions are routed to the groups of their theme (classified when "
    "they have none), assessed by two members each and decided by the lead; key trends "
    "are recomputed in the background; recommendations are published with their evidence."
)
# Its own, and the person-key tables of crypto-shredding (shared/platform/shredding.py).
MIGRATIONS = (Path(__file__).parent / "migrations", PERSON_KEYS_MIGRATIONS)


def build(settings: GroupsSettings, *, clock: Clock = utc_now, warm_up: bool = True) -> Service:
    runtime = ServiceRuntime(
        name=NAME,
        settings=settings,
        migrations=MIGRATIONS,
        unit_of_work=PostgresGroupsUnitOfWork,
    )
    volunteering = Volunteering(
        policy=GroupPolicy(settings.group_min_size, settings.group_max_size),
        lifetimes=Lifetimes(
            confirmation=settings.confirmation_link_lifetime,
            withdrawal=settings.withdrawal_link_lifetime,
            sign_in=settings.sign_in_link_lifetime,
            session=settings.session_lifetime,
        ),
        phone_region=settings.phone_region,
        clock=clock,
    )
    review = SubmissionReview(duplicate_threshold=settings.duplicate_threshold, clock=clock)
    outcomes = Outcomes(
        trend_settings=TrendSettings(min_submissions=settings.trend_min_submissions),
        clock=clock,
    )
    register_subscriptions(runtime, review)
    document_publications(runtime)

    async def trends() -> None:
        async with runtime.pool.acquire() as listener:
            await run_trends_worker(
                outcomes,
                runtime.unit_of_work,
                listener,
                poll_seconds=settings.trend_poll_seconds,
            )

    runtime.add_worker("trends", trends)
    install_privacy(runtime, GroupsPersonalData(volunteering), person_keys=Topic.GROUPS_PERSON_KEYS)

    async def housekeeping() -> None:
        await run_housekeeping(
            volunteering,
            runtime.unit_of_work,
            interval_seconds=settings.housekeeping_interval_seconds,
        )

    runtime.add_worker("housekeeping", housekeeping)
    if warm_up:
        runtime.add_worker("text-models", warm_up_text_models)
    router = build_router(
        volunteering,
        review,
        outcomes,
        runtime.unit_of_work,
        runtime.auth,
        public_write_limit=runtime.rate_limiter.limit("volunteers", settings.rate_limit_per_minute),
    )
    return Service(runtime=runtime, app=create_http_app(runtime, [router], description=DESCRIPTION))


SERVICE = ServiceDefinition(
    name=NAME, description=DESCRIPTION, settings=GroupsSettings, build=build
)
