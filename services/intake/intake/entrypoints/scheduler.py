"""Publishes consultation openings and closings on time, also after a restart.

The due state lives in the database (`opened_announced_at`, `closed_announced_at`), so a
restarted service catches up with whatever came due while it was down.
"""

from __future__ import annotations

import asyncio
import logging

from intake.service.handlers import IntakeService

log = logging.getLogger(__name__)


async def run_scheduler(service: IntakeService, *, max_interval: float) -> None:
    while True:
        staged = await service.announce_due_phase_changes()
        if staged:
            log.info("consultation phase changes announced", extra={"count": staged})
        next_due = await service.next_phase_change()
        delay = max_interval
        if next_due is not None:
            seconds_until = (next_due - service.now()).total_seconds()
            delay = max(0.05, min(max_interval, seconds_until))
        await asyncio.sleep(delay)
