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
* any other exception is transient: the offset is rewound and the message retried with
  exponential back-off, and after `max_attempts` it is dead-lettered as well;
* publishing the dead letter follows the same rules (retried with back-off, bounded); when
  the dead-letter topic stays unwritable the letter is kept in the service's database, so
  a poison message can never jam its partition nor be lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import asyncpg
from faststream import AckPolicy
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


class PermanentFailure(Exception):
    """The message can never succeed as it is: dead-letter it and move on."""


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


@dataclass(slots=True)
class _Attempts:
    """What happened so far to the message at one position (in this process)."""

    count: int = 0
    dead_letter_reason: str | None = None
    outage_retries: int = 0


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
        self._attempts: dict[tuple[str, int, int], _Attempts] = {}
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
        on_tombstone: Callable[[U, bytes], Awaitable[None]] | None = None,
    ) -> None:
        """Consume every event type declared on `topic` in the registry.

        `on_tombstone` (compacted topics) receives the key of a record with a null value,
        in a unit of work without inbox claim (a tombstone has no event id; deleting
        twice must do no harm); without it a tombstone is dead-lettered like any record
        that is not an envelope.

        The subscription must be declared in the registry (`SUBSCRIPTIONS`): the broker
        lets the service's principal read only what is declared there."""
        if topic not in SUBSCRIPTIONS.get(self._consumer, ()):
            raise ValueError(
                f"{self._consumer} may not subscribe to {topic}: declare it in "
                "SUBSCRIPTIONS (shared/contracts/registry.py), which its ACLs derive from"
            )
        models = TOPIC_EVENTS[topic]
        registry = EventRegistry(models)
        address = self._topic_names(topic)

        async def on_message(message: KafkaMessage) -> None:
            await self._process(message, registry, handler, on_tombstone)

        on_message.__name__ = f"{self._consumer}_{topic}".replace(".", "_").replace("-", "_")
        # The payload schema lives in the producer's AsyncAPI document; here we name it.
        names = ", ".join(model.__name__ for model in models)
        summary = f"{description} " if description else ""
        self._broker.subscriber(
            address,
            group_id=self._group_id,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            decoder=_raw_body,
            title=f"{topic}:{self._consumer}",
            description=f"{summary}(consumes {names}; raw envelope, see the producer's document)",
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
        if isinstance(record, tuple):  # pragma: no cover - batch subscribers are not used
            raise TypeError("batch messages are not supported")
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

    async def _retry_later(self, state: _Attempts, error: BaseException) -> None:
        delay = exponential_backoff(
            min(state.count, self._max_attempts), base=self._retry_backoff, cap=self._max_backoff
        )
        log.warning(
            "transient failure, will retry",
            extra={"attempt": state.count, "retry_in_s": delay, "error": repr(error)},
        )
        await asyncio.sleep(delay)
