"""Intake use cases. Each runs in one transaction: state change + outbox row, or nothing."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from pydantic_core import to_jsonable_python

from intake.adapters import repository
from intake.domain.consultation import (
    Consultation,
    change_window,
    validate_themes,
    validate_window,
)
from intake.domain.errors import FieldProblem, InvalidRequest
from intake.domain.submission import (
    SubmissionDraft,
    canonical_form,
    check_content,
    check_window,
    digest_of,
    receipt_number,
)
from shared.contracts.envelope import EventPayload, new_envelope
from shared.contracts.intake import (
    ConsultationAnnounced,
    ConsultationClosed,
    ConsultationKind,
    ConsultationOpened,
    ConsultationWindowChanged,
    SubmissionReceived,
)
from shared.contracts.topics import Topic
from shared.platform.database import DbConnection
from shared.platform.logging import correlation_id_var
from shared.platform.outbox import add_to_outbox

PRODUCER = "intake"
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class NotFound(Exception):
    pass


class IdempotencyMismatch(Exception):
    """The Idempotency-Key was used before for a different request."""


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    status_code: int
    body: dict[str, Any]
    replayed: bool


@dataclass(frozen=True, slots=True)
class IntakeTopics:
    """Where intake publishes and listens; tests and benchmarks use private copies."""

    consultations: str = Topic.INTAKE_CONSULTATIONS.value
    submissions: str = Topic.INTAKE_SUBMISSIONS.value
    commands: str = Topic.INTAKE_SUBMISSION_COMMANDS.value

    @classmethod
    def private(cls, label: str) -> IntakeTopics:
        suffix = uuid.uuid4().hex[:10]
        return cls(
            consultations=f"{label}.consultations-{suffix}.v1",
            submissions=f"{label}.submissions-{suffix}.v1",
            commands=f"{label}.submission-commands-{suffix}.v1",
        )


@dataclass(frozen=True, slots=True)
class Trace:
    correlation_id: str | None = None
    causation_id: str | None = None


def _jsonable(value: Any) -> Any:
    """Plain JSON types (ISO 8601 datetimes) so a replayed answer is byte-identical."""
    return to_jsonable_python(value)


class IntakeService:
    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        *,
        zone: ZoneInfo,
        clock: Clock = utc_now,
        topics: IntakeTopics = IntakeTopics(),
    ) -> None:
        self._pool = pool
        self._zone = zone
        self._clock = clock
        self._topics = topics

    async def _stage(
        self, conn: DbConnection, payload: EventPayload, *, key: uuid.UUID, trace: Trace
    ) -> None:
        topic = (
            self._topics.submissions
            if isinstance(payload, SubmissionReceived)
            else self._topics.consultations
        )
        envelope = new_envelope(
            payload,
            producer=PRODUCER,
            correlation_id=trace.correlation_id or correlation_id_var.get(),
            causation_id=trace.causation_id,
        )
        await add_to_outbox(conn, envelope, topic=topic, key=str(key))

    # --- consultations -------------------------------------------------------------

    async def create_consultation(
        self,
        *,
        title: str,
        description: str,
        kind: ConsultationKind,
        opens_at: datetime,
        closes_at: datetime,
        themes: tuple[str, ...],
    ) -> Consultation:
        validate_window(kind, opens_at, closes_at)
        validate_themes(themes)
        async with self._pool().acquire() as conn, conn.transaction():
            consultation = await repository.insert_consultation(
                conn,
                consultation_id=uuid.uuid4(),
                title=title,
                description=description,
                kind=kind,
                opens_at=opens_at,
                closes_at=closes_at,
                themes=themes,
            )
            await self._stage(
                conn,
                ConsultationAnnounced(
                    consultation_id=consultation.id,
                    title=consultation.title,
                    kind=consultation.kind,
                    opens_at=consultation.opens_at,
                    closes_at=consultation.closes_at,
                    themes=consultation.themes,
                ),
                key=consultation.id,
                trace=Trace(),
            )
        return consultation

    async def change_consultation(
        self,
        consultation_id: uuid.UUID,
        *,
        title: str | None,
        description: str | None,
        opens_at: datetime | None,
        closes_at: datetime | None,
    ) -> Consultation:
        async with self._pool().acquire() as conn, conn.transaction():
            current = await repository.get_consultation(conn, consultation_id, for_update=True)
            if current is None:
                raise NotFound(f"consultation {consultation_id} not found")
            changed = current
            window_moved = False
            if opens_at is not None or closes_at is not None:
                changed = change_window(
                    current, opens_at=opens_at, closes_at=closes_at, now=self._clock()
                )
                window_moved = (changed.opens_at, changed.closes_at) != (
                    current.opens_at,
                    current.closes_at,
                )
            changed = replace(
                changed,
                title=title if title is not None else changed.title,
                description=description if description is not None else changed.description,
            )
            await repository.update_consultation(conn, changed)
            if window_moved:
                await self._stage(
                    conn,
                    ConsultationWindowChanged(
                        consultation_id=changed.id,
                        title=changed.title,
                        opens_at=changed.opens_at,
                        closes_at=changed.closes_at,
                        previous_opens_at=current.opens_at,
                        previous_closes_at=current.closes_at,
                    ),
                    key=changed.id,
                    trace=Trace(),
                )
        return changed

    async def get_consultation(self, consultation_id: uuid.UUID) -> Consultation:
        async with self._pool().acquire() as conn:
            consultation = await repository.get_consultation(conn, consultation_id)
        if consultation is None:
            raise NotFound(f"consultation {consultation_id} not found")
        return consultation

    async def list_consultations(self, *, limit: int, offset: int) -> list[Consultation]:
        async with self._pool().acquire() as conn:
            return await repository.list_consultations(conn, limit=limit, offset=offset)

    def now(self) -> datetime:
        return self._clock()

    # --- submissions ---------------------------------------------------------------

    async def submit(
        self,
        draft: SubmissionDraft,
        *,
        entered_by: str | None,
        idempotency_key: str | None,
    ) -> SubmitOutcome:
        """HTTP path: its own transaction, with optional Idempotency-Key replay."""
        async with self._pool().acquire() as conn, conn.transaction():
            if idempotency_key is None:
                body = await self.submit_in(conn, draft, entered_by=entered_by, trace=Trace())
                return SubmitOutcome(202, body, replayed=False)
            scope = f"submit:{draft.consultation_id}"
            request_hash = _request_hash(draft, entered_by)
            stored = await repository.claim_idempotency_key(
                conn, scope=scope, key=idempotency_key, request_hash=request_hash
            )
            if stored is not None:
                if stored.request_hash != request_hash or stored.status_code is None:
                    raise IdempotencyMismatch(
                        "this Idempotency-Key was already used for a different request"
                    )
                return SubmitOutcome(stored.status_code, stored.response, replayed=True)
            body = await self.submit_in(conn, draft, entered_by=entered_by, trace=Trace())
            await repository.store_idempotent_answer(
                conn, scope=scope, key=idempotency_key, status_code=202, response=body
            )
            return SubmitOutcome(202, body, replayed=False)

    async def submit_in(
        self,
        conn: DbConnection,
        draft: SubmissionDraft,
        *,
        entered_by: str | None,
        trace: Trace,
    ) -> dict[str, Any]:
        """Validate and store in the caller's transaction (shared by HTTP and Kafka)."""
        # Locking the row orders concurrent submissions and window changes.
        consultation = await repository.get_consultation(
            conn, draft.consultation_id, for_update=True
        )
        if consultation is None:
            raise NotFound(f"consultation {draft.consultation_id} not found")
        draft = check_content(draft, consultation)
        now = self._clock()
        check_window(draft, consultation, now, self._zone)
        sequence = await repository.next_receipt_sequence(conn, consultation.id)
        number = receipt_number(consultation.number, sequence)
        received_at = now
        digest = digest_of(canonical_form(draft, received_at))
        submission_id = uuid.uuid4()
        await repository.insert_submission(
            conn,
            submission_id=submission_id,
            draft=draft,
            sequence=sequence,
            receipt_number=number,
            received_at=received_at,
            entered_by=entered_by,
            digest=digest,
        )
        await self._stage(
            conn,
            SubmissionReceived(
                submission_id=submission_id,
                consultation_id=consultation.id,
                consultation_title=consultation.title,
                theme=draft.theme,
                submitter_kind=draft.submitter.kind,
                locality=draft.submitter.locality,
                title=draft.title,
                body=draft.body,
                channel=draft.channel,
                received_at=received_at,
                receipt_number=number,
                digest=digest,
                language=draft.language,
                submitter_email=draft.submitter.email,
            ),
            key=submission_id,
            trace=trace,
        )
        answer: dict[str, Any] = _jsonable(
            {
                "id": submission_id,
                "consultation_id": consultation.id,
                "receipt": {"number": number, "received_at": received_at, "digest": digest},
            }
        )
        return answer

    async def get_submission(self, submission_id: uuid.UUID) -> dict[str, Any]:
        async with self._pool().acquire() as conn:
            found = await repository.get_submission(conn, submission_id)
        if found is None:
            raise NotFound(f"submission {submission_id} not found")
        return found

    async def list_submissions(
        self, consultation_id: uuid.UUID, **filters: Any
    ) -> tuple[list[dict[str, Any]], int]:
        async with self._pool().acquire() as conn:
            if await repository.get_consultation(conn, consultation_id) is None:
                raise NotFound(f"consultation {consultation_id} not found")
            return await repository.list_submissions(conn, consultation_id, **filters)

    # --- scheduler -----------------------------------------------------------------

    async def announce_due_phase_changes(self) -> int:
        """Stage Opened/Closed events whose moment has come; safe to run anywhere, any time."""
        now = self._clock()
        staged = 0
        async with self._pool().acquire() as conn, conn.transaction():
            for consultation in await repository.due_openings(conn, now):
                await self._stage(
                    conn,
                    ConsultationOpened(
                        consultation_id=consultation.id,
                        title=consultation.title,
                        opens_at=consultation.opens_at,
                        closes_at=consultation.closes_at,
                    ),
                    key=consultation.id,
                    trace=Trace(),
                )
                await repository.mark_opened(conn, consultation.id, now)
                staged += 1
            for consultation in await repository.due_closings(conn, now):
                await self._stage(
                    conn,
                    ConsultationClosed(
                        consultation_id=consultation.id,
                        title=consultation.title,
                        closes_at=consultation.closes_at,
                    ),
                    key=consultation.id,
                    trace=Trace(),
                )
                await repository.mark_closed(conn, consultation.id, now)
                staged += 1
        return staged

    async def next_phase_change(self) -> datetime | None:
        async with self._pool().acquire() as conn:
            return await repository.next_phase_change(conn)


def _request_hash(draft: SubmissionDraft, entered_by: str | None) -> str:
    payload = {
        "consultation_id": str(draft.consultation_id),
        "submitter": draft.submitter.model_dump(mode="json"),
        "theme": draft.theme,
        "title": draft.title,
        "body": draft.body,
        "consent": draft.consent.model_dump(mode="json"),
        "channel": draft.channel.value,
        "language": draft.language.value,
        "received_on": draft.received_on.isoformat() if draft.received_on else None,
        "entered_by": entered_by,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


__all__ = [
    "FieldProblem",
    "IdempotencyMismatch",
    "IntakeService",
    "IntakeTopics",
    "InvalidRequest",
    "NotFound",
    "SubmitOutcome",
    "Trace",
]
