"""Wake a background worker on a PostgreSQL NOTIFY, on demand, or after a timeout.

The outbox relay and the email dispatcher both sleep until there is work: a NOTIFY sent in
the transaction that created the work (delivered only on commit), an explicit `wake()` (a
stop request), or a polling timeout, the fallback for a NOTIFY that was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from shared.platform.database import DbConnection


class ListenerLost(ConnectionError):
    """The LISTEN connection closed: NOTIFYs are lost with it, so the worker must restart."""


class NotifyWaker:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self._event = asyncio.Event()
        self._connection: DbConnection | None = None

    def _on_notify(self, *_: object) -> None:
        self._event.set()

    def wake(self) -> None:
        self._event.set()

    @contextlib.asynccontextmanager
    async def listening(self, connection: DbConnection) -> AsyncIterator[None]:
        """LISTEN on `connection` for the duration of the block."""
        await connection.add_listener(self.channel, self._on_notify)
        self._connection = connection
        try:
            yield
        finally:
            self._connection = None
            with contextlib.suppress(Exception):
                await connection.remove_listener(self.channel, self._on_notify)

    async def sleep(self, seconds: float) -> None:
        """Return when woken or after `seconds`; then forget the wake-up.

        A NOTIFY that arrives while the caller works (after this returned) sets the event
        again, so the next `sleep` returns at once: no work is overlooked.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=seconds)
        self._event.clear()
        if self._connection is not None and self._connection.is_closed():
            raise ListenerLost(f"the LISTEN connection of {self.channel!r} was closed")
