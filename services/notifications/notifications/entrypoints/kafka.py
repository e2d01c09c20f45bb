"""Kafka side of the service: what it consumes and what it publishes."""

from __future__ import annotations

from typing import Any

from notifications.service.receipts import ReceiptRequests
from shared.contracts.topics import Topic
from shared.platform.runtime import ServiceRuntime


def register_subscriptions(runtime: ServiceRuntime[Any], receipts: ReceiptRequests) -> None:
    runtime.consumer.subscribe(
        Topic.INTAKE_SUBMISSIONS,
        receipts.on_submission_received,
        description="Queues a receipt email (RODO notice included) when the submitter "
        "left an email address.",
    )


def document_publications(runtime: ServiceRuntime[Any]) -> None:
    runtime.document_publication(
        Topic.NOTIFICATIONS_DELIVERIES,
        "An email could not be delivered after the configured attempts (written through "
        "the outbox; key: delivery id)",
    )
