"""Subscriptions in PostgreSQL (asyncpg), on the connection of a unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Collection

import asyncpg

from notifications.domain.subscriptions import (
    Preferences,
    Subscription,
    SubscriptionStatus,
    SubscriptionTopic,
)
from shared.contracts.intake import Language
from shared.platform.database import DbConnection

_COLUMNS = (
    "id, email, status, topics, min_level, locale, requested_topics, requested_min_level,"
    " requested_locale, link_generation, confirmation_sent_at, created_at, updated_at,"
    " confirmed_at, unsubscribed_at"
)


def _preferences(
    topics: list[str] | None, min_level: int | None, locale: str | None
) -> Preferences | None:
    if topics is None or min_level is None or locale is None:
        return None
    return Preferences(
        tuple(SubscriptionTopic(topic) for topic in topics), min_level, Language(locale)
    )


def _subscription(row: asyncpg.Record) -> Subscription:
    current = _preferences(row["topics"], row["min_level"], row["locale"])
    assert current is not None
    return Subscription(
        id=row["id"],
        email=row["email"],
        status=SubscriptionStatus(row["status"]),
        preferences=current,
        requested=_preferences(
            row["requested_topics"], row["requested_min_level"], row["requested_locale"]
        ),
        link_generation=row["link_generation"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        confirmation_sent_at=row["confirmation_sent_at"],
        confirmed_at=row["confirmed_at"],
        unsubscribed_at=row["unsubscribed_at"],
    )


def _values(subscription: Subscription) -> tuple[object, ...]:
    requested = subscription.requested
    return (
        subscription.id,
        subscription.email,
        subscription.status.value,
        [topic.value for topic in subscription.preferences.topics],
        subscription.preferences.min_level,
        subscription.preferences.locale.value,
        [topic.value for topic in requested.topics] if requested else None,
        requested.min_level if requested else None,
        requested.locale.value if requested else None,
        subscription.link_generation,
        subscription.confirmation_sent_at,
        subscription.created_at,
        subscription.updated_at,
        subscription.confirmed_at,
        subscription.unsubscribed_at,
    )


class PostgresSubscriptions:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def _one(self, where: str, value: object) -> Subscription | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM subscriptions WHERE {where} FOR UPDATE", value
        )
        return _subscription(row) if row else None

    async def lock_by_email(self, email: str) -> Subscription | None:
        return await self._one("lower(email) = lower($1)", email)

    async def lock_by_id(self, subscription_id: uuid.UUID) -> Subscription | None:
        return await self._one("id = $1", subscription_id)

    async def lock_by_legacy_link_token(self, token_hash: str) -> Subscription | None:
        # Links sent before tokens were derived: only their SHA-256 was kept, and only
        # until the subscription's links are rotated.
        return await self._one("legacy_link_token_hash = $1 AND link_generation = 0", token_hash)

    async def link_generations(
        self, subscription_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        rows = await self._conn.fetch(
            "SELECT id, link_generation FROM subscriptions WHERE id = ANY ($1::uuid[])",
            list(subscription_ids),
        )
        return {row["id"]: row["link_generation"] for row in rows}

    async def add(self, subscription: Subscription) -> bool:
        # A concurrent request for the same address waits on the unique index until the
        # first commits; then this inserts nothing and the caller locks the stored row.
        inserted = await self._conn.fetchval(
            f"INSERT INTO subscriptions ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
            " $9, $10, $11, $12, $13, $14, $15) ON CONFLICT DO NOTHING RETURNING 1",
            *_values(subscription),
        )
        return inserted is not None

    async def save(self, subscription: Subscription) -> None:
        """Store the changed state (address, id and creation never change)."""
        current = subscription.preferences
        requested = subscription.requested
        await self._conn.execute(
            "UPDATE subscriptions SET status = $2, topics = $3, min_level = $4, locale = $5,"
            " requested_topics = $6, requested_min_level = $7, requested_locale = $8,"
            " confirmation_sent_at = $9, updated_at = $10, confirmed_at = $11,"
            " unsubscribed_at = $12, link_generation = $13 WHERE id = $1",
            subscription.id,
            subscription.status.value,
            [topic.value for topic in current.topics],
            current.min_level,
            current.locale.value,
            [topic.value for topic in requested.topics] if requested else None,
            requested.min_level if requested else None,
            requested.locale.value if requested else None,
            subscription.confirmation_sent_at,
            subscription.updated_at,
            subscription.confirmed_at,
            subscription.unsubscribed_at,
            subscription.link_generation,
        )
