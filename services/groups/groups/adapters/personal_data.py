"""What groups holds about a person (volunteers), for erasure and export (RODO)."""

from __future__ import annotations

from groups.adapters.unit_of_work import PostgresGroupsUnitOfWork
from groups.domain.volunteers import VolunteerStatus
from groups.service.volunteering import Volunteering
from shared.contracts.privacy import ExportRecords, PersonRef
from shared.platform.database import DbConnection
from shared.platform.privacy import matches_sql
from shared.platform.unit_of_work import PostgresUnitOfWork

ERASED_NAME = "(usunięto na wniosek)"


def _where(subject: PersonRef) -> str:
    own = matches_sql(subject, email="email", phone="phone", param=1)
    pending = matches_sql(
        subject, email="(pending_update->>'email')", phone="(pending_update->>'phone')", param=1
    )
    return f"({own} OR {pending})"


class GroupsPersonalData:
    """A volunteer sign-up loses the person: name, address, phone, expertise. A volunteer
    still taking part leaves as on withdrawal (`Volunteering.leave`: their place, lead
    seat and open assessments go to others, `VolunteerLeft` is announced); the row stays,
    anonymous."""

    def __init__(self, volunteering: Volunteering) -> None:
        self._volunteering = volunteering

    async def erase(self, uow: PostgresUnitOfWork, subject: PersonRef) -> int:
        if not isinstance(uow, PostgresGroupsUnitOfWork):
            raise TypeError("groups erases within its own unit of work")
        conn = uow.connection
        ids = await conn.fetch(
            f"SELECT id, status FROM volunteers WHERE {_where(subject)} FOR UPDATE",
            list(subject.hashes),
        )
        if not ids:
            return 0
        volunteer_ids = [row["id"] for row in ids]
        for row in ids:
            if row["status"] != VolunteerStatus.WITHDRAWN.value:
                await self._volunteering.leave(uow, row["id"])
        await conn.execute(
            "DELETE FROM member_sessions WHERE volunteer_id = ANY($1::uuid[])", volunteer_ids
        )
        await conn.execute(
            "UPDATE volunteers SET name = $2, email = NULL, phone = NULL, expertise = NULL,"
            " locality = NULL, pending_update = NULL, status = 'withdrawn', group_id = NULL,"
            " seat = NULL, erased_at = now() WHERE id = ANY($1::uuid[])",
            volunteer_ids,
            ERASED_NAME,
        )
        return len(volunteer_ids)

    async def export(self, conn: DbConnection, subject: PersonRef) -> ExportRecords:
        rows = await conn.fetch(
            "SELECT volunteers.id, volunteers.consultation_id, volunteers.name, email, phone,"
            " locality, themes, expertise, locale, channel, status, signed_up_at,"
            " confirmed_at, groups.name_pl AS group_name"
            " FROM volunteers LEFT JOIN groups ON groups.id = volunteers.group_id"
            f" WHERE {_where(subject)} ORDER BY signed_up_at",
            list(subject.hashes),
        )
        return {"volunteers": [dict(row) for row in rows]} if rows else {}
