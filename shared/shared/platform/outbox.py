"""Transactional outbox: write events with the state change, publish them afterwards.

`OutboxWriter` runs inside the caller's transaction (a unit of work's commit), so an event
exists if and only if the change that caused it was committed. `OutboxRelay` publishes
the rows in id order through an idempotent producer, waits for the broker's
acknowledgements, and only then deletes them. A crash between publishing and deleting
re-publishes the rows on restart: delivery is at-least-once and consumers deduplicate on
`event_id` (see `inbox`).

Publishing is pipelined: a batch of rows is handed to the producer in id order without
waiting for each acknowledgement, the acknowledgements are awaited together, and the
acknowledged rows are deleted with one statement. Per-key order survives the pipelining
because a key always maps to one partition and the idempotent producer keeps a
partition's records in the order they were sent: every batch carries a sequence number the
broker checks, and aiokafka keeps at most one produce request in flight per broker
connection (Kafka keeps order for up to five with idempotence).

Only one relay per database publishes at a time (a session advisory lock), which keeps
per-key order across several replicas (and worker processes) of a service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from shared.contracts.envelope import Envelope, EventPayload, new_envelope
from shared.contracts.registry import topic_of
from shared.contracts.topics import Topic, TopicNames
from shared.platform.backoff import exponential_backoff
from shared.platform.database import DbConnection
from shared.platform.logging import correlation_id_var
from shared.platform.notify import NotifyWaker

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "strategia_outbox"
# Arbitrary but fixed: identifies "the outbox relay" among advisory locks of a database.
RELAY_LOCK_KEY = 0x5354_5241_4F42  # "STRAOB"


class Publisher(Protocol):
    """Publishes one record and returns once the broker acknowledged it."""

    async def publish(
        self, *, topic: str, key: bytes, value: bytes | None, headers: Mapping[str, str]
    ) -> None: ...


class PipelinedPublisher(Publisher, Protocol):
    """Also hands a record to the producer without waiting for the broker: `send` returns
    once the record is queued (in call order), and the awaitable it returns completes when
    the broker acknowledged it (or raises why it could not)."""

    async def send(
        self, *, topic: str, key: bytes, value: bytes | None, headers: Mapping[str, str]
    ) -> Awaitable[object]: ...


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    id: int
    topic: str
    key: str
    payload: bytes | None  # None: a tombstone (compacted topics)
    headers: dict[str, str]


def envelope_headers(envelope: Envelope[Any]) -> dict[str, str]:
    """Headers that let tools route and trace without parsing the body."""
    headers = {
        "event_type": envelope.event_type,
        "event_version": str(envelope.event_version),
        "event_id": str(envelope.event_id),
        "correlation_id": envelope.correlation_id,
        "producer": envelope.producer,
    }
    if envelope.causation_id:
        headers["causation_id"] = envelope.causation_id
    return headers


@dataclass(frozen=True, slots=True)
class Trace:
    """Where an event comes from: the conversation, and the message that caused it."""

    correlation_id: str | None = None
    causation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A key to delete from a compacted topic, waiting for its transaction to commit."""

    topic: Topic
    key: str


@dataclass(frozen=True, slots=True)
class StagedEvent:
    """An event a use case raised, waiting for its transaction to commit."""

    payload: EventPayload
    key: str
    trace: Trace


