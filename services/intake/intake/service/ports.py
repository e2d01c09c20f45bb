"""What the use cases need from storage, independent of PostgreSQL.

`IntakeUnitOfWork` is the unit of work use cases receive; adapters implement it on
asyncpg (`intake.adapters`), unit tests on dictionaries (`tests/unit/fakes.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from intake.domain.commands import CreateConsultation
from intake.domain.consultation import Consultation
from intake.domain.privacy import PrivacyRequest, Reply
from intake.domain.submission import Submission
from shared.contracts.intake import Channel, SubmitterKind
from shared.platform.shredding import PersonSealer
from shared.platform.unit_of_work import UnitOfWork


class Consultations(Protocol):
    async def add(self, consultation_id: uuid.UUID, command: CreateConsultation) -> Consultation:
        """Store a new consultation; the store assigns its short number."""
        ...

    async def get(
        self, consultation_id: uuid.UUID, *, for_update: bool = False
    ) -> Consultation | None:
        """`for_update` locks the row until the unit of work ends."""
        ...

    async def recent(self, *, limit: int, offset: int) -> list[Consultation]: ...

    async def update(self, consultation: Consultation) -> None: ...

    async def reserve_receipt_sequences(
        self, consultation_id: uuid.UUID, count: int, *, if_unchanged: Consultation | None = None
    ) -> int | None:
        """Reserve the next `count` gap-free receipt sequences of the consultation (its row
        stays locked until the unit of work ends); returns the first of them. With
        `if_unchanged`, only while the consultation is still as that read of it (after
        waiting for its lock): None, and nothing reserved, when it changed meanwhile."""
        ...

    async def due_openings(self, now: datetime) -> list[Consultation]: ...

    async def due_closings(self, now: datetime) -> list[Consultation]: ...

    async def mark_opened(self, consultation_id: uuid.UUID, now: datetime) -> None: ...

    async def mark_closed(self, consultation_id: uuid.UUID, now: datetime) -> None: ...

    async def next_phase_change(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class SubmissionFilter:
    theme: str | None = None
    kind: SubmitterKind | None = None
    channel: Channel | None = None


class Submissions(Protocol):
    async def add_many(self, submissions: Sequence[Submission]) -> None:
        """Store the submissions (one statement, whatever their number)."""
        ...

    async def get(self, submission_id: uuid.UUID) -> Submission | None: ...

    async def get_many(self, submission_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Submission]:
        """The ones found, by id."""
        ...

    async def page(
        self,
        consultation_id: uuid.UUID,
        filters: SubmissionFilter,
        *,
        limit: int,
        offset: int,
    ) -> tuple[list[Submission], int]:
        """One page in receipt order, and how many match in all."""
        ...


@dataclass(frozen=True, slots=True)
class StoredKey:
    fingerprint: str
    submission_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str
    fingerprint: str
    submission_id: uuid.UUID


class IdempotencyKeys(Protocol):
    """A key is stored once per scope: `add_many` fails the unit of work on a key already
    stored, so two units of work that both read a key as unknown cannot both use it."""

    async def find(self, scope: str, keys: Sequence[str]) -> dict[str, StoredKey]:
        """What is stored under those of `keys` that are known."""
        ...

    async def add_many(self, scope: str, keys: Sequence[NewKey]) -> None: ...


class PrivacyRequests(Protocol):
    async def add(self, request: PrivacyRequest) -> None: ...

    async def get(self, request_id: uuid.UUID) -> PrivacyRequest | None: ...

    async def add_reply(self, request_id: uuid.UUID, reply: Reply) -> None: ...


class IntakeUnitOfWork(UnitOfWork):
    consultations: Consultations
    submissions: Submissions
    idempotency_keys: IdempotencyKeys
    privacy_requests: PrivacyRequests
    # Per-person data keys: seals the contact fields of events (crypto-shredding).
    person_keys: PersonSealer
