"""Fakes for the fast tier: the notifications unit of work on dictionaries.

Deliveries, subscriptions and one-time tokens live in memory with the rules the use cases
rely on (one subscription per address in any case, one delivery per event, purpose and
subscription); a unit of work left without a commit restores the state it found.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from notifications.domain.deliveries import ComposedEmail, Delivery, DeliveryStatus
from notifications.domain.subscriptions import Subscription
from notifications.service.ports import DeliveryFilter, FanOut, NotificationsUnitOfWork, PageCursor
from shared.platform.one_time_tokens import InMemoryOneTimeTokens

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class FakeDeliveries:
    def __init__(self, store: FakeStore) -> None:
        self._store = store
        self.rows: dict[uuid.UUID, Delivery] = {}
        self.contents: dict[uuid.UUID, ComposedEmail] = {}
        self.wakes = 0

    async def database_now(self) -> datetime:
        return self._store.now

    async def add(self, delivery: Delivery) -> bool:
        key = (delivery.source_event_id, delivery.purpose, delivery.subscription_id)
        if any(
            (d.source_event_id, d.purpose, d.subscription_id) == key for d in self.rows.values()
        ):
            return False
        self.rows[delivery.id] = delivery
        return True

    async def add_many(self, deliveries: Sequence[Delivery]) -> int:
        return sum([await self.add(delivery) for delivery in deliveries])

    async def wake_dispatcher(self) -> None:
        self.wakes += 1

    async def lock_due(self, limit: int) -> list[Delivery]:
        due = [d for d in self.rows.values() if d.is_due(self._store.now)]
        return sorted(due, key=lambda d: (d.priority, d.created_at))[:limit]

    async def save_progress(self, deliveries: Sequence[Delivery]) -> None:
        # As PostgreSQL: only the outcome is stored, not what the hooks put into the
        # message in memory (personal links, tokens).
        for delivery in deliveries:
            stored = self.rows[delivery.id]
            assert stored.status is DeliveryStatus.PENDING
            self.rows[delivery.id] = dataclasses.replace(
                stored,
                status=delivery.status,
                attempts=delivery.attempts,
                next_attempt_at=delivery.next_attempt_at,
                last_error=delivery.last_error,
                sent_at=delivery.sent_at,
                failed_at=delivery.failed_at,
            )

    async def add_content(self, email: ComposedEmail) -> uuid.UUID:
        content_id = uuid.uuid4()
        self.contents[content_id] = email
        return content_id

    async def fan_out(self, fan_out: FanOut) -> int:
        raise NotImplementedError("set-based: tested on PostgreSQL")

    async def seconds_until_next_due(self) -> float | None:
        return None

    async def get(self, delivery_id: uuid.UUID) -> Delivery | None:
        return self.rows.get(delivery_id)

    async def page(
        self, filters: DeliveryFilter, *, limit: int, after: PageCursor | None = None
    ) -> list[Delivery]:
        return list(self.rows.values())[:limit]


class FakeSubscriptions:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Subscription] = {}
        # SHA-256 of a link token from before derived tokens -> its subscription.
        self.legacy_hashes: dict[str, uuid.UUID] = {}

    async def lock_by_email(self, email: str) -> Subscription | None:
        return next((s for s in self.rows.values() if s.email.lower() == email.lower()), None)

    async def lock_by_id(self, subscription_id: uuid.UUID) -> Subscription | None:
        return self.rows.get(subscription_id)

    async def lock_by_legacy_link_token(self, token_hash: str) -> Subscription | None:
        found = self.legacy_hashes.get(token_hash)
        subscription = self.rows.get(found) if found is not None else None
        return subscription if subscription and subscription.link_generation == 0 else None

    async def link_generations(
        self, subscription_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        return {i: self.rows[i].link_generation for i in subscription_ids if i in self.rows}

    async def add(self, subscription: Subscription) -> bool:
        if await self.lock_by_email(subscription.email) is not None:
            return False
        self.rows[subscription.id] = subscription
        return True

    async def save(self, subscription: Subscription) -> None:
        stored = self.rows[subscription.id]
        assert stored.email == subscription.email
        self.rows[subscription.id] = subscription


class FakeStore:
    def __init__(self) -> None:
        self.now = NOW
        self.deliveries = FakeDeliveries(self)
        self.subscriptions = FakeSubscriptions()
        self.tokens = InMemoryOneTimeTokens()
        self.committed: list[Any] = []

    def unit_of_work(self) -> FakeNotificationsUnitOfWork:
        return FakeNotificationsUnitOfWork(self)

    def snapshot(self) -> tuple[Any, ...]:
        return (
            dict(self.deliveries.rows),
            dict(self.subscriptions.rows),
            copy.deepcopy(self.tokens.stored),
        )

    def restore(self, snapshot: tuple[Any, ...]) -> None:
        self.deliveries.rows, self.subscriptions.rows, self.tokens.stored = snapshot


class FakeNotificationsUnitOfWork(NotificationsUnitOfWork):
    """Nested units of work (the dispatcher's hooks have their own) share the store: one
    rolled back after another committed would undo it too — unlike PostgreSQL; the tests
    do not do that."""

    def __init__(self, store: FakeStore) -> None:
        super().__init__()
        self._store = store
        self.deliveries = store.deliveries
        self.subscriptions = store.subscriptions
        self.one_time_tokens = store.tokens
        self._snapshot: tuple[Any, ...] | None = None

    async def _begin(self) -> None:
        self._snapshot = self._store.snapshot()

    async def _commit(self) -> None:
        self._store.committed.extend(event.payload for event in self.events)
        self._snapshot = None

    async def rollback(self) -> None:
        if self._snapshot is not None:
            self._store.restore(self._snapshot)
            self._snapshot = None


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def replace(value: Any, **changes: Any) -> Any:
    return dataclasses.replace(value, **changes)
