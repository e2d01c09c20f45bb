"""Kafka side of the service: what it consumes and what it publishes."""

from __future__ import annotations

from notifications.service.receipts import ReceiptRequests
from shared.contracts.intake import SubmissionReceived
from shared.contracts.notifications import DeliveryFailed
from shared.contracts.topics import Topic
from shared.platform.runtime import ServiceRuntime


def register_subscriptions(
    runtime: ServiceRuntime,
    receipts: ReceiptRequests,
    *,
    submissions_topic: str = Topic.INTAKE_SUBMISSIONS.value,
) -> None:
    runtime.consumer.subscribe(
        submissions_topic,
        receipts.on_submission_received,
        models=[SubmissionReceived],
        description="Queues a receipt email (RODO notice included) when the submitter "
        "left an email address.",
    )


def document_publications(runtime: ServiceRuntime) -> None:
    runtime.document_publication(
        Topic.NOTIFICATIONS_DELIVERIES,
        [DeliveryFailed],
        "An email could not be delivered after the configured attempts (written through "
        "the outbox; key: delivery id)",
    )
