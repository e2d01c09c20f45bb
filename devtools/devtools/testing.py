"""Helpers for tests on the real broker: wait for an outcome, read a topic, start a service
in a namespace of its own, and the request bodies tests share."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from devtools.kafka_auth import admin_options, service_kafka_settings
from devtools.proc import free_ports
from shared.contracts.registry import SERVICES
from shared.platform.database import DbConnection
from shared.platform.runtime import Service, ServiceRuntime, definition_of
from shared.platform.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)

DEADLINE_SECONDS = 60.0

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


async def wait_for(
    check: Callable[[], Awaitable[bool]], what: str, *, deadline_s: float = DEADLINE_SECONDS
) -> None:
    """Poll until `check` holds; fail saying what never happened (no timing assertions)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {deadline_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


async def wait_until_blocked_by(holder: DbConnection, what: str) -> None:
    """Wait until another session of the server waits for a lock `holder`'s session holds
    (a transaction it has not committed yet): the moment to commit it in a race test."""

    async def blocked() -> bool:
        return bool(
            await holder.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
            )
        )

    await wait_for(blocked, what)


async def read_topic(
    kafka: str,
    topic: str,
    *,
    until: Callable[[list[Record]], bool],
    keep: Callable[[Record], bool] = lambda _: True,
    deadline_s: float = DEADLINE_SECONDS,
) -> list[Record]:
    """Read `topic` from the beginning, keeping matching records, until `until` holds."""
    consumer = AIOKafkaConsumer(
        topic,
        **admin_options(kafka),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    kept: list[Record] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        while not until(kept):
            if loop.time() > deadline:
                raise AssertionError(f"{topic}: condition not met; kept {len(kept)} records")
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                kept.extend(record for record in records if keep(record))
    finally:
        await consumer.stop()
    return kept


async def read_whole_topic(
    kafka: str, topic: str, *, deadline_s: float = DEADLINE_SECONDS
) -> list[Record]:
    """Every record `topic` holds now, read up to its end offsets. Unlike counting up to
    `end_offset`, right for a compacted topic too (offsets the cleaner removed are gaps)."""
    consumer = AIOKafkaConsumer(
        **admin_options(kafka), auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    kept: list[Record] = []
    try:
        known = consumer.partitions_for_topic(topic)
        if known is None:  # not in the client's metadata yet
            await consumer._client.force_metadata_update()
            known = consumer.partitions_for_topic(topic)
        if not known:
            raise AssertionError(f"{topic}: no such topic")
        partitions = [TopicPartition(topic, partition) for partition in sorted(known)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        for partition in partitions:
            while await consumer.position(partition) < ends[partition]:
                if loop.time() > deadline:
                    raise AssertionError(f"{topic}: could not read up to its end offsets")
                batch = await consumer.getmany(partition, timeout_ms=300)
                kept.extend(batch.get(partition, ()))
    finally:
        await consumer.stop()
    return kept


def count(expected: int) -> Callable[[list[Record]], bool]:
    return lambda records: len(records) >= expected


def body(record: Record) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(record.value or b"null")
    return value


def headers(record: Record) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], what: str, *, deadline_s: float = DEADLINE_SECONDS
) -> T:
    """Poll `probe` until it returns something truthy, and return that; fail saying what
    never happened (and the last value seen)."""
    last: T | None = None
    try:
        async with asyncio.timeout(deadline_s):
            while True:
                last = await probe()
                if last:
                    return last
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what} (last: {last!r})") from None


def unique_prefix(label: str = "t") -> str:
    """A topic and consumer-group namespace no other test shares (`kafka_topic_prefix`)."""
    return f"{label}-{uuid.uuid4().hex[:10]}."


async def committed_offset(kafka: str, group_id: str, topic: str) -> int:
    """How many records of `topic` (all partitions) the consumer group has committed."""
    admin = AIOKafkaAdminClient(**admin_options(kafka))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    return sum(meta.offset for partition, meta in offsets.items() if partition.topic == topic)


