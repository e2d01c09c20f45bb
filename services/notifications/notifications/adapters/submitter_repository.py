"""Submitters who consented to contact, in PostgreSQL, on the unit of work's connection."""

from __future__ import annotations

import uuid

from notifications.domain.volunteer_mail import Submitter
from shared.contracts.intake import Language
from shared.platform.database import DbConnection


class PostgresSubmitters:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def remember(self, submitter: Submitter) -> None:
        await self._conn.execute(
            "INSERT INTO submitters (submission_id, email, language, consultation_title)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (submission_id) DO NOTHING",
            uuid.UUID(submitter.submission_id),
            submitter.email,
            submitter.language.value,
            submitter.consultation_title,
        )

    async def get(self, submission_id: uuid.UUID) -> Submitter | None:
        row = await self._conn.fetchrow(
            "SELECT submission_id, email, language, consultation_title FROM submitters"
            " WHERE submission_id = $1",
            submission_id,
        )
        if row is None:
            return None
        return Submitter(
            submission_id=str(row["submission_id"]),
            email=row["email"],
            language=Language(row["language"]),
            consultation_title=row["consultation_title"],
        )
