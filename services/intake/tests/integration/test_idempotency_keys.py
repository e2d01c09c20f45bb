"""The Idempotency-Key lookup on the real server: every submission makes it, so its cost
must not grow with the consultation."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from devtools.pytest_plugin import DatabaseFactory
from intake.adapters.repository import PostgresIdempotencyKeys
from intake.bootstrap import MIGRATIONS
from shared.platform.database import apply_migrations

pytestmark = pytest.mark.integration


async def test_a_lookup_reads_only_the_keys_asked_for(new_database: DatabaseFactory) -> None:
    """A pooled connection keeps the generic plan PostgreSQL made from the statistics of
    its time. Here they are those of a table with many small consultations; then one
    consultation gets 5,000 keys. The lookup of 15 keys must read at most 15 index
    entries, not the consultation's 5,000 (which it did while the index led by scope)."""
    dsn = new_database("intake")
    await apply_migrations(dsn, MIGRATIONS)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO idempotency_keys (scope, key, request_hash)"
            " SELECT 'submit:' || gen_random_uuid(), gen_random_uuid()::text, 'h'"
            " FROM generate_series(1, 300)"
        )
        await conn.execute("ANALYZE idempotency_keys")
        scope = f"submit:{uuid.uuid4()}"
        stored = [str(uuid.uuid4()) for _ in range(5000)]
        await conn.execute(
            "INSERT INTO idempotency_keys (scope, key, request_hash)"
            " SELECT $1, key, 'h' FROM unnest($2::text[]) AS key",
            scope,
            stored,
        )
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        wanted = [stored[0], stored[-1], *(str(uuid.uuid4()) for _ in range(13))]

        async with conn.transaction():
            found = await PostgresIdempotencyKeys(conn).find(scope, wanted)
            # Index entries this transaction's scans returned (before any filter).
            entries_read = await conn.fetchval(
                "SELECT pg_stat_get_xact_tuples_returned('idempotency_keys_pkey'::regclass)"
            )

        assert set(found) == {stored[0], stored[-1]}
        assert entries_read <= len(wanted)
    finally:
        await conn.close()