async def end_offset(kafka: str, topic: str) -> int:
    """How many records `topic` holds (all partitions)."""
    admin = AIOKafkaAdminClient(**admin_options(kafka))
    await admin.start()
    try:
        # The topic's own metadata: a fresh consumer's cluster view may not list it yet
        # (it then reported 0 records, and `wait_until_consumed` returned at once).
        [description] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    ids = [partition["partition"] for partition in description.get("partitions", ())]
    if not ids:
        return 0
    consumer = AIOKafkaConsumer(**admin_options(kafka), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in ids])
    finally:
        await consumer.stop()
    return sum(ends.values())


async def group_assignment(kafka: str, group_id: str, topic: str) -> list[set[int]]:
    """The partitions of `topic` each live member of the consumer group holds (one set per
    member, members holding none included); empty while the group is rebalancing."""
    admin = AIOKafkaAdminClient(**admin_options(kafka))
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group_id])
    finally:
        await admin.close()
    [group] = response.groups
    state, members = group[2], group[5]
    if state != "Stable":
        return []
    held = []
    for member in members:
        raw = member[-1]
        assignment = ConsumerProtocolMemberAssignment.decode(raw).assignment if raw else []
        held.append({p for name, parts in assignment if name == topic for p in parts})
    return held


async def wait_until_consumed(kafka: str, group_id: str, topic: str) -> None:
    """Wait until the group committed everything the topic held when this was called: the
    consumer has had every effect of those records (offsets commit after the effect)."""
    target = await end_offset(kafka, topic)

    async def caught_up() -> bool:
        return await committed_offset(kafka, group_id, topic) >= target

    await wait_for(caught_up, f"{group_id} to consume {target} records of {topic}")


# --- common request bodies ------------------------------------------------------------------

# Fresh per test session: nothing to leak, nothing a test could depend on by value.
ADMIN_TOKEN = f"admin-{secrets.token_hex(12)}"
COORDINATOR_TOKEN = f"coordinator-{secrets.token_hex(12)}"
CLERK_TOKEN = f"clerk-{secrets.token_hex(12)}"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
COORDINATOR = {"Authorization": f"Bearer {COORDINATOR_TOKEN}"}
CLERK = {"Authorization": f"Bearer {CLERK_TOKEN}"}
# The server secret notifications derives subscribers' link tokens from.
SUBSCRIPTION_LINK_SECRET = secrets.token_urlsafe(32)


def consultation_payload(**changes: Any) -> dict[str, Any]:
    """A strategy consultation open from yesterday for 40 days (admin's POST body)."""
    now = datetime.now(UTC)
    payload: dict[str, Any] = {
        "title": "Strategia Rozwoju Gminy 2040+",
        "description": "Konsultacje projektu strategii rozwoju.",
        "kind": "strategy",
        "opens_at": (now - timedelta(days=1)).isoformat(),
        "closes_at": (now + timedelta(days=40)).isoformat(),
    }
    payload.update(changes)
    return payload


def submission_payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "submitter": {"kind": "resident", "email": "jan.kowalski@example.com", "locality": "Gassy"},
        "theme": "social",
        "title": "Żłobek w Gassach",
        "body": "W Gassach brakuje żłobka; proszę o ujęcie go w strategii.",
        "consent": {"processing": True, "contact": False},
    }
    payload.update(changes)
    return payload


# --- services under test --------------------------------------------------------------------


