"""Deliveries in PostgreSQL (asyncpg), on the connection of a unit of work: the caller
decides the transaction (the handler's inbox unit of work, or the dispatcher's)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from notifications.domain.deliveries import Delivery, DeliveryStatus, Purpose
from notifications.service.ports import DISPATCH_CHANNEL, DeliveryFilter, PageCursor
from shared.platform.database import DbConnection

_COLUMNS = (
    "id, source_event_id, correlation_id, purpose, recipient, language, subject, text_body,"
    " html_body, message_id, status, attempts, next_attempt_at, last_error, created_at,"
    " sent_at, failed_at"
)


def _to_delivery(row: asyncpg.Record) -> Delivery:
    return Delivery(
        id=row["id"],
        source_event_id=row["source_event_id"],
        correlation_id=row["correlation_id"],
        purpose=Purpose(row["purpose"]),
        recipient=row["recipient"],
        language=row["language"],
        subject=row["subject"],
        text_body=row["text_body"],
        html_body=row["html_body"],
        message_id=row["message_id"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        sent_at=row["sent_at"],
        failed_at=row["failed_at"],
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
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
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
        )
        return inserted is not None

    async def wake_dispatcher(self) -> None:
        """Delivered on commit only: the dispatcher never looks for a row it cannot see."""
        await self._conn.execute("SELECT pg_notify($1, '')", DISPATCH_CHANNEL)

    async def lock_next_due(self) -> Delivery | None:
        """The oldest due pending delivery, row-locked until the transaction ends.

        SKIP LOCKED lets several dispatchers (replicas) work side by side: a delivery
        being sent by one is invisible to the others.
        """
        if not self._conn.is_in_transaction():
            raise RuntimeError("lock_next_due must run inside the dispatcher's transaction")
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM deliveries"
            # The clock, not now(): the transaction may have begun a moment earlier.
            " WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()"
            " ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED"
        )
        return None if row is None else _to_delivery(row)

    async def save_progress(self, delivery: Delivery) -> None:
        """Store the outcome of an attempt on a row this transaction holds locked."""
        result = await self._conn.execute(
            "UPDATE deliveries SET status = $2, attempts = $3, next_attempt_at = $4,"
            " last_error = $5, sent_at = $6, failed_at = $7"
            " WHERE id = $1 AND status = 'pending'",
            delivery.id,
            delivery.status.value,
            delivery.attempts,
            delivery.next_attempt_at,
            delivery.last_error,
            delivery.sent_at,
            delivery.failed_at,
        )
        if result != "UPDATE 1":
            raise RuntimeError(f"delivery {delivery.id} was not pending any more")

    async def seconds_until_next_due(self) -> float | None:
        """How long until the earliest pending delivery is due (None: nothing pending)."""
        value = await self._conn.fetchval(
            "SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - clock_timestamp())"
            " FROM deliveries WHERE status = 'pending'"
        )
        return None if value is None else float(value)

    async def get(self, delivery_id: uuid.UUID) -> Delivery | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM deliveries WHERE id = $1", delivery_id
        )
        return None if row is None else _to_delivery(row)

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
            f"SELECT {_COLUMNS} FROM deliveries{where}"
            f" ORDER BY created_at DESC, id DESC LIMIT {param(limit)}",
            *args,
        )
        return [_to_delivery(row) for row in rows]
