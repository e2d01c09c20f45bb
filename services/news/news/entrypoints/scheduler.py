"""Publishes scheduled articles when their time comes, also after a restart.

The schedule lives in the database (`state = 'scheduled'`, `publish_at`), so a restarted
service catches up with everything that came due while it was down; several replicas
skip each other's rows (`FOR UPDATE SKIP LOCKED`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from news.service.handlers import NewsService
from news.service.ports import NewsUnitOfWork

log = logging.getLogger(__name__)

# Never spin: a due moment in the past (a clock step) still waits this long between rounds.
MIN_DELAY_SECONDS = 0.05


async def run_scheduler(
    service: NewsService,
    unit_of_work: Callable[[], NewsUnitOfWork],
    *,
    max_interval: float,
) -> None:
    while True:
        async with unit_of_work() as uow:
            published = await service.publish_due_articles(uow)
        if published:
            log.info("scheduled articles published", extra={"count": published})
        async with unit_of_work() as uow:
            next_due = await service.next_publication(uow)
        delay = max_interval
        if next_due is not None:
            seconds_until = (next_due - service.now()).total_seconds()
            delay = max(MIN_DELAY_SECONDS, min(max_interval, seconds_until))
        await asyncio.sleep(delay)
