"""The platform on the real broker and server: outbox → Kafka → inbox, dead letters, retries.

Two runtimes play two services (intake publishing `intake.consultations.v1`, groups
consuming it), each with its own database. Every test runs in its own topic namespace
(`kafka_topic_prefix`), so tests do not see each other's messages. The consumer's effects
table has no unique key on purpose: only the inbox stands between a redelivery and a
second effect. The consumer's guarantees are checked both ways it can consume: one event
per transaction and offset commit, and in batches (`subscribe(..., batch=True)`).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devtools.kafka_auth import admin_options
from devtools.testing import (
    count,
    end_offset,
    eventually,
    headers,
    read_topic,
    settings_for_test,
    unique_prefix,
    wait_for,
    wait_until_consumed,
)
from shared.contracts.envelope import Envelope, new_envelope
from shared.contracts.intake import ConsultationClosed
from shared.contracts.topics import Topic
from shared.platform.messaging import (
    DLT_ATTEMPTS,
    DLT_ORIGINAL_OFFSET,
    DLT_ORIGINAL_SIZE,
    DLT_ORIGINAL_TOPIC,
    DLT_REASON,
    DLT_TRUNCATED,
    AwaitingPrerequisite,
    PermanentFailure,
)
from shared.platform.outbox import OutboxRelay
from shared.platform.runtime import ServiceRuntime
from shared.platform.settings import ServiceSettings
from shared.platform.unit_of_work import PostgresUnitOfWork

pytestmark = pytest.mark.integration

# The consumer's two ways of consuming; tests of its guarantees run with each.
# In batches, either event by event in savepoints, or first through a set-based handler
# (`handle_batch`, here the same handler in a loop) that falls back to it.
CONSUMING = pytest.mark.parametrize(
    "batch", [False, True, "set-based"], ids=["one-by-one", "batch", "set-based"]
)

EFFECTS_MIGRATION = """-- migrate:up
CREATE TABLE effects (id bigserial PRIMARY KEY, event_id uuid NOT NULL, label text NOT NULL);
-- migrate:down
DROP TABLE effects;
"""

Handler = Callable[[PostgresUnitOfWork, Envelope[Any]], Awaitable[None]]
BatchHandler = Callable[[PostgresUnitOfWork, Sequence[Envelope[Any]]], Awaitable[None]]


@dataclass
class Pair:
    topic: str
    producer: ServiceRuntime[PostgresUnitOfWork]
    consumer: ServiceRuntime[PostgresUnitOfWork]
    kafka: str


async def record_effect(uow: PostgresUnitOfWork, envelope: Envelope[Any]) -> None:
    await uow.connection.execute(
        "INSERT INTO effects (event_id, label) VALUES ($1, $2)",
        envelope.event_id,
        envelope.data.title,
    )


def closed(label: str) -> ConsultationClosed:
    return ConsultationClosed(
        consultation_id=uuid.uuid4(), title=label, closes_at=datetime.now(UTC)
    )


@pytest.fixture
async def make_pair(
    kafka_bootstrap_servers: str, new_database: Any, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Pair]]]:
    started: list[ServiceRuntime[PostgresUnitOfWork]] = []
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "20990101000000_effects.sql").write_text(EFFECTS_MIGRATION)

    async def build(
        handler: Handler,
        *,
        before_start: Callable[[str, str], Awaitable[None]] | None = None,
        batch: bool | str = False,
        on_tombstone: Callable[[PostgresUnitOfWork, bytes], Awaitable[None]] | None = None,
        handle_batch: BatchHandler | None = None,
        **overrides: Any,
    ) -> Pair:
        prefix = unique_prefix("platform")

        async def settings(name: str, service: str) -> ServiceSettings:
            return settings_for_test(
                ServiceSettings,
                database_url=await new_database.create(name),
                kafka=kafka_bootstrap_servers,
                prefix=prefix,
                service=service,  # its own Kafka principal
                consumer_retry_backoff_seconds=0.05,
                consumer_max_attempts=3,
                **overrides,
            )

        producer = ServiceRuntime(
            name="intake",
            settings=await settings("producer", "intake"),
            migrations=migrations,
            unit_of_work=PostgresUnitOfWork,
        )
        producer.document_publication(Topic.INTAKE_CONSULTATIONS, "test events")
        consumer = ServiceRuntime(
            name="groups",
            settings=await settings("consumer", "groups"),
            migrations=migrations,
            unit_of_work=PostgresUnitOfWork,
        )

        async def each(uow: PostgresUnitOfWork, envelopes: Sequence[Envelope[Any]]) -> None:
            for envelope in envelopes:
                await handler(uow, envelope)

        consumer.consumer.subscribe(
            Topic.INTAKE_CONSULTATIONS,
            handler,
            batch=bool(batch),
            handle_batch=(handle_batch or each) if batch == "set-based" else None,
            on_tombstone=on_tombstone,
        )
        topic = producer.topic_names(Topic.INTAKE_CONSULTATIONS)
        if before_start is not None:
            await before_start(kafka_bootstrap_servers, topic)
        await producer.start()
        started.append(producer)
        await consumer.start()
        started.append(consumer)
        return Pair(topic, producer, consumer, kafka_bootstrap_servers)

    yield build
    for runtime in reversed(started):
        await runtime.stop()


async def stage(pair: Pair, label: str) -> Envelope[Any]:
    """Commit an event through the producer's unit of work; returns its envelope."""
    async with pair.producer.unit_of_work() as uow:
        event = closed(label)
        uow.stage_event(event, key=event.consultation_id)
        await uow.commit()
    [envelope] = uow.envelopes
    return envelope


