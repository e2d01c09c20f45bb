"""Fakes for the fast tier: intake's unit of work on dictionaries (no broker, no server).

As in Cosmic Python's `tests/unit/test_handlers.py`: the use cases run unchanged against
in-memory repositories, and the tests look at what was committed and which events were
staged.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Sequence
from datetime import datetime

import pytest

from intake.domain.commands import CreateConsultation
from intake.domain.consultation import Consultation
from intake.domain.submission import Submission
from intake.service.ports import IntakeUnitOfWork, NewKey, StoredKey, SubmissionFilter
from shared.platform.shredding import InMemoryPersonKeys


class FakeConsultations:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Consultation] = {}
        self.sequences: dict[uuid.UUID, int] = {}
        self.opened: set[uuid.UUID] = set()
        self.closed: set[uuid.UUID] = set()
        self._numbers = itertools.count(1)

    async def add(self, consultation_id: uuid.UUID, command: CreateConsultation) -> Consultation:
        consultation = Consultation(
            id=consultation_id, number=next(self._numbers), **dataclasses.asdict(command)
        )
        self.rows[consultation_id] = consultation
        self.sequences[consultation_id] = 0
        return consultation

    async def get(
        self, consultation_id: uuid.UUID, *, for_update: bool = False
    ) -> Consultation | None:
        return self.rows.get(consultation_id)

    async def recent(self, *, limit: int, offset: int) -> list[Consultation]:
        ordered = sorted(self.rows.values(), key=lambda c: c.opens_at, reverse=True)
        return ordered[offset : offset + limit]

    async def update(self, consultation: Consultation) -> None:
        self.rows[consultation.id] = consultation

    async def reserve_receipt_sequences(
        self, consultation_id: uuid.UUID, count: int, *, if_unchanged: Consultation | None = None
    ) -> int | None:
        if if_unchanged is not None and self.rows.get(consultation_id) != if_unchanged:
            return None
        self.sequences[consultation_id] += count
        return self.sequences[consultation_id] - count + 1

    async def due_openings(self, now: datetime) -> list[Consultation]:
        return [c for c in self.rows.values() if c.id not in self.opened and c.opens_at <= now]

    async def due_closings(self, now: datetime) -> list[Consultation]:
        return [c for c in self.rows.values() if c.id not in self.closed and c.closes_at <= now]

    async def mark_opened(self, consultation_id: uuid.UUID, now: datetime) -> None:
        self.opened.add(consultation_id)

    async def mark_closed(self, consultation_id: uuid.UUID, now: datetime) -> None:
        self.closed.add(consultation_id)

    async def next_phase_change(self) -> datetime | None:
        due = [c.opens_at for c in self.rows.values() if c.id not in self.opened]
        due += [c.closes_at for c in self.rows.values() if c.id not in self.closed]
        return min(due, default=None)


class FakeSubmissions:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Submission] = {}

    async def add_many(self, submissions: Sequence[Submission]) -> None:
        for submission in submissions:
            assert submission.id not in self.rows
            self.rows[submission.id] = submission

    async def get(self, submission_id: uuid.UUID) -> Submission | None:
        return self.rows.get(submission_id)

    async def get_many(self, submission_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Submission]:
        return {i: self.rows[i] for i in submission_ids if i in self.rows}

    async def page(
        self, consultation_id: uuid.UUID, filters: SubmissionFilter, *, limit: int, offset: int
    ) -> tuple[list[Submission], int]:
        found = [
            s
            for s in sorted(self.rows.values(), key=lambda s: s.sequence)
            if s.consultation_id == consultation_id
            and filters.theme in (None, s.content.theme)
            and filters.kind in (None, s.content.submitter.kind)
            and filters.channel in (None, s.channel)
        ]
        return found[offset : offset + limit], len(found)


class FakeIdempotencyKeys:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], StoredKey] = {}

    async def find(self, scope: str, keys: Sequence[str]) -> dict[str, StoredKey]:
        return {key: self.rows[(scope, key)] for key in keys if (scope, key) in self.rows}

    async def add_many(self, scope: str, keys: Sequence[NewKey]) -> None:
        for new in keys:
            assert (scope, new.key) not in self.rows, "a key is added once"
            self.rows[(scope, new.key)] = StoredKey(new.fingerprint, new.submission_id)


class FakeIntakeUnitOfWork(IntakeUnitOfWork):
    """Commits keep what the use case wrote; a rollback restores the state before it.

    Repositories are shared between units of work (like one database); each unit of work
    snapshots them when it opens, and a unit left without commit restores the snapshot.
    """

    def __init__(self, store: FakeStore) -> None:
        super().__init__()
        self._store = store
        self.consultations = store.consultations
        self.submissions = store.submissions
        self.idempotency_keys = store.idempotency_keys
        self.person_keys = store.person_keys
        self._snapshot: dict[str, object] | None = None

    async def _begin(self) -> None:
        self._snapshot = self._store.snapshot()

    async def _commit(self) -> None:
        self._store.committed_events.extend(event.payload for event in self.events)
        self._snapshot = None

    async def rollback(self) -> None:
        if self._snapshot is not None:
            self._store.restore(self._snapshot)
            self._snapshot = None


class FakeStore:
    def __init__(self) -> None:
        self.consultations = FakeConsultations()
        self.submissions = FakeSubmissions()
        self.idempotency_keys = FakeIdempotencyKeys()
        self.person_keys = InMemoryPersonKeys()
        self.committed_events: list[object] = []

    def snapshot(self) -> dict[str, object]:
        return {
            "consultations": dict(self.consultations.rows),
            "sequences": dict(self.consultations.sequences),
            "opened": set(self.consultations.opened),
            "closed": set(self.consultations.closed),
            "submissions": dict(self.submissions.rows),
            "keys": dict(self.idempotency_keys.rows),
        }

    def restore(self, snapshot: dict[str, object]) -> None:
        self.consultations.rows = snapshot["consultations"]  # type: ignore[assignment]
        self.consultations.sequences = snapshot["sequences"]  # type: ignore[assignment]
        self.consultations.opened = snapshot["opened"]  # type: ignore[assignment]
        self.consultations.closed = snapshot["closed"]  # type: ignore[assignment]
        self.submissions.rows = snapshot["submissions"]  # type: ignore[assignment]
        self.idempotency_keys.rows = snapshot["keys"]  # type: ignore[assignment]

    def unit_of_work(self) -> FakeIntakeUnitOfWork:
        return FakeIntakeUnitOfWork(self)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()
