"""Publishes scheduled articles when their time comes, also after a restart.

The schedule lives in the database (`state = 'scheduled'`, `publish_at`), so a restarted
service catches up with everything that came due while it was down; several replicas
skip each other's rows (`FOR UPDATE SKIP LOCKED`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from news.service.handlers import NewsService
from news.service.ports import NewsUnitOfWork
from shared.platform.schedule import DueWork


def scheduled_articles(service: NewsService, unit_of_work: Callable[[], NewsUnitOfWork]) -> DueWork:
    async def run_due() -> int:
        async with unit_of_work() as uow:
            return await service.publish_due_articles(uow)

    async def next_due() -> datetime | None:
        async with unit_of_work() as uow:
            return await service.next_publication(uow)

    return DueWork("scheduled articles", run_due, next_due, service.now)
