"""What "a dependency is down" looks like, for every part of the platform that must wait
for it rather than blame the request or the message (HTTP answers 503, consumers pause)."""

from __future__ import annotations

import asyncpg

# asyncpg and the socket layer: the database is down, restarting or refusing connections.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
)


def is_unavailable(error: BaseException) -> bool:
    return isinstance(error, UNAVAILABLE_ERRORS)
