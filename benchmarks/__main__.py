"""`python -m benchmarks`: how fast intake accepts submissions and gets them onto Kafka.

Runs intake in this process against a real Kafka broker and PostgreSQL server (the same
local processes the tests use, or `STRATEGIA_TEST_*` addresses) and prints figures. It
measures; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from devtools import free_ports
from devtools.kafka import start_kafka
from devtools.postgres import acreate_database, start_postgres
from intake.bootstrap import build
from intake.config import IntakeSettings
from shared.contracts.topics import Topic

ADMIN = {"Authorization": "Bearer bench-admin"}


@contextlib.contextmanager
def infrastructure() -> Iterator[tuple[str, str]]:
    kafka = os.environ.get("STRATEGIA_TEST_KAFKA_BOOTSTRAP_SERVERS")
    postgres = os.environ.get("STRATEGIA_TEST_POSTGRES_DSN")
    if kafka and postgres:
        yield kafka, postgres
        return
    with tempfile.TemporaryDirectory(prefix="strategia-bench-") as scratch:
        root = Path(scratch)
        root.chmod(0o711)  # the PostgreSQL server user must reach its data dir
        kafka_port, controller_port, pg_port = free_ports(3)
        broker = start_kafka(root / "kafka", kafka_port, controller_port, root / "kafka.log")
        server = start_postgres(root / "pg", pg_port, root / "pg.log", fast_unsafe=True)
        try:
            yield broker.bootstrap_servers, server.admin_dsn
        finally:
            broker.stop()
            server.stop()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def submission(index: int) -> dict[str, Any]:
    return {
        "submitter": {"kind": "resident", "email": f"bench{index}@example.org"},
        "theme": "social",
        "title": f"Propozycja {index}",
        "body": "Treść propozycji " * 40,
        "consent": {"processing": True, "contact": False},
    }


async def run(count: int, concurrency: int) -> None:
    with infrastructure() as (kafka, admin_dsn):
        settings = IntakeSettings(
            database_url=await acreate_database(admin_dsn, f"bench_{uuid.uuid4().hex[:8]}"),
            kafka_bootstrap_servers=kafka,
            admin_token="bench-admin",  # noqa: S106 - throw-away benchmark token
            log_level="WARNING",
            kafka_topic_partitions=3,
            kafka_topic_prefix=f"bench-{uuid.uuid4().hex[:8]}.",
        )
        intake = build(settings)
        await intake.runtime.start()
        try:
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=intake.app), base_url="http://intake"
            )
            now = datetime.now(UTC)
            consultation = (
                await client.post(
                    "/v1/consultations",
                    headers=ADMIN,
                    json={
                        "title": "Benchmark",
                        "description": "Benchmark",
                        "kind": "general",
                        "opens_at": (now - timedelta(hours=1)).isoformat(),
                        "closes_at": (now + timedelta(days=1)).isoformat(),
                    },
                )
            ).json()
            url = f"/v1/consultations/{consultation['id']}/submissions"

            consumer = AIOKafkaConsumer(
                intake.runtime.topic_names(Topic.INTAKE_SUBMISSIONS),
                bootstrap_servers=kafka,
                auto_offset_reset="latest",
                group_id=f"bench-{uuid.uuid4().hex}",
            )
            await consumer.start()
            await asyncio.sleep(1.0)  # let the group settle before the clock starts

            latencies: list[float] = []
            queue: asyncio.Queue[int] = asyncio.Queue()
            for index in range(count):
                queue.put_nowait(index)

            async def worker() -> None:
                while not queue.empty():
                    index = queue.get_nowait()
                    started = time.perf_counter()
                    response = await client.post(url, json=submission(index))
                    latencies.append(time.perf_counter() - started)
                    if response.status_code != 202:
                        raise RuntimeError(f"submission failed: {response.text}")

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            accepted_after = time.perf_counter() - started

            seen = 0
            wanted = consultation["id"]
            while seen < count:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    seen += sum(1 for r in records if wanted.encode() in (r.value or b""))
                if time.perf_counter() - started > 300:
                    raise RuntimeError(f"only {seen} of {count} events reached Kafka")
            on_kafka_after = time.perf_counter() - started
            await consumer.stop()
        finally:
            await intake.runtime.stop()

    print(f"intake submissions: {count} with {concurrency} concurrent clients (in-process HTTP)")
    print(f"  accepted (202)      : {count / accepted_after:8.1f} submissions/s")
    print(
        f"  latency             : p50 {statistics.median(latencies) * 1000:6.1f} ms, "
        f"p95 {percentile(latencies, 0.95) * 1000:6.1f} ms, "
        f"max {max(latencies) * 1000:6.1f} ms"
    )
    print(f"  all on Kafka after  : {on_kafka_after:8.2f} s (outbox relay, acks=all)")
    print(f"  end-to-end          : {count / on_kafka_after:8.1f} events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    arguments = parser.parse_args()
    asyncio.run(run(arguments.count, arguments.concurrency))


if __name__ == "__main__":
    main()
