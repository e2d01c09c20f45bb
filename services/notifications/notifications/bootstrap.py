"""Wiring of the notifications service: settings, runtime, subscriptions, workers, HTTP."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from notifications.adapters.delivery_repository import DeliveryRepository
from notifications.adapters.smtp import SmtpSender
from notifications.config import NotificationsSettings
from notifications.domain.deliveries import RetryPolicy
from notifications.entrypoints.http import deliveries_router
from notifications.entrypoints.kafka import document_publications, register_subscriptions
from notifications.service.dispatcher import EmailDispatcher
from notifications.service.receipts import ReceiptRequests
from shared.contracts.topics import Topic
from shared.platform.gmina import load_profile
from shared.platform.runtime import ServiceRuntime, create_http_app

DESCRIPTION = (
    "Emails to residents: a receipt with the RODO notice for every submission that left "
    "an email address, sent exactly once through SMTP with retries; failures are published."
)
MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = "notifications"


def default_settings() -> NotificationsSettings:
    return NotificationsSettings()


def build_runtime(
    settings: NotificationsSettings,
    *,
    consumer_name: str | None = None,
    submissions_topic: str = Topic.INTAKE_SUBMISSIONS.value,
) -> ServiceRuntime:
    """`consumer_name` and `submissions_topic` let tests isolate themselves."""
    runtime = ServiceRuntime(
        name=SERVICE_NAME, settings=settings, migrations=MIGRATIONS, consumer_name=consumer_name
    )
    profile = load_profile(settings.gmina_profile)
    repository = DeliveryRepository()
    register_subscriptions(
        runtime, ReceiptRequests(profile, repository), submissions_topic=submissions_topic
    )
    document_publications(runtime)
    dispatcher = EmailDispatcher(
        SmtpSender(settings, reply_to=profile.strategy_email),
        repository,
        RetryPolicy(
            max_attempts=settings.delivery_max_attempts,
            base_backoff_seconds=settings.delivery_backoff_seconds,
            max_backoff_seconds=settings.delivery_max_backoff_seconds,
        ),
        poll_seconds=settings.dispatcher_poll_seconds,
    )
    runtime.add_worker("email-dispatcher", dispatcher.run)
    return runtime


def http_app(runtime: ServiceRuntime) -> FastAPI:
    """The HTTP app of a built runtime; its lifespan starts and stops the runtime."""
    return create_http_app(
        runtime, [deliveries_router(runtime, DeliveryRepository())], description=DESCRIPTION
    )


def build_app(settings: NotificationsSettings) -> FastAPI:
    return http_app(build_runtime(settings))
