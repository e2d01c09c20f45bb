"""A worker that does whatever has come due, then sleeps until the next due moment.

The due state lives in the service's database, so a restarted replica catches up with
everything that came due while it was down; the worker only decides when to look again.
Both steps run in their own unit of work, so a round that fails leaves nothing half-done.

    runtime.add_worker("article-scheduler", due_work_worker(DueWork(...), max_interval=30))
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

log = logging.getLogger(__name__)

# Never spin: a due moment in the past (a clock step) still waits this long between rounds.
MIN_DELAY_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class DueWork:
    """What a scheduler does: `run_due` handles everything due and says how many items it
    handled; `next_due` is the next moment something comes due (None: nothing planned)."""

    name: str
    run_due: Callable[[], Awaitable[int]]
    next_due: Callable[[], Awaitable[datetime | None]]
    now: Callable[[], datetime]


def delay_until(next_due: datetime | None, now: datetime, *, max_interval: float) -> float:
    """Seconds to sleep: until the next due moment, but at least MIN_DELAY_SECONDS and at
    most `max_interval` (so work planned by another replica is noticed in time)."""
    if next_due is None:
        return max_interval
    seconds_until = (next_due - now).total_seconds()
    return max(MIN_DELAY_SECONDS, min(max_interval, seconds_until))


async def run_due_work(work: DueWork, *, max_interval: float) -> None:
    while True:
        handled = await work.run_due()
        if handled:
            log.info("%s: due work done", work.name, extra={"count": handled})
        next_due = await work.next_due()
        await asyncio.sleep(delay_until(next_due, work.now(), max_interval=max_interval))


def due_work_worker(work: DueWork, *, max_interval: float) -> Callable[[], Awaitable[None]]:
    async def worker() -> None:
        await run_due_work(work, max_interval=max_interval)

    return worker
