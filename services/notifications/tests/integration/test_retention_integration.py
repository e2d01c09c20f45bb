"""Retention: deliveries older than the gmina profile's period are purged by a scheduled
job whose state is in the database; a replica that finds the job locked skips it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from devtools.pytest_plugin import DatabaseFactory, SmtpSink
from devtools.testing import (
    RunningService,
    settings_for_test,
    start_service,
    unique_prefix,
    wait_for,
)
from notifications.adapters.personal_data import purge_after
from notifications.config import NotificationsSettings
from shared.platform.retention import run_job

pytestmark = pytest.mark.integration


@pytest.fixture
async def notifications(
    kafka_bootstrap_servers: str, new_database: DatabaseFactory, smtp_sink: SmtpSink
) -> AsyncIterator[RunningService]:
    service = await start_service(
        "notifications",
        settings_for_test(
            NotificationsSettings,
            database_url=await new_database.create("notifications"),
            kafka=kafka_bootstrap_servers,
            prefix=unique_prefix("retention"),
            smtp_host=smtp_sink.host,
            smtp_port=smtp_sink.port,
            retention_interval_seconds=1,
        ),
    )
    yield service
    await service.stop()


async def add_delivery(service: RunningService, *, age_days: int) -> uuid.UUID:
    delivery_id = uuid.uuid4()
    await service.runtime.pool.execute(
        "INSERT INTO deliveries (id, source_event_id, correlation_id, purpose, recipient,"
        " language, subject, text_body, html_body, message_id, status, sent_at, created_at)"
        " VALUES ($1, $2, 'c', 'receipt', 'old@example.org', 'pl', 's', 't', 'h', $3, 'sent',"
        " now(), now() - make_interval(days => $4))",
        delivery_id,
        uuid.uuid4(),
        f"<{delivery_id}@test>",
        age_days,
    )
    return delivery_id


async def test_old_deliveries_are_purged_and_recent_kept(notifications: RunningService) -> None:
    old = await add_delivery(notifications, age_days=400)
    recent = await add_delivery(notifications, age_days=10)

    async def purged() -> bool:
        return await notifications.count("deliveries WHERE id = $1", old) == 0

    await wait_for(purged, "the retention job to purge the old delivery")
    assert await notifications.count("deliveries WHERE id = $1", recent) == 1
    assert await notifications.count("retention_runs WHERE job = 'deliveries'") == 1


async def test_a_locked_job_is_skipped_and_a_recent_run_is_not_repeated(
    notifications: RunningService,
) -> None:
    pool = notifications.runtime.pool
    job = f"test-{uuid.uuid4().hex[:8]}"
    purge = purge_after(365)
    await pool.execute("INSERT INTO retention_runs (job) VALUES ($1)", job)
    async with pool.acquire() as other, other.transaction():
        # Another replica is running the job: its row is locked.
        await other.execute("SELECT 1 FROM retention_runs WHERE job = $1 FOR UPDATE", job)
        assert await run_job(pool, job, purge, every=timedelta(hours=1)) is None
    assert await run_job(pool, job, purge, every=timedelta(hours=1)) is not None
    # It ran a moment ago: not due again within the interval.
    assert await run_job(pool, job, purge, every=timedelta(hours=1)) is None
