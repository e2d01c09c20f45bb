"""Publishes consultation openings and closings on time, also after a restart.

The due state lives in the database (`opened_announced_at`, `closed_announced_at`), so a
restarted service catches up with whatever came due while it was down.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from intake.service.handlers import IntakeService
from intake.service.ports import IntakeUnitOfWork
from shared.platform.schedule import DueWork


def consultation_phase_changes(
    service: IntakeService, unit_of_work: Callable[[], IntakeUnitOfWork]
) -> DueWork:
    async def run_due() -> int:
        async with unit_of_work() as uow:
            return await service.announce_due_phase_changes(uow)

    async def next_due() -> datetime | None:
        async with unit_of_work() as uow:
            return await service.next_phase_change(uow)

    return DueWork("consultation phase changes", run_due, next_due, service.now)
