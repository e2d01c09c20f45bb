"""intake's personal data and its data-subject requests, on PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

from intake.domain.privacy import PrivacyRequest, Reply, RequestKind
from shared.contracts.privacy import ExportRecords, PersonRef, SealedBox, SubjectKind
from shared.platform.database import DbConnection
from shared.platform.privacy import matches_sql
from shared.platform.retention import Purge
from shared.platform.unit_of_work import PostgresUnitOfWork


class PostgresPrivacyRequests:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def add(self, request: PrivacyRequest) -> None:
        await self._conn.execute(
            "INSERT INTO privacy_requests (id, kind, subject_kind, services, private_key,"
            " requested_at) VALUES ($1, $2, $3, $4, $5, $6)",
            request.id,
            request.kind.value,
            request.subject_kind.value,
            list(request.services),
            request.private_key,
            request.requested_at,
        )

    async def get(self, request_id: uuid.UUID) -> PrivacyRequest | None:
        row = await self._conn.fetchrow("SELECT * FROM privacy_requests WHERE id = $1", request_id)
        if row is None:
            return None
        replies = await self._conn.fetch(
            "SELECT * FROM privacy_replies WHERE request_id = $1", request_id
        )
        return PrivacyRequest(
            id=row["id"],
            kind=RequestKind(row["kind"]),
            subject_kind=SubjectKind(row["subject_kind"]),
            services=tuple(row["services"]),
            requested_at=row["requested_at"],
            private_key=row["private_key"],
            replies={
                reply["service"]: Reply(
                    service=reply["service"],
                    records=reply["records"],
                    answered_at=reply["answered_at"],
                    sealed=(SealedBox.model_validate(reply["sealed"]) if reply["sealed"] else None),
                )
                for reply in replies
            },
        )

    async def add_reply(self, request_id: uuid.UUID, reply: Reply) -> None:
        await self._conn.execute(
            "INSERT INTO privacy_replies (request_id, service, records, sealed, answered_at)"
            " SELECT $1, $2, $3, $4, $5 WHERE EXISTS"
            " (SELECT 1 FROM privacy_requests WHERE id = $1) ON CONFLICT DO NOTHING",
            request_id,
            reply.service,
            reply.records,
            reply.sealed.model_dump() if reply.sealed is not None else None,
            reply.answered_at,
        )


_PERSON_COLUMNS = (
    "submitter_name",
    "submitter_organisation",
    "submitter_email",
    "submitter_phone",
)


class IntakePersonalData:
    """Submissions keep their text, receipt number and digest but lose the person."""

    @staticmethod
    def _where(subject: PersonRef) -> str:
        return matches_sql(subject, email="submitter_email", phone="submitter_phone", param=1)

    async def erase(self, uow: PostgresUnitOfWork, subject: PersonRef) -> int:
        conn = uow.connection
        assignments = ", ".join(f"{column} = NULL" for column in _PERSON_COLUMNS)
        status = await conn.execute(
            f"UPDATE submissions SET {assignments} WHERE {self._where(subject)}",
            list(subject.hashes),
        )
        return int(status.split()[-1])

    async def export(self, conn: DbConnection, subject: PersonRef) -> ExportRecords:
        rows = await conn.fetch(
            "SELECT id, consultation_id, receipt_number, submitter_kind, "
            + ", ".join(_PERSON_COLUMNS)
            + f", theme, title, body, channel, received_at FROM submissions"
            f" WHERE {self._where(subject)} ORDER BY received_at",
            list(subject.hashes),
        )
        found: list[dict[str, Any]] = [dict(row) for row in rows]
        return {"submissions": found} if found else {}


def forget_export_keys_after(days: int) -> Purge:
    """Retention: an export's private key is deleted after `days`; its sealed answers on
    Kafka (and in `privacy_replies`) can then never be opened again."""

    async def purge(conn: DbConnection) -> int:
        status = await conn.execute(
            "UPDATE privacy_requests SET private_key = NULL WHERE private_key IS NOT NULL"
            " AND requested_at < now() - make_interval(days => $1)",
            days,
        )
        await conn.execute(
            "UPDATE privacy_replies SET sealed = NULL FROM privacy_requests r"
            " WHERE r.id = privacy_replies.request_id AND r.private_key IS NULL"
            " AND privacy_replies.sealed IS NOT NULL"
        )
        return int(status.split()[-1])

    return purge
