"""Wiring of the notifications service: settings, runtime, subscriptions, workers, HTTP."""

from __future__ import annotations

from pathlib import Path

from notifications.adapters.personal_data import NotificationsPersonalData, purge_after
from notifications.adapters.smtp import SmtpSender
from notifications.adapters.unit_of_work import PostgresNotificationsUnitOfWork
from notifications.config import NotificationsSettings
from notifications.domain.deliveries import RetryPolicy
from notifications.entrypoints.http import deliveries_router
from notifications.entrypoints.kafka import document_publications, register_subscriptions
from notifications.entrypoints.volunteer_mail import register_volunteer_mail
from notifications.service.dispatcher import EmailDispatcher
from notifications.service.receipts import ReceiptRequests
from notifications.service.volunteer_mail import VolunteerMail
from shared.platform.privacy import install_privacy
from shared.platform.retention import retention_worker
from shared.platform.runtime import (
    Service,
    ServiceDefinition,
    ServiceRuntime,
    create_http_app,
)

NAME = "notifications"
DESCRIPTION = (
    "Emails to residents: a receipt with the RODO notice for every submission that left "
    "an email address, sent exactly once through SMTP with retries; failures are published."
)
MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: NotificationsSettings) -> Service:
    runtime = ServiceRuntime(
        name=NAME,
        settings=settings,
        migrations=MIGRATIONS,
        unit_of_work=PostgresNotificationsUnitOfWork,
    )
    profile = settings.gmina()
    volunteer_mail = VolunteerMail(profile, settings.public_base_url)
    register_subscriptions(runtime, ReceiptRequests(profile), volunteer_mail)
    register_volunteer_mail(runtime, volunteer_mail)
    document_publications(runtime)
    install_privacy(runtime, NotificationsPersonalData())
    dispatcher = EmailDispatcher(
        SmtpSender(settings, reply_to=profile.strategy_email),
        runtime.unit_of_work,
        RetryPolicy(
            max_attempts=settings.delivery_max_attempts,
            base_backoff_seconds=settings.delivery_backoff_seconds,
            max_backoff_seconds=settings.delivery_max_backoff_seconds,
        ),
        poll_seconds=settings.dispatcher_poll_seconds,
    )

    async def dispatch() -> None:
        async with runtime.pool.acquire() as listener:
            await dispatcher.run(listener)

    runtime.add_worker("email-dispatcher", dispatch)
    runtime.add_worker(
        "retention",
        retention_worker(
            runtime, {"deliveries": purge_after(profile.personal_data.deliveries_days)}
        ),
    )
    router = deliveries_router(runtime.unit_of_work, runtime.auth)
    return Service(runtime=runtime, app=create_http_app(runtime, [router], description=DESCRIPTION))


SERVICE = ServiceDefinition(
    name=NAME, description=DESCRIPTION, settings=NotificationsSettings, build=build
)
