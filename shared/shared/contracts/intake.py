"""Contracts published or consumed by the intake service."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field

from shared.contracts.envelope import EventPayload


class ConsultationKind(StrEnum):
    STRATEGY = "strategy"
    GENERAL = "general"


class SubmitterKind(StrEnum):
    RESIDENT = "resident"
    VILLAGE_COUNCIL = "village_council"
    ENTREPRENEUR = "entrepreneur"
    ACTIVIST = "activist"
    COMPANY = "company"
    ASSOCIATION = "association"
    ORGANISATION = "organisation"


class Channel(StrEnum):
    WEB = "web"
    PHONE = "phone"
    PAPER = "paper"
    EMAIL = "email"
    KAFKA = "kafka"


class Language(StrEnum):
    PL = "pl"
    EN = "en"


class ConsultationAnnounced(EventPayload):
    event_type = "intake.ConsultationAnnounced"

    consultation_id: uuid.UUID
    title: str
    kind: ConsultationKind
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    themes: tuple[str, ...]


class ConsultationOpened(EventPayload):
    event_type = "intake.ConsultationOpened"

    consultation_id: uuid.UUID
    title: str
    opens_at: AwareDatetime
    closes_at: AwareDatetime


class ConsultationClosed(EventPayload):
    event_type = "intake.ConsultationClosed"

    consultation_id: uuid.UUID
    title: str
    closes_at: AwareDatetime


class ConsultationWindowChanged(EventPayload):
    """The window moved: freely before opening, only extended once open."""

    event_type = "intake.ConsultationWindowChanged"

    consultation_id: uuid.UUID
    title: str
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    previous_opens_at: AwareDatetime
    previous_closes_at: AwareDatetime


class SubmissionReceived(EventPayload):
    """A submission was accepted; carries what groups and notifications need.

    `submitter_email` is present only when the submitter gave one (data minimisation).
    """

    event_type = "intake.SubmissionReceived"

    submission_id: uuid.UUID
    consultation_id: uuid.UUID
    consultation_title: str
    theme: str | None
    submitter_kind: SubmitterKind
    locality: str | None
    title: str
    body: str
    channel: Channel
    received_at: AwareDatetime
    receipt_number: str
    digest: str
    language: Language
    submitter_email: EmailStr | None = None


class SubmitterData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: SubmitterKind
    name: str | None = Field(default=None, max_length=200)
    organisation: str | None = Field(default=None, max_length=300)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=40)
    locality: str | None = Field(default=None, max_length=120)


class ConsentData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    processing: bool
    contact: bool = False


class SubmitSubmission(EventPayload):
    """Command from another front channel: submit on someone's behalf.

    It goes through the same validation as the HTTP endpoint; the envelope's `event_id`
    is the idempotency key, so a redelivered command creates nothing new.
    """

    event_type = "intake.SubmitSubmission"

    consultation_id: uuid.UUID
    submitter: SubmitterData
    theme: str | None = None
    title: str
    body: str
    consent: ConsentData
    channel: Channel = Channel.KAFKA
    language: Language = Language.PL
    received_on: date | None = None
    received_at: datetime | None = None
