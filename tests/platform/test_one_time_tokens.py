"""Emailed-link secrets: single use, expiring, purpose-bound, stored only as a hash — the
same rules in PostgreSQL and in the in-memory store fake units of work use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from devtools.pytest_plugin import DatabaseFactory
from shared.platform.database import apply_migrations
from shared.platform.one_time_tokens import (
    InMemoryOneTimeTokens,
    PostgresOneTimeTokens,
    TokenRejected,
    token_hash,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture(params=["postgres", "memory"])
async def tokens(
    request: pytest.FixtureRequest, new_database: DatabaseFactory, tmp_path: Path
) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield InMemoryOneTimeTokens()
        return
    dsn = await new_database.create("tokens")
    await apply_migrations(dsn, tmp_path)  # the platform's migrations only
    conn = await asyncpg.connect(dsn)
    try:
        yield PostgresOneTimeTokens(conn)
    finally:
        await conn.close()


async def test_a_token_is_spent_once(tokens: Any) -> None:
    issued = await tokens.issue(purpose="confirm", subject="v-1", ttl=DAY, now=NOW)
    assert issued.expires_at == NOW + DAY
    assert await tokens.spend(issued.token, purpose="confirm", now=NOW) == "v-1"
    with pytest.raises(TokenRejected):
        await tokens.spend(issued.token, purpose="confirm", now=NOW)


async def test_an_expired_a_foreign_or_an_unknown_token_is_rejected(tokens: Any) -> None:
    issued = await tokens.issue(purpose="confirm", subject="v-1", ttl=DAY, now=NOW)
    with pytest.raises(TokenRejected):
        await tokens.spend(issued.token, purpose="sign-in", now=NOW)
    with pytest.raises(TokenRejected):
        await tokens.spend(issued.token, purpose="confirm", now=NOW + DAY)
    with pytest.raises(TokenRejected):
        await tokens.spend("made-up", purpose="confirm", now=NOW)
    # the failed tries did not use it up
    assert await tokens.spend(issued.token, purpose="confirm", now=NOW + DAY / 2) == "v-1"


async def test_revoking_uses_up_every_open_token_of_the_subject(tokens: Any) -> None:
    first = await tokens.issue(purpose="withdraw", subject="v-1", ttl=DAY, now=NOW)
    second = await tokens.issue(purpose="withdraw", subject="v-1", ttl=DAY, now=NOW)
    other = await tokens.issue(purpose="withdraw", subject="v-2", ttl=DAY, now=NOW)
    await tokens.revoke(purpose="withdraw", subject="v-1")
    for token in (first.token, second.token):
        with pytest.raises(TokenRejected):
            await tokens.spend(token, purpose="withdraw", now=NOW)
    assert await tokens.spend(other.token, purpose="withdraw", now=NOW) == "v-2"


async def test_only_the_hash_is_stored(new_database: DatabaseFactory, tmp_path: Path) -> None:
    dsn = await new_database.create("tokens")
    await apply_migrations(dsn, tmp_path)
    conn = await asyncpg.connect(dsn)
    try:
        issued = await PostgresOneTimeTokens(conn).issue(
            purpose="confirm", subject="v-1", ttl=DAY, now=NOW
        )
        stored = await conn.fetch("SELECT * FROM one_time_tokens")
    finally:
        await conn.close()
    assert [row["token_hash"] for row in stored] == [token_hash(issued.token)]
    assert issued.token not in repr([dict(row) for row in stored])
