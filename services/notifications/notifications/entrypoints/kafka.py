"""Kafka side of the service: what it consumes and what it publishes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from notifications.service.ports import NotificationsUnitOfWork
from notifications.service.receipts import ReceiptRequests
from notifications.service.volunteer_mail import VolunteerMail
from shared.contracts.envelope import Envelope
from shared.contracts.intake import SubmissionReceived, submitter_email_associated_data
from shared.contracts.topics import Topic
from shared.platform.runtime import ServiceRuntime
from shared.platform.shredding import PERSON_ERASED, open_field, subscribe_received_keys

log = logging.getLogger(__name__)


async def unsealed(uow: NotificationsUnitOfWork, envelope: Envelope[Any]) -> Envelope[Any]:
    """The envelope with the submitter's address in clear (in memory only): opened with
    the person's key, or none when the person has been erased. Raises `KeyNotYetKnown`
    while the key record is still on its way (the platform retries), `PermanentFailure`
    for a sealed value that does not open (tampered, or moved from another event)."""
    event: SubmissionReceived = envelope.data
    sealed = event.submitter_email_sealed
    if sealed is None:
        return envelope  # no address, or a record from before sealing (clear address)
    opened_email = await open_field(
        uow.intake_keys,
        sealed,
        associated_data=submitter_email_associated_data(event.submission_id),
        field="submitter_email_sealed",
        event_id=envelope.event_id,
    )
    email = opened_email if isinstance(opened_email, str) else None
    if opened_email is PERSON_ERASED:
        log.info(
            "the submitter has been erased: the address is not used",
            extra={"event_id": str(envelope.event_id), "receipt": event.receipt_number},
        )
    opened = event.model_copy(update={"submitter_email": email, "submitter_email_sealed": None})
    return envelope.model_copy(update={"data": opened})


def register_subscriptions(
    runtime: ServiceRuntime[Any], receipts: ReceiptRequests, mail: VolunteerMail
) -> None:
    async def on_submission(uow: NotificationsUnitOfWork, envelope: Envelope[Any]) -> None:
        envelope = await unsealed(uow, envelope)
        # First remember a submitter who wants decision emails (same unit of work: it is
        # kept exactly when the event counts as seen), then queue the receipt.
        await mail.remember_submitter(uow, envelope)
        await receipts.on_submission_received(uow, envelope)

    async def on_submissions(
        uow: NotificationsUnitOfWork, envelopes: Sequence[Envelope[Any]]
    ) -> None:
        # The batch's keys in one query. A sealed address whose key has not arrived
        # raises `KeyNotYetKnown` naming its event: the platform handles the rest of the
        # batch without it (and what follows it in its partition) and tries it again soon.
        await uow.intake_keys.prefetch(
            envelope.data.submitter_email_sealed.key_id
            for envelope in envelopes
            if envelope.data.submitter_email_sealed is not None
        )
        opened = [await unsealed(uow, envelope) for envelope in envelopes]
        for envelope in opened:
            await mail.remember_submitter(uow, envelope)
        await receipts.on_submissions_received(uow, opened)

    # In batches: one transaction and one offset commit for every submission waiting on
    # the topic, and the receipts of a batch queued with one insert, so receipts keep pace
    # with intake (one event per transaction was ~60/s).
    runtime.consumer.subscribe(
        Topic.INTAKE_SUBMISSIONS,
        on_submission,
        description="Queues a receipt email (RODO notice included) when the submitter "
        "left an email address (sealed under the person's key, opened with the copy "
        "received on intake.person-keys.v1).",
        batch=True,
        handle_batch=on_submissions,
    )

    subscribe_received_keys(
        runtime,
        Topic.INTAKE_PERSON_KEYS,
        lambda uow: uow.intake_keys,
        description="Keeps intake's per-person keys to open sealed addresses; a tombstone "
        "(the person erased) deletes the copy.",
    )


def document_publications(runtime: ServiceRuntime[Any]) -> None:
    runtime.document_publication(
        Topic.NOTIFICATIONS_DELIVERIES,
        "An email could not be delivered after the configured attempts (written through "
        "the outbox; key: delivery id)",
    )
