"""Queue the working groups' emails: to volunteers, and decisions to submitters.

Like receipts, each email is a delivery row written in the inbox unit of work (so it
exists exactly when the event counts as seen) and sent by the dispatcher exactly once; it
is rendered here, so a template error fails the event instead of leaving a delivery that
can never go. Decision emails go only to submitters who left an email address and agreed
to be contacted (`contact_consent` on `SubmissionReceived`, remembered in `submitters`).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from notifications.domain.deliveries import ComposedEmail, Delivery, Purpose
from notifications.domain.volunteer_mail import (
    PURPOSES,
    Submitter,
    compose_decision,
    compose_volunteer_mail,
)
from notifications.service.ports import NotificationsUnitOfWork
from shared.contracts.envelope import Envelope
from shared.contracts.groups import SubmissionDecided, VolunteerMessage
from shared.contracts.intake import Language, SubmissionReceived
from shared.platform.gmina import GminaProfile

log = logging.getLogger(__name__)


class VolunteerMail:
    def __init__(self, profile: GminaProfile, public_base_url: str) -> None:
        self._profile = profile
        self._public_base_url = public_base_url

    async def remember_submitter(
        self, uow: NotificationsUnitOfWork, envelope: Envelope[Any]
    ) -> None:
        """Keep the address of a submitter who wants to hear the outcome (nothing else)."""
        event: SubmissionReceived = envelope.data
        if event.submitter_email is None or not event.contact_consent:
            return
        await uow.submitters.remember(
            Submitter(
                submission_id=str(event.submission_id),
                email=str(event.submitter_email),
                language=Language(event.language),
                consultation_title=event.consultation_title,
            )
        )

    async def on_volunteer_message(
        self, uow: NotificationsUnitOfWork, envelope: Envelope[Any]
    ) -> None:
        message: VolunteerMessage = envelope.data
        email = compose_volunteer_mail(message, self._profile, self._public_base_url)
        await self._queue(uow, envelope, PURPOSES[type(message)], str(message.email), email)

    async def on_submission_event(
        self, uow: NotificationsUnitOfWork, envelope: Envelope[Any]
    ) -> None:
        event = envelope.data
        if not isinstance(event, SubmissionDecided):
            return  # routing is the groups' business, not the submitter's
        submitter = await uow.submitters.get(event.submission_id)
        if submitter is None:
            log.info(
                "no consent to contact: no decision email",
                extra={"event_id": str(envelope.event_id), "receipt": event.receipt_number},
            )
            return
        email = compose_decision(event, submitter, self._profile)
        await self._queue(uow, envelope, Purpose.SUBMISSION_DECISION, submitter.email, email)

    async def _queue(
        self,
        uow: NotificationsUnitOfWork,
        envelope: Envelope[Any],
        purpose: Purpose,
        recipient: str,
        email: ComposedEmail,
    ) -> None:
        delivery = Delivery.queue(
            delivery_id=uuid.uuid4(),
            source_event_id=envelope.event_id,
            correlation_id=envelope.correlation_id,
            purpose=purpose,
            recipient=recipient,
            email=email,
            gmina_teryt=self._profile.teryt,
            now=await uow.deliveries.database_now(),
        )
        if not await uow.deliveries.add(delivery):
            log.info("email already queued", extra={"event_id": str(envelope.event_id)})
            return
        await uow.deliveries.wake_dispatcher()
        await uow.commit()
        log.info(
            "email queued",
            extra={
                "delivery_id": str(delivery.id),
                "event_id": str(envelope.event_id),
                "purpose": purpose.value,
            },
        )
