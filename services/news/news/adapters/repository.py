"""asyncpg persistence of articles and alert messages, on the connection of a unit of
work: the service layer decides the transaction boundaries, the repositories speak SQL."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from news.domain.alerts import (
    Alert,
    AlertArea,
    AlertRef,
    AlertSource,
    AlertStatus,
    AreaCode,
    Category,
    CodeKind,
    MessageType,
)
from news.domain.articles import Article, ArticleOrigin, ArticleState
from news.domain.imgw import FeedKind
from shared.platform.database import DbConnection

# Arbitrary but fixed: "the IMGW ingest of feed <n>" among the database's advisory locks.
INGEST_LOCK_KEY = 0x4E_45_57_53  # "NEWS"
FEED_LOCK_IDS = {FeedKind.METEO: 1, FeedKind.HYDRO: 2}

_ARTICLE_COLUMNS = (
    "id, slug, title, lead, body_markdown, body_html, tags, state, publish_at, published_at,"
    " withdrawn_at, origin, consultation_id, title_en, lead_en, body_en_markdown,"
    " body_en_html, created_at, updated_at"
)
# When readers could first see an article (see Article.public_since).
_PUBLIC_SINCE = "coalesce(published_at, publish_at)"
_PUBLIC_AT = "(state = 'published' OR (state = 'scheduled' AND publish_at <= $1))"


def _article(row: asyncpg.Record) -> Article:
    return Article(
        id=row["id"],
        slug=row["slug"],
        title=row["title"],
        lead=row["lead"],
        body_markdown=row["body_markdown"],
        body_html=row["body_html"],
        tags=tuple(row["tags"]),
        state=ArticleState(row["state"]),
        publish_at=row["publish_at"],
        published_at=row["published_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        origin=ArticleOrigin(row["origin"]),
        consultation_id=row["consultation_id"],
        withdrawn_at=row["withdrawn_at"],
        title_en=row["title_en"],
        lead_en=row["lead_en"],
        body_en_markdown=row["body_en_markdown"],
        body_en_html=row["body_en_html"],
    )


def _article_values(article: Article) -> tuple[Any, ...]:
    return (
        article.id,
        article.slug,
        article.title,
        article.lead,
        article.body_markdown,
        article.body_html,
        list(article.tags),
        article.state.value,
        article.publish_at,
        article.published_at,
        article.withdrawn_at,
        article.origin.value,
        article.consultation_id,
        article.title_en,
        article.lead_en,
        article.body_en_markdown,
        article.body_en_html,
        article.created_at,
        article.updated_at,
    )


class PostgresArticles:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def add(self, article: Article) -> bool:
        placeholders = ", ".join(f"${n}" for n in range(1, 20))
        inserted = await self._conn.fetchval(
            f"INSERT INTO articles ({_ARTICLE_COLUMNS}) VALUES ({placeholders})"
            " ON CONFLICT (id) DO NOTHING RETURNING 1",
            *_article_values(article),
        )
        return inserted is not None

    async def get(self, article_id: uuid.UUID, *, for_update: bool = False) -> Article | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._conn.fetchrow(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE id = $1{lock}", article_id
        )
        return _article(row) if row else None

    async def save(self, article: Article) -> None:
        await self._conn.execute(
            "UPDATE articles SET title = $2, lead = $3, body_markdown = $4, body_html = $5,"
            " tags = $6, state = $7, publish_at = $8, published_at = $9, withdrawn_at = $10,"
            " updated_at = $11 WHERE id = $1",
            article.id,
            article.title,
            article.lead,
            article.body_markdown,
            article.body_html,
            list(article.tags),
            article.state.value,
            article.publish_at,
            article.published_at,
            article.withdrawn_at,
            article.updated_at,
        )

    async def public_page(
        self, *, now: datetime, tag: str | None, limit: int, offset: int
    ) -> tuple[list[Article], int]:
        where = f"{_PUBLIC_AT} AND ($2::text IS NULL OR $2 = ANY(tags))"
        total = await self._conn.fetchval(f"SELECT count(*) FROM articles WHERE {where}", now, tag)
        rows = await self._conn.fetch(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE {where}"
            f" ORDER BY {_PUBLIC_SINCE} DESC, id DESC LIMIT $3 OFFSET $4",
            now,
            tag,
            limit,
            offset,
        )
        return [_article(row) for row in rows], int(total)

    async def due_scheduled(self, now: datetime) -> list[Article]:
        rows = await self._conn.fetch(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles"
            " WHERE state = 'scheduled' AND publish_at <= $1"
            " ORDER BY publish_at FOR UPDATE SKIP LOCKED",
            now,
        )
        return [_article(row) for row in rows]

    async def next_scheduled(self) -> datetime | None:
        value: datetime | None = await self._conn.fetchval(
            "SELECT min(publish_at) FROM articles WHERE state = 'scheduled'"
        )
        return value


_ALERT_COLUMNS = (
    "id, source, source_key, category, event, level, probability, headline, description,"
    " instruction, areas, onset, expires, sent, message_type, message_refs, status, issuer,"
    " event_en, headline_en, description_en, instruction_en"
)


def _alert(row: asyncpg.Record) -> Alert:
    return Alert(
        id=row["id"],
        source=AlertSource(row["source"]),
        source_key=row["source_key"],
        category=Category(row["category"]),
        event=row["event"],
        level=row["level"],
        probability=row["probability"],
        headline=row["headline"],
        description=row["description"],
        instruction=row["instruction"],
        areas=tuple(
            AlertArea(
                area["description"],
                tuple(AreaCode(CodeKind(code["kind"]), code["value"]) for code in area["codes"]),
            )
            for area in row["areas"]
        ),
        onset=row["onset"],
        expires=row["expires"],
        sent=row["sent"],
        message_type=MessageType(row["message_type"]),
        references=tuple(
            AlertRef(uuid.UUID(ref["alert_id"]), datetime.fromisoformat(ref["sent"]))
            for ref in row["message_refs"]
        ),
        status=AlertStatus(row["status"]),
        issuer=row["issuer"],
        event_en=row["event_en"],
        headline_en=row["headline_en"],
        description_en=row["description_en"],
        instruction_en=row["instruction_en"],
    )


class PostgresAlerts:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def add(self, alert: Alert) -> bool:
        placeholders = ", ".join(f"${n}" for n in range(1, 23))
        # No conflict target: a taken id and an IMGW key that already has an active
        # message (alerts_one_active_per_imgw_key) both mean "this message exists".
        inserted = await self._conn.fetchval(
            f"INSERT INTO alerts ({_ALERT_COLUMNS}) VALUES ({placeholders})"
            " ON CONFLICT DO NOTHING RETURNING 1",
            alert.id,
            alert.source.value,
            alert.source_key,
            alert.category.value,
            alert.event,
            alert.level,
            alert.probability,
            alert.headline,
            alert.description,
            alert.instruction,
            [
                {
                    "description": area.description,
                    "codes": [
                        {"kind": code.kind.value, "value": code.value} for code in area.codes
                    ],
                }
                for area in alert.areas
            ],
            alert.onset,
            alert.expires,
            alert.sent,
            alert.message_type.value,
            [
                {"alert_id": str(ref.alert_id), "sent": ref.sent.isoformat()}
                for ref in alert.references
            ],
            alert.status.value,
            alert.issuer,
            alert.event_en,
            alert.headline_en,
            alert.description_en,
            alert.instruction_en,
        )
        return inserted is not None

    async def get(self, alert_id: uuid.UUID, *, for_update: bool = False) -> Alert | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._conn.fetchrow(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = $1{lock}", alert_id
        )
        return _alert(row) if row else None

    async def set_status(self, alert_id: uuid.UUID, status: AlertStatus) -> bool:
        result = await self._conn.execute(
            "UPDATE alerts SET status = $2 WHERE id = $1 AND status = 'active'",
            alert_id,
            status.value,
        )
        return bool(result == "UPDATE 1")

    async def current(self, now: datetime) -> list[Alert]:
        rows = await self._conn.fetch(
            f"SELECT {_ALERT_COLUMNS} FROM alerts"
            " WHERE status = 'active' AND message_type <> 'Cancel'"
            " AND (expires IS NULL OR expires > $1) ORDER BY sent DESC, id DESC",
            now,
        )
        return [_alert(row) for row in rows]

    async def active_from(self, source: AlertSource) -> list[Alert]:
        rows = await self._conn.fetch(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE status = 'active' AND source = $1"
            " ORDER BY sent, id",
            source.value,
        )
        return [_alert(row) for row in rows]

    async def lock_feed(self, kind: FeedKind) -> None:
        if not self._conn.is_in_transaction():
            raise RuntimeError("lock_feed must run inside the ingest's transaction")
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock($1, $2)", INGEST_LOCK_KEY, FEED_LOCK_IDS[kind]
        )
