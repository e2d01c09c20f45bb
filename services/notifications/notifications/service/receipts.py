"""Queue a receipt email for every accepted submission that left an email address."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from notifications.domain.deliveries import Delivery, Purpose
from notifications.domain.receipts import compose_receipt
from notifications.service.ports import NotificationsUnitOfWork
from shared.contracts.envelope import Envelope
from shared.contracts.intake import SubmissionReceived
from shared.platform.gmina import GminaProfile

log = logging.getLogger(__name__)


class ReceiptRequests:
    def __init__(self, profile: GminaProfile) -> None:
        self._profile = profile

    async def on_submission_received(
        self, uow: NotificationsUnitOfWork, envelope: Envelope[Any]
    ) -> None:
        """Runs in the inbox unit of work: the delivery exists iff the event counts as seen.

        The email is rendered here, not when sending, so a template error surfaces as a
        failed event (retried, then dead-lettered) instead of a delivery that can never go.
        """
        event: SubmissionReceived = envelope.data
        if event.submitter_email is None:
            log.info(
                "no email address: no receipt to send",
                extra={"event_id": str(envelope.event_id), "receipt": event.receipt_number},
            )
            return
        delivery = self._receipt(envelope, await uow.deliveries.database_now())
        if not await uow.deliveries.add(delivery):
            log.info("receipt already queued", extra={"event_id": str(envelope.event_id)})
            return
        await uow.deliveries.wake_dispatcher()
        await uow.commit()
        # No recipient in the log: addresses stay in the database, which has a retention rule.
        log.info(
            "receipt queued",
            extra={
                "delivery_id": str(delivery.id),
                "event_id": str(envelope.event_id),
                "receipt": event.receipt_number,
            },
        )

    async def on_submissions_received(
        self, uow: NotificationsUnitOfWork, envelopes: Sequence[Envelope[Any]]
    ) -> None:
        """The same for a consumer batch, set-based: one clock reading, one insert and one
        wake-up for all its receipts (any failure and the platform replays the batch one
        event at a time through `on_submission_received`)."""
        wanted = [e for e in envelopes if e.data.submitter_email is not None]
        if not wanted:
            return
        now = await uow.deliveries.database_now()
        queued = await uow.deliveries.add_many([self._receipt(e, now) for e in wanted])
        if queued:
            await uow.deliveries.wake_dispatcher()
        await uow.commit()
        log.info(
            "receipts queued",
            extra={
                "queued": queued,
                "events": len(envelopes),
                "without_email": len(envelopes) - len(wanted),
            },
        )

    def _receipt(self, envelope: Envelope[Any], now: datetime) -> Delivery:
        event: SubmissionReceived = envelope.data
        assert event.submitter_email is not None
        return Delivery.queue(
            delivery_id=uuid.uuid4(),
            source_event_id=envelope.event_id,
            correlation_id=envelope.correlation_id,
            purpose=Purpose.RECEIPT,
            recipient=str(event.submitter_email),
            email=compose_receipt(event, self._profile),
            gmina_teryt=self._profile.teryt,
            now=now,
        )