async def effects(pair: Pair) -> list[tuple[uuid.UUID, str]]:
    rows = await pair.consumer.pool.fetch("SELECT event_id, label FROM effects ORDER BY label")
    return [(row["event_id"], row["label"]) for row in rows]


async def send_raw(pair: Pair, *values: bytes, topic: str | None = None) -> None:
    producer = AIOKafkaProducer(**admin_options(pair.kafka), max_request_size=2_000_000)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic or pair.topic, value, key=b"k", partition=0)
    finally:
        await producer.stop()


@CONSUMING
async def test_staged_events_reach_the_other_service_exactly_once(
    make_pair: Any, batch: bool | str
) -> None:
    pair: Pair = await make_pair(record_effect, batch=batch)
    labels = [f"thing-{index}" for index in range(5)]
    async with pair.producer.unit_of_work() as uow:
        for label in labels:
            event = closed(label)
            uow.stage_event(event, key=event.consultation_id)
        keys = [event.key for event in uow.events]
        await uow.commit()

    async def all_arrived() -> bool:
        return len(await effects(pair)) == 5

    await wait_for(all_arrived, "five effects")
    assert [label for _, label in await effects(pair)] == labels
    assert await pair.producer.pool.fetchval("SELECT count(*) FROM outbox") == 0
    # Kafka carried each event once, in order, keyed by the aggregate id, on the topic the
    # registry binds the event type to, from the producer named by the runtime.
    records = await read_topic(pair.kafka, pair.topic, until=count(5))
    assert [json.loads(r.value)["data"]["title"] for r in records] == labels
    assert [r.key for r in records] == [key.encode() for key in keys]
    assert {json.loads(r.value)["producer"] for r in records} == {"intake"}


async def test_a_unit_of_work_left_without_commit_publishes_nothing(make_pair: Any) -> None:
    pair: Pair = await make_pair(record_effect)
    async with pair.producer.unit_of_work() as uow:
        uow.stage_event(closed("never"), key=uuid.uuid4())
        await uow.connection.execute(
            "INSERT INTO effects (event_id, label) VALUES ($1, 'x')", uuid.uuid4()
        )
    async with pair.producer.unit_of_work() as uow:
        event = closed("committed")
        uow.stage_event(event, key=event.consultation_id)
        await uow.commit()

    await wait_for(lambda: _labels_are(pair, ["committed"]), "the committed event only")
    assert await pair.producer.pool.fetchval("SELECT count(*) FROM effects") == 0


