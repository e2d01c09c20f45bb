"""The envelope every Strategia event travels in.

The envelope is the stable part of the wire format: consumers read `event_type` and
`event_version` to pick the payload model, and use `event_id` for idempotency. The Kafka
key is the aggregate id, so all events of one aggregate keep their order.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from shared.clock import utc_now
from shared.contracts.fields import Line

# Readers tolerate what they do not know: a producer one minor version ahead may add an
# optional field, and a consumer still on the older contract must go on working (during a
# rolling deploy, say). Additions are the only changes allowed within a topic version; the
# contract compatibility test guards the rest. HTTP input models stay strict.
TOLERANT_READER = ConfigDict(frozen=True, extra="ignore")


class EventPayload(BaseModel):
    """Base of every event payload: frozen, tolerant of fields added by newer producers.

    Subclasses declare `event_type` and `event_version`; together they select the model on
    the consuming side. A breaking change is a new major version on a new topic.
    """

    model_config = TOLERANT_READER

    event_type: ClassVar[str]
    event_version: ClassVar[int] = 1


PayloadT = TypeVar("PayloadT", bound=EventPayload)


class Envelope(BaseModel, Generic[PayloadT]):
    """Metadata plus payload, serialised as one JSON object on the topic."""

    model_config = TOLERANT_READER

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: Line
    event_version: int = Field(ge=1, le=1000)
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    producer: Line
    correlation_id: Line
    causation_id: Line | None = None
    data: PayloadT

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class RawEnvelope(BaseModel):
    """The envelope with an undecoded payload: the first step of reading a message."""

    model_config = TOLERANT_READER

    event_id: uuid.UUID
    event_type: Line
    event_version: int = Field(ge=1, le=1000)
    occurred_at: AwareDatetime
    producer: Line
    correlation_id: Line
    causation_id: Line | None = None
    data: dict[str, Any]


def new_envelope(
    payload: PayloadT,
    *,
    producer: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> Envelope[PayloadT]:
    """Wrap a payload; a new correlation id starts a new conversation."""
    event_id = uuid.uuid4()
    # Parametrise with the concrete class so serialisation uses the payload's own fields.
    envelope_type = cast(type[Envelope[PayloadT]], Envelope[type(payload)])  # type: ignore[misc]
    return envelope_type(
        event_id=event_id,
        event_type=payload.event_type,
        event_version=payload.event_version,
        producer=producer,
        correlation_id=correlation_id or str(event_id),
        causation_id=causation_id,
        data=payload,
    )
