"""Fakes for the fast tier: the news unit of work on dictionaries (no broker, no server).

As in Cosmic Python's `tests/unit/test_handlers.py`: the use cases run unchanged against
in-memory repositories, and the tests look at what was committed and which events were
staged. The fakes keep the stores' rules that the use cases rely on (an id is stored once;
one active message per IMGW key), so a use case that forgets a check fails here too.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from news.domain.alerts import Alert, AlertSource, AlertStatus, MessageType
from news.domain.articles import Article, ArticleState
from news.domain.imgw import FeedKind
from news.service.ports import NewsUnitOfWork
from shared.contracts.envelope import EventPayload

NOW = datetime(2025, 7, 8, 7, 30, tzinfo=UTC)  # 09:30 in Warsaw


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeArticles:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Article] = {}

    async def add(self, article: Article) -> bool:
        if article.id in self.rows:
            return False
        self.rows[article.id] = article
        return True

    async def get(self, article_id: uuid.UUID, *, for_update: bool = False) -> Article | None:
        return self.rows.get(article_id)

    async def save(self, article: Article) -> None:
        assert article.id in self.rows, "save of an article never added"
        self.rows[article.id] = article

    async def public_page(
        self, *, now: datetime, tag: str | None, limit: int, offset: int
    ) -> tuple[list[Article], int]:
        public = [
            article
            for article in self.rows.values()
            if article.is_public(now) and (tag is None or tag in article.tags)
        ]
        public.sort(key=lambda a: (a.public_since() or a.created_at, a.id), reverse=True)
        return public[offset : offset + limit], len(public)

    async def due_scheduled(self, now: datetime) -> list[Article]:
        return sorted(
            (
                article
                for article in self.rows.values()
                if article.state is ArticleState.SCHEDULED
                and article.publish_at is not None
                and article.publish_at <= now
            ),
            key=lambda article: article.publish_at or now,
        )

    async def next_scheduled(self) -> datetime | None:
        return min(
            (
                article.publish_at
                for article in self.rows.values()
                if article.state is ArticleState.SCHEDULED and article.publish_at is not None
            ),
            default=None,
        )


class FakeAlerts:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Alert] = {}
        self.locked: list[FeedKind] = []

    def _active_key_taken(self, alert: Alert) -> bool:
        return (
            alert.source_key is not None
            and alert.status is AlertStatus.ACTIVE
            and alert.message_type is not MessageType.CANCEL
            and any(
                other.source is alert.source
                and other.source_key == alert.source_key
                and other.status is AlertStatus.ACTIVE
                and other.message_type is not MessageType.CANCEL
                for other in self.rows.values()
            )
        )

    async def add(self, alert: Alert) -> bool:
        if alert.id in self.rows or self._active_key_taken(alert):
            return False
        self.rows[alert.id] = alert
        return True

    async def get(self, alert_id: uuid.UUID, *, for_update: bool = False) -> Alert | None:
        return self.rows.get(alert_id)

    async def set_status(self, alert_id: uuid.UUID, status: AlertStatus) -> bool:
        current = self.rows.get(alert_id)
        if current is None or current.status is not AlertStatus.ACTIVE:
            return False
        self.rows[alert_id] = replace(current, status=status)
        return True

    async def current(self, now: datetime) -> list[Alert]:
        found = [alert for alert in self.rows.values() if alert.is_current(now)]
        return sorted(found, key=lambda alert: (alert.sent, alert.id), reverse=True)

    async def active_from(self, source: AlertSource) -> list[Alert]:
        return [
            alert
            for alert in self.rows.values()
            if alert.source is source and alert.status is AlertStatus.ACTIVE
        ]

    async def lock_feed(self, kind: FeedKind) -> None:
        self.locked.append(kind)


@dataclass
class FakeStore:
    articles: FakeArticles = field(default_factory=FakeArticles)
    alerts: FakeAlerts = field(default_factory=FakeAlerts)
    # (payload, key) of every event whose unit of work committed, in order.
    committed: list[tuple[EventPayload, str]] = field(default_factory=list)

    def unit_of_work(self) -> FakeNewsUnitOfWork:
        return FakeNewsUnitOfWork(self)

    def events(self, kind: type[Any] | None = None) -> list[Any]:
        return [event for event, _ in self.committed if kind is None or isinstance(event, kind)]


class FakeNewsUnitOfWork(NewsUnitOfWork):
    """Commits keep what the use case wrote; leaving without a commit restores the state
    from when the unit of work opened (like a rolled-back transaction)."""

    def __init__(self, store: FakeStore) -> None:
        super().__init__()
        self._store = store
        self.articles = store.articles
        self.alerts = store.alerts
        self._snapshot: tuple[dict[uuid.UUID, Article], dict[uuid.UUID, Alert]] | None = None

    async def _begin(self) -> None:
        self._snapshot = (copy.copy(self._store.articles.rows), copy.copy(self._store.alerts.rows))

    async def _commit(self) -> None:
        self._store.committed.extend((event.payload, event.key) for event in self.events)
        self._snapshot = None

    async def rollback(self) -> None:
        if self._snapshot is not None:
            self._store.articles.rows, self._store.alerts.rows = self._snapshot
            self._snapshot = None


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)
