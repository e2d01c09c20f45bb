"""Kafka side of the service: what it consumes and what it publishes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from notifications.service.ports import NotificationsUnitOfWork
from notifications.service.receipts import ReceiptRequests
from notifications.service.volunteer_mail import VolunteerMail
from shared.contracts.envelope import Envelope
from shared.contracts.topics import Topic
from shared.platform.runtime import ServiceRuntime


def register_subscriptions(
    runtime: ServiceRuntime[Any], receipts: ReceiptRequests, mail: VolunteerMail
) -> None:
    async def on_submission(uow: NotificationsUnitOfWork, envelope: Envelope[Any]) -> None:
        # First remember a submitter who wants decision emails (same unit of work: it is
        # kept exactly when the event counts as seen), then queue the receipt.
        await mail.remember_submitter(uow, envelope)
        await receipts.on_submission_received(uow, envelope)

    async def on_submissions(
        uow: NotificationsUnitOfWork, envelopes: Sequence[Envelope[Any]]
    ) -> None:
        for envelope in envelopes:
            await mail.remember_submitter(uow, envelope)
        await receipts.on_submissions_received(uow, envelopes)

    # In batches: one transaction and one offset commit for every submission waiting on
    # the topic, and the receipts of a batch queued with one insert, so receipts keep pace
    # with intake (one event per transaction was ~60/s).
    runtime.consumer.subscribe(
        Topic.INTAKE_SUBMISSIONS,
        on_submission,
        description="Queues a receipt email (RODO notice included) when the submitter "
        "left an email address.",
        batch=True,
        handle_batch=on_submissions,
    )


def document_publications(runtime: ServiceRuntime[Any]) -> None:
    runtime.document_publication(
        Topic.NOTIFICATIONS_DELIVERIES,
        "An email could not be delivered after the configured attempts (written through "
        "the outbox; key: delivery id)",
    )
