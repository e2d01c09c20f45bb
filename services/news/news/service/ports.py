"""What the news use cases need from the outside world, independent of the technology.

`NewsUnitOfWork` is the unit of work use cases receive; `news.adapters` implements it on
asyncpg, the unit tests on dictionaries (`tests/unit/conftest.py`). `FeedSource` is how
the IMGW poller reaches the feeds (httpx in `news.adapters.imgw_client`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from news.domain.alerts import Alert, AlertSource, AlertStatus
from news.domain.articles import Article
from news.domain.imgw import FeedKind
from shared.platform.unit_of_work import UnitOfWork


class Articles(Protocol):
    async def add(self, article: Article) -> bool:
        """Store a new article; False when one with its id exists already."""
        ...

    async def get(self, article_id: uuid.UUID, *, for_update: bool = False) -> Article | None:
        """`for_update` locks the row until the unit of work ends."""
        ...

    async def save(self, article: Article) -> None: ...

    async def public_page(
        self, *, now: datetime, tag: str | None, limit: int, offset: int
    ) -> tuple[list[Article], int]:
        """Articles public at `now`, newest first (by when they became public), and how
        many there are in all."""
        ...

    async def due_scheduled(self, now: datetime) -> list[Article]:
        """Scheduled articles whose time has come, locked (others skip them)."""
        ...

    async def next_scheduled(self) -> datetime | None: ...


class Alerts(Protocol):
    async def add(self, alert: Alert) -> bool:
        """Store a new message; False when it exists already (its id is taken, or its
        IMGW key has an active message), in which case nothing was written."""
        ...

    async def get(self, alert_id: uuid.UUID, *, for_update: bool = False) -> Alert | None: ...

    async def set_status(self, alert_id: uuid.UUID, status: AlertStatus) -> bool:
        """Move an active message to `status`; False when it was not active."""
        ...

    async def current(self, now: datetime) -> list[Alert]:
        """Messages neither replaced, cancelled nor expired at `now`, newest first."""
        ...

    async def active_from(self, source: AlertSource) -> list[Alert]:
        """The active messages issued from one source (what the IMGW life cycle compares
        a fetch with)."""
        ...

    async def lock_feed(self, kind: FeedKind) -> None:
        """Serialise ingests of one feed across replicas until the unit of work ends."""
        ...


class NewsUnitOfWork(UnitOfWork):
    articles: Articles
    alerts: Alerts


class FeedUnavailable(Exception):
    """The feed did not answer (connection refused, timeout, TLS, ...)."""


@dataclass(frozen=True, slots=True)
class FeedAnswer:
    status: int
    body: bytes


class FeedSource(Protocol):
    async def get(self, kind: FeedKind) -> FeedAnswer:
        """One HTTP answer of the feed, whatever its status; `FeedUnavailable` when none."""
        ...
