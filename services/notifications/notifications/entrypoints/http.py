"""HTTP API: the delivery log for administrators."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import AwareDatetime, BaseModel, ValidationError

from notifications.domain.deliveries import Delivery, DeliveryStatus
from notifications.service.ports import DeliveryFilter, NotificationsUnitOfWork, PageCursor
from shared.contracts.fields import PageLimit, Text
from shared.platform.http import ApiError, Role, TokenAuth, error_responses

RecipientQuery = Annotated[str, Text(320, min_length=3, multiline=False)]
CursorQuery = Annotated[str, Text(500, multiline=False)]


class DeliveryEntry(BaseModel):
    id: uuid.UUID
    source_event_id: uuid.UUID
    purpose: str
    recipient: str
    language: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None
    message_id: str
    # Only with include_bodies=true: the text is personal data and rarely needed.
    subject: str | None = None
    text_body: str | None = None
    html_body: str | None = None


class DeliveryPage(BaseModel):
    items: list[DeliveryEntry]
    next_cursor: str | None


class _CursorData(BaseModel):
    created_at: AwareDatetime
    id: uuid.UUID


def encode_cursor(delivery: Delivery) -> str:
    data = _CursorData(created_at=delivery.created_at, id=delivery.id)
    return base64.urlsafe_b64encode(data.model_dump_json().encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> PageCursor:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = _CursorData.model_validate(json.loads(raw))
    except (binascii.Error, ValueError, ValidationError):
        # ValidationError and JSONDecodeError are ValueErrors; listed for the reader.
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "validation_failed",
            "not a cursor returned by this endpoint",
            field="cursor",
        ) from None
    return PageCursor(created_at=data.created_at, id=data.id)


def to_entry(delivery: Delivery, *, include_bodies: bool) -> DeliveryEntry:
    return DeliveryEntry(
        id=delivery.id,
        source_event_id=delivery.source_event_id,
        purpose=delivery.purpose.value,
        recipient=delivery.recipient,
        language=delivery.language,
        status=delivery.status,
        attempts=delivery.attempts,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at if delivery.is_pending else None,
        created_at=delivery.created_at,
        sent_at=delivery.sent_at,
        failed_at=delivery.failed_at,
        message_id=delivery.message_id,
        subject=delivery.subject if include_bodies else None,
        text_body=delivery.text_body if include_bodies else None,
        html_body=delivery.html_body if include_bodies else None,
    )


def deliveries_router(
    unit_of_work: Callable[[], NotificationsUnitOfWork], auth: TokenAuth
) -> APIRouter:
    router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])

    @router.get(
        "",
        response_model=DeliveryPage,
        summary="The delivery log, newest first",
        dependencies=[Depends(auth.require(Role.ADMIN))],
        responses=error_responses(401, 403),
    )
    async def list_deliveries(
        event_id: Annotated[
            uuid.UUID | None, Query(description="Only deliveries caused by this event")
        ] = None,
        recipient: Annotated[
            RecipientQuery | None, Query(description="Recipient address (any case)")
        ] = None,
        status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
        limit: Annotated[PageLimit, Query()] = 50,
        cursor: Annotated[
            CursorQuery | None, Query(description="next_cursor of the previous page")
        ] = None,
        include_bodies: Annotated[bool, Query(description="Add subject and both bodies")] = False,
    ) -> DeliveryPage:
        after = decode_cursor(cursor) if cursor is not None else None
        filters = DeliveryFilter(source_event_id=event_id, recipient=recipient, status=status_)
        async with unit_of_work() as uow:
            # One extra row tells whether another page exists without a count query.
            found = await uow.deliveries.page(filters, limit=limit + 1, after=after)
        page = found[:limit]
        return DeliveryPage(
            items=[to_entry(delivery, include_bodies=include_bodies) for delivery in page],
            next_cursor=encode_cursor(page[-1]) if len(found) > limit else None,
        )

    return router
