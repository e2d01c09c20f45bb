"""asyncpg persistence of the groups service, on the connection of a unit of work: the
service layer decides the transaction boundaries, the repositories only speak SQL."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import asyncpg

from groups.domain.assessment import Assessment, CostBand, Horizon, Review, ReviewState
from groups.domain.consultation import Consultation
from groups.domain.duplicates import DuplicateLink, LinkState
from groups.domain.group import Group
from groups.domain.routing import Assignment
from groups.domain.submission import GroupSubmission
from groups.domain.volunteers import SignUp, SignUpChannel, Volunteer, VolunteerStatus
from groups.service.ports import DirtyTheme, Recommendation, TrendSnapshot
from shared.contracts.groups import ThemeSource
from shared.contracts.intake import Language, SubmitterKind
from shared.platform.database import DbConnection

# LISTEN/NOTIFY channel that wakes the trends worker when a theme changed.
TRENDS_CHANNEL = "groups_trends"


def advisory_key(value: uuid.UUID) -> int:
    """A signed 64-bit key for pg_advisory_xact_lock from a uuid (stable across processes)."""
    digest = hashlib.blake2b(value.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresConsultations:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def get(self, consultation_id: uuid.UUID) -> Consultation | None:
        row = await self._conn.fetchrow(
            "SELECT id, title, kind, opens_at, closes_at, themes, opened, closed"
            " FROM consultations WHERE id = $1",
            consultation_id,
        )
        if row is None:
            return None
        return Consultation(
            id=row["id"],
            title=row["title"],
            kind=row["kind"],
            opens_at=row["opens_at"],
            closes_at=row["closes_at"],
            themes=tuple(row["themes"]),
            opened=row["opened"],
            closed=row["closed"],
        )

    async def save(self, consultation: Consultation) -> None:
        await self._conn.execute(
            "INSERT INTO consultations (id, title, kind, opens_at, closes_at, themes, opened,"
            " closed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT (id) DO UPDATE SET title = $2, kind = $3, opens_at = $4,"
            " closes_at = $5, themes = $6, opened = $7, closed = $8, updated_at = now()",
            consultation.id,
            consultation.title,
            consultation.kind,
            consultation.opens_at,
            consultation.closes_at,
            list(consultation.themes),
            consultation.opened,
            consultation.closed,
        )

    async def lock(self, consultation_id: uuid.UUID) -> None:
        # An advisory lock, not a row lock: a submission may arrive before its
        # consultation's announcement, and must still be serialised with placement.
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", advisory_key(consultation_id))


_VOLUNTEER_COLUMNS = (
    "id, consultation_id, name, email, phone, locality, themes, expertise, locale, channel,"
    " status, signed_up_at, confirmed_at, group_id"
)


def _volunteer(row: asyncpg.Record) -> Volunteer:
    return Volunteer(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        phone=row["phone"],
        locality=row["locality"],
        themes=tuple(row["themes"]),
        expertise=row["expertise"],
        locale=Language(row["locale"]),
        channel=SignUpChannel(row["channel"]),
        status=VolunteerStatus(row["status"]),
        signed_up_at=row["signed_up_at"],
        confirmed_at=row["confirmed_at"],
        group_id=row["group_id"],
        consultation_id=row["consultation_id"],
    )


class PostgresVolunteers:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def get(self, volunteer_id: uuid.UUID) -> Volunteer | None:
        row = await self._conn.fetchrow(
            f"SELECT {_VOLUNTEER_COLUMNS} FROM volunteers WHERE id = $1", volunteer_id
        )
        return None if row is None else _volunteer(row)

    async def of_consultation(self, consultation_id: uuid.UUID) -> list[Volunteer]:
        rows = await self._conn.fetch(
            f"SELECT {_VOLUNTEER_COLUMNS} FROM volunteers WHERE consultation_id = $1"
            " ORDER BY signed_up_at, id",
            consultation_id,
        )
        return [_volunteer(row) for row in rows]

    async def same_person(
        self, consultation_id: uuid.UUID, email: str | None, phone: str | None
    ) -> list[Volunteer]:
        rows = await self._conn.fetch(
            f"SELECT {_VOLUNTEER_COLUMNS} FROM volunteers WHERE consultation_id = $1"
            " AND ((email IS NOT NULL AND email = $2) OR (phone IS NOT NULL AND phone = $3))",
            consultation_id,
            email,
            phone,
        )
        return [_volunteer(row) for row in rows]

    async def placed_with_email(self, email: str) -> list[Volunteer]:
        rows = await self._conn.fetch(
            f"SELECT {_VOLUNTEER_COLUMNS} FROM volunteers WHERE email = $1 AND status = 'placed'"
            " ORDER BY signed_up_at, id",
            email,
        )
        return [_volunteer(row) for row in rows]

    async def save(self, volunteer: Volunteer) -> None:
        await self._conn.execute(
            f"INSERT INTO volunteers ({_VOLUNTEER_COLUMNS}, seat)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
            "  CASE WHEN $14::uuid IS NULL THEN NULL ELSE nextval('volunteer_seats') END)"
            " ON CONFLICT (id) DO UPDATE SET name = $3, email = $4, phone = $5, locality = $6,"
            " themes = $7, expertise = $8, locale = $9, status = $11, confirmed_at = $13,"
            " group_id = $14, seat = CASE WHEN $14::uuid IS NULL THEN NULL"
            "  WHEN volunteers.group_id IS NOT DISTINCT FROM $14::uuid THEN volunteers.seat"
            "  ELSE nextval('volunteer_seats') END",
            volunteer.id,
            volunteer.consultation_id,
            volunteer.name,
            volunteer.email,
            volunteer.phone,
            volunteer.locality,
            list(volunteer.themes),
            volunteer.expertise,
            volunteer.locale.value,
            volunteer.channel.value,
            volunteer.status.value,
            volunteer.signed_up_at,
            volunteer.confirmed_at,
            volunteer.group_id,
        )

    async def pending_update(self, volunteer_id: uuid.UUID) -> SignUp | None:
        data = await self._conn.fetchval(
            "SELECT pending_update FROM volunteers WHERE id = $1", volunteer_id
        )
        if data is None:
            return None
        return SignUp(
            name=data["name"],
            themes=tuple(data["themes"]),
            consent_processing=data["consent_processing"],
            channel=SignUpChannel(data["channel"]),
            email=data["email"],
            phone=data["phone"],
            locality=data["locality"],
            expertise=data["expertise"],
            locale=Language(data["locale"]),
        )

    async def set_pending_update(self, volunteer_id: uuid.UUID, sign_up: SignUp | None) -> None:
        data = None if sign_up is None else {**asdict(sign_up), "themes": list(sign_up.themes)}
        await self._conn.execute(
            "UPDATE volunteers SET pending_update = $2 WHERE id = $1", volunteer_id, data
        )


_GROUP_SELECT = (
    "SELECT g.id, g.consultation_id, g.theme, g.ordinal, g.name_pl, g.name_en, g.lead_id,"
    " coalesce(array_agg(v.id ORDER BY v.seat) FILTER (WHERE v.id IS NOT NULL), '{}') AS members"
    " FROM groups g LEFT JOIN volunteers v ON v.group_id = g.id"
)


def _group(row: asyncpg.Record) -> Group:
    return Group(
        id=row["id"],
        theme=row["theme"],
        ordinal=row["ordinal"],
        name_pl=row["name_pl"],
        name_en=row["name_en"],
        member_ids=tuple(row["members"]),
        lead_id=row["lead_id"],
        consultation_id=row["consultation_id"],
    )


class PostgresGroups:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def get(self, group_id: uuid.UUID) -> Group | None:
        row = await self._conn.fetchrow(f"{_GROUP_SELECT} WHERE g.id = $1 GROUP BY g.id", group_id)
        return None if row is None else _group(row)

    async def of_consultation(self, consultation_id: uuid.UUID) -> list[Group]:
        rows = await self._conn.fetch(
            f"{_GROUP_SELECT} WHERE g.consultation_id = $1 GROUP BY g.id"
            " ORDER BY g.formed_at, g.theme, g.ordinal",
            consultation_id,
        )
        return [_group(row) for row in rows]

    async def add(self, group: Group) -> None:
        await self._conn.execute(
            "INSERT INTO groups (id, consultation_id, theme, ordinal, name_pl, name_en, lead_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            group.id,
            group.consultation_id,
            group.theme,
            group.ordinal,
            group.name_pl,
            group.name_en,
            group.lead_id,
        )

    async def set_lead(self, group_id: uuid.UUID, lead_id: uuid.UUID | None) -> None:
        await self._conn.execute("UPDATE groups SET lead_id = $2 WHERE id = $1", group_id, lead_id)


_SUBMISSION_COLUMNS = (
    "id, consultation_id, theme, theme_source, confidence, group_id, title, body,"
    " submitter_kind, locality, channel, receipt_number, received_at, state, public_reason,"
    " merged_into, changed_at, routed_at"
)
_RECEIPT_ORDER = " ORDER BY received_at, id"


def _submission(row: asyncpg.Record) -> GroupSubmission:
    return GroupSubmission(
        id=row["id"],
        consultation_id=row["consultation_id"],
        title=row["title"],
        body=row["body"],
        submitter_kind=SubmitterKind(row["submitter_kind"]),
        locality=row["locality"],
        channel=row["channel"],
        receipt_number=row["receipt_number"],
        received_at=row["received_at"],
        review=Review(
            submission_id=row["id"],
            state=ReviewState(row["state"]),
            public_reason=row["public_reason"],
            merged_into=row["merged_into"],
            changed_at=row["changed_at"],
        ),
        theme=row["theme"],
        theme_source=ThemeSource(row["theme_source"]) if row["theme_source"] else None,
        confidence=row["confidence"],
        group_id=row["group_id"],
        routed_at=row["routed_at"],
    )


def _submission_values(s: GroupSubmission) -> tuple[Any, ...]:
    return (
        s.id,
        s.consultation_id,
        s.theme,
        s.theme_source.value if s.theme_source else None,
        s.confidence,
        s.group_id,
        s.title,
        s.body,
        s.submitter_kind.value,
        s.locality,
        s.channel,
        s.receipt_number,
        s.received_at,
        s.review.state.value,
        s.review.public_reason,
        s.review.merged_into,
        s.review.changed_at,
        s.routed_at,
    )


class PostgresSubmissions:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def add(self, submission: GroupSubmission) -> bool:
        inserted = await self._conn.fetchval(
            f"INSERT INTO submissions ({_SUBMISSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7,"
            " $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
            " ON CONFLICT (id) DO NOTHING RETURNING 1",
            *_submission_values(submission),
        )
        return inserted is not None

    async def get(self, submission_id: uuid.UUID) -> GroupSubmission | None:
        row = await self._conn.fetchrow(
            f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE id = $1", submission_id
        )
        return None if row is None else _submission(row)

    async def save(self, submission: GroupSubmission) -> None:
        await self._conn.execute(
            "UPDATE submissions SET consultation_id = $2, theme = $3, theme_source = $4,"
            " confidence = $5, group_id = $6, title = $7, body = $8, submitter_kind = $9,"
            " locality = $10, channel = $11, receipt_number = $12, received_at = $13,"
            " state = $14, public_reason = $15, merged_into = $16, changed_at = $17,"
            " routed_at = $18 WHERE id = $1",
            *_submission_values(submission),
        )

    async def of_consultation(
        self, consultation_id: uuid.UUID, *, theme: str | None = None
    ) -> list[GroupSubmission]:
        if theme is None:
            rows = await self._conn.fetch(
                f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE consultation_id = $1"
                + _RECEIPT_ORDER,
                consultation_id,
            )
        else:
            rows = await self._conn.fetch(
                f"SELECT {_SUBMISSION_COLUMNS} FROM submissions"
                " WHERE consultation_id = $1 AND theme = $2" + _RECEIPT_ORDER,
                consultation_id,
                theme,
            )
        return [_submission(row) for row in rows]

    async def of_group(self, group_id: uuid.UUID) -> list[GroupSubmission]:
        rows = await self._conn.fetch(
            f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE group_id = $1" + _RECEIPT_ORDER,
            group_id,
        )
        return [_submission(row) for row in rows]

    async def open_per_group(self, consultation_id: uuid.UUID) -> dict[uuid.UUID, int]:
        rows = await self._conn.fetch(
            "SELECT group_id, count(*) AS open FROM submissions"
            " WHERE consultation_id = $1 AND group_id IS NOT NULL"
            " AND state NOT IN ('recommended', 'merged', 'out_of_scope', 'rejected')"
            " GROUP BY group_id",
            consultation_id,
        )
        return {row["group_id"]: row["open"] for row in rows}


class PostgresAssignments:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def open_of_group(self, group_id: uuid.UUID) -> list[Assignment]:
        rows = await self._conn.fetch(
            "SELECT a.submission_id, a.member_id FROM assignments a"
            " JOIN submissions s ON s.id = a.submission_id"
            " WHERE s.group_id = $1"
            " AND s.state NOT IN ('recommended', 'merged', 'out_of_scope', 'rejected')"
            " AND NOT EXISTS (SELECT 1 FROM assessments x"
            "  WHERE x.submission_id = a.submission_id AND x.member_id = a.member_id)"
            " ORDER BY a.submission_id, a.member_id",
            group_id,
        )
        return [Assignment(row["submission_id"], row["member_id"]) for row in rows]

    async def of_submission(self, submission_id: uuid.UUID) -> list[uuid.UUID]:
        rows = await self._conn.fetch(
            "SELECT member_id FROM assignments WHERE submission_id = $1"
            " ORDER BY assigned_at, member_id",
            submission_id,
        )
        return [row["member_id"] for row in rows]

    async def add(self, assignments: Iterable[Assignment]) -> None:
        rows = [(a.submission_id, a.member_id) for a in assignments]
        if rows:
            await self._conn.executemany(
                "INSERT INTO assignments (submission_id, member_id) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                rows,
            )

    async def remove(self, submission_id: uuid.UUID, member_id: uuid.UUID) -> None:
        await self._conn.execute(
            "DELETE FROM assignments WHERE submission_id = $1 AND member_id = $2",
            submission_id,
            member_id,
        )

    async def remove_all(self, submission_id: uuid.UUID) -> None:
        await self._conn.execute("DELETE FROM assignments WHERE submission_id = $1", submission_id)


def _assessment(row: asyncpg.Record) -> Assessment:
    return Assessment(
        submission_id=row["submission_id"],
        member_id=row["member_id"],
        need=row["need"],
        reach=row["reach"],
        strategy_fit=row["strategy_fit"],
        competence=row["competence"],
        cost_band=CostBand(row["cost_band"]),
        horizon=Horizon(row["horizon"]),
        tags=tuple(row["tags"]),
        note=row["note"],
    )


_ASSESSMENT_COLUMNS = (
    "submission_id, member_id, need, reach, strategy_fit, competence, cost_band, horizon,"
    " tags, note"
)


class PostgresAssessments:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def of_submission(self, submission_id: uuid.UUID) -> list[Assessment]:
        rows = await self._conn.fetch(
            f"SELECT {_ASSESSMENT_COLUMNS} FROM assessments WHERE submission_id = $1"
            " ORDER BY assessed_at, member_id",
            submission_id,
        )
        return [_assessment(row) for row in rows]

    async def of_submissions(
        self, submission_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Assessment]]:
        rows = await self._conn.fetch(
            f"SELECT {_ASSESSMENT_COLUMNS} FROM assessments WHERE submission_id = ANY($1::uuid[])"
            " ORDER BY assessed_at, member_id",
            list(submission_ids),
        )
        found: dict[uuid.UUID, list[Assessment]] = {}
        for row in rows:
            found.setdefault(row["submission_id"], []).append(_assessment(row))
        return found

    async def save(self, assessment: Assessment, now: datetime) -> None:
        await self._conn.execute(
            f"INSERT INTO assessments ({_ASSESSMENT_COLUMNS}, assessed_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            " ON CONFLICT (submission_id, member_id) DO UPDATE SET need = $3, reach = $4,"
            " strategy_fit = $5, competence = $6, cost_band = $7, horizon = $8, tags = $9,"
            " note = $10, assessed_at = $11",
            assessment.submission_id,
            assessment.member_id,
            assessment.need,
            assessment.reach,
            assessment.strategy_fit,
            assessment.competence,
            assessment.cost_band.value,
            assessment.horizon.value,
            list(assessment.tags),
            assessment.note,
            now,
        )


def _link(row: asyncpg.Record) -> DuplicateLink:
    return DuplicateLink(
        original=row["original_id"],
        duplicate=row["duplicate_id"],
        similarity=row["similarity"],
        state=LinkState(row["state"]),
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
    )


_LINK_COLUMNS = "original_id, duplicate_id, similarity, state, decided_by, decided_at"


class PostgresDuplicateLinks:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def add(self, links: Iterable[DuplicateLink], consultation_id: uuid.UUID) -> None:
        rows = [(ln.original, ln.duplicate, consultation_id, ln.similarity) for ln in links]
        if rows:
            await self._conn.executemany(
                "INSERT INTO duplicate_links (original_id, duplicate_id, consultation_id,"
                " similarity) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                rows,
            )

    async def get(self, original: uuid.UUID, duplicate: uuid.UUID) -> DuplicateLink | None:
        row = await self._conn.fetchrow(
            f"SELECT {_LINK_COLUMNS} FROM duplicate_links"
            " WHERE original_id = $1 AND duplicate_id = $2",
            original,
            duplicate,
        )
        return None if row is None else _link(row)

    async def touching(self, submission_ids: Sequence[uuid.UUID]) -> list[DuplicateLink]:
        rows = await self._conn.fetch(
            f"SELECT {_LINK_COLUMNS} FROM duplicate_links"
            " WHERE original_id = ANY($1::uuid[]) OR duplicate_id = ANY($1::uuid[])"
            " ORDER BY similarity DESC, original_id, duplicate_id",
            list(submission_ids),
        )
        return [_link(row) for row in rows]

    async def of_consultation(self, consultation_id: uuid.UUID) -> list[DuplicateLink]:
        rows = await self._conn.fetch(
            f"SELECT {_LINK_COLUMNS} FROM duplicate_links WHERE consultation_id = $1",
            consultation_id,
        )
        return [_link(row) for row in rows]

    async def save(self, link: DuplicateLink) -> None:
        await self._conn.execute(
            "UPDATE duplicate_links SET state = $3, decided_by = $4, decided_at = $5"
            " WHERE original_id = $1 AND duplicate_id = $2",
            link.original,
            link.duplicate,
            link.state.value,
            link.decided_by,
            link.decided_at,
        )


_RECOMMENDATION_COLUMNS = (
    "id, consultation_id, group_id, theme, title, body, submission_ids, trend_snapshot,"
    " drafted_by, created_at, published_at"
)


def _recommendation(row: asyncpg.Record) -> Recommendation:
    return Recommendation(
        id=row["id"],
        consultation_id=row["consultation_id"],
        group_id=row["group_id"],
        theme=row["theme"],
        title=row["title"],
        body=row["body"],
        submission_ids=tuple(row["submission_ids"]),
        trend_snapshot=row["trend_snapshot"],
        drafted_by=row["drafted_by"],
        created_at=row["created_at"],
        published_at=row["published_at"],
    )


class PostgresRecommendations:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def add(self, r: Recommendation) -> None:
        await self._conn.execute(
            f"INSERT INTO recommendations ({_RECOMMENDATION_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            r.id,
            r.consultation_id,
            r.group_id,
            r.theme,
            r.title,
            r.body,
            list(r.submission_ids),
            r.trend_snapshot,
            r.drafted_by,
            r.created_at,
            r.published_at,
        )

    async def get(self, recommendation_id: uuid.UUID) -> Recommendation | None:
        row = await self._conn.fetchrow(
            f"SELECT {_RECOMMENDATION_COLUMNS} FROM recommendations WHERE id = $1",
            recommendation_id,
        )
        return None if row is None else _recommendation(row)

    async def save(self, r: Recommendation) -> None:
        await self._conn.execute(
            "UPDATE recommendations SET title = $2, body = $3, submission_ids = $4,"
            " trend_snapshot = $5, published_at = $6 WHERE id = $1",
            r.id,
            r.title,
            r.body,
            list(r.submission_ids),
            r.trend_snapshot,
            r.published_at,
        )

    async def of_consultation(
        self, consultation_id: uuid.UUID, *, published_only: bool
    ) -> list[Recommendation]:
        published = " AND published_at IS NOT NULL" if published_only else ""
        rows = await self._conn.fetch(
            f"SELECT {_RECOMMENDATION_COLUMNS} FROM recommendations"
            f" WHERE consultation_id = $1{published} ORDER BY created_at, id",
            consultation_id,
        )
        return [_recommendation(row) for row in rows]

    async def of_group(self, group_id: uuid.UUID) -> list[Recommendation]:
        rows = await self._conn.fetch(
            f"SELECT {_RECOMMENDATION_COLUMNS} FROM recommendations WHERE group_id = $1"
            " ORDER BY created_at, id",
            group_id,
        )
        return [_recommendation(row) for row in rows]


class PostgresTrends:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def mark_dirty(self, consultation_id: uuid.UUID, theme: str) -> None:
        await self._conn.execute(
            "INSERT INTO trend_dirty (consultation_id, theme) VALUES ($1, $2)"
            " ON CONFLICT (consultation_id, theme) DO UPDATE SET dirty_since = clock_timestamp()",
            consultation_id,
            theme,
        )
        # Delivered on commit only: the worker never looks for a change it cannot see.
        await self._conn.execute("SELECT pg_notify($1, '')", TRENDS_CHANNEL)

    async def next_dirty(self) -> DirtyTheme | None:
        row = await self._conn.fetchrow(
            "SELECT consultation_id, theme, dirty_since FROM trend_dirty"
            " ORDER BY dirty_since LIMIT 1"
        )
        if row is None:
            return None
        return DirtyTheme(row["consultation_id"], row["theme"], row["dirty_since"])

    async def clear_dirty(self, dirty: DirtyTheme) -> None:
        await self._conn.execute(
            "DELETE FROM trend_dirty WHERE consultation_id = $1 AND theme = $2"
            " AND dirty_since = $3",
            dirty.consultation_id,
            dirty.theme,
            dirty.dirty_since,
        )

    async def add_snapshot(
        self, consultation_id: uuid.UUID, theme: str, submissions: int, report: dict[str, Any]
    ) -> TrendSnapshot:
        # Numbering is per theme; the lock keeps two writers (replicas) from taking the
        # same number.
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock($1)", advisory_key(consultation_id) ^ hash_theme(theme)
        )
        row = await self._conn.fetchrow(
            "INSERT INTO trend_snapshots (consultation_id, theme, number, submissions, report)"
            " SELECT $1, $2, coalesce(max(number), 0) + 1, $3, $4 FROM trend_snapshots"
            " WHERE consultation_id = $1 AND theme = $2"
            " RETURNING consultation_id, theme, number, computed_at, submissions, report",
            consultation_id,
            theme,
            submissions,
            report,
        )
        assert row is not None
        return _snapshot(row)

    async def snapshot(
        self, consultation_id: uuid.UUID, theme: str, number: int | None = None
    ) -> TrendSnapshot | None:
        if number is None:
            row = await self._conn.fetchrow(
                "SELECT consultation_id, theme, number, computed_at, submissions, report"
                " FROM trend_snapshots WHERE consultation_id = $1 AND theme = $2"
                " ORDER BY number DESC LIMIT 1",
                consultation_id,
                theme,
            )
        else:
            row = await self._conn.fetchrow(
                "SELECT consultation_id, theme, number, computed_at, submissions, report"
                " FROM trend_snapshots WHERE consultation_id = $1 AND theme = $2"
                " AND number = $3",
                consultation_id,
                theme,
                number,
            )
        return None if row is None else _snapshot(row)


def hash_theme(theme: str) -> int:
    digest = hashlib.blake2b(theme.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _snapshot(row: asyncpg.Record) -> TrendSnapshot:
    report = row["report"]
    return TrendSnapshot(
        consultation_id=row["consultation_id"],
        theme=row["theme"],
        number=row["number"],
        computed_at=row["computed_at"],
        submissions=row["submissions"],
        report=report if isinstance(report, dict) else json.loads(report),
    )


class PostgresSessions:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def add(self, token_hash: str, volunteer_id: uuid.UUID, expires_at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO member_sessions (token_hash, volunteer_id, expires_at)"
            " VALUES ($1, $2, $3)",
            token_hash,
            volunteer_id,
            expires_at,
        )

    async def volunteer_of(self, token_hash: str, now: datetime) -> uuid.UUID | None:
        found: uuid.UUID | None = await self._conn.fetchval(
            "SELECT volunteer_id FROM member_sessions WHERE token_hash = $1 AND expires_at > $2",
            token_hash,
            now,
        )
        return found

    async def end_all(self, volunteer_id: uuid.UUID) -> None:
        await self._conn.execute(
            "DELETE FROM member_sessions WHERE volunteer_id = $1", volunteer_id
        )


class PostgresHousekeeping:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def forget_expired(self, before: datetime) -> int:
        sessions = await self._conn.execute(
            "DELETE FROM member_sessions WHERE expires_at < $1", before
        )
        tokens = await self._conn.execute(
            "DELETE FROM one_time_tokens WHERE expires_at < $1", before
        )
        return sum(int(result.split()[-1]) for result in (sessions, tokens))
