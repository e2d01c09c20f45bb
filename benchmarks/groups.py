"""`python -m benchmarks.groups`: how fast groups places volunteers, and how long a theme's
trends take to recompute.

Runs groups in this process against a real Kafka broker and PostgreSQL server (the same
local processes the tests use, or the `STRATEGIA_TEST_*` addresses) and prints, in one run:

* sign-ups processed per second into groups: clerk sign-ups over HTTP (they count at once),
  each placed by the placement rule inside its request, serialised per consultation; and
  how long until every placement event is on Kafka (outbox relay);
* the time to recompute one theme's key trends at 1,000 and 5,000 submissions
  (`benchmarks.groups_trends`: first run, then the median of three recomputations).

It measures; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.__main__ import infrastructure
from benchmarks.groups_trends import benchmark_trends
from benchmarks.paced import percentile
from devtools.kafka_auth import admin_options, service_kafka_settings
from devtools.postgres import acreate_database
from groups.bootstrap import build
from groups.config import GroupsSettings
from shared.contracts.envelope import new_envelope
from shared.contracts.intake import ConsultationAnnounced, ConsultationKind
from shared.contracts.topics import Topic

CLERK = {"Authorization": "Bearer bench-clerk"}
THEMES = ("social", "environmental", "economic", "spatial")


def sign_up(index: int, rng: random.Random) -> dict[str, object]:
    return {
        "name": f"Wolontariusz {index}",
        "email": f"bench{index}@example.org",
        "themes": rng.sample(THEMES, rng.randint(1, 3)),
        "consent": {"processing": True},
        "channel": "phone",
    }


async def bench_sign_ups(count: int, concurrency: int) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="strategia-bench-groups-") as scratch,
        infrastructure(Path(scratch)) as (kafka, admin_dsn, _),
    ):
        prefix = f"bench-{uuid.uuid4().hex[:8]}."
        settings = GroupsSettings(
            database_url=await acreate_database(admin_dsn, f"bench_{uuid.uuid4().hex[:8]}"),
            kafka_bootstrap_servers=kafka,
            clerk_token="bench-clerk",  # noqa: S106 - throw-away benchmark token
            log_level="WARNING",
            kafka_topic_partitions=3,
            kafka_topic_prefix=prefix,
            **service_kafka_settings(kafka, prefix, "groups"),
        )
        groups = build(settings)
        await groups.runtime.start()
        try:
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=groups.app), base_url="http://groups"
            )
            consultation_id = uuid.uuid4()
            now = datetime.now(UTC)
            announced = new_envelope(
                ConsultationAnnounced(
                    consultation_id=consultation_id,
                    title="Benchmark",
                    kind=ConsultationKind.GENERAL,
                    opens_at=now - timedelta(hours=1),
                    closes_at=now + timedelta(days=1),
                    themes=THEMES,
                ),
                producer="bench",
            )
            producer = AIOKafkaProducer(**admin_options(kafka))
            await producer.start()
            await producer.send_and_wait(
                f"{prefix}{Topic.INTAKE_CONSULTATIONS}",
                announced.to_bytes(),
                key=str(consultation_id).encode(),
            )
            await producer.stop()
            url = f"/v1/consultations/{consultation_id}/groups"
            for _ in range(600):  # until groups has projected the consultation
                if (await client.get(url)).status_code == 200:
                    break
                await asyncio.sleep(0.1)

            consumer = AIOKafkaConsumer(
                f"{prefix}{Topic.GROUPS_VOLUNTEERS}",
                **admin_options(kafka),
                auto_offset_reset="earliest",
                group_id=f"bench-{uuid.uuid4().hex}",
            )
            await consumer.start()

            rng = random.Random(2040)  # noqa: S311 - reproducible data, not secrets
            bodies = [sign_up(index, rng) for index in range(count)]
            queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
            for item in bodies:
                queue.put_nowait(item)
            latencies: list[float] = []
            signup_url = f"/v1/consultations/{consultation_id}/volunteers"

            async def worker() -> None:
                while not queue.empty():
                    item = queue.get_nowait()
                    started = time.perf_counter()
                    response = await client.post(signup_url, json=item, headers=CLERK)
                    latencies.append(time.perf_counter() - started)
                    if response.status_code != 202:
                        raise RuntimeError(f"sign-up failed: {response.text}")

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            placed_after = time.perf_counter() - started

            # Every volunteer's last word: assigned, or (still) waitlisted.
            decided: set[bytes] = set()
            while len(decided) < count:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for record in records:
                        value = record.value or b""
                        if b"VolunteerAssigned" in value or b"VolunteerWaitlisted" in value:
                            decided.add(record.key or b"")
                if time.perf_counter() - started > 600:
                    raise RuntimeError(f"only {len(decided)} of {count} placements on Kafka")
            on_kafka_after = time.perf_counter() - started
            await consumer.stop()
            found = (await client.get(url)).json()
        finally:
            await groups.runtime.stop()

    print(f"groups sign-ups: {count} clerk sign-ups, {concurrency} concurrent clients")
    print(f"  placed (202)        : {count / placed_after:8.1f} sign-ups/s")
    print(
        f"  latency             : p50 {statistics.median(latencies) * 1000:6.1f} ms, "
        f"p95 {percentile(sorted(latencies), 0.95) * 1000:6.1f} ms, "
        f"max {max(latencies) * 1000:6.1f} ms"
    )
    print(f"  placements on Kafka : {on_kafka_after:8.2f} s after the first sign-up")
    print(
        f"  groups formed       : {len(found)} "
        f"({sum(g['member_count'] for g in found)} members seated)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500, help="sign-ups")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--trend-sizes", type=int, nargs="*", default=[1000, 5000], help="submissions per theme"
    )
    arguments = parser.parse_args()
    asyncio.run(bench_sign_ups(arguments.count, arguments.concurrency))
    print("groups trends: one theme's recomputation")
    benchmark_trends(arguments.trend_sizes)


if __name__ == "__main__":
    main()
