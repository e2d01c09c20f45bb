"""Deliveries in PostgreSQL (asyncpg), on the connection of a unit of work: the caller
decides the transaction (the handler's inbox unit of work, or the dispatcher's)."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from notifications.domain.deliveries import (
    HOLDS_LINK_SECRETS,
    TEXT_REMOVED_AFTER_SENDING,
    ComposedEmail,
    Delivery,
    DeliveryPriority,
    DeliveryStatus,
    Purpose,
)
from notifications.service.ports import DISPATCH_CHANNEL, DeliveryFilter, FanOut, PageCursor
from shared.contracts.intake import Language
from shared.platform.database import DbConnection

_COLUMNS = (
    "id, source_event_id, correlation_id, purpose, recipient, language, subject, text_body,"
    " html_body, message_id, status, attempts, next_attempt_at, last_error, created_at,"
    " sent_at, failed_at, priority, subscription_id"
)
# What is read besides: the shared content of a fan-out delivery.
_READ_COLUMNS = f"{_COLUMNS}, content_id"


@dataclass(frozen=True, slots=True)
class _Content:
    subject: str
    text_body: str
    html_body: str


class _ContentCache:
    """Shared contents never change once stored: the dispatcher reads each one once, not
    once per delivery of a fan-out (thousands)."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._items: OrderedDict[uuid.UUID, _Content] = OrderedDict()

    def get(self, content_id: uuid.UUID) -> _Content | None:
        found = self._items.get(content_id)
        if found is not None:
            self._items.move_to_end(content_id)
        return found

    def put(self, content_id: uuid.UUID, content: _Content) -> None:
        self._items[content_id] = content
        self._items.move_to_end(content_id)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


_CONTENTS = _ContentCache()