async def _labels_are(pair: Pair, labels: list[str]) -> bool:
    return [label for _, label in await effects(pair)] == labels


async def test_relay_killed_between_publish_and_mark_publishes_again_once_effect(
    make_pair: Any,
) -> None:
    pair: Pair = await make_pair(record_effect)
    assert pair.producer.relay is not None
    await pair.producer.relay.stop()  # we drive the relays by hand in this test

    envelope = await stage(pair, "crash-between")
    crashed = OutboxRelay(pair.producer.pool, pair.producer.publisher)
    records = await crashed.fetch_batch()
    assert [r.payload for r in records] == [envelope.to_bytes()]
    await crashed.publish(records)
    # ...the process dies here: the rows were published but never marked.
    assert await pair.producer.pool.fetchval("SELECT count(*) FROM outbox") == 1

    restarted = OutboxRelay(pair.producer.pool, pair.producer.publisher, poll_interval=0.2)
    restarted.start()
    try:

        async def outbox_drained() -> bool:
            return await pair.producer.pool.fetchval("SELECT count(*) FROM outbox") == 0

        await wait_for(outbox_drained, "the restarted relay to drain the outbox")
    finally:
        await restarted.stop()

    on_topic = await read_topic(pair.kafka, pair.topic, until=count(2))
    assert [json.loads(r.value)["event_id"] for r in on_topic] == [str(envelope.event_id)] * 2
    await wait_until_consumed(pair.kafka, pair.consumer.consumer.group_id, pair.topic)
    assert await effects(pair) == [(envelope.event_id, "crash-between")]
    assert await pair.consumer.pool.fetchval("SELECT count(*) FROM inbox") == 1


async def test_pipelined_relay_keeps_per_key_order_across_partitions(make_pair: Any) -> None:
    """Hundreds of rows go out with many in flight at once (the relay does not await each
    acknowledgement); each key's events still reach its partition in commit order."""
    pair: Pair = await make_pair(record_effect, kafka_topic_partitions=4, outbox_batch_size=500)
    assert pair.producer.relay is not None
    await pair.producer.relay.stop()  # let a backlog build up, then publish it in one go
    keys = [uuid.uuid4() for _ in range(6)]
    expected: dict[str, list[str]] = {str(key): [] for key in keys}
    for round_number in range(50):
        async with pair.producer.unit_of_work() as uow:
            for key in keys:  # interleaved keys, several per transaction
                label = f"{key}-{round_number:03d}"
                uow.stage_event(
                    ConsultationClosed(
                        consultation_id=key, title=label, closes_at=datetime.now(UTC)
                    ),
                    key=key,
                )
                expected[str(key)].append(label)
            await uow.commit()
    total = 50 * len(keys)

    relay = OutboxRelay(
        pair.producer.pool, pair.producer.publisher, batch_size=500, poll_interval=0.2
    )
    relay.start()
    try:
        records = await read_topic(pair.kafka, pair.topic, until=count(total))
    finally:
        await relay.stop()
    assert relay.published_total == total
    seen: dict[str, list[str]] = {}
    partitions: dict[str, set[int]] = {}
    for record in records:
        key = (record.key or b"").decode()
        seen.setdefault(key, []).append(json.loads(record.value)["data"]["title"])
        partitions.setdefault(key, set()).add(record.partition)
    assert seen == expected
    assert all(len(used) == 1 for used in partitions.values())
    assert len(set().union(*partitions.values())) > 1, "the keys should spread over partitions"

    async def all_effects() -> bool:
        return len(await effects(pair)) == total

    await wait_for(all_effects, "one effect per event")