class OutboxWriter:
    """Turns staged events into outbox rows in the caller's transaction.

    The topic comes from the registry (`topic_of`), the producer is the service's name, and
    the correlation id is the trace's, else the current request's.
    """

    def __init__(self, producer: str, topics: TopicNames) -> None:
        self.producer = producer
        self._topics = topics

    def envelope(self, event: StagedEvent) -> Envelope[Any]:
        return new_envelope(
            event.payload,
            producer=self.producer,
            correlation_id=event.trace.correlation_id or correlation_id_var.get(),
            causation_id=event.trace.causation_id,
        )

    async def write(self, conn: DbConnection, events: Sequence[StagedEvent]) -> list[Envelope[Any]]:
        """Insert the events in order; NOTIFY wakes the relay once the transaction commits.
        Returns the envelopes written."""
        if not events:
            return []
        if not conn.is_in_transaction():
            raise RuntimeError("the outbox is written inside the state change's transaction")
        envelopes = [self.envelope(event) for event in events]
        # One statement for any number of events (arrays unnested into rows, ids assigned
        # in the order staged), and the NOTIFY that wakes the relay in the same round trip
        # (delivered on commit).
        await conn.execute(
            "WITH written AS (INSERT INTO outbox (event_id, topic, message_key, payload, headers)"
            " SELECT event_id, topic, message_key, payload, headers::jsonb FROM unnest("
            "$1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::text[]) WITH ORDINALITY"
            " AS t(event_id, topic, message_key, payload, headers, position)"
            " ORDER BY position)"
            " SELECT pg_notify($6, '')",
            [envelope.event_id for envelope in envelopes],
            [self._topics(topic_of(type(event.payload))) for event in events],
            [event.key for event in events],
            [envelope.to_bytes() for envelope in envelopes],
            [json.dumps(envelope_headers(envelope)) for envelope in envelopes],
            NOTIFY_CHANNEL,
        )
        return envelopes

    async def write_tombstones(self, conn: DbConnection, tombstones: Sequence[Tombstone]) -> None:
        """Outbox rows with no payload: the relay publishes a null value under the key,
        which a compacted topic's cleaner takes as "delete every record of this key"."""
        if not tombstones:
            return
        if not conn.is_in_transaction():
            raise RuntimeError("the outbox is written inside the state change's transaction")
        await conn.execute(
            "WITH written AS (INSERT INTO outbox (event_id, topic, message_key, payload)"
            " SELECT gen_random_uuid(), topic, message_key, NULL FROM unnest("
            "$1::text[], $2::text[]) WITH ORDINALITY AS t(topic, message_key, position)"
            " ORDER BY position)"
            " SELECT pg_notify($3, '')",
            [self._topics(tombstone.topic) for tombstone in tombstones],
            [tombstone.key for tombstone in tombstones],
            NOTIFY_CHANNEL,
        )


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: PipelinedPublisher,
        *,
        batch_size: int = 500,
        poll_interval: float = 2.0,
        max_backoff: float = 30.0,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._waker = NotifyWaker(NOTIFY_CHANNEL)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Rows published and deleted by this relay (a figure for benchmarks and logs).
        self.published_total = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, grace: float = 5.0) -> None:
        """Let the batch in flight finish (so it is not re-published), then stop."""
        self._stopping.set()
        self._waker.wake()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=grace)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                async with self._pool.acquire() as lock_conn:
                    await self._lead(lock_conn)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                delay = self._backoff(failures)
                log.exception("outbox relay failed; retrying", extra={"retry_in_s": delay})
                await self._sleep(delay)

    async def _lead(self, lock_conn: DbConnection) -> None:
        """Hold the leader lock on a dedicated connection and publish until stopped."""
        if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK_KEY):
            await self._sleep(self._poll_interval)
            return
        try:
            async with self._waker.listening(lock_conn):
                await self._publish_until_stopped()
        finally:
            with contextlib.suppress(Exception):
                await lock_conn.execute("SELECT pg_advisory_unlock($1)", RELAY_LOCK_KEY)

    async def _publish_until_stopped(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                published = await self.relay_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                delay = self._backoff(failures)
                log.exception("outbox publish failed", extra={"retry_in_s": delay})
                await self._sleep(delay)
                continue
            if published < self._batch_size:
                await self._sleep(self._poll_interval)

    async def _sleep(self, seconds: float) -> None:
        """Sleep until woken by NOTIFY, stopped, or the timeout (the polling fallback)."""
        await self._waker.sleep(seconds)

    def _backoff(self, failures: int) -> float:
        return exponential_backoff(failures, base=0.4, cap=self._max_backoff, jitter=True)

    async def fetch_batch(self) -> list[OutboxRecord]:
        rows = await self._pool.fetch(
            "SELECT id, topic, message_key, payload, headers FROM outbox ORDER BY id LIMIT $1",
            self._batch_size,
        )
        return [
            OutboxRecord(
                id=row["id"],
                topic=row["topic"],
                key=row["message_key"],
                payload=None if row["payload"] is None else bytes(row["payload"]),
                headers=dict(row["headers"]),
            )
            for row in rows
        ]

    async def publish(self, records: list[OutboxRecord]) -> list[int]:
        """Hand every record to the producer in id order, then await the acknowledgements
        together. Returns the ids acknowledged; raises the first failure once the rows
        acknowledged before it are deleted (they are not published twice) and the failed
        row has its error recorded. Rows neither acknowledged nor deleted stay and are
        published again: at-least-once."""
        pending: list[tuple[OutboxRecord, Awaitable[object]]] = []
        failure: tuple[OutboxRecord, BaseException] | None = None
        for record in records:
            try:
                acknowledgement = await self._publisher.send(
                    topic=record.topic,
                    key=record.key.encode(),
                    value=record.payload,
                    headers=record.headers,
                )
            except Exception as refused:
                # Refused before sending (too large, producer closed): what follows stays
                # unsent, so nothing overtakes this record.
                failure = (record, refused)
                break
            pending.append((record, acknowledgement))
        outcomes = await asyncio.gather(*(ack for _, ack in pending), return_exceptions=True)
        acknowledged: list[int] = []
        for (record, _), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if failure is None or record.id < failure[0].id:
                    failure = (record, outcome)
            else:
                acknowledged.append(record.id)
        if failure is None:
            return acknowledged
        failed, cause = failure
        await self._pool.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
            failed.id,
            repr(cause)[:2000],
        )
        if acknowledged:
            await self.mark_published(acknowledged)
        if isinstance(cause, Exception):
            raise cause
        raise RuntimeError(f"publishing outbox row {failed.id} was interrupted") from cause

    async def mark_published(self, ids: list[int]) -> None:
        """Delete the acknowledged rows, all in one statement."""
        await self._pool.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)
        self.published_total += len(ids)

    async def relay_once(self) -> int:
        records = await self.fetch_batch()
        if not records:
            return 0
        ids = await self.publish(records)
        await self.mark_published(ids)
        return len(ids)
