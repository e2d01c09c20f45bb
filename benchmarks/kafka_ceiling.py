"""The broker's ceiling on this machine: raw aiokafka, no application code.

Both figures use the producer settings the services use (idempotent, `acks=all`) and
records of 1 KiB, so the services' figures can be read as a share of them.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devtools.kafka_auth import admin_options

RECORD = os.urandom(512).hex().encode()  # 1 KiB that does not compress to nothing


@dataclass(frozen=True, slots=True)
class Ceiling:
    records: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.records / self.seconds


async def create_topic(kafka: str, partitions: int) -> str:
    """A fresh topic whose partitions all have a leader (one record written to each), so
    no measurement includes the leader election after creation."""
    name = f"bench-raw-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(**admin_options(kafka))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**admin_options(kafka), enable_idempotence=True)
    await producer.start()
    try:
        for partition in range(partitions):
            await producer.send_and_wait(name, b"warm-up", partition=partition)
    finally:
        await producer.stop()
    return name


async def _produce(kafka: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(**admin_options(kafka), enable_idempotence=True)
    await producer.start()
    try:
        acknowledgements = [
            await producer.send(topic, RECORD, key=str(index % 1000).encode())
            for index in range(count)
        ]
        await asyncio.gather(*acknowledgements)
    finally:
        await producer.stop()


async def producer_only(kafka: str, *, count: int = 20_000, partitions: int = 3) -> Ceiling:
    """Idempotent producer, every record handed over at once, acknowledgements awaited."""
    topic = await create_topic(kafka, partitions)
    started = time.perf_counter()
    await _produce(kafka, topic, count)
    return Ceiling(count, time.perf_counter() - started)


async def produce_and_consume(kafka: str, *, count: int = 20_000, partitions: int = 3) -> Ceiling:
    """From the first send until a consumer (already subscribed) has read every record."""
    topic = await create_topic(kafka, partitions)
    consumer = AIOKafkaConsumer(
        topic, **admin_options(kafka), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        warm = 0  # the warm-up records: the consumer is fetching before the clock starts
        while warm < partitions:
            batch = await consumer.getmany(timeout_ms=500)
            warm += sum(len(records) for records in batch.values())
        started = time.perf_counter()
        producing = asyncio.create_task(_produce(kafka, topic, count))
        seen = 0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            seen += sum(len(records) for records in batch.values())
            if producing.done() and producing.exception() is not None:
                raise RuntimeError("raw producer failed") from producing.exception()
        elapsed = time.perf_counter() - started
        await producing
    finally:
        await consumer.stop()
    return Ceiling(count, elapsed)
