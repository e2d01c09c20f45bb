"""The platform on the real broker and server: outbox → Kafka → inbox, dead letters, retries.

Two runtimes play two services, each with its own database. Every test uses its own
topic and consumer group, so tests do not see each other's messages.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from devtools.testing import Record, count, headers, read_topic, wait_for
from shared.contracts.envelope import Envelope, EventPayload, new_envelope
from shared.platform.database import DbConnection
from shared.platform.messaging import DLT_ORIGINAL_OFFSET, DLT_ORIGINAL_TOPIC, DLT_REASON
from shared.platform.outbox import OutboxRelay, add_to_outbox
from shared.platform.runtime import ServiceRuntime
from shared.platform.settings import ServiceSettings

pytestmark = pytest.mark.integration


class ThingHappened(EventPayload):
    event_type = "test.ThingHappened"

    thing_id: uuid.UUID
    label: str


EFFECTS_MIGRATION = """-- migrate:up
CREATE TABLE effects (event_id uuid PRIMARY KEY, label text NOT NULL);
-- migrate:down
DROP TABLE effects;
"""


def settings(dsn: str, kafka: str) -> ServiceSettings:
    return ServiceSettings(
        database_url=dsn,
        kafka_bootstrap_servers=kafka,
        log_json=False,
        outbox_poll_interval_seconds=0.5,
        consumer_retry_backoff_seconds=0.05,
        consumer_max_attempts=3,
        kafka_topic_partitions=1,
    )


@dataclass
class Pair:
    topic: str
    producer: ServiceRuntime
    consumer: ServiceRuntime
    kafka: str


async def read_all(kafka: str, topic: str, expected: int) -> list[Record]:
    return await read_topic(kafka, topic, until=count(expected))


Handler = Callable[[DbConnection, Envelope[Any]], Awaitable[None]]


async def record_effect(conn: DbConnection, envelope: Envelope[Any]) -> None:
    await conn.execute(
        "INSERT INTO effects (event_id, label) VALUES ($1, $2)",
        envelope.event_id,
        envelope.data.label,
    )


@pytest.fixture
async def make_pair(
    kafka_bootstrap_servers: str, new_database: Any, tmp_path: Path
) -> AsyncIterator[Callable[[Handler], Awaitable[Pair]]]:
    started: list[ServiceRuntime] = []
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "20990101000000_effects.sql").write_text(EFFECTS_MIGRATION)

    async def build(handler: Handler) -> Pair:
        topic = f"test.platform-{uuid.uuid4().hex[:12]}.v1"
        producer = ServiceRuntime(
            name="producer",
            settings=settings(await new_database.create("producer"), kafka_bootstrap_servers),
            migrations=migrations,
        )
        producer.document_publication(topic, [ThingHappened], "test events")
        consumer = ServiceRuntime(
            name="consumer",
            settings=settings(await new_database.create("consumer"), kafka_bootstrap_servers),
            migrations=migrations,
            consumer_name=f"consumer-{uuid.uuid4().hex[:8]}",
        )
        consumer.consumer.subscribe(topic, handler, models=[ThingHappened])
        await producer.start()
        started.append(producer)
        await consumer.start()
        started.append(consumer)
        return Pair(topic, producer, consumer, kafka_bootstrap_servers)

    yield build
    for runtime in reversed(started):
        await runtime.stop()


async def stage(pair: Pair, label: str) -> Envelope[ThingHappened]:
    envelope = new_envelope(ThingHappened(thing_id=uuid.uuid4(), label=label), producer="producer")
    async with pair.producer.pool.acquire() as conn, conn.transaction():
        await add_to_outbox(conn, envelope, topic=pair.topic, key=str(envelope.data.thing_id))
    return envelope


async def effects(pair: Pair) -> list[tuple[uuid.UUID, str]]:
    rows = await pair.consumer.pool.fetch("SELECT event_id, label FROM effects ORDER BY label")
    return [(row["event_id"], row["label"]) for row in rows]


async def test_outbox_event_reaches_the_other_service_exactly_once(make_pair: Any) -> None:
    pair: Pair = await make_pair(record_effect)
    sent = [await stage(pair, f"thing-{index}") for index in range(5)]

    async def all_arrived() -> bool:
        return len(await effects(pair)) == 5

    await wait_for(all_arrived, "five effects")
    assert await effects(pair) == [(e.event_id, e.data.label) for e in sent]
    assert await pair.producer.pool.fetchval("SELECT count(*) FROM outbox") == 0
    # Kafka carried each event once, in order, keyed by the aggregate id.
    records = await read_all(pair.kafka, pair.topic, 5)
    assert [json.loads(r.value)["data"]["label"] for r in records] == [
        f"thing-{i}" for i in range(5)
    ]
    assert [r.key for r in records] == [str(e.data.thing_id).encode() for e in sent]


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

    on_topic = await read_all(pair.kafka, pair.topic, 2)
    assert [json.loads(r.value)["event_id"] for r in on_topic] == [str(envelope.event_id)] * 2

    async def consumed_both() -> bool:
        count = await pair.consumer.pool.fetchval(
            "SELECT count(*) FROM inbox WHERE event_id = $1", envelope.event_id
        )
        return bool(count == 1) and await _group_caught_up(pair, expected_offset=2)

    await wait_for(consumed_both, "the consumer to process both copies")
    assert await effects(pair) == [(envelope.event_id, "crash-between")]


async def _group_caught_up(pair: Pair, *, expected_offset: int) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=pair.kafka)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(pair.consumer.consumer.name)
    finally:
        await admin.close()
    committed = sum(meta.offset for tp, meta in offsets.items() if tp.topic == pair.topic)
    return bool(committed >= expected_offset)


async def test_same_event_delivered_twice_has_one_effect(make_pair: Any) -> None:
    pair: Pair = await make_pair(record_effect)
    envelope = new_envelope(ThingHappened(thing_id=uuid.uuid4(), label="twice"), producer="x")
    producer = AIOKafkaProducer(bootstrap_servers=pair.kafka)
    await producer.start()
    try:
        for _ in range(2):
            await producer.send_and_wait(pair.topic, envelope.to_bytes(), key=b"k")
    finally:
        await producer.stop()

    await wait_for(lambda: _group_caught_up(pair, expected_offset=2), "both deliveries")
    assert await effects(pair) == [(envelope.event_id, "twice")]


async def test_malformed_message_is_dead_lettered_and_partition_moves_on(
    make_pair: Any,
) -> None:
    pair: Pair = await make_pair(record_effect)
    good = new_envelope(ThingHappened(thing_id=uuid.uuid4(), label="after-bad"), producer="x")
    unknown_version = json.loads(good.to_bytes())
    unknown_version["event_version"] = 9
    producer = AIOKafkaProducer(bootstrap_servers=pair.kafka)
    await producer.start()
    try:
        await producer.send_and_wait(pair.topic, b"{not json", key=b"k", partition=0)
        await producer.send_and_wait(
            pair.topic, json.dumps(unknown_version).encode(), key=b"k", partition=0
        )
        await producer.send_and_wait(pair.topic, good.to_bytes(), key=b"k", partition=0)
    finally:
        await producer.stop()

    async def good_processed() -> bool:
        return len(await effects(pair)) == 1

    await wait_for(good_processed, "the good message after the bad ones")
    assert await effects(pair) == [(good.event_id, "after-bad")]

    dead = await read_all(pair.kafka, f"{pair.topic}.dlt", 2)
    dead_headers = [headers(record) for record in dead]
    assert dead[0].value == b"{not json"
    assert dead_headers[0][DLT_REASON].startswith("invalid envelope")
    assert dead_headers[0][DLT_ORIGINAL_TOPIC] == pair.topic
    assert dead_headers[0][DLT_ORIGINAL_OFFSET] == "0"
    assert dead_headers[1][DLT_REASON] == "unknown event type or version: test.ThingHappened v9"
    assert dead_headers[1][DLT_ORIGINAL_OFFSET] == "1"


async def test_transient_failures_are_retried_then_capped(make_pair: Any) -> None:
    calls: dict[str, int] = {}

    async def flaky(conn: DbConnection, envelope: Envelope[Any]) -> None:
        label = envelope.data.label
        calls[label] = calls.get(label, 0) + 1
        if label == "always-fails" or calls[label] < 3:
            raise ConnectionError(f"downstream unavailable ({label})")
        await record_effect(conn, envelope)

    pair: Pair = await make_pair(flaky)
    recovers = await stage(pair, "recovers")
    doomed = await stage(pair, "always-fails")

    dead = await read_all(pair.kafka, f"{pair.topic}.dlt", 1)
    assert json.loads(dead[0].value)["event_id"] == str(doomed.event_id)
    reason = headers(dead[0])[DLT_REASON]
    assert reason.startswith("gave up after 3 attempts")
    assert calls == {"recovers": 3, "always-fails": 3}
    assert await effects(pair) == [(recovers.event_id, "recovers")]
    # the failed attempts left nothing behind, not even an inbox row
    assert await pair.consumer.pool.fetchval("SELECT count(*) FROM inbox") == 1
