"""Wiring of the notifications service: settings, runtime, subscriptions, workers, HTTP."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from notifications.adapters.personal_data import NotificationsPersonalData, purge_after
from notifications.adapters.smtp import SmtpSender
from notifications.adapters.unit_of_work import PostgresNotificationsUnitOfWork
from notifications.config import NotificationsSettings
from notifications.domain.deliveries import Purpose, RetryPolicy
from notifications.domain.subscriber_mail import SUBSCRIBER_PURPOSES
from notifications.domain.subscriptions import SubscriberLinks, SubscriberLinkTokens
from notifications.entrypoints.http import deliveries_router
from notifications.entrypoints.kafka import document_publications, register_subscriptions
from notifications.entrypoints.news_events import register_news_subscriptions
from notifications.entrypoints.subscriptions_http import subscriptions_router
from notifications.entrypoints.volunteer_mail import register_volunteer_mail
from notifications.service.dispatcher import EmailDispatcher, PrepareHook
from notifications.service.receipts import ReceiptRequests
from notifications.service.subscriber_mail import PersonalLinks, SubscriberMail
from notifications.service.subscriptions import SubscriptionPolicy, SubscriptionService
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
    "an email address; alerts, news and consultation announcements to confirmed "
    "subscribers (double opt-in, one-click unsubscribe), alerts first. Each email is sent "
    "exactly once through SMTP with retries; failures are published."
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
    links = SubscriberLinks.of(
        public_base_url=settings.public_base_url, api_public_url=settings.api_public_url
    )
    if settings.subscription_link_secret is None:
        # Without it no subscriber email could carry a working unsubscribe link. Built
        # anyway (for the AsyncAPI and OpenAPI documents), with a throw-away key.
        runtime.refuse_to_start("STRATEGIA_SUBSCRIPTION_LINK_SECRET is not set")
        link_secret = secrets.token_bytes(32)
    else:
        link_secret = settings.subscription_link_secret.get_secret_value().encode()
    link_tokens = SubscriberLinkTokens(link_secret)
    register_news_subscriptions(
        runtime, SubscriberMail(profile, public_base_url=settings.public_base_url)
    )
    document_publications(runtime)
    install_privacy(runtime, NotificationsPersonalData())
    subscriptions = SubscriptionService(
        profile,
        public_base_url=settings.public_base_url,
        policy=SubscriptionPolicy(
            confirmation_valid_for=timedelta(hours=settings.subscription_confirmation_hours),
            confirmation_cooldown=timedelta(
                seconds=settings.subscription_confirmation_cooldown_seconds
            ),
        ),
        link_tokens=link_tokens,
    )
    personal_links = PersonalLinks(links, link_tokens)

    async def dispatch() -> None:
        sender = SmtpSender(
            settings,
            reply_to=profile.strategy_email,
            connections=settings.smtp_connections,
            max_idle_seconds=settings.smtp_max_idle_seconds,
        )
        dispatcher = EmailDispatcher(
            sender,
            runtime.unit_of_work,
            RetryPolicy(
                max_attempts=settings.delivery_max_attempts,
                base_backoff_seconds=settings.delivery_backoff_seconds,
                max_backoff_seconds=settings.delivery_max_backoff_seconds,
            ),
            poll_seconds=settings.dispatcher_poll_seconds,
            batch_size=settings.dispatcher_batch_size,
            concurrency=settings.smtp_connections,
            prepare=[
                PrepareHook(
                    frozenset({Purpose.SUBSCRIPTION_CONFIRMATION}),
                    subscriptions.issue_confirmation_links,
                ),
                PrepareHook(SUBSCRIBER_PURPOSES, personal_links.fill_in),
            ],
        )
        try:
            async with runtime.pool.acquire() as listener:
                await dispatcher.run(listener)
        finally:
            await sender.aclose()

    runtime.add_worker("email-dispatcher", dispatch)
    runtime.add_worker(
        "retention",
        retention_worker(
            runtime, {"deliveries": purge_after(profile.personal_data.deliveries_days)}
        ),
    )
    routers = [
        deliveries_router(runtime.unit_of_work, runtime.auth),
        subscriptions_router(
            subscriptions,
            runtime.unit_of_work,
            public_write_limit=runtime.rate_limiter.limit(
                "subscriptions", settings.rate_limit_per_minute
            ),
            one_click_limit=runtime.rate_limiter.limit(
                "one-click-unsubscribe", settings.one_click_rate_limit_per_minute
            ),
        ),
    ]
    return Service(runtime=runtime, app=create_http_app(runtime, routers, description=DESCRIPTION))


SERVICE = ServiceDefinition(
    name=NAME, description=DESCRIPTION, settings=NotificationsSettings, build=build
)
