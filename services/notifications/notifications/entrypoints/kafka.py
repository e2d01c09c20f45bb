"""Kafka side of the service: what it consumes and what it publishes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag

from notifications.service.ports import NotificationsUnitOfWork
from notifications.service.receipts import ReceiptRequests
from notifications.service.volunteer_mail import VolunteerMail
from shared.contracts.envelope import Envelope
from shared.contracts.intake import (
    IntakePersonKeyPublished,
    SubmissionReceived,
    submitter_email_associated_data,
)
from shared.contracts.topics import Topic
from shared.platform.messaging import PermanentFailure
from shared.platform.runtime import ServiceRuntime
from shared.platform.shredding import PERSON_ERASED

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
    try:
        opened_email = await uow.intake_keys.open(
            sealed,
            associated_data=submitter_email_associated_data(event.submission_id),
        )
    except InvalidTag:
        raise PermanentFailure("submitter_email_sealed does not open under its key") from None
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
        # A sealed address whose key has not arrived fails the set-based path; the
        # platform then replays the batch event by event, where it is retried.
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

    async def on_person_key(uow: NotificationsUnitOfWork, envelope: Envelope[Any]) -> None:
        published: IntakePersonKeyPublished = envelope.data
        await uow.intake_keys.on_key(published)

    async def on_person_keys(
        uow: NotificationsUnitOfWork, envelopes: Sequence[Envelope[Any]]
    ) -> None:
        await uow.intake_keys.on_keys([envelope.data for envelope in envelopes])

    async def on_key_erased(uow: NotificationsUnitOfWork, key: bytes) -> None:
        await uow.intake_keys.on_tombstone(key)

    # In batches too: every new submitter brings a key, and a submission waits (retried)
    # until its key is stored, so keys consumed one per transaction (~60/s on the 2-core
    # benchmark machine) held receipts to that rate.
    runtime.consumer.subscribe(
        Topic.INTAKE_PERSON_KEYS,
        on_person_key,
        on_tombstone=on_key_erased,
        batch=True,
        handle_batch=on_person_keys,
        description="Keeps intake's per-person keys to open sealed addresses; a tombstone "
        "(the person erased) deletes the copy.",
    )


def document_publications(runtime: ServiceRuntime[Any]) -> None:
    runtime.document_publication(
        Topic.NOTIFICATIONS_DELIVERIES,
        "An email could not be delivered after the configured attempts (written through "
        "the outbox; key: delivery id)",
    )