@CONSUMING
async def test_same_event_delivered_twice_has_one_effect(make_pair: Any, batch: bool | str) -> None:
    pair: Pair = await make_pair(record_effect, batch=batch)
    envelope = new_envelope(closed("twice"), producer="intake")
    await send_raw(pair, envelope.to_bytes(), envelope.to_bytes())

    await wait_until_consumed(pair.kafka, pair.consumer.consumer.group_id, pair.topic)
    assert await effects(pair) == [(envelope.event_id, "twice")]


async def test_a_reader_tolerates_what_a_newer_producer_added(make_pair: Any) -> None:
    """A producer one minor change ahead adds an optional field to the payload and one to
    the envelope: a consumer still on today's contract processes the event all the same."""
    pair: Pair = await make_pair(record_effect)
    envelope = new_envelope(closed("from-the-future"), producer="intake")
    newer = json.loads(envelope.to_bytes())
    newer["data"]["closing_note"] = "Dziękujemy za udział"  # added in a later minor version
    newer["schema_minor"] = 2
    await send_raw(pair, json.dumps(newer).encode())

    await wait_for(lambda: _labels_are(pair, ["from-the-future"]), "the newer event's effect")
    assert await effects(pair) == [(envelope.event_id, "from-the-future")]


@CONSUMING
async def test_malformed_message_is_dead_lettered_and_partition_moves_on(
    make_pair: Any,
    batch: bool,
) -> None:
    pair: Pair = await make_pair(record_effect, batch=batch)
    good = new_envelope(closed("after-bad"), producer="intake")
    unknown_version = json.loads(good.to_bytes())
    unknown_version["event_version"] = 9
    nul_in_title = json.loads(new_envelope(closed("x"), producer="intake").to_bytes())
    nul_in_title["data"]["title"] = "NUL\u0000here"
    await send_raw(
        pair,
        b"{not json",
        json.dumps(unknown_version).encode(),
        json.dumps(nul_in_title).encode(),
        good.to_bytes(),
    )

    await wait_for(lambda: _labels_are(pair, ["after-bad"]), "the good message after the bad")
    assert await effects(pair) == [(good.event_id, "after-bad")]

    dead = await read_topic(pair.kafka, f"{pair.topic}.dlt", until=count(3))
    dead_headers = [headers(record) for record in dead]
    assert dead[0].value == b"{not json"
    assert dead_headers[0][DLT_REASON].startswith("invalid envelope")
    assert dead_headers[0][DLT_ORIGINAL_TOPIC] == pair.topic
    assert dead_headers[0][DLT_ORIGINAL_OFFSET] == "0"
    assert (
        dead_headers[1][DLT_REASON] == "unknown event type or version: intake.ConsultationClosed v9"
    )
    assert dead_headers[1][DLT_ORIGINAL_OFFSET] == "1"
    # Input that can never succeed fails at once, not after the retries.
    assert "NUL" in dead_headers[2][DLT_REASON]
    assert [h[DLT_ATTEMPTS] for h in dead_headers] == ["1", "1", "1"]


@CONSUMING
async def test_transient_failures_are_retried_then_capped(
    make_pair: Any, batch: bool | str
) -> None:
    calls: dict[str, int] = {}

    async def flaky(uow: PostgresUnitOfWork, envelope: Envelope[Any]) -> None:
        label = envelope.data.title
        calls[label] = calls.get(label, 0) + 1
        if label == "always-fails" or calls[label] < 3:
            raise RuntimeError(f"downstream hiccup ({label})")
        await record_effect(uow, envelope)

    pair: Pair = await make_pair(flaky, batch=batch)
    recovers = await stage(pair, "recovers")
    doomed = await stage(pair, "always-fails")

    dead = await read_topic(pair.kafka, f"{pair.topic}.dlt", until=count(1))
    assert json.loads(dead[0].value)["event_id"] == str(doomed.event_id)
    reason = headers(dead[0])[DLT_REASON]
    assert reason.startswith("gave up after 3 attempts")
    if batch != "set-based":  # (there a failed set-based try is replayed event by event)
        assert calls == {"recovers": 3, "always-fails": 3}
    assert await effects(pair) == [(recovers.event_id, "recovers")]
    # the failed attempts left nothing behind, not even an inbox row
    assert await pair.consumer.pool.fetchval("SELECT count(*) FROM inbox") == 1


