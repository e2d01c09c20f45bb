"""Kafka subscriptions of the working groups' emails."""

from __future__ import annotations

import logging
from typing import Any

from notifications.service.ports import NotificationsUnitOfWork
from notifications.service.volunteer_mail import VolunteerMail
from shared.contracts.envelope import Envelope
from shared.contracts.groups import VolunteerAssignmentNoticeV2, VolunteerMessageV2
from shared.contracts.groups import volunteer_message_associated_data as bound_to
from shared.contracts.topics import Topic
from shared.platform.runtime import ServiceRuntime
from shared.platform.shredding import open_field, subscribe_received_keys

log = logging.getLogger(__name__)


async def opened_message(
    uow: NotificationsUnitOfWork, envelope: Envelope[Any]
) -> Envelope[Any] | None:
    """The v2 message as its v1 model, address and names opened (in memory only) with the
    copies of groups' keys; None when the volunteer has been erased (nothing is sent).
    Raises `KeyNotYetKnown` while a key record is on its way (the platform retries),
    `PermanentFailure` for a sealed value that does not open."""
    message: VolunteerMessageV2 = envelope.data
    model, volunteer_id, token = type(message), message.volunteer_id, message.withdraw_token

    async def opened(field: str, sealed: Any) -> object:
        return await open_field(
            uow.groups_keys,
            sealed,
            associated_data=bound_to(model, field, volunteer_id, token),
            field=f"{field}_sealed",
        )

    email = await opened("email", message.email_sealed)
    name = await opened("name", message.name_sealed)
    if not isinstance(email, str) or not isinstance(name, str):
        log.info(
            "the volunteer has been erased: no email",
            extra={"event_id": str(envelope.event_id), "event_type": envelope.event_type},
        )
        return None
    extra: dict[str, object] = {}
    if isinstance(message, VolunteerAssignmentNoticeV2) and message.lead_name_sealed:
        lead_name = await opened("lead_name", message.lead_name_sealed)
        # An erased lead is simply not named.
        extra["lead_name"] = lead_name if isinstance(lead_name, str) else None
    clear = message.opened(email=email, name=name, **extra)
    return envelope.model_copy(update={"data": clear})


def register_volunteer_mail(runtime: ServiceRuntime[Any], mail: VolunteerMail) -> None:
    async def on_sealed_volunteer_message(
        uow: NotificationsUnitOfWork, envelope: Envelope[Any]
    ) -> None:
        opened = await opened_message(uow, envelope)
        if opened is not None:
            await mail.on_volunteer_message(uow, opened)

    runtime.consumer.subscribe(
        Topic.GROUPS_VOLUNTEER_MESSAGES_V2,
        on_sealed_volunteer_message,
        description="Queues the emails to volunteers: confirmation (RODO notice included), "
        "assignment, waiting list, sign-in link; each with its withdrawal link. The address "
        "and names are sealed, opened with the copies received on groups.person-keys.v1; "
        "an erased volunteer gets nothing.",
    )
    runtime.consumer.subscribe(
        Topic.GROUPS_VOLUNTEER_MESSAGES,
        mail.on_volunteer_message,
        description="The same emails from the previous contract (address in clear), read "
        "while the topic drains; groups no longer writes it.",
    )
    subscribe_received_keys(
        runtime,
        Topic.GROUPS_PERSON_KEYS,
        lambda uow: uow.groups_keys,
        description="Keeps groups' per-person keys to open sealed volunteer addresses and "
        "names; a tombstone (the person erased) deletes the copy.",
    )
    runtime.consumer.subscribe(
        Topic.GROUPS_SUBMISSIONS,
        mail.on_submission_event,
        description="Queues the decision email to a submitter who consented to contact.",
    )