def _to_delivery(row: asyncpg.Record, content: _Content | None) -> Delivery:
    subject, text_body, html_body = row["subject"], row["text_body"], row["html_body"]
    if content is not None:
        # Shared by the fan-out, personal links still markers: the dispatcher fills them in
        # when it sends (`with_subscriber_links`), nothing personal is stored.
        subject, text_body, html_body = content.subject, content.text_body, content.html_body
    return Delivery(
        id=row["id"],
        source_event_id=row["source_event_id"],
        correlation_id=row["correlation_id"],
        purpose=Purpose(row["purpose"]),
        recipient=row["recipient"],
        language=row["language"],
        subject=subject,
        text_body=text_body,
        html_body=html_body,
        message_id=row["message_id"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        sent_at=row["sent_at"],
        failed_at=row["failed_at"],
        priority=DeliveryPriority(row["priority"]),
        subscription_id=row["subscription_id"],
    )


class PostgresDeliveries:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def database_now(self) -> datetime:
        """The database's clock: the one `next_attempt_at` is compared against."""
        value: datetime = await self._conn.fetchval("SELECT clock_timestamp()")
        return value

    async def add(self, delivery: Delivery) -> bool:
        """Insert a new delivery; False when one exists already for its event and purpose."""
        inserted = await self._conn.fetchval(
            f"INSERT INTO deliveries ({_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,"
            " $18, $19)"
            " ON CONFLICT ON CONSTRAINT deliveries_one_per_event DO NOTHING RETURNING 1",
            delivery.id,
            delivery.source_event_id,
            delivery.correlation_id,
            delivery.purpose.value,
            delivery.recipient,
            delivery.language,
            delivery.subject,
            delivery.text_body,
            delivery.html_body,
            delivery.message_id,
            delivery.status.value,
            delivery.attempts,
            delivery.next_attempt_at,
            delivery.last_error,
            delivery.created_at,
            delivery.sent_at,
            delivery.failed_at,
            delivery.priority.value,
            delivery.subscription_id,
        )
        return inserted is not None

    async def add_many(self, deliveries: Sequence[Delivery]) -> int:
        """Insert new deliveries in one statement (a consumer batch's receipts); those
        that exist already for their event and purpose are left out. How many were new."""
        if not deliveries:
            return 0
        columns = [
            [getattr(d, name) for d in deliveries]
            for name in (
                "id", "source_event_id", "correlation_id", "recipient", "language",
                "subject", "text_body", "html_body", "message_id", "attempts",
                "next_attempt_at", "last_error", "created_at", "sent_at", "failed_at",
                "subscription_id",
            )
        ]  # fmt: skip
        inserted = await self._conn.fetch(
            f"INSERT INTO deliveries ({_COLUMNS})"
            " SELECT id, source_event_id, correlation_id, purpose, recipient, language, subject,"
            " text_body, html_body, message_id, status, attempts, next_attempt_at, last_error,"
            " created_at, sent_at, failed_at, priority, subscription_id"
            " FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],"
            " $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],"
            " $12::int[], $13::timestamptz[], $14::text[], $15::timestamptz[],"
            " $16::timestamptz[], $17::timestamptz[], $18::smallint[], $19::uuid[])"
            " AS t(id, source_event_id, correlation_id, purpose, recipient, language, subject,"
            " text_body, html_body, message_id, status, attempts, next_attempt_at, last_error,"
            " created_at, sent_at, failed_at, priority, subscription_id)"
            " ON CONFLICT ON CONSTRAINT deliveries_one_per_event DO NOTHING RETURNING 1",
            *columns[:3],
            [d.purpose.value for d in deliveries],
            *columns[3:9],
            [d.status.value for d in deliveries],
            *columns[9:15],
            [d.priority.value for d in deliveries],
            *columns[15:],
        )
        return len(inserted)

    async def wake_dispatcher(self) -> None:
        """Delivered on commit only: the dispatcher never looks for a row it cannot see."""
        await self._conn.execute("SELECT pg_notify($1, '')", DISPATCH_CHANNEL)

    async def lock_due(self, limit: int) -> list[Delivery]:
        """Up to `limit` due pending deliveries, most urgent first, then oldest, each
        row-locked until the transaction ends.

        SKIP LOCKED lets several dispatchers (replicas) work side by side: a delivery
        being sent by one is invisible to the others.
        """
        if not self._conn.is_in_transaction():
            raise RuntimeError("lock_due must run inside the dispatcher's transaction")
        rows = await self._conn.fetch(
            f"SELECT {_READ_COLUMNS} FROM deliveries"
            # The clock, not now(): the transaction may have begun a moment earlier.
            " WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()"
            " ORDER BY priority, created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
            limit,
        )
        return await self._deliveries(rows)

    async def save_progress(self, deliveries: Sequence[Delivery]) -> None:
        """Store the outcomes of attempts on rows this transaction holds locked (one
        statement for the whole batch)."""
        if not deliveries:
            return
        result = await self._conn.execute(
            "UPDATE deliveries AS d SET status = o.status, attempts = o.attempts,"
            " next_attempt_at = o.next_attempt_at, last_error = o.last_error,"
            " sent_at = o.sent_at, failed_at = o.failed_at,"
            # Link secrets are kept only while the email is pending (HOLDS_LINK_SECRETS).
            " text_body = CASE WHEN o.status <> 'pending' AND d.purpose = ANY($8::text[])"
            " THEN $9 ELSE d.text_body END,"
            " html_body = CASE WHEN o.status <> 'pending' AND d.purpose = ANY($8::text[])"
            " THEN $9 ELSE d.html_body END"
            " FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::text[],"
            " $6::timestamptz[], $7::timestamptz[])"
            " AS o (id, status, attempts, next_attempt_at, last_error, sent_at, failed_at)"
            " WHERE d.id = o.id AND d.status = 'pending'",
            [delivery.id for delivery in deliveries],
            [delivery.status.value for delivery in deliveries],
            [delivery.attempts for delivery in deliveries],
            [delivery.next_attempt_at for delivery in deliveries],
            [delivery.last_error for delivery in deliveries],
            [delivery.sent_at for delivery in deliveries],
            [delivery.failed_at for delivery in deliveries],
            sorted(HOLDS_LINK_SECRETS),
            TEXT_REMOVED_AFTER_SENDING,
        )
        if result != f"UPDATE {len(deliveries)}":
            raise RuntimeError("a delivery of the batch was not pending any more")

    async def add_content(self, email: ComposedEmail) -> uuid.UUID:
        content_id = uuid.uuid4()
        await self._conn.execute(
            "INSERT INTO mail_contents (id, language, subject, text_body, html_body)"
            " VALUES ($1, $2, $3, $4, $5)",
            content_id,
            email.language,
            email.subject,
            email.text_body,
            email.html_body,
        )
        return content_id

    async def fan_out(self, fan_out: FanOut) -> int:
        """One INSERT ... SELECT over the audience: thousands of deliveries in one round
        trip. Each keeps only whose it is (`subscription_id`): the personal links are
        derived when it is sent, so no link secret is ever stored."""
        audience = fan_out.audience
        default_content = fan_out.contents[Language.PL]
        result = await self._conn.execute(
            "INSERT INTO deliveries (id, source_event_id, correlation_id, purpose, recipient,"
            " language, content_id, message_id, status,"
            " attempts, next_attempt_at, created_at, priority, subscription_id, subject_key)"
            " SELECT a.id, $1, $2, $3, a.email, a.locale,"
            " CASE WHEN a.locale = 'en' THEN $4::uuid ELSE $5::uuid END,"
            " '<' || a.id || '@strategia.' || $6 || '>', 'pending', 0,"
            " clock_timestamp(), clock_timestamp(), $7, a.subscription_id, $8"
            " FROM (SELECT gen_random_uuid() AS id, s.id AS subscription_id, s.email,"
            " s.locale FROM subscriptions s"
            " WHERE s.status = 'confirmed' AND $9 = ANY (s.topics)"
            " AND ($10::int IS NULL OR s.min_level <= $10"
            " OR s.id IN (SELECT r.subscription_id FROM deliveries r WHERE r.purpose = $3"
            " AND r.subject_key = ANY ($11::text[]) AND r.subscription_id IS NOT NULL))"
            " ) AS a"
            " ON CONFLICT DO NOTHING",
            fan_out.source_event_id,
            fan_out.correlation_id,
            fan_out.purpose.value,
            fan_out.contents.get(Language.EN, default_content),
            default_content,
            fan_out.gmina_teryt,
            fan_out.priority.value,
            fan_out.subject_key,
            audience.topic.value,
            audience.level,
            list(audience.receivers_of),
        )
        return int(result.rsplit(" ", 1)[1])

    async def _deliveries(self, rows: Sequence[asyncpg.Record]) -> list[Delivery]:
        contents = await self._contents({row["content_id"] for row in rows} - {None})
        return [
            _to_delivery(row, contents[row["content_id"]] if row["content_id"] else None)
            for row in rows
        ]

    async def _contents(self, content_ids: set[uuid.UUID]) -> dict[uuid.UUID, _Content]:
        found: dict[uuid.UUID, _Content] = {}
        missing = []
        for content_id in content_ids:
            cached = _CONTENTS.get(content_id)
            if cached is None:
                missing.append(content_id)
            else:
                found[content_id] = cached
        if missing:
            rows = await self._conn.fetch(
                "SELECT id, subject, text_body, html_body FROM mail_contents"
                " WHERE id = ANY ($1::uuid[])",
                missing,
            )
            for row in rows:
                content = _Content(row["subject"], row["text_body"], row["html_body"])
                _CONTENTS.put(row["id"], content)
                found[row["id"]] = content
        return found

    async def seconds_until_next_due(self) -> float | None:
        """How long until the earliest pending delivery is due (None: nothing pending)."""
        value = await self._conn.fetchval(
            "SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - clock_timestamp())"
            " FROM deliveries WHERE status = 'pending'"
        )
        return None if value is None else float(value)

    async def get(self, delivery_id: uuid.UUID) -> Delivery | None:
        row = await self._conn.fetchrow(
            f"SELECT {_READ_COLUMNS} FROM deliveries WHERE id = $1", delivery_id
        )
        return None if row is None else (await self._deliveries([row]))[0]

    async def page(
        self,
        filters: DeliveryFilter,
        *,
        limit: int,
        after: PageCursor | None = None,
    ) -> list[Delivery]:
        """Newest first, keyset-paginated (stable while new deliveries keep arriving)."""
        conditions: list[str] = []
        args: list[Any] = []

        def param(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if filters.source_event_id is not None:
            conditions.append(f"source_event_id = {param(filters.source_event_id)}")
        if filters.recipient is not None:
            # Case-insensitive: that is how people compare addresses (index on lower()).
            conditions.append(f"lower(recipient) = lower({param(filters.recipient)})")
        if filters.status is not None:
            conditions.append(f"status = {param(filters.status.value)}")
        if after is not None:
            conditions.append(f"(created_at, id) < ({param(after.created_at)}, {param(after.id)})")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = await self._conn.fetch(
            f"SELECT {_READ_COLUMNS} FROM deliveries{where}"
            f" ORDER BY created_at DESC, id DESC LIMIT {param(limit)}",
            *args,
        )
        return await self._deliveries(rows)