@CONSUMING
async def test_a_database_outage_pauses_the_partition_and_dead_letters_nothing(
    make_pair: Any,
    batch: bool,
) -> None:
    """However long the database refuses connections (here far more tries than
    `consumer_max_attempts`), the message waits for it instead of being dead-lettered."""
    calls = 0

    async def database_down_for_a_while(uow: PostgresUnitOfWork, envelope: Envelope[Any]) -> None:
        nonlocal calls
        calls += 1
        if calls <= 8:
            raise asyncpg.CannotConnectNowError("the database system is starting up")
        await record_effect(uow, envelope)

    pair: Pair = await make_pair(database_down_for_a_while, batch=batch)
    waited = await stage(pair, "waited")
    await eventually(lambda: effects(pair), "the effect once the database is back")
    assert await effects(pair) == [(waited.event_id, "waited")]
    assert calls == 9
    assert await end_offset(pair.kafka, f"{pair.topic}.dlt") == 0


@CONSUMING
async def test_an_event_awaiting_its_prerequisite_waits_without_counting_attempts(
    make_pair: Any, batch: bool | str
) -> None:
    """An event whose prerequisite (another topic's record, e.g. a person's key) has not
    been stored yet waits for it — here 1.5 s, where `consumer_max_attempts` (3, 0.05 s
    back-off) would dead-letter a failing event within 0.4 s — and takes effect once; a
    set-based handler is tried again as a whole instead of replaying event by event."""
    arrived = False
    by_event = set_based = 0

    async def needs_prerequisite(uow: PostgresUnitOfWork, envelope: Envelope[Any]) -> None:
        nonlocal by_event
        by_event += 1
        if not arrived:
            raise AwaitingPrerequisite("its key has not arrived yet")
        await record_effect(uow, envelope)

    async def all_need_prerequisite(
        uow: PostgresUnitOfWork, envelopes: Sequence[Envelope[Any]]
    ) -> None:
        nonlocal set_based
        set_based += 1
        if not arrived:
            raise AwaitingPrerequisite("a key has not arrived yet")
        for envelope in envelopes:
            await record_effect(uow, envelope)

    pair: Pair = await make_pair(
        needs_prerequisite, batch=batch, handle_batch=all_need_prerequisite
    )
    waiting = await stage(pair, "waiting")
    await asyncio.sleep(1.5)
    assert await effects(pair) == []
    assert await end_offset(pair.kafka, f"{pair.topic}.dlt") == 0
    arrived = True
    await eventually(lambda: effects(pair), "the effect once the prerequisite is there")
    await wait_until_consumed(pair.kafka, pair.consumer.consumer.group_id, pair.topic)
    assert await effects(pair) == [(waiting.event_id, "waiting")]
    assert await end_offset(pair.kafka, f"{pair.topic}.dlt") == 0
    if batch == "set-based":
        assert by_event == 0 and set_based > 3  # never replayed event by event
    else:
        assert by_event > 3  # more tries than consumer_max_attempts, none counted


