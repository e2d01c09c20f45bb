"""asyncpg persistence of consultations, submissions and idempotency keys.

Every function takes the connection of the caller's transaction: the service layer decides
the transaction boundaries, the repository only speaks SQL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from intake.domain.consultation import Consultation
from intake.domain.submission import SubmissionDraft
from shared.contracts.intake import Channel, ConsultationKind
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


async def insert_consultation(
    conn: DbConnection,
    *,
    consultation_id: uuid.UUID,
    title: str,
    description: str,
    kind: ConsultationKind,
    opens_at: datetime,
    closes_at: datetime,
    themes: tuple[str, ...],
) -> Consultation:
    row = await conn.fetchrow(
        f"INSERT INTO consultations (id, title, description, kind, opens_at, closes_at, themes)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_CONSULTATION_COLUMNS}",
        consultation_id,
        title,
        description,
        kind.value,
        opens_at,
        closes_at,
        list(themes),
    )
    assert row is not None
    return _consultation(row)


async def get_consultation(
    conn: DbConnection, consultation_id: uuid.UUID, *, for_update: bool = False
) -> Consultation | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_CONSULTATION_COLUMNS} FROM consultations WHERE id = $1{lock}", consultation_id
    )
    return _consultation(row) if row else None


async def list_consultations(conn: DbConnection, *, limit: int, offset: int) -> list[Consultation]:
    rows = await conn.fetch(
        f"SELECT {_CONSULTATION_COLUMNS} FROM consultations"
        " ORDER BY opens_at DESC, id LIMIT $1 OFFSET $2",
        limit,
        offset,
    )
    return [_consultation(row) for row in rows]


async def update_consultation(conn: DbConnection, consultation: Consultation) -> None:
    # The scheduler reads opens_at/closes_at afresh, so a moved window needs nothing more.
    await conn.execute(
        "UPDATE consultations SET title = $2, description = $3, opens_at = $4, closes_at = $5,"
        " updated_at = now() WHERE id = $1",
        consultation.id,
        consultation.title,
        consultation.description,
        consultation.opens_at,
        consultation.closes_at,
    )


async def next_receipt_sequence(conn: DbConnection, consultation_id: uuid.UUID) -> int:
    """Serialises submissions of one consultation on its row: gap-free receipt numbers."""
    value = await conn.fetchval(
        "UPDATE consultations SET last_receipt_seq = last_receipt_seq + 1"
        " WHERE id = $1 RETURNING last_receipt_seq",
        consultation_id,
    )
    return int(value)


async def insert_submission(
    conn: DbConnection,
    *,
    submission_id: uuid.UUID,
    draft: SubmissionDraft,
    sequence: int,
    receipt_number: str,
    received_at: datetime,
    entered_by: str | None,
    digest: str,
) -> None:
    submitter = draft.submitter
    await conn.execute(
        "INSERT INTO submissions (id, consultation_id, receipt_seq, receipt_number,"
        " submitter_kind, submitter_name, submitter_organisation, submitter_email,"
        " submitter_phone, locality, theme, title, body, channel, language,"
        " consent_processing, consent_contact, received_at, received_on, entered_by, digest)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,"
        " $18, $19, $20, $21)",
        submission_id,
        draft.consultation_id,
        sequence,
        receipt_number,
        submitter.kind.value,
        submitter.name,
        submitter.organisation,
        str(submitter.email) if submitter.email else None,
        submitter.phone,
        submitter.locality,
        draft.theme,
        draft.title,
        draft.body,
        draft.channel.value,
        draft.language.value,
        draft.consent.processing,
        draft.consent.contact,
        received_at,
        draft.received_on,
        entered_by,
        digest,
    )


_SUBMISSION_COLUMNS = (
    "id, consultation_id, receipt_number, submitter_kind, submitter_name,"
    " submitter_organisation, submitter_email, submitter_phone, locality, theme, title, body,"
    " channel, language, consent_processing, consent_contact, received_at, received_on,"
    " entered_by, digest"
)


def _submission_dict(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "consultation_id": row["consultation_id"],
        "receipt": {
            "number": row["receipt_number"],
            "received_at": row["received_at"],
            "digest": row["digest"],
        },
        "submitter": {
            "kind": row["submitter_kind"],
            "name": row["submitter_name"],
            "organisation": row["submitter_organisation"],
            "email": row["submitter_email"],
            "phone": row["submitter_phone"],
            "locality": row["locality"],
        },
        "theme": row["theme"],
        "title": row["title"],
        "body": row["body"],
        "channel": row["channel"],
        "language": row["language"],
        "consent": {"processing": row["consent_processing"], "contact": row["consent_contact"]},
        "received_on": row["received_on"],
        "entered_by": row["entered_by"],
    }


async def get_submission(conn: DbConnection, submission_id: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE id = $1", submission_id
    )
    return _submission_dict(row) if row else None


async def list_submissions(
    conn: DbConnection,
    consultation_id: uuid.UUID,
    *,
    theme: str | None,
    kind: str | None,
    channel: Channel | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    where = (
        "consultation_id = $1 AND ($2::text IS NULL OR theme = $2)"
        " AND ($3::text IS NULL OR submitter_kind = $3)"
        " AND ($4::text IS NULL OR channel = $4)"
    )
    args: list[Any] = [consultation_id, theme, kind, channel.value if channel else None]
    total = await conn.fetchval(f"SELECT count(*) FROM submissions WHERE {where}", *args)
    rows = await conn.fetch(
        f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE {where}"
        " ORDER BY receipt_seq LIMIT $5 OFFSET $6",
        *args,
        limit,
        offset,
    )
    return [_submission_dict(row) for row in rows], int(total)


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    request_hash: str
    status_code: int | None
    response: Any


async def claim_idempotency_key(
    conn: DbConnection, *, scope: str, key: str, request_hash: str
) -> StoredAnswer | None:
    """None when the key is new (and now ours); else what was stored under it.

    A concurrent request with the same key blocks on the unique index until the first one
    commits or rolls back, so there is never a second effect.
    """
    inserted = await conn.fetchval(
        "INSERT INTO idempotency_keys (scope, key, request_hash) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        scope,
        key,
        request_hash,
    )
    if inserted is not None:
        return None
    row = await conn.fetchrow(
        "SELECT request_hash, status_code, response FROM idempotency_keys"
        " WHERE scope = $1 AND key = $2",
        scope,
        key,
    )
    assert row is not None
    return StoredAnswer(row["request_hash"], row["status_code"], row["response"])


async def store_idempotent_answer(
    conn: DbConnection, *, scope: str, key: str, status_code: int, response: Any
) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET status_code = $3, response = $4 WHERE scope = $1 AND key = $2",
        scope,
        key,
        status_code,
        response,
    )


async def due_openings(conn: DbConnection, now: datetime) -> list[Consultation]:
    rows = await conn.fetch(
        f"SELECT {_CONSULTATION_COLUMNS} FROM consultations"
        " WHERE opened_announced_at IS NULL AND opens_at <= $1"
        " ORDER BY opens_at FOR UPDATE SKIP LOCKED",
        now,
    )
    return [_consultation(row) for row in rows]


async def due_closings(conn: DbConnection, now: datetime) -> list[Consultation]:
    rows = await conn.fetch(
        f"SELECT {_CONSULTATION_COLUMNS} FROM consultations"
        " WHERE closed_announced_at IS NULL AND closes_at <= $1"
        " ORDER BY closes_at FOR UPDATE SKIP LOCKED",
        now,
    )
    return [_consultation(row) for row in rows]


async def mark_opened(conn: DbConnection, consultation_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(
        "UPDATE consultations SET opened_announced_at = $2 WHERE id = $1", consultation_id, now
    )


async def mark_closed(conn: DbConnection, consultation_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(
        "UPDATE consultations SET closed_announced_at = $2 WHERE id = $1", consultation_id, now
    )


async def next_phase_change(conn: DbConnection) -> datetime | None:
    value: datetime | None = await conn.fetchval(
        "SELECT min(due) FROM ("
        " SELECT opens_at AS due FROM consultations WHERE opened_announced_at IS NULL"
        " UNION ALL"
        " SELECT closes_at FROM consultations WHERE closed_announced_at IS NULL) AS pending"
    )
    return value
