"""The unit of work: one transaction, the service's repositories, the events it raised.

A use case receives an open unit of work, changes state through its repositories, stages
the integration events that change implies (`stage_event`), and commits: the state change
and the outbox rows of its events commit together, or nothing does.

    async with runtime.unit_of_work() as uow:        # the entrypoint opens it
        result = await use_case(uow, command)        # the use case commits it

Leaving the block without a commit rolls everything back. Kafka handlers get theirs from
the platform with the inbox claim already in it; when the handler leaves it uncommitted
(nothing to change), the consumer commits the claim.

A unit of work can also run `within` a transaction someone else holds open (the consumer's
batch of events): it is then a savepoint of that transaction — its commit releases the
savepoint and writes its outbox rows, its rollback undoes only its own writes, and what it
did becomes durable when the enclosing transaction commits.

Services subclass `PostgresUnitOfWork` and create their repositories in `bind`; unit tests
subclass `UnitOfWork` with in-memory repositories (a fake unit of work), as in Cosmic
Python's `tests/unit/test_handlers.py`.
"""

from __future__ import annotations

import abc
import contextlib
import uuid
from types import TracebackType
from typing import Any, Self

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.contracts.envelope import Envelope, EventPayload
from shared.contracts.topics import Topic
from shared.platform.database import DbConnection
from shared.platform.inbox import claim_event
from shared.platform.outbox import OutboxWriter, StagedEvent, Tombstone, Trace


class UnitOfWork(abc.ABC):
    def __init__(self) -> None:
        self.events: list[StagedEvent] = []
        self.tombstones: list[Tombstone] = []
        self.trace = Trace()
        self.committed = False

    def stage_event(self, payload: EventPayload, *, key: uuid.UUID | str) -> None:
        """Publish `payload` (keyed by its aggregate id) if and when this unit commits."""
        self.events.append(StagedEvent(payload=payload, key=str(key), trace=self.trace))

    def stage_tombstone(self, topic: Topic, *, key: uuid.UUID | str) -> None:
        """Delete `key` from the compacted `topic` if and when this unit commits (written
        to the outbox after this unit's events)."""
        self.tombstones.append(Tombstone(topic=topic, key=str(key)))

    async def __aenter__(self) -> Self:
        await self._begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self.committed:
            await self.rollback()

    async def commit(self) -> None:
        if self.committed:
            raise RuntimeError("this unit of work has already committed")
        await self._commit()
        self.committed = True

    @abc.abstractmethod
    async def _begin(self) -> None: ...

    @abc.abstractmethod
    async def _commit(self) -> None: ...

    @abc.abstractmethod
    async def rollback(self) -> None: ...


class PostgresUnitOfWork(UnitOfWork):
    """A transaction on a pooled connection; staged events become outbox rows at commit."""

    def __init__(self, pool: asyncpg.Pool, outbox: OutboxWriter) -> None:
        super().__init__()
        self._pool = pool
        self._outbox = outbox
        self._connection: DbConnection | None = None
        self._transaction: asyncpg.transaction.Transaction | None = None
        # Set by `within`: the connection (in an open transaction) this unit borrows.
        self._enclosing: DbConnection | None = None
        # After the commit: the envelopes of the staged events, as they went to the outbox.
        self.envelopes: list[Envelope[Any]] = []

    @property
    def connection(self) -> DbConnection:
        if self._connection is None:
            raise RuntimeError("the unit of work is not open")
        return self._connection

    def within(self, connection: DbConnection) -> Self:
        """Run as a savepoint of `connection`'s open transaction (before `async with`).

        Commit releases the savepoint, rollback returns to it; the connection and the
        enclosing transaction stay the caller's, who commits them.
        """
        if not connection.is_in_transaction():
            raise RuntimeError("within() needs a connection in an open transaction")
        self._enclosing = connection
        return self

    def bind(self, connection: DbConnection) -> None:
        """Create the service's repositories on `connection` (subclasses override)."""

    async def claim_inbox(self, consumer: str, event_id: uuid.UUID, event_type: str) -> bool:
        """True when `consumer` sees this event for the first time (see `inbox`)."""
        return await claim_event(
            self.connection, consumer=consumer, event_id=event_id, event_type=event_type
        )

    async def _begin(self) -> None:
        if self._enclosing is not None:
            savepoint = self._enclosing.transaction()
            await savepoint.start()  # nested in the caller's transaction: a SAVEPOINT
            self._connection, self._transaction = self._enclosing, savepoint
            self.bind(self._enclosing)
            return
        connection = await self._pool.acquire()
        try:
            transaction = connection.transaction()
            await transaction.start()
        except BaseException:
            await self._pool.release(connection)
            raise
        self._connection, self._transaction = connection, transaction
        self.bind(connection)

    async def _commit(self) -> None:
        assert self._transaction is not None, "the unit of work is not open"
        try:
            envelopes = await self._outbox.write(self.connection, self.events)
            await self._outbox.write_tombstones(self.connection, self.tombstones)
            await self._transaction.commit()
        except BaseException:
            await self.rollback()
            raise
        self.envelopes = envelopes
        await self._release()

    async def rollback(self) -> None:
        if self._transaction is None:
            return
        if self._enclosing is not None:
            # A savepoint that cannot be rolled back leaves the enclosing transaction
            # aborted: its owner must hear of it rather than commit what is left.
            try:
                await self._transaction.rollback()
            finally:
                await self._release()
            return
        try:
            # A failed rollback (connection lost) is harmless: the pool resets a released
            # connection, and a closed one took its transaction with it.
            with contextlib.suppress(Exception):
                await self._transaction.rollback()
        finally:
            await self._release()

    async def _release(self) -> None:
        connection, self._connection, self._transaction = self._connection, None, None
        if isinstance(connection, PoolConnectionProxy) and connection is not self._enclosing:
            await self._pool.release(connection)
