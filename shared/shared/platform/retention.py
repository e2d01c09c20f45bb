"""Scheduled retention jobs: purge or anonymise personal data older than its period.

A job is a coroutine over one connection inside a transaction, returning the rows it
purged. Its state lives in the service's `retention_runs` table: the replica that locks
the job's row (`FOR UPDATE SKIP LOCKED`) runs it, the others skip, and a job runs at most
once per interval whatever the number of replicas or restarts.

    runtime.add_worker("retention", retention_worker(runtime, {"deliveries": purge}))
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import asyncpg

from shared.platform.database import DbConnection

log = logging.getLogger(__name__)

Purge = Callable[[DbConnection], Awaitable[int]]


async def run_job(pool: asyncpg.Pool, job: str, purge: Purge, *, every: timedelta) -> int | None:
    """Run `job` if it is due and no other replica holds it; the rows purged, or None."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO retention_runs (job) VALUES ($1) ON CONFLICT DO NOTHING", job
        )
        row = await conn.fetchrow(
            "SELECT last_run_at > now() - $2::interval AS recent FROM retention_runs"
            " WHERE job = $1 FOR UPDATE SKIP LOCKED",
            job,
            every,
        )
        if row is None or row["recent"]:
            return None
        purged = await purge(conn)
        await conn.execute(
            "UPDATE retention_runs SET last_run_at = now(), last_purged = $2 WHERE job = $1",
            job,
            purged,
        )
    log.info("retention job ran", extra={"job": job, "purged": purged})
    return purged


def retention_worker(runtime: Any, jobs: Mapping[str, Purge]) -> Callable[[], Awaitable[None]]:
    """A worker for `runtime.add_worker`: runs each due job, then sleeps a tenth of the
    interval (a replica that missed the lock looks again soon)."""
    every = timedelta(seconds=runtime.settings.retention_interval_seconds)

    async def work() -> None:
        while True:
            for job, purge in jobs.items():
                await run_job(runtime.pool, job, purge, every=every)
            await asyncio.sleep(every.total_seconds() / 10)

    return work
