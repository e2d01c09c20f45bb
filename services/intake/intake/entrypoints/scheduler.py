"""Publishes consultation openings and closings on time, also after a restart.

The due state lives in the database (`opened_announced_at`, `closed_announced_at`), so a
restarted service catches up with whatever came due while it was down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from intake.service.handlers import IntakeService
from intake.service.ports import IntakeUnitOfWork

log = logging.getLogger(__name__)


async def run_scheduler(
    service: IntakeService,
    unit_of_work: Callable[[], IntakeUnitOfWork],
    *,
    max_interval: float,
) -> None:
    while True:
        async with unit_of_work() as uow:
            staged = await service.announce_due_phase_changes(uow)
        if staged:
            log.info("consultation phase changes announced", extra={"count": staged})
        async with unit_of_work() as uow:
            next_due = await service.next_phase_change(uow)
        delay = max_interval
        if next_due is not None:
            seconds_until = (next_due - service.now()).total_seconds()
            delay = max(0.05, min(max_interval, seconds_until))
        await asyncio.sleep(delay)
