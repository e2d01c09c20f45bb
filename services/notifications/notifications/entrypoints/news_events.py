"""Kafka side of subscriber mail: alert messages and articles from the news service."""

from __future__ import annotations

from typing import Any

from notifications.service.subscriber_mail import SubscriberMail
from shared.contracts.topics import Topic
from shared.platform.runtime import ServiceRuntime


def register_news_subscriptions(runtime: ServiceRuntime[Any], mail: SubscriberMail) -> None:
    runtime.consumer.subscribe(
        Topic.NEWS_ALERTS,
        mail.on_alert_issued,
        description="Emails every confirmed alert subscriber the level concerns (urgent).",
    )
    runtime.consumer.subscribe(
        Topic.NEWS_ARTICLES,
        mail.on_article_event,
        description="Emails news and consultation subscribers a newly published article.",
    )
