"""Background workers: trend recomputation, and warming the text models up.

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


async def warm_up_text_models() -> None:
    """Load the Polish dictionary and train the classifier once, in a thread, at start-up:
    the first submission without a theme then does not wait seconds for them."""
    await asyncio.to_thread(analyse, "Rozgrzewka słownika.")
    await asyncio.to_thread(default_classifier)
    log.info("text models ready")
