"""What callers ask intake to do, whatever the channel they come by.

Entrypoints build these from their input models (an HTTP body, a Kafka command) without
copying fields by hand: the submission's content is the validated contract model itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from shared.contracts.intake import Channel, ConsultationKind, SubmissionContent


@dataclass(frozen=True, slots=True)
class CreateConsultation:
    title: str
    description: str
    kind: ConsultationKind
    opens_at: datetime
    closes_at: datetime
    themes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChangeConsultation:
    consultation_id: uuid.UUID
    title: str | None = None
    description: str | None = None
    opens_at: datetime | None = None
    closes_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Submit:
    consultation_id: uuid.UUID
    content: SubmissionContent
    channel: Channel
    # Who typed it in: a role ("clerk"), a producing service ("kafka:<producer>"), or
    # nobody (the submitter on the web).
    entered_by: str | None = None
    idempotency_key: str | None = None
