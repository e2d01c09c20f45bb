"""Consuming events safely: decode, dead-letter, deduplicate, retry.

Every subscription registered through `EventConsumer` follows one policy:

* offsets are committed only after the handler's effect is committed in Postgres
  (FastStream's `NACK_ON_ERROR`, never its default ack-first);
* a message that can never succeed (not JSON, not an envelope, an unknown event type or
  version, a payload that fails validation, or a handler raising `PermanentFailure`)
  is written to `<topic>.dlt` with the reason and its origin in headers, then
  acknowledged so the partition moves on;
* the effect and the inbox claim share one transaction, so a redelivered event has no
  second effect;
* any other exception is transient: the offset is rewound and the message retried with
  exponential back-off, and after `max_attempts` it is dead-lettered as well.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from pydantic import ValidationError

from shared.contracts.envelope import Envelope, EventPayload, RawEnvelope
from shared.contracts.registry import EventRegistry
from shared.contracts.topics import dead_letter_topic
from shared.platform.database import DbConnection
from shared.platform.inbox import claim_event
from shared.platform.logging import correlation_context
from shared.platform.outbox import Publisher

log = logging.getLogger(__name__)

Handler = Callable[[DbConnection, Envelope[Any]], Awaitable[None]]

DLT_REASON = "dlt.reason"
DLT_ORIGINAL_TOPIC = "dlt.original.topic"
DLT_ORIGINAL_PARTITION = "dlt.original.partition"
DLT_ORIGINAL_OFFSET = "dlt.original.offset"
DLT_CONSUMER = "dlt.consumer"
DLT_FAILED_AT = "dlt.failed_at"
DLT_ATTEMPTS = "dlt.attempts"


class PermanentFailure(Exception):
    """The message can never succeed as it is: dead-letter it and move on."""


class KafkaPublisher:
    """`Publisher` on a FastStream broker configured with an idempotent producer."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def publish(
        self, *, topic: str, key: bytes, value: bytes, headers: Mapping[str, str]
    ) -> None:
        # FastStream awaits the broker's acknowledgement unless no_confirm=True.
        await self._broker.publish(
            value,
            topic=topic,
            key=key,
            headers=dict(headers),
            correlation_id=headers.get("correlation_id"),
        )


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


class DeadLetters:
    """Writes unprocessable messages to `<topic>.dlt`, keeping the original bytes."""

    def __init__(self, publisher: Publisher, consumer: str) -> None:
        self._publisher = publisher
        self._consumer = consumer

    async def send(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        original_headers: Iterable[tuple[str, bytes]],
        reason: str,
        attempts: int = 1,
    ) -> None:
        headers = {name: raw.decode(errors="replace") for name, raw in original_headers}
        headers.update(
            {
                DLT_REASON: reason[:4000],
                DLT_ORIGINAL_TOPIC: topic,
                DLT_ORIGINAL_PARTITION: str(partition),
                DLT_ORIGINAL_OFFSET: str(offset),
                DLT_CONSUMER: self._consumer,
                DLT_FAILED_AT: datetime.now(UTC).isoformat(),
                DLT_ATTEMPTS: str(attempts),
            }
        )
        await self._publisher.publish(
            topic=dead_letter_topic(topic), key=key or b"", value=value, headers=headers
        )
        log.warning(
            "message dead-lettered",
            extra={"topic": topic, "partition": partition, "offset": offset, "reason": reason},
        )


async def _raw_body(message: StreamMessage[Any]) -> bytes:
    """Hand the handler the undecoded bytes: decoding errors are ours to report."""
    return bytes(message.body)


class EventConsumer:
    def __init__(
        self,
        broker: KafkaBroker,
        *,
        consumer: str,
        pool: Callable[[], asyncpg.Pool],
        dead_letters: DeadLetters,
        max_attempts: int = 5,
        retry_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self._broker = broker
        self._consumer = consumer
        self._pool = pool
        self._dead_letters = dead_letters
        self._max_attempts = max_attempts
        self._retry_backoff = retry_backoff
        self._max_backoff = max_backoff
        self._attempts: dict[tuple[str, int, int], int] = {}
        self.topics: list[str] = []

    @property
    def name(self) -> str:
        return self._consumer

    def subscribe(
        self,
        topic: str,
        handler: Handler,
        *,
        models: Iterable[type[EventPayload]],
        description: str | None = None,
    ) -> None:
        model_list = list(models)  # iterated twice below: a generator would run dry
        registry = EventRegistry(model_list)

        async def on_message(message: KafkaMessage) -> None:
            await self._process(message, registry, handler)

        on_message.__name__ = f"{self._consumer}_{topic}".replace(".", "_").replace("-", "_")
        # The payload schema lives in the producer's AsyncAPI document; here we name it.
        names = ", ".join(model.__name__ for model in model_list)
        summary = f"{description} " if description else ""
        self._broker.subscriber(
            topic,
            group_id=self._consumer,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            decoder=_raw_body,
            title=f"{topic}:{self._consumer}",
            description=f"{summary}(consumes {names}; raw envelope, see the producer's document)",
        )(on_message)
        self.topics.append(topic)

    async def _process(
        self, message: KafkaMessage, registry: EventRegistry, handler: Handler
    ) -> None:
        record = message.raw_message
        if isinstance(record, tuple):  # pragma: no cover - batch subscribers are not used
            raise TypeError("batch messages are not supported")
        position = (record.topic, record.partition, record.offset)
        body = bytes(record.value or b"")
        try:
            envelope = decode_envelope(body, registry)
        except PermanentFailure as failure:
            await self._dead_letter(record, str(failure), attempts=1)
            return

        with correlation_context(envelope.correlation_id):
            try:
                async with self._pool().acquire() as conn, conn.transaction():
                    first_time = await claim_event(
                        conn,
                        consumer=self._consumer,
                        event_id=envelope.event_id,
                        event_type=envelope.event_type,
                    )
                    if first_time:
                        await handler(conn, envelope)
                    else:
                        log.info("duplicate event skipped", extra={"event_id": envelope.event_id})
            except PermanentFailure as failure:
                await self._dead_letter(record, str(failure), attempts=1)
                self._attempts.pop(position, None)
                return
            except Exception as error:
                attempts = self._attempts.get(position, 0) + 1
                if attempts >= self._max_attempts:
                    self._attempts.pop(position, None)
                    await self._dead_letter(
                        record, f"gave up after {attempts} attempts: {error!r}", attempts
                    )
                    return
                self._attempts[position] = attempts
                delay = min(self._max_backoff, self._retry_backoff * 2 ** (attempts - 1))
                log.warning(
                    "transient failure, will retry",
                    extra={"attempt": attempts, "retry_in_s": delay, "error": repr(error)},
                )
                await asyncio.sleep(delay)
                raise  # NACK_ON_ERROR rewinds the offset: the same message comes again
        self._attempts.pop(position, None)

    async def _dead_letter(self, record: Any, reason: str, attempts: int) -> None:
        await self._dead_letters.send(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=bytes(record.value or b""),
            original_headers=record.headers or (),
            reason=reason,
            attempts=attempts,
        )