def base_test_settings(
    *, database_url: str, kafka: str, prefix: str, service: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """Settings of a service under test: quick polling, one partition, known tokens; with
    `service`, it connects to Kafka as that service's own principal in the namespace."""
    credentials = service_kafka_settings(kafka, prefix, service) if service else {}
    return {
        **credentials,
        "database_url": database_url,
        "kafka_bootstrap_servers": kafka,
        "kafka_topic_prefix": prefix,
        "kafka_topic_partitions": 1,
        "admin_token": ADMIN_TOKEN,
        "coordinator_token": COORDINATOR_TOKEN,
        "clerk_token": CLERK_TOKEN,
        # Read by notifications only (the others ignore settings they do not have).
        "subscription_link_secret": SUBSCRIPTION_LINK_SECRET,
        "log_json": False,
        "outbox_poll_interval_seconds": 0.5,
        "consumer_retry_backoff_seconds": 0.1,
        # One test client plays many residents; the rate-limit tests switch it on.
        "rate_limit_per_minute": 0,
        **overrides,
    }


def service_of(settings_type: type[ServiceSettings]) -> str | None:
    """The service a settings class belongs to (`intake.config.IntakeSettings`: intake)."""
    package = settings_type.__module__.split(".", 1)[0]
    return package if package in SERVICES else None


def settings_for_test(
    settings_type: type[S],
    *,
    database_url: str,
    kafka: str,
    prefix: str,
    service: str | None = None,
    **overrides: Any,
) -> S:
    """Settings of `service` under test (by default the one `settings_type` belongs to)."""
    return settings_type(
        **base_test_settings(
            database_url=database_url,
            kafka=kafka,
            prefix=prefix,
            service=service or service_of(settings_type),
            **overrides,
        )
    )


@dataclass
class RunningService:
    """A service built from its definition, started in this process, with an HTTP client."""

    service: Service
    settings: ServiceSettings
    client: httpx.AsyncClient

    @property
    def runtime(self) -> ServiceRuntime[Any]:
        return self.service.runtime

    async def count(self, table: str, *args: Any) -> int:
        """Rows of `table` (may carry a WHERE clause with $n parameters)."""
        value = await self.runtime.pool.fetchval(f"SELECT count(*) FROM {table}", *args)
        return int(value)

    def topic(self, topic: str) -> str:
        """The physical name of a logical topic in this service's namespace."""
        return self.runtime.topic_names(topic)

    async def stop(self) -> None:
        if self.runtime.started:
            await self.runtime.stop()
        await self.client.aclose()


async def start_service(
    name: str, settings: ServiceSettings, **build_options: Any
) -> RunningService:
    definition = definition_of(name)
    service = definition.build(settings, **build_options)
    await service.runtime.start()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.app), base_url=f"http://{name}"
    )
    return RunningService(service=service, settings=settings, client=client)


class ServiceProcess:
    """`python -m <service>` as a real OS process on a free port (what ops run).

    `environment` holds `STRATEGIA_*` settings; `url` is its HTTP address once `ready()`.
    """

    def __init__(self, name: str, environment: dict[str, str], log_file: Path) -> None:
        self.name = name
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = log_file
        if name in SERVICES and "STRATEGIA_KAFKA_SASL_PASSWORD" not in environment:
            # the service's own principal in the namespace of its settings (the web front
            # is no Kafka client)
            environment = {
                **environment,
                **service_environment_credentials(
                    environment["STRATEGIA_KAFKA_BOOTSTRAP_SERVERS"],
                    environment.get("STRATEGIA_KAFKA_TOPIC_PREFIX", ""),
                    name,
                ),
            }
        self.environment = {
            **os.environ,
            **environment,
            "STRATEGIA_HTTP_HOST": "127.0.0.1",
            "STRATEGIA_HTTP_PORT": str(self.port),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.name],
                env=self.environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would; `start()` runs it again on its port."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(30)
            self.process = None

    def ready(self, timeout: float = 60.0) -> ServiceProcess:
        """Wait until /health/ready answers 200; fail with the log's tail otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return self
            time.sleep(0.2)
        tail = self.log_file.read_text(errors="replace")[-3000:]
        raise AssertionError(f"{self.name} did not become ready; its log ends:\n{tail}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None


def service_environment_credentials(kafka: str, prefix: str, service: str) -> dict[str, str]:
    return {
        f"STRATEGIA_{key.upper()}": str(value)
        for key, value in service_kafka_settings(kafka, prefix, service).items()
    }


def service_environment(
    *, database_url: str, kafka: str, prefix: str, **settings: Any
) -> dict[str, str]:
    """`STRATEGIA_*` variables for a service process under test (see `settings_for_test`)."""
    values = base_test_settings(database_url=database_url, kafka=kafka, prefix=prefix, **settings)
    return {
        f"STRATEGIA_{key.upper()}": str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in values.items()
    }


def start_replicas(
    name: str, environment: dict[str, str], log_dir: Path, count: int = 2
) -> list[ServiceProcess]:
    """`count` OS processes of one service sharing its database and topics (replicas as a
    deployment runs them), each ready on its own port; `log_dir/<name>-<n>.log`."""
    replicas = [
        ServiceProcess(name, environment, log_dir / f"{name}-{n}.log").start()
        for n in range(1, count + 1)
    ]
    for replica in replicas:
        replica.ready()
    return replicas
