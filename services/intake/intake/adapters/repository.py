"""asyncpg persistence of consultations, submissions and idempotency keys.

Each repository works on the connection of its unit of work: the service layer decides
the transaction boundaries, the repositories only speak SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from intake.domain.commands import CreateConsultation
from intake.domain.consultation import Consultation
from intake.domain.submission import Receipt, Submission
from intake.service.ports import NewKey, StoredKey, SubmissionFilter
from shared.contracts.intake import (
    Channel,
    ConsentData,
    ConsultationKind,
    Language,
    SubmissionContent,
    SubmitterData,
    SubmitterKind,
)
from shared.platform.database import DbConnection

_CONSULTATION_COLUMNS = "id, number, title, description, kind, opens_at, closes_at, themes"


def _consultation(row: asyncpg.Record) -> Consultation:
    return Consultation(
        id=row["id"],
        number=row["number"],
        title=row["title"],
        description=row["description"],
        kind=ConsultationKind(row["kind"]),
        opens_at=row["opens_at"],
        closes_at=row["closes_at"],
        themes=tuple(row["themes"]),
    )


class PostgresConsultations:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def add(self, consultation_id: uuid.UUID, command: CreateConsultation) -> Consultation:
        row = await self._conn.fetchrow(
            "INSERT INTO consultations (id, title, description, kind, opens_at, closes_at,"
            f" themes) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_CONSULTATION_COLUMNS}",
            consultation_id,
            command.title,
            command.description,
            command.kind.value,
            command.opens_at,
            command.closes_at,
            list(command.themes),
        )
        assert row is not None
        return _consultation(row)

    async def get(
        self, consultation_id: uuid.UUID, *, for_update: bool = False
    ) -> Consultation | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._conn.fetchrow(
            f"SELECT {_CONSULTATION_COLUMNS} FROM consultations WHERE id = $1{lock}",
            consultation_id,
        )
        return _consultation(row) if row else None

    async def recent(self, *, limit: int, offset: int) -> list[Consultation]:
        rows = await self._conn.fetch(
            f"SELECT {_CONSULTATION_COLUMNS} FROM consultations"
            " ORDER BY opens_at DESC, id LIMIT $1 OFFSET $2",
            limit,
            offset,
        )
        return [_consultation(row) for row in rows]

    async def update(self, consultation: Consultation) -> None:
        # The scheduler reads opens_at/closes_at afresh, so a moved window needs nothing more.
        await self._conn.execute(
            "UPDATE consultations SET title = $2, description = $3, opens_at = $4,"
            " closes_at = $5, updated_at = now() WHERE id = $1",
            consultation.id,
            consultation.title,
            consultation.description,
            consultation.opens_at,
            consultation.closes_at,
        )

    async def reserve_receipt_sequences(
        self, consultation_id: uuid.UUID, count: int, *, if_unchanged: Consultation | None = None
    ) -> int | None:
        if if_unchanged is None:
            last = await self._conn.fetchval(
                "UPDATE consultations SET last_receipt_seq = last_receipt_seq + $2"
                " WHERE id = $1 RETURNING last_receipt_seq",
                consultation_id,
                count,
            )
        else:
            # Waiting for the row lock, PostgreSQL checks these against the row as the
            # holder left it (READ COMMITTED): a change committed meanwhile matches nothing.
            was = if_unchanged
            last = await self._conn.fetchval(
                "UPDATE consultations SET last_receipt_seq = last_receipt_seq + $2"
                " WHERE id = $1 AND number = $3 AND title = $4 AND description = $5"
                " AND kind = $6 AND opens_at = $7 AND closes_at = $8 AND themes = $9"
                " RETURNING last_receipt_seq",
                consultation_id,
                count,
                was.number,
                was.title,
                was.description,
                was.kind.value,
                was.opens_at,
                was.closes_at,
                list(was.themes),
            )
        return None if last is None else int(last) - count + 1

    async def due_openings(self, now: datetime) -> list[Consultation]:
        rows = await self._conn.fetch(
            f"SELECT {_CONSULTATION_COLUMNS} FROM consultations"
            " WHERE opened_announced_at IS NULL AND opens_at <= $1"
            " ORDER BY opens_at FOR UPDATE SKIP LOCKED",
            now,
        )
        return [_consultation(row) for row in rows]

    async def due_closings(self, now: datetime) -> list[Consultation]:
        rows = await self._conn.fetch(
            f"SELECT {_CONSULTATION_COLUMNS} FROM consultations"
            " WHERE closed_announced_at IS NULL AND closes_at <= $1"
            " ORDER BY closes_at FOR UPDATE SKIP LOCKED",
            now,
        )
        return [_consultation(row) for row in rows]

    async def mark_opened(self, consultation_id: uuid.UUID, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE consultations SET opened_announced_at = $2 WHERE id = $1",
            consultation_id,
            now,
        )

    async def mark_closed(self, consultation_id: uuid.UUID, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE consultations SET closed_announced_at = $2 WHERE id = $1",
            consultation_id,
            now,
        )

    async def next_phase_change(self) -> datetime | None:
        value: datetime | None = await self._conn.fetchval(
            "SELECT min(due) FROM ("
            " SELECT opens_at AS due FROM consultations WHERE opened_announced_at IS NULL"
            " UNION ALL"
            " SELECT closes_at FROM consultations WHERE closed_announced_at IS NULL) AS pending"
        )
        return value


_SUBMISSION_COLUMNS = (
    "id, consultation_id, receipt_seq, receipt_number, submitter_kind, submitter_name,"
    " submitter_organisation, submitter_email, submitter_phone, locality, theme, title, body,"
    " channel, language, consent_processing, consent_contact, received_at, received_on,"
    " entered_by, digest"
)


def _submission(row: asyncpg.Record) -> Submission:
    # model_construct: the row was validated on the way in; re-validating costs and could
    # only fail on a stored value that an older rule accepted.
    content = SubmissionContent.model_construct(
        submitter=SubmitterData.model_construct(
            kind=SubmitterKind(row["submitter_kind"]),
            name=row["submitter_name"],
            organisation=row["submitter_organisation"],
            email=row["submitter_email"],
            phone=row["submitter_phone"],
            locality=row["locality"],
        ),
        theme=row["theme"],
        title=row["title"],
        body=row["body"],
        consent=ConsentData.model_construct(
            processing=row["consent_processing"], contact=row["consent_contact"]
        ),
        language=Language(row["language"]),
        received_on=row["received_on"],
    )
    return Submission(
        id=row["id"],
        consultation_id=row["consultation_id"],
        sequence=row["receipt_seq"],
        content=content,
        channel=Channel(row["channel"]),
        entered_by=row["entered_by"],
        receipt=Receipt(
            number=row["receipt_number"], received_at=row["received_at"], digest=row["digest"]
        ),
    )


# One statement for any number of rows: arrays unnested into rows. The text never changes
# with the count, so asyncpg prepares it once per connection and reuses it.
_INSERT_SUBMISSIONS = (
    f"INSERT INTO submissions ({_SUBMISSION_COLUMNS}) SELECT * FROM unnest("
    "$1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[],"
    " $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],"
    " $15::text[], $16::boolean[], $17::boolean[], $18::timestamptz[], $19::date[],"
    " $20::text[], $21::text[])"
)


def _submission_values(submission: Submission) -> tuple[Any, ...]:
    content = submission.content
    submitter = content.submitter
    return (
        submission.id,
        submission.consultation_id,
        submission.sequence,
        submission.receipt.number,
        submitter.kind.value,
        submitter.name,
        submitter.organisation,
        str(submitter.email) if submitter.email else None,
        submitter.phone,
        submitter.locality,
        content.theme,
        content.title,
        content.body,
        submission.channel.value,
        content.language.value,
        content.consent.processing,
        content.consent.contact,
        submission.receipt.received_at,
        content.received_on,
        submission.entered_by,
        submission.receipt.digest,
    )


class PostgresSubmissions:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def add_many(self, submissions: Sequence[Submission]) -> None:
        if not submissions:
            return
        columns = [
            list(column) for column in zip(*map(_submission_values, submissions), strict=True)
        ]
        await self._conn.execute(_INSERT_SUBMISSIONS, *columns)

    async def get_many(self, submission_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Submission]:
        rows = await self._conn.fetch(
            f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE id = ANY($1::uuid[])",
            list(submission_ids),
        )
        return {row["id"]: _submission(row) for row in rows}

    async def get(self, submission_id: uuid.UUID) -> Submission | None:
        row = await self._conn.fetchrow(
            f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE id = $1", submission_id
        )
        return _submission(row) if row else None

    async def page(
        self,
        consultation_id: uuid.UUID,
        filters: SubmissionFilter,
        *,
        limit: int,
        offset: int,
    ) -> tuple[list[Submission], int]:
        where = (
            "consultation_id = $1 AND ($2::text IS NULL OR theme = $2)"
            " AND ($3::text IS NULL OR submitter_kind = $3)"
            " AND ($4::text IS NULL OR channel = $4)"
        )
        args: list[Any] = [
            consultation_id,
            filters.theme,
            filters.kind.value if filters.kind else None,
            filters.channel.value if filters.channel else None,
        ]
        total = await self._conn.fetchval(f"SELECT count(*) FROM submissions WHERE {where}", *args)
        rows = await self._conn.fetch(
            f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE {where}"
            " ORDER BY receipt_seq LIMIT $5 OFFSET $6",
            *args,
            limit,
            offset,
        )
        return [_submission(row) for row in rows], int(total)


class PostgresIdempotencyKeys:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def find(self, scope: str, keys: Sequence[str]) -> dict[str, StoredKey]:
        rows = await self._conn.fetch(
            "SELECT key, request_hash, submission_id FROM idempotency_keys"
            " WHERE scope = $1 AND key = ANY($2::text[])",
            scope,
            list(keys),
        )
        return {
            row["key"]: StoredKey(
                fingerprint=row["request_hash"], submission_id=row["submission_id"]
            )
            for row in rows
        }

    async def add_many(self, scope: str, keys: Sequence[NewKey]) -> None:
        # A plain insert: a key a concurrent batch stored after this batch read the keys
        # (unlocked) fails the unit of work; the batch is retried request by request and
        # that request replays (`SubmissionBatcher`). Nothing is written twice.
        await self._conn.execute(
            "INSERT INTO idempotency_keys (scope, key, request_hash, submission_id)"
            " SELECT $1, * FROM unnest($2::text[], $3::text[], $4::uuid[])",
            scope,
            [new.key for new in keys],
            [new.fingerprint for new in keys],
            [new.submission_id for new in keys],
        )
