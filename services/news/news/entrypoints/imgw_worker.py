"""The IMGW poller worker: one replica polls at a time, the others stand by.

Leadership is a session advisory lock on a connection of its own (as the outbox relay
does): the replica holding it polls every `interval` seconds; the others retry taking it
at the same pace, so one of them takes over within an interval when the leader dies (its
lock dies with its connection). Leadership only saves the feeds duplicate requests:
correctness does not depend on it, because every ingest also takes the feed's
transaction lock and the store refuses a message it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from news.service.imgw import ImgwPolling
from shared.platform.database import DbConnection

log = logging.getLogger(__name__)

# Arbitrary but fixed: "the IMGW poller" among the database's advisory locks.
POLLER_LOCK_KEY = 0x4E45_5753_504C  # "NEWSPL"


async def run_imgw_poller(
    polling: ImgwPolling, lock_connection: DbConnection, *, interval: float
) -> None:
    while True:
        if await lock_connection.fetchval("SELECT pg_try_advisory_lock($1)", POLLER_LOCK_KEY):
            log.info("IMGW poller: this replica polls the feeds")
            try:
                await _lead(polling, lock_connection, interval=interval)
            finally:
                with contextlib.suppress(Exception):
                    await lock_connection.execute("SELECT pg_advisory_unlock($1)", POLLER_LOCK_KEY)
        await asyncio.sleep(interval)


async def _lead(polling: ImgwPolling, lock_connection: DbConnection, *, interval: float) -> None:
    while True:
        await polling.poll_once()
        await asyncio.sleep(interval)
        # The lock lives as long as its connection: a dead one means another replica may
        # lead now, so leave (the runtime's supervisor restarts the worker afresh).
        await lock_connection.fetchval("SELECT 1")
