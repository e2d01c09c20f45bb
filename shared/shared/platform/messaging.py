"""Consuming events safely: decode, dead-letter, deduplicate, retry.

Every subscription registered through `EventConsumer` follows one policy:

* offsets are committed only after the handler's effect is committed in Postgres
  (FastStream's `NACK_ON_ERROR`, never its default ack-first);
* a message that can never succeed (not JSON, not an envelope, an unknown event type or
  version, a payload that fails validation, a handler raising `PermanentFailure`, or a
  value PostgreSQL cannot store) is written at once to `<topic>.dlt` with the reason and
  its origin in headers, then acknowledged so the partition moves on;
* the effect and the inbox claim share one unit of work, so a redelivered event has no
  second effect;
* a dependency that is down (the database refusing connections or restarting) is nobody's
  fault: the offset is rewound and the message retried with capped back-off for as long as
  the outage lasts, without counting as an attempt (a crashed database must not send a
  backlog to the dead-letter topic);
* an event that needs another one this consumer has not stored yet (`AwaitingPrerequisite`:
  a person's key, on another topic, behind the event sealed under it) is not at fault
  either: it is retried soon (50 ms, doubling to 1 s) without counting attempts, for up to
  `prerequisite_wait` seconds; only after that is it an ordinary transient failure;
* any other exception is transient: the offset is rewound and the message retried with
  exponential back-off, and after `max_attempts` it is dead-lettered as well;
* publishing the dead letter follows the same rules (retried with back-off, bounded); when
  the dead-letter topic stays unwritable the letter is kept in the service's database, so
  a poison message can never jam its partition nor be lost.

A subscription may opt into batches (`subscribe(..., batch=True)`): whatever the broker
has for the consumer (up to `batch_max_records`, across its partitions) is handled in ONE
PostgreSQL transaction followed by ONE offset commit, instead of a transaction and an
offset commit per event — the difference between a few dozen and a few thousand events a
second when every commit waits for the disk. The guarantees stay the same:

* each event runs in its own savepoint (the handler's unit of work `within` the batch's
  transaction), with its inbox claim: a redelivered or repeated event has no second
  effect, and a failing one leaves nothing behind;
* events are handled in partition order; a message that can never succeed is rolled back
  to its savepoint and dead-lettered with its reason, the others take effect;
* a transient failure commits what came before it in the batch, then rewinds every
  partition of the batch to its first record (what committed is skipped by the inbox on
  the way back) and retries the failing event with back-off, counting its attempts;
* a dependency that is down aborts the whole batch and rewinds it, counting nothing;
* the batch's dead letters are published only after its transaction committed, and the
  offsets are committed only after that: a crash anywhere replays the batch, and the inbox
  makes the replay harmless.

A batch subscription may also give a set-based handler (`handle_batch`): the batch's
events are claimed in the inbox with one statement and the new ones handed over
together, so a batch costs a few round trips to PostgreSQL instead of several per event.
Should it fail, it leaves nothing behind and the batch is replayed event by event as
above (its handler may so run twice for an event, never with two effects) — except for
`AwaitingPrerequisite`: the whole batch is rewound and tried set-based again soon, which
is what lets receipts keep pace when their keys trail them by a few milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import asyncpg
from faststream import AckPolicy
from faststream.exceptions import NackMessage
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from pydantic import ValidationError

from shared.clock import utc_now
from shared.contracts.envelope import Envelope, RawEnvelope
from shared.contracts.registry import SUBSCRIPTIONS, TOPIC_EVENTS, EventRegistry
from shared.contracts.topics import Topic, TopicNames, dead_letter_topic
from shared.errors import DomainError
from shared.platform.availability import is_unavailable
from shared.platform.backoff import exponential_backoff
from shared.platform.logging import correlation_context
from shared.platform.outbox import Publisher, Trace

if TYPE_CHECKING:
    from shared.platform.unit_of_work import PostgresUnitOfWork

log = logging.getLogger(__name__)

U = TypeVar("U", bound="PostgresUnitOfWork")

DLT_REASON = "dlt.reason"
DLT_ORIGINAL_TOPIC = "dlt.original.topic"
DLT_ORIGINAL_PARTITION = "dlt.original.partition"
DLT_ORIGINAL_OFFSET = "dlt.original.offset"
DLT_CONSUMER = "dlt.consumer"
DLT_FAILED_AT = "dlt.failed_at"
DLT_ATTEMPTS = "dlt.attempts"
# While a dependency is down, how long at most between tries: a try costs one refused
# connection, and the consumer should resume soon after the dependency is back.
OUTAGE_MAX_BACKOFF_SECONDS = 5.0
# An event waiting for its prerequisite is tried again after 50 ms, 100 ms, ... 1 s: the
# prerequisite is usually a few milliseconds behind, on a topic consumed beside this one.
PREREQUISITE_FIRST_DELAY_SECONDS = 0.05
PREREQUISITE_MAX_DELAY_SECONDS = 1.0
# Before holding events back, the set-based path tries the same batch again after these.
PREREQUISITE_QUICK_RETRY_SECONDS = (0.01, 0.02, 0.04)


class PermanentFailure(Exception):
    """The message can never succeed as it is: dead-letter it and move on."""


class AwaitingPrerequisite(Exception):
    """The event needs another event that this consumer has not stored yet (another
    topic's record, published before it but consumed independently): the message is not at
    fault. Retried soon without counting attempts, up to the consumer's `prerequisite_wait`;
    after that like any transient failure (so a prerequisite that never comes still ends
    in a dead letter). A set-based batch handler names the waiting event (`event_id`) so
    that the rest of the batch need not wait with it."""

    def __init__(self, message: str, *, event_id: uuid.UUID | None = None) -> None:
        super().__init__(message)
        self.event_id = event_id


class HeldForPrerequisite(NackMessage):
    """Rewinds a batch whose other events took effect while some await a prerequisite
    (FastStream rewinds on it without logging an error: nothing failed)."""

    def __init__(self, held: int) -> None:
        super().__init__()
        self.held = held

    def __str__(self) -> str:
        return f"{self.held} events of the batch wait for a prerequisite"


class _Held(Exception):
    """Inside the set-based path: this record awaits a prerequisite."""

    def __init__(self, record: Any, error: AwaitingPrerequisite) -> None:
        super().__init__(repr(error))
        self.record = record
        self.error = error


def _decode(record: Any, registry: EventRegistry) -> Envelope[Any] | PermanentFailure:
    """The record's envelope, or why it can never be one."""
    try:
        return decode_envelope(bytes(record.value or b""), registry)
    except PermanentFailure as error:
        return error


def _held_back(record: Any, held: Mapping[tuple[str, int], int]) -> bool:
    first = held.get((record.topic, record.partition))
    return first is not None and record.offset >= first


class KafkaPublisher:
    """`PipelinedPublisher` on a FastStream broker configured with an idempotent producer."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def publish(
        self, *, topic: str, key: bytes, value: bytes | None, headers: Mapping[str, str]
    ) -> None:
        # FastStream awaits the broker's acknowledgement unless no_confirm=True.
        await self._broker.publish(
            value,
            topic=topic,
            key=key,
            headers=dict(headers),
            correlation_id=headers.get("correlation_id"),
        )

    async def send(
        self, *, topic: str, key: bytes, value: bytes | None, headers: Mapping[str, str]
    ) -> Awaitable[object]:
        # A keyed None is sent as a null value (a tombstone), not as b"".
        # no_confirm: returns once the record is in the producer's queue, with the future
        # of the broker's acknowledgement (the outbox relay awaits many together).
        acknowledgement: Awaitable[object] = await self._broker.publish(
            value,
            topic=topic,
            key=key,
            headers=dict(headers),
            correlation_id=headers.get("correlation_id"),
            no_confirm=True,
        )
        return acknowledgement


def describe_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "<root>"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)


def decode_envelope(body: bytes, registry: EventRegistry) -> Envelope[Any]:
    """Parse and validate a message; raise `PermanentFailure` saying why it can't be."""
    try:
        raw = RawEnvelope.model_validate_json(body)
    except ValidationError as error:
        raise PermanentFailure(f"invalid envelope: {describe_validation_error(error)}") from None
    model = registry.resolve(raw.event_type, raw.event_version)
    if model is None:
        raise PermanentFailure(
            f"unknown event type or version: {raw.event_type} v{raw.event_version}"
        )
    try:
        payload = model.model_validate(raw.data)
    except ValidationError as error:
        raise PermanentFailure(
            f"invalid {raw.event_type} v{raw.event_version} payload: "
            f"{describe_validation_error(error)}"
        ) from None
    return Envelope[Any].model_validate({**raw.model_dump(exclude={"data"}), "data": payload})


# Each original header value kept in a dead-letter copy is cut to this size; the lot too.
DLT_HEADER_VALUE_MAX = 1024
DLT_HEADERS_TOTAL_MAX = 16 * 1024
DLT_TRUNCATED = "dlt.truncated"
DLT_ORIGINAL_SIZE = "dlt.original.size"


@dataclass(frozen=True, slots=True)
class FailedMessage:
    """Where a message came from and what it held: enough to dead-letter it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, record: Any) -> FailedMessage:
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=bytes(record.value or b""),
            headers=tuple(record.headers or ()),
        )


class DeadLetters:
    """Writes unprocessable messages to `<topic>.dlt`, origin and reason in headers.

    The copy is capped (`max_bytes` of the value, bounded headers) so a message near the
    broker's size limit still fits once the reason is added; truncation is flagged in the
    headers and the origin coordinates always survive, so the original can be found.
    When even the dead-letter topic cannot be written, `store` keeps the letter in the
    service's own database (table `dead_letters`) instead of losing it.
    """

    def __init__(self, publisher: Publisher, consumer: str, *, max_bytes: int) -> None:
        self._publisher = publisher
        self._consumer = consumer
        self._max_bytes = max_bytes

    def _headers(self, message: FailedMessage, reason: str, attempts: int) -> dict[str, str]:
        headers: dict[str, str] = {}
        budget = DLT_HEADERS_TOTAL_MAX
        for name, raw in message.headers:
            if name.startswith("dlt."):
                continue  # a dead letter of a dead letter keeps only the newest origin
            value = raw[:DLT_HEADER_VALUE_MAX].decode(errors="replace")
            budget -= len(name) + len(value)
            if budget < 0:
                break
            headers[name] = value
        headers.update(
            {
                DLT_REASON: reason[:4000],
                DLT_ORIGINAL_TOPIC: message.topic,
                DLT_ORIGINAL_PARTITION: str(message.partition),
                DLT_ORIGINAL_OFFSET: str(message.offset),
                DLT_CONSUMER: self._consumer,
                DLT_FAILED_AT: utc_now().isoformat(),
                DLT_ATTEMPTS: str(attempts),
                DLT_ORIGINAL_SIZE: str(len(message.value)),
            }
        )
        if len(message.value) > self._max_bytes:
            headers[DLT_TRUNCATED] = "true"
        return headers

    async def send(self, message: FailedMessage, *, reason: str, attempts: int) -> None:
        await self._publisher.publish(
            topic=dead_letter_topic(message.topic),
            key=(message.key or b"")[:DLT_HEADER_VALUE_MAX],
            value=message.value[: self._max_bytes],
            headers=self._headers(message, reason, attempts),
        )
        log.warning(
            "message dead-lettered",
            extra={
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "reason": reason,
            },
        )

    async def store(
        self, pool: asyncpg.Pool, message: FailedMessage, *, reason: str, attempts: int
    ) -> None:
        """Last resort when the dead-letter topic refuses: keep the letter in the database."""
        await pool.execute(
            "INSERT INTO dead_letters (consumer, topic, kafka_partition, kafka_offset,"
            " message_key, value, headers, reason, attempts)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            self._consumer,
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            self._headers(message, reason, attempts),
            reason[:4000],
            attempts,
        )
        log.error(
            "dead-letter topic unavailable; letter kept in the database",
            extra={"topic": message.topic, "offset": message.offset, "reason": reason},
        )


def is_permanent(error: BaseException) -> bool:
    """Errors that no retry can cure: the message itself is at fault.

    A broken domain rule stays broken, and PostgreSQL's class 22 (data exception: a value
    out of range, a character it cannot store, ...) fails the same way however often it is
    tried.
    """
    return isinstance(error, PermanentFailure | DomainError | asyncpg.DataError)


def describe_failure(error: BaseException) -> str:
    if isinstance(error, DomainError):
        return error.describe()
    return str(error) or type(error).__name__


async def _raw_body(message: StreamMessage[Any]) -> bytes:
    """Hand the handler the undecoded bytes: decoding errors are ours to report."""
    return bytes(message.body)


async def _raw_bodies(message: StreamMessage[Any]) -> list[bytes]:
    """The same for a batch: one undecoded value per record."""
    return [bytes(body or b"") for body in message.body]


class _RetryLater(Exception):
    """Inside a batch: this event failed transiently (or `awaiting` a prerequisite);
    commit what came before it."""

    def __init__(self, error: BaseException, *, awaiting: bool = False) -> None:
        super().__init__(repr(error))
        self.error = error
        self.awaiting = awaiting


@dataclass(slots=True)
class _Attempts:
    """What happened so far to the message at one position (in this process)."""

    count: int = 0
    dead_letter_reason: str | None = None
    outage_retries: int = 0
    # Since when (monotonic) it has been waiting for a prerequisite, and how often it
    # tried meanwhile.
    awaiting_since: float | None = None
    awaiting_retries: int = 0


class EventConsumer(Generic[U]):
    """Subscribes handlers to topics with the policy in the module docstring.

    Handlers receive an open unit of work (inbox claim already in it) and the decoded
    envelope; they stage events and commit through the unit of work.
    """

    def __init__(
        self,
        broker: KafkaBroker,
        *,
        consumer: str,
        group_id: str,
        unit_of_work: Callable[[], U],
        pool: Callable[[], asyncpg.Pool],
        dead_letters: DeadLetters,
        topic_names: TopicNames,
        max_attempts: int = 5,
        retry_backoff: float = 0.5,
        max_backoff: float = 30.0,
        batch_max_records: int = 500,
        batch_wait_ms: int = 20,
        prerequisite_wait: float = 120.0,
    ) -> None:
        self._broker = broker
        self._consumer = consumer
        self._group_id = group_id
        self._unit_of_work = unit_of_work
        self._pool = pool
        self._dead_letters = dead_letters
        self._topic_names = topic_names
        self._max_attempts = max_attempts
        self._retry_backoff = retry_backoff
        self._max_backoff = max_backoff
        self._batch_max_records = batch_max_records
        self._batch_wait_ms = batch_wait_ms
        self._prerequisite_wait = prerequisite_wait
        self._attempts: dict[tuple[str, int, int], _Attempts] = {}
        # Records held back by the set-based path for a prerequisite: since when.
        self._held_since: dict[tuple[str, int, int], float] = {}
        self.subscribed: list[Topic] = []

    @property
    def name(self) -> str:
        return self._consumer

    @property
    def group_id(self) -> str:
        return self._group_id

    def subscribe(
        self,
        topic: Topic,
        handler: Callable[[U, Envelope[Any]], Awaitable[None]],
        *,
        description: str | None = None,
        batch: bool = False,
        handle_batch: Callable[[U, Sequence[Envelope[Any]]], Awaitable[None]] | None = None,
        on_tombstone: Callable[[U, bytes], Awaitable[None]] | None = None,
    ) -> None:
        """Consume every event type declared on `topic` in the registry.

        `on_tombstone` (compacted topics) receives the key of a record with a null value,
        in a unit of work without inbox claim (a tombstone has no event id; deleting
        twice must do no harm); without it a tombstone is dead-lettered like any record
        that is not an envelope. In a batch, a tombstone sends the batch down the event
        by event path (tombstones are rare: an erasure), where it takes its savepoint in
        partition order, so a key and its later tombstone keep their order.

        The subscription must be declared in the registry (`SUBSCRIPTIONS`): the broker
        lets the service's principal read only what is declared there.

        With `batch`, the events the broker has for the consumer are handled together:
        one transaction and one offset commit per batch (see the module docstring). The
        handler is the same either way; it must do all its work through the unit of work
        it is given (in a batch that is a savepoint, not a connection of its own).

        `handle_batch` (with `batch`) is the set-based form of `handler`: it receives the
        batch's new events (the inbox claimed them in one statement) in one unit of work
        and should have the same effect as `handler` on each. It is tried first; when it
        fails for any reason but a dependency being down, nothing of it stays and the
        batch is replayed event by event through `handler`, which isolates the culprit.
        """
        if topic not in SUBSCRIPTIONS.get(self._consumer, ()):
            raise ValueError(
                f"{self._consumer} may not subscribe to {topic}: declare it in "
                "SUBSCRIPTIONS (shared/contracts/registry.py), which its ACLs derive from"
            )
        if handle_batch is not None and not batch:
            raise ValueError("handle_batch needs batch=True")
        models = TOPIC_EVENTS[topic]
        registry = EventRegistry(models)
        address = self._topic_names(topic)

        batch_state = _Attempts()

        async def on_message(message: KafkaMessage) -> None:
            if batch:
                await self._process_batch(
                    message, registry, handler, batch_state, handle_batch, on_tombstone
                )
            else:
                await self._process(message, registry, handler, on_tombstone)

        on_message.__name__ = f"{self._consumer}_{topic}".replace(".", "_").replace("-", "_")
        # The payload schema lives in the producer's AsyncAPI document; here we name it.
        names = ", ".join(model.__name__ for model in models)
        summary = f"{description} " if description else ""
        # A service consuming its own topic also documents publishing it under
        # `<topic>:<service>`: the consuming side needs a name of its own.
        title = f"{topic}:{self._consumer}" + (":consumer" if topic.owner == self._consumer else "")
        described = f"{summary}(consumes {names}; raw envelope, see the producer's document)"
        if batch:
            # getmany returns at once when records are waiting and otherwise within
            # `batch_wait_ms` (FastStream then pauses as long again): a short wait keeps
            # an idle subscription's first event quick; under load batches form by
            # themselves from what arrived while the previous one was being handled.
            self._broker.subscriber(
                address,
                group_id=self._group_id,
                ack_policy=AckPolicy.NACK_ON_ERROR,
                auto_offset_reset="earliest",
                batch=True,
                max_records=self._batch_max_records,
                batch_timeout_ms=self._batch_wait_ms,
                decoder=_raw_bodies,
                title=title,
                description=described,
            )(on_message)
        else:
            self._broker.subscriber(
                address,
                group_id=self._group_id,
                ack_policy=AckPolicy.NACK_ON_ERROR,
                auto_offset_reset="earliest",
                decoder=_raw_body,
                title=title,
                description=described,
            )(on_message)
        self.subscribed.append(topic)

    async def _process(
        self,
        message: KafkaMessage,
        registry: EventRegistry,
        handler: Callable[[U, Envelope[Any]], Awaitable[None]],
        on_tombstone: Callable[[U, bytes], Awaitable[None]] | None = None,
    ) -> None:
        record = message.raw_message
        if isinstance(record, tuple):  # pragma: no cover - only with subscribe(batch=True)
            raise TypeError("a batch reached the one-by-one path")
        position = (record.topic, record.partition, record.offset)
        state = self._attempts.setdefault(position, _Attempts())
        state.count += 1
        if state.dead_letter_reason is None:
            try:
                if record.value is None and on_tombstone is not None:
                    await self._handle_tombstone(bytes(record.key or b""), on_tombstone)
                else:
                    await self._handle(bytes(record.value or b""), registry, handler)
            except Exception as error:
                if is_unavailable(error):
                    state.count -= 1  # the message is not at fault
                    await self._wait_for_dependency(state, error)
                    raise
                if self._may_await(state, error):
                    state.count -= 1  # nor here, for a while
                    await self._pause_for_prerequisite(state, error)
                    raise
                if is_permanent(error):
                    state.dead_letter_reason = describe_failure(error)
                elif state.count < self._max_attempts:
                    await self._retry_later(state, error)
                    raise  # NACK_ON_ERROR rewinds the offset: the same message comes again
                else:
                    state.dead_letter_reason = f"gave up after {state.count} attempts: {error!r}"
            else:
                del self._attempts[position]
                return
        await self._dead_letter(FailedMessage.of(record), state)
        del self._attempts[position]

    async def _process_batch(
        self,
        message: KafkaMessage,
        registry: EventRegistry,
        handler: Callable[[U, Envelope[Any]], Awaitable[None]],
        batch_state: _Attempts,
        handle_batch: Callable[[U, Sequence[Envelope[Any]]], Awaitable[None]] | None = None,
        on_tombstone: Callable[[U, bytes], Awaitable[None]] | None = None,
    ) -> None:
        """One transaction for the batch, a savepoint per event, then its dead letters;
        returning acknowledges the batch (one offset commit), raising rewinds it.

        `batch_state` counts the subscription's failures that no event is to blame for (a
        dependency down, a failed commit), for their back-off.
        """
        records = message.raw_message
        if not isinstance(records, tuple):  # pragma: no cover - subscribed with batch=True
            records = (records,)
        # The set-based handler first, unless some record of the batch already failed
        # (a retry goes event by event, where attempts are counted) or is a tombstone the
        # subscription handles (it has no envelope for the set-based handler).
        if (
            handle_batch is not None
            and not any(
                (record.topic, record.partition, record.offset) in self._attempts
                for record in records
            )
            and not (on_tombstone is not None and any(record.value is None for record in records))
        ) and await self._handle_set_based(records, registry, handle_batch, batch_state):
            return
        done: list[tuple[tuple[str, int, int], _Attempts]] = []  # commit with the batch
        letters: list[tuple[FailedMessage, tuple[str, int, int], _Attempts]] = []
        attempted: list[_Attempts] = []
        retry: _RetryLater | None = None
        try:
            async with self._pool().acquire() as connection, connection.transaction():
                for record in records:
                    position = (record.topic, record.partition, record.offset)
                    state = self._attempts.setdefault(position, _Attempts())
                    # An attempt at its effect, or at sending its dead letter (below).
                    state.count += 1
                    attempted.append(state)
                    if state.dead_letter_reason is None:
                        try:
                            await self._handle_in_batch(
                                connection, record, state, registry, handler, on_tombstone
                            )
                        except _RetryLater as failed:
                            # Its savepoint is rolled back: commit what came before it,
                            # then rewind to retry it (and what follows it) later.
                            retry = failed
                            break
                    if state.dead_letter_reason is not None:
                        letters.append((FailedMessage.of(record), position, state))
                    else:
                        done.append((position, state))
        except Exception as error:
            for state in attempted:
                state.count -= 1  # the batch never committed: no event's attempt counts
            if is_unavailable(error):
                await self._wait_for_dependency(batch_state, error)
            else:
                # The commit itself failed, with no event to blame: retry the batch.
                batch_state.count += 1
                await self._retry_later(batch_state, error)
            raise
        batch_state.count = batch_state.outage_retries = 0
        for position, _ in done:
            del self._attempts[position]
        # Dead letters only once the batch's effects are durable (a database outage must
        # not dead-letter anything), and in partition order; one that cannot be sent yet
        # raises, which rewinds the batch: the inbox skips what committed, and the letter
        # (its reason kept in `_attempts`) is sent first when it comes again.
        for failed_message, position, state in letters:
            await self._dead_letter(failed_message, state)
            del self._attempts[position]
        if retry is not None:
            if retry.awaiting:
                await self._pause_for_prerequisite(attempted[-1], retry.error)
            else:
                await self._retry_later(attempted[-1], retry.error)
            # NACK_ON_ERROR rewinds every partition of the batch to its first record.
            raise retry.error

    async def _handle_set_based(
        self,
        records: tuple[Any, ...],
        registry: EventRegistry,
        handle_batch: Callable[[U, Sequence[Envelope[Any]]], Awaitable[None]],
        batch_state: _Attempts,
    ) -> bool:
        """The batch through the set-based handler: True when it is done, False when it
        is to be replayed event by event; raises to rewind it.

        An event awaiting its prerequisite holds back itself and what follows it in its
        partition; the rest of the batch is handled without them (under continuous load
        every fetch ends with events a few milliseconds ahead of their keys, so waiting
        for the whole batch would never catch up), then the batch is rewound after a
        short pause: the inbox skips what committed, and the held events come first."""
        # Decoded once: a batch may be tried several times while some of it waits.
        pending = [(record, _decode(record, registry)) for record in records]
        held: dict[tuple[str, int], int] = {}  # partition -> its first held offset
        quick_tries = 0
        while True:
            try:
                unreadable = await self._handle_whole_batch(pending, handle_batch)
            except _Held as waiting:
                if quick_tries < len(PREREQUISITE_QUICK_RETRY_SECONDS):
                    # Usually the prerequisite is being stored right now (the key and the
                    # event left the producer's outbox together): try the same records
                    # again in a moment, cheaper than a rewind and a new fetch.
                    await asyncio.sleep(PREREQUISITE_QUICK_RETRY_SECONDS[quick_tries])
                    quick_tries += 1
                    continue
                record = waiting.record
                position = (record.topic, record.partition, record.offset)
                since = self._held_since.setdefault(position, time.monotonic())
                if time.monotonic() - since >= self._prerequisite_wait:
                    # Waited long enough: its attempts count from now on.
                    del self._held_since[position]
                    self._attempts.setdefault(position, _Attempts()).awaiting_since = since
                    log.warning(
                        "an event waited too long for its prerequisite; replaying the "
                        "batch event by event",
                        extra={"events": len(records), "error": repr(waiting.error)},
                    )
                    return False
                held[(record.topic, record.partition)] = record.offset
                pending = [(r, decoded) for r, decoded in pending if not _held_back(r, held)]
                if pending:
                    continue
                await self._pause_for_prerequisite(batch_state, waiting.error)
                raise HeldForPrerequisite(len(records)) from waiting.error
            except Exception as error:
                if is_unavailable(error):
                    await self._wait_for_dependency(batch_state, error)
                    raise
                if self._may_await(batch_state, error):
                    # No event named: rewind the whole batch and try it set-based again
                    # soon rather than replay it event by event.
                    await self._pause_for_prerequisite(batch_state, error)
                    raise
                if isinstance(error, AwaitingPrerequisite):
                    # Waited long enough: each event's own attempts count from now on.
                    for record in records:
                        position = (record.topic, record.partition, record.offset)
                        self._attempts.setdefault(
                            position, _Attempts()
                        ).awaiting_since = batch_state.awaiting_since
                    batch_state.awaiting_since = None
                log.warning(
                    "batch handler failed; replaying the batch event by event",
                    extra={"events": len(records), "error": repr(error)},
                )
                return False
            batch_state.count = batch_state.outage_retries = 0
            for record, _ in pending:
                self._held_since.pop((record.topic, record.partition, record.offset), None)
            for failed_message, position, state in unreadable:
                await self._dead_letter(failed_message, state)
                del self._attempts[position]
            if not held:
                batch_state.awaiting_since, batch_state.awaiting_retries = None, 0
                return True
            # Progress was made: the next pause is the shortest again.
            batch_state.awaiting_since, batch_state.awaiting_retries = time.monotonic(), 0
            await self._pause_for_prerequisite(batch_state, None)
            # NACK_ON_ERROR rewinds every partition of the batch to its first record.
            raise HeldForPrerequisite(len(records) - len(pending))

    async def _handle_whole_batch(
        self,
        decoded: Sequence[tuple[Any, Envelope[Any] | PermanentFailure]],
        handle_batch: Callable[[U, Sequence[Envelope[Any]]], Awaitable[None]],
    ) -> list[tuple[FailedMessage, tuple[str, int, int], _Attempts]]:
        """Claim the batch's events in one statement and hand the new ones to the
        set-based handler, in one transaction; returns the letters of the messages that
        could not even be decoded (to send once this committed)."""
        letters: list[tuple[FailedMessage, tuple[str, int, int], _Attempts]] = []
        envelopes: list[Envelope[Any]] = []
        record_of: dict[uuid.UUID, Any] = {}
        for record, envelope in decoded:
            if isinstance(envelope, PermanentFailure):
                position = (record.topic, record.partition, record.offset)
                state = _Attempts(count=1, dead_letter_reason=describe_failure(envelope))
                letters.append((FailedMessage.of(record), position, state))
            else:
                envelopes.append(envelope)
                record_of.setdefault(envelope.event_id, record)
        async with self._pool().acquire() as connection, connection.transaction():
            claimed = {
                row["event_id"]
                for row in await connection.fetch(
                    "INSERT INTO inbox (consumer, event_id, event_type)"
                    " SELECT $1, event_id, event_type FROM unnest($2::uuid[], $3::text[])"
                    " AS t(event_id, event_type) ON CONFLICT DO NOTHING RETURNING event_id",
                    self._consumer,
                    [envelope.event_id for envelope in envelopes],
                    [envelope.event_type for envelope in envelopes],
                )
            }
            new: list[Envelope[Any]] = []
            for envelope in envelopes:  # in partition order; a repeat within the batch once
                if envelope.event_id in claimed:
                    claimed.discard(envelope.event_id)
                    new.append(envelope)
            if new:
                async with self._unit_of_work().within(connection) as uow:
                    try:
                        await handle_batch(uow, new)
                    except AwaitingPrerequisite as error:
                        if error.event_id in record_of:
                            raise _Held(record_of[error.event_id], error) from error
                        raise
                    if not uow.committed:
                        await uow.commit()
            skipped = len(envelopes) - len(new)
            if skipped:
                log.info("duplicate events skipped", extra={"events": skipped})
        for _, position, state in letters:
            self._attempts[position] = state
        return letters

    async def _handle_in_batch(
        self,
        connection: Any,
        record: Any,
        state: _Attempts,
        registry: EventRegistry,
        handler: Callable[[U, Envelope[Any]], Awaitable[None]],
        on_tombstone: Callable[[U, bytes], Awaitable[None]] | None = None,
    ) -> None:
        """One event of a batch in its own savepoint; sets `state.dead_letter_reason` for
        a message that can never succeed, raises `_RetryLater` for a transient failure and
        the error itself when a dependency is down."""
        try:
            if record.value is None and on_tombstone is not None:
                # No event id, no inbox claim: deleting twice must do no harm.
                async with self._unit_of_work().within(connection) as uow:
                    await on_tombstone(uow, bytes(record.key or b""))
                    if not uow.committed:
                        await uow.commit()
                return
            envelope = decode_envelope(bytes(record.value or b""), registry)
            with correlation_context(envelope.correlation_id):
                async with self._unit_of_work().within(connection) as uow:
                    uow.trace = Trace(
                        correlation_id=envelope.correlation_id,
                        causation_id=str(envelope.event_id),
                    )
                    if await uow.claim_inbox(
                        self._consumer, envelope.event_id, envelope.event_type
                    ):
                        await handler(uow, envelope)
                    else:
                        log.info("duplicate event skipped", extra={"event_id": envelope.event_id})
                    if not uow.committed:
                        await uow.commit()
        except Exception as error:
            if is_unavailable(error):
                raise
            if self._may_await(state, error):
                state.count -= 1  # not the message's fault, for a while
                raise _RetryLater(error, awaiting=True) from error
            if is_permanent(error):
                state.dead_letter_reason = describe_failure(error)
            elif state.count < self._max_attempts:
                raise _RetryLater(error) from error
            else:
                state.dead_letter_reason = f"gave up after {state.count} attempts: {error!r}"

    async def _handle(
        self,
        body: bytes,
        registry: EventRegistry,
        handler: Callable[[U, Envelope[Any]], Awaitable[None]],
    ) -> None:
        envelope = decode_envelope(body, registry)
        with correlation_context(envelope.correlation_id):
            async with self._unit_of_work() as uow:
                uow.trace = Trace(
                    correlation_id=envelope.correlation_id, causation_id=str(envelope.event_id)
                )
                if await uow.claim_inbox(self._consumer, envelope.event_id, envelope.event_type):
                    await handler(uow, envelope)
                else:
                    log.info("duplicate event skipped", extra={"event_id": envelope.event_id})
                if not uow.committed:
                    await uow.commit()

    async def _handle_tombstone(
        self, key: bytes, on_tombstone: Callable[[U, bytes], Awaitable[None]]
    ) -> None:
        async with self._unit_of_work() as uow:
            await on_tombstone(uow, key)
            if not uow.committed:
                await uow.commit()

    async def _dead_letter(self, message: FailedMessage, state: _Attempts) -> None:
        """Publish the dead letter, retrying like a handler; at the limit, store it."""
        reason = state.dead_letter_reason or "unknown"
        try:
            await self._dead_letters.send(message, reason=reason, attempts=state.count)
            return
        except Exception as error:
            if state.count < self._max_attempts:
                await self._retry_later(state, error)
                raise
            log.exception("dead-letter publishing failed for good", extra={"reason": reason})
        # The partition moves on only once the letter is safe somewhere: until the database
        # takes it, keep rewinding (with the capped back-off) rather than lose it.
        try:
            await self._dead_letters.store(
                self._pool(), message, reason=reason, attempts=state.count
            )
        except Exception as error:
            await self._retry_later(state, error)
            raise

    async def _wait_for_dependency(self, state: _Attempts, error: BaseException) -> None:
        state.outage_retries += 1
        delay = exponential_backoff(
            state.outage_retries, base=self._retry_backoff, cap=OUTAGE_MAX_BACKOFF_SECONDS
        )
        log.warning(
            "a dependency is unavailable, will retry",
            extra={"retry_in_s": delay, "error": repr(error)},
        )
        await asyncio.sleep(delay)

    def _may_await(self, state: _Attempts, error: BaseException) -> bool:
        """Whether `error` is a missing prerequisite still within the wait (starting the
        wait's clock on the first one)."""
        if not isinstance(error, AwaitingPrerequisite):
            return False
        now = time.monotonic()
        if state.awaiting_since is None:
            state.awaiting_since, state.awaiting_retries = now, 0
        return now - state.awaiting_since < self._prerequisite_wait

    async def _pause_for_prerequisite(self, state: _Attempts, error: BaseException | None) -> None:
        state.awaiting_retries += 1
        delay = exponential_backoff(
            state.awaiting_retries,
            base=PREREQUISITE_FIRST_DELAY_SECONDS,
            cap=PREREQUISITE_MAX_DELAY_SECONDS,
        )
        log.info("waiting for a prerequisite", extra={"retry_in_s": delay, "error": repr(error)})
        await asyncio.sleep(delay)

    async def _retry_later(self, state: _Attempts, error: BaseException) -> None:
        delay = exponential_backoff(
            min(state.count, self._max_attempts), base=self._retry_backoff, cap=self._max_backoff
        )
        log.warning(
            "transient failure, will retry",
            extra={"attempt": state.count, "retry_in_s": delay, "error": repr(error)},
        )
        await asyncio.sleep(delay)