async def test_a_batch_goes_on_without_the_events_awaiting_a_prerequisite(
    make_pair: Any,
) -> None:
    """Set-based: an event awaiting its prerequisite, and what follows it in its partition,
    are held back while the rest of the batch takes effect; once the prerequisite is there
    they follow, in partition order, each once — never replayed event by event."""
    arrived = False
    by_event = 0
    first = ["a0", "held", "a2"]  # partition 0
    second = ["b0", "b1"]  # partition 1

    async def one(uow: PostgresUnitOfWork, envelope: Envelope[Any]) -> None:
        nonlocal by_event
        by_event += 1
        await record_effect(uow, envelope)

    async def all_of(uow: PostgresUnitOfWork, envelopes: Sequence[Envelope[Any]]) -> None:
        for envelope in envelopes:
            if envelope.data.title == "held" and not arrived:
                raise AwaitingPrerequisite("its key is on its way", event_id=envelope.event_id)
            await record_effect(uow, envelope)

    async def two_partitions(kafka: str, topic: str) -> None:
        values: list[list[bytes | None]] = [
            [new_envelope(closed(label), producer="intake").to_bytes() for label in labels]
            for labels in (first, second)
        ]
        await _create_and_fill(kafka, topic, values)

    pair: Pair = await make_pair(
        one, before_start=two_partitions, batch="set-based", handle_batch=all_of
    )

    async def in_order() -> list[str]:
        rows = await pair.consumer.pool.fetch("SELECT label FROM effects ORDER BY id")
        return [row["label"] for row in rows]

    await wait_for(
        lambda: _have(in_order, {"a0", "b0", "b1"}), "the events not held back take effect"
    )
    await asyncio.sleep(1.0)
    assert sorted(await in_order()) == ["a0", "b0", "b1"]  # "a2" waits behind "held"
    assert await end_offset(pair.kafka, f"{pair.topic}.dlt") == 0
    arrived = True
    await wait_for(lambda: _have(in_order, {*first, *second}), "the held events follow")
    await wait_until_consumed(pair.kafka, pair.consumer.consumer.group_id, pair.topic)
    labels = await in_order()
    assert sorted(labels) == sorted([*first, *second])  # each once
    assert labels.index("held") < labels.index("a2")
    assert by_event == 0
    assert await end_offset(pair.kafka, f"{pair.topic}.dlt") == 0


async def _have(labels: Callable[[], Awaitable[list[str]]], wanted: set[str]) -> bool:
    return set(await labels()) >= wanted


@CONSUMING
async def test_a_prerequisite_that_never_comes_ends_in_a_dead_letter(
    make_pair: Any, batch: bool | str
) -> None:
    """After `consumer_prerequisite_wait_seconds` the wait ends: the event's attempts
    count, and it is dead-lettered like any event that keeps failing."""

    async def never(uow: PostgresUnitOfWork, envelope: Envelope[Any]) -> None:
        raise AwaitingPrerequisite("its key never arrives")

    pair: Pair = await make_pair(never, batch=batch, consumer_prerequisite_wait_seconds=0.5)
    doomed = await stage(pair, "doomed")
    [dead] = await read_topic(pair.kafka, f"{pair.topic}.dlt", until=count(1))
    assert json.loads(dead.value)["event_id"] == str(doomed.event_id)
    assert headers(dead)[DLT_REASON].startswith("gave up after 3 attempts")
    assert "its key never arrives" in headers(dead)[DLT_REASON]
    assert await pair.consumer.pool.fetchval("SELECT count(*) FROM inbox") == 0


@CONSUMING
async def test_a_message_near_the_size_limit_is_dead_lettered_as_a_capped_copy(
    make_pair: Any,
    batch: bool,
) -> None:
    pair: Pair = await make_pair(record_effect, batch=batch)
    huge = b"x" * 1_000_000  # not an envelope; with headers, too big to copy whole
    good = new_envelope(closed("after-huge"), producer="intake")
    await send_raw(pair, huge, good.to_bytes())

    await wait_for(lambda: _labels_are(pair, ["after-huge"]), "the message after the huge one")
    [dead] = await read_topic(pair.kafka, f"{pair.topic}.dlt", until=count(1))
    dead_headers = headers(dead)
    assert dead_headers[DLT_TRUNCATED] == "true"
    assert dead_headers[DLT_ORIGINAL_SIZE] == str(len(huge))
    assert dead_headers[DLT_ORIGINAL_OFFSET] == "0"
    assert dead.value == huge[: pair.consumer.settings.dead_letter_max_bytes]


