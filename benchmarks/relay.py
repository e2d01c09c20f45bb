"""The outbox relay alone: how fast it empties a backlog onto Kafka.

A backlog of `count` rows of 1 KiB is written to a fresh outbox, then one `OutboxRelay`
(the class the services run, on a FastStream broker configured as the runtime configures
it) publishes and deletes them. Compared with the raw producer of the same run.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from faststream.kafka import KafkaBroker

from benchmarks.kafka_ceiling import RECORD, create_topic
from devtools.kafka_auth import admin_connection
from shared.platform.database import apply_migrations, create_pool
from shared.platform.messaging import KafkaPublisher
from shared.platform.outbox import OutboxRelay


@dataclass(frozen=True, slots=True)
class RelayFigure:
    rows: int
    seconds: float
    batch_size: int

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds


async def relay_drain(
    kafka: str, database_url: str, *, count: int = 20_000, batch_size: int = 500
) -> RelayFigure:
    with tempfile.TemporaryDirectory() as no_service_migrations:  # the platform's only
        await apply_migrations(database_url, Path(no_service_migrations))
    pool = await create_pool(database_url, max_size=4)
    topic = await create_topic(kafka, 3)
    broker = KafkaBroker(
        kafka, security=admin_connection(kafka).faststream_security(), enable_idempotence=True
    )
    try:
        headers = {"event_type": "bench", "event_version": "1"}
        await pool.execute(
            "INSERT INTO outbox (event_id, topic, message_key, payload, headers)"
            " SELECT gen_random_uuid(), $1, (n % 1000)::text, $2, $3::jsonb"
            " FROM generate_series(1, $4) AS n",
            topic,
            RECORD,
            headers,
            count,
        )
        await broker.start()
        relay = OutboxRelay(pool, KafkaPublisher(broker), batch_size=batch_size)
        # The relay's own round (fetch, pipelined publish, bulk delete), back to back as its
        # loop runs them while rows keep coming.
        started = time.perf_counter()
        while await relay.relay_once():
            pass
        elapsed = time.perf_counter() - started
    finally:
        await broker.stop()
        await pool.close()
    return RelayFigure(count, elapsed, batch_size)


def unique_database_name() -> str:
    return f"bench_relay_{uuid.uuid4().hex[:8]}"  # bench_*: see THIS_RUN
