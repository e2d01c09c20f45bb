"""Contracts published or consumed by the intake service."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, EmailStr, Field

from shared.contracts.envelope import TOLERANT_READER, EventPayload
from shared.contracts.fields import Consent, SafeDate, SafeDatetime, Text
from shared.contracts.sealed import PersonKeyPublished, SealedValue


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


TITLE_MAX = 300
BODY_MAX = 10_000
THEME_PATTERN = r"^[a-z][a-z0-9_-]{1,39}$"
Theme = Annotated[str, Field(pattern=THEME_PATTERN)]
Title = Annotated[str, Text(TITLE_MAX)]
Body = Annotated[str, Text(BODY_MAX)]
Locality = Annotated[str, Text(120, multiline=False)]


class ConsultationAnnounced(EventPayload):
    event_type = "intake.ConsultationAnnounced"

    consultation_id: uuid.UUID
    title: Title
    kind: ConsultationKind
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    themes: tuple[Theme, ...]


class ConsultationOpened(EventPayload):
    event_type = "intake.ConsultationOpened"

    consultation_id: uuid.UUID
    title: Title
    opens_at: AwareDatetime
    closes_at: AwareDatetime


class ConsultationClosed(EventPayload):
    event_type = "intake.ConsultationClosed"

    consultation_id: uuid.UUID
    title: Title
    closes_at: AwareDatetime


class ConsultationWindowChanged(EventPayload):
    """The window moved: freely before opening, only extended once open."""

    event_type = "intake.ConsultationWindowChanged"

    consultation_id: uuid.UUID
    title: Title
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    previous_opens_at: AwareDatetime
    previous_closes_at: AwareDatetime


class SubmissionReceived(EventPayload):
    """A submission was accepted; carries what groups and notifications need.

    The submitter's address travels sealed (`submitter_email_sealed`, under the person's
    key on `intake.person-keys.v1`, bound to `submission_id`): erasing the person deletes
    the key. `submitter_email` in clear is no longer written; it stays in the contract so
    records already on the topic remain readable.
    """

    event_type = "intake.SubmissionReceived"

    submission_id: uuid.UUID
    consultation_id: uuid.UUID
    consultation_title: Title
    theme: Theme | None
    submitter_kind: SubmitterKind
    locality: Locality | None
    title: Title
    body: Body
    channel: Channel
    received_at: AwareDatetime
    receipt_number: Annotated[str, Text(40, multiline=False)]
    digest: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    language: Language
    submitter_email: EmailStr | None = None
    submitter_email_sealed: SealedValue | None = None
    # The submitter agreed to be contacted about the outcome (decision emails).
    contact_consent: bool = False


class SubmitterData(BaseModel):
    model_config = TOLERANT_READER

    kind: SubmitterKind
    name: Annotated[str, Text(200, multiline=False)] | None = None
    organisation: Annotated[str, Text(300, multiline=False)] | None = None
    email: EmailStr | None = None
    phone: Annotated[str, Text(40, multiline=False)] | None = None
    locality: Locality | None = None


class ConsentData(BaseModel):
    model_config = TOLERANT_READER

    processing: Consent
    contact: Consent = False


class SubmissionContent(BaseModel):
    """What someone submits, whatever the channel: the HTTP body and the Kafka command
    both are this content, so it is validated by the same types everywhere."""

    model_config = TOLERANT_READER

    submitter: SubmitterData
    theme: Theme | None = None
    title: Title
    body: Body
    consent: ConsentData
    language: Language = Language.PL
    received_on: SafeDate | None = Field(
        default=None, description="Paper forms: the day the form reached the office."
    )


class SubmitSubmission(EventPayload, SubmissionContent):
    """Command from another front channel: submit on someone's behalf.

    It goes through the same validation as the HTTP endpoint; the envelope's `event_id`
    is the idempotency key, so a redelivered command creates nothing new.
    """

    event_type = "intake.SubmitSubmission"

    consultation_id: uuid.UUID
    channel: Channel = Channel.KAFKA
    received_at: SafeDatetime | None = None


class IntakePersonKeyPublished(EventPayload, PersonKeyPublished):
    """A person's data key, created with the first event that seals a field of theirs
    (same transaction, earlier in the outbox). Erasure publishes the key id's tombstone."""

    event_type = "intake.PersonKeyPublished"


def submitter_email_associated_data(submission_id: uuid.UUID) -> bytes:
    """Binds a sealed submitter address to its submission and field."""
    return f"intake.SubmissionReceived:submitter_email:{submission_id}".encode()