@CONSUMING
async def test_an_unwritable_dead_letter_topic_cannot_jam_the_partition(
    make_pair: Any, batch: bool | str
) -> None:
    """The dead-letter topic refuses every copy: publishing is retried like a handler and,
    at the limit, the letter is kept in the database; the partition moves on."""

    async def tiny_dead_letter_topic(kafka: str, topic: str) -> None:
        admin = AIOKafkaAdminClient(**admin_options(kafka))
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(f"{topic}.dlt", 1, 1, topic_configs={"max.message.bytes": "1024"})]
            )
        finally:
            await admin.close()

    pair: Pair = await make_pair(record_effect, before_start=tiny_dead_letter_topic, batch=batch)
    poison = b"{" + b"y" * 5000  # not JSON, and bigger than the dead-letter topic allows
    good = new_envelope(closed("after-poison"), producer="intake")
    await send_raw(pair, poison, good.to_bytes())

    await wait_for(lambda: _labels_are(pair, ["after-poison"]), "the message after the poison")
    # (in a batch, the dead letter follows the commit of the batch's effects)
    row = await eventually(
        lambda: pair.consumer.pool.fetchrow("SELECT * FROM dead_letters"), "the stored letter"
    )
    assert bytes(row["value"]) == poison
    assert row["kafka_offset"] == 0
    assert row["reason"].startswith("invalid envelope")
    assert row["attempts"] == 3  # consumer_max_attempts: publishing was retried, then stored


async def _publish_before_start(labels: list[str], *poison: tuple[int, bytes | None]) -> Any:
    """A `before_start` hook: the events are on the topic before the consumer starts, so
    its first fetch holds them all (one batch); `poison` inserts raw values at indexes
    (None: a tombstone)."""
    envelopes = [new_envelope(closed(label), producer="intake") for label in labels]
    values: list[bytes | None] = [envelope.to_bytes() for envelope in envelopes]
    for index, value in sorted(poison, key=lambda inserted: inserted[0], reverse=True):
        values.insert(index, value)

    async def publish(kafka: str, topic: str) -> None:
        await _create_and_fill(kafka, topic, [values])

    publish.envelopes = envelopes  # type: ignore[attr-defined]
    return publish


async def _create_and_fill(kafka: str, topic: str, partitions: list[list[bytes | None]]) -> None:
    """Create `topic` with one partition per list and write each list's values to it."""
    admin = AIOKafkaAdminClient(**admin_options(kafka))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, len(partitions), 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**admin_options(kafka))
    await producer.start()
    try:
        for partition, values in enumerate(partitions):
            for value in values:
                await producer.send_and_wait(topic, value, key=b"k", partition=partition)
    finally:
        await producer.stop()


@CONSUMING
async def test_a_tombstone_takes_effect_in_partition_order_between_events(
    make_pair: Any, batch: bool | str
) -> None:
    """A compacted topic's tombstone goes to `on_tombstone`, in partition order with the
    events around it (a key and its later tombstone must not swap), in batches too, where
    it is one savepoint of the batch's transaction; the events keep their one effect."""

    async def record_tombstone(uow: PostgresUnitOfWork, key: bytes) -> None:
        await uow.connection.execute(
            "INSERT INTO effects (event_id, label) VALUES ($1, $2)",
            uuid.uuid4(),
            f"tombstone {key.decode()}",
        )

    # On the topic before the consumer starts: its first fetch holds all three.
    publish = await _publish_before_start(["before", "after"], (1, None))

    pair: Pair = await make_pair(
        record_effect, before_start=publish, batch=batch, on_tombstone=record_tombstone
    )
    await wait_for(
        lambda: _labels_are(pair, ["after", "before", "tombstone k"]), "the three effects"
    )
    await wait_until_consumed(pair.kafka, pair.consumer.consumer.group_id, pair.topic)
    in_order = await pair.consumer.pool.fetch("SELECT label FROM effects ORDER BY id")
    assert [row["label"] for row in in_order] == ["before", "tombstone k", "after"]
    assert await pair.consumer.pool.fetchval("SELECT count(*) FROM dead_letters") == 0


