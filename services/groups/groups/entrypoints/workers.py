"""Background workers: trend recomputation, housekeeping, warming the text models up.

The trends worker sleeps until a theme is marked dirty (a NOTIFY sent in the transaction
that changed it, delivered on commit) or the poll interval passes, then recomputes dirty
themes one at a time until none is left. Requests never compute trends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from groups.adapters.repository import TRENDS_CHANNEL
from groups.domain.classifier import default_classifier
from groups.domain.text import analyse
from groups.service.outcomes import Outcomes
from groups.service.ports import GroupsUnitOfWork
from groups.service.volunteering import Volunteering
from shared.platform.database import DbConnection
from shared.platform.notify import NotifyWaker

log = logging.getLogger(__name__)


async def run_trends_worker(
    outcomes: Outcomes,
    unit_of_work: Callable[[], GroupsUnitOfWork],
    listener: DbConnection,
    *,
    poll_seconds: float,
) -> None:
    waker = NotifyWaker(TRENDS_CHANNEL)
    async with waker.listening(listener):
        while True:
            while await outcomes.recompute_next(unit_of_work):
                pass
            await waker.sleep(poll_seconds)


async def run_housekeeping(
    volunteering: Volunteering,
    unit_of_work: Callable[[], GroupsUnitOfWork],
    *,
    interval_seconds: float,
) -> None:
    """Forget expired sessions and link tokens now and then."""
    while True:
        async with unit_of_work() as uow:
            forgotten = await volunteering.forget_expired(uow)
        if forgotten:
            log.info("expired sessions and link tokens forgotten", extra={"count": forgotten})
        await asyncio.sleep(interval_seconds)


async def warm_up_text_models() -> None:
    """Load the Polish dictionary and train the classifier once, in a thread, at start-up:
    the first submission without a theme then does not wait seconds for them."""
    await asyncio.to_thread(analyse, "Rozgrzewka słownika.")
    await asyncio.to_thread(default_classifier)
    log.info("text models ready")
