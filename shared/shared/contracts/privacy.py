"""Contracts of the data-subject requests (RODO art. 15 export, art. 17 erasure).

intake owns the requests (`intake.privacy-requests.v1`): it is where residents' data
enters and where the admin works. Every service answers on its own replies topic
(`<service>.privacy-replies.v1`) with its own event types, so the usual rule holds: a
topic and its event types belong to one producer.

No address travels: a person is named by SHA-256 hashes of the normalised address
(`shared.platform.privacy.subject_hashes`), which every service compares with the hash of
what it stores. An export answer is sealed to the request's one-off X25519 public key, so
only intake (holding the private key) can read it.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, Field

from shared.contracts.envelope import TOLERANT_READER, EventPayload

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Base64Text = Annotated[str, Field(pattern=r"^[A-Za-z0-9_=-]+$", max_length=4_000_000)]


class SubjectKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


class PersonRef(BaseModel):
    """The data subject: the kind of address and the hashes of its normalised forms."""

    model_config = TOLERANT_READER

    kind: SubjectKind
    hashes: tuple[Sha256Hex, ...] = Field(min_length=1, max_length=4)


class ErasureRequested(EventPayload):
    """Erase or anonymise everything that names this person (art. 17)."""

    event_type = "intake.ErasureRequested"

    request_id: uuid.UUID
    subject: PersonRef
    requested_at: AwareDatetime


class ExportRequested(EventPayload):
    """Answer with what is held about this person (art. 15), sealed to `public_key`."""

    event_type = "intake.ExportRequested"

    request_id: uuid.UUID
    subject: PersonRef
    requested_at: AwareDatetime
    # Raw X25519 public key, URL-safe base64 (32 bytes).
    public_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{43}=$")]


class SealedBox(BaseModel):
    """X25519 (ephemeral) + HKDF-SHA256 + AES-256-GCM, every part URL-safe base64."""

    model_config = TOLERANT_READER

    ephemeral_public_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{43}=$")]
    nonce: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{16}$")]
    ciphertext: Base64Text


class ErasureCompleted(EventPayload):
    """A service erased or anonymised what it held about the person (base: see below)."""

    event_type: ClassVar[str] = "privacy.ErasureCompleted"

    request_id: uuid.UUID
    service: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
    records: int = Field(ge=0, description="Rows erased or anonymised.")
    completed_at: AwareDatetime


class ExportAnswered(EventPayload):
    """A service's answer to an export request: its records, sealed (base: see below)."""

    event_type: ClassVar[str] = "privacy.ExportAnswered"

    request_id: uuid.UUID
    service: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
    records: int = Field(ge=0, description="Rows found.")
    sealed: SealedBox
    answered_at: AwareDatetime


# Each service's replies are its own event types (an event type belongs to one topic).
class IntakeErasureCompleted(ErasureCompleted):
    event_type = "intake.ErasureCompleted"


class IntakeExportAnswered(ExportAnswered):
    event_type = "intake.ExportAnswered"


class GroupsErasureCompleted(ErasureCompleted):
    event_type = "groups.ErasureCompleted"


class GroupsExportAnswered(ExportAnswered):
    event_type = "groups.ExportAnswered"


class NotificationsErasureCompleted(ErasureCompleted):
    event_type = "notifications.ErasureCompleted"


class NotificationsExportAnswered(ExportAnswered):
    event_type = "notifications.ExportAnswered"


class NewsErasureCompleted(ErasureCompleted):
    event_type = "news.ErasureCompleted"


class NewsExportAnswered(ExportAnswered):
    event_type = "news.ExportAnswered"


# service -> (erasure reply model, export reply model)
REPLY_MODELS: dict[str, tuple[type[ErasureCompleted], type[ExportAnswered]]] = {
    "intake": (IntakeErasureCompleted, IntakeExportAnswered),
    "groups": (GroupsErasureCompleted, GroupsExportAnswered),
    "notifications": (NotificationsErasureCompleted, NotificationsExportAnswered),
    "news": (NewsErasureCompleted, NewsExportAnswered),
}

ExportRecords = dict[str, list[dict[str, Any]]]