@pytest.mark.parametrize("batch", [True, "set-based"], ids=["batch", "set-based"])
async def test_a_poison_message_in_the_middle_of_a_batch_is_dead_lettered_alone(
    make_pair: Any,
    batch: bool | str,
) -> None:
    """One batch, one transaction: the event whose handler fails for good (after writing)
    is rolled back to its savepoint and dead-lettered with its reason, a message that is
    not even JSON beside it too; every other event of the batch takes effect once."""
    transactions: dict[str, int] = {}

    async def poisoned(uow: PostgresUnitOfWork, envelope: Envelope[Any]) -> None:
        label = envelope.data.title
        transactions[label] = await uow.connection.fetchval("SELECT txid_current()")
        await record_effect(uow, envelope)  # written, then undone with its savepoint
        if label == "poison":
            raise PermanentFailure("the poison pill")

    labels = [f"good-{n}" for n in range(5)] + ["poison"] + [f"later-{n}" for n in range(5)]
    publish = await _publish_before_start(labels, (8, b"{not json"))
    pair: Pair = await make_pair(poisoned, before_start=publish, batch=batch)
    good = [label for label in labels if label != "poison"]

    await wait_for(lambda: _labels_are(pair, sorted(good)), "the good events' effects")
    dead = await read_topic(pair.kafka, f"{pair.topic}.dlt", until=count(2))
    dead_headers = [headers(record) for record in dead]
    assert [h[DLT_ORIGINAL_OFFSET] for h in dead_headers] == ["5", "8"]
    assert dead_headers[0][DLT_REASON] == "the poison pill"
    assert json.loads(dead[0].value)["data"]["title"] == "poison"
    assert dead_headers[1][DLT_REASON].startswith("invalid envelope")
    assert [h[DLT_ATTEMPTS] for h in dead_headers] == ["1", "1"]
    await wait_until_consumed(pair.kafka, pair.consumer.consumer.group_id, pair.topic)
    assert await effects(pair) == sorted(
        (
            (envelope.event_id, envelope.data.title)
            for envelope in publish.envelopes
            if envelope.data.title != "poison"
        ),
        key=lambda effect: effect[1],
    )
    # the poison's inbox claim went with its savepoint; the batch was one transaction
    assert await pair.consumer.pool.fetchval("SELECT count(*) FROM inbox") == len(good)
    assert len(set(transactions.values())) == 1


@pytest.mark.parametrize("batch", [True, "set-based"], ids=["batch", "set-based"])
async def test_a_database_outage_in_the_middle_of_a_batch_replays_it_whole(
    make_pair: Any,
    batch: bool | str,
) -> None:
    """The database goes away at the third event of a batch (here: far more tries than
    `consumer_max_attempts`): the whole batch is rolled back and waits, nothing is
    dead-lettered, and once the database is back every event has exactly one effect."""
    calls: dict[str, int] = {}

    async def outage_at_the_third(uow: PostgresUnitOfWork, envelope: Envelope[Any]) -> None:
        label = envelope.data.title
        calls[label] = calls.get(label, 0) + 1
        await record_effect(uow, envelope)
        if label == "event-2" and calls[label] <= 8:
            raise asyncpg.CannotConnectNowError("the database system is starting up")

    labels = [f"event-{n}" for n in range(6)]
    pair: Pair = await make_pair(
        outage_at_the_third, before_start=await _publish_before_start(labels), batch=batch
    )
    await wait_for(lambda: _labels_are(pair, labels), "every effect once the database is back")
    await wait_until_consumed(pair.kafka, pair.consumer.consumer.group_id, pair.topic)
    assert await _labels_are(pair, labels)
    assert calls["event-2"] == 9
    assert await pair.consumer.pool.fetchval("SELECT count(*) FROM inbox") == len(labels)
    assert await end_offset(pair.kafka, f"{pair.topic}.dlt") == 0
