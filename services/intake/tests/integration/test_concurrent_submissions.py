"""Intake under concurrent load, as ops run it: `python -m intake` with two worker processes
on the real server and broker. Whatever the interleaving of group commits across the
processes, receipt numbers stay gap-free, a key takes effect once, and every accepted
submission is published exactly once. And the window scheduler, which every process
runs, hands a due consultation to one of them only."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from devtools.pytest_plugin import DatabaseFactory
from devtools.testing import (
    ADMIN,
    ServiceProcess,
    body,
    consultation_payload,
    count,
    end_offset,
    read_topic,
    service_environment,
    submission_payload,
    unique_prefix,
    wait_for,
    wait_until_blocked_by,
)
from intake.adapters.unit_of_work import PostgresIntakeUnitOfWork
from intake.bootstrap import MIGRATIONS
from intake.domain.commands import CreateConsultation, Submit
from intake.domain.consultation import Consultation
from intake.domain.errors import OutsideWindow
from intake.service.group_commit import SubmissionBatcher
from intake.service.handlers import IntakeService
from shared.contracts.intake import Channel, ConsultationKind, SubmissionContent
from shared.contracts.topics import TopicNames
from shared.platform.database import apply_migrations, create_pool
from shared.platform.outbox import OutboxWriter

pytestmark = pytest.mark.integration


@pytest.fixture
def intake_process(
    kafka_bootstrap_servers: str, new_database: DatabaseFactory, tmp_path: Path
) -> Iterator[ServiceProcess]:
    environment = service_environment(
        database_url=new_database("intake"),
        kafka=kafka_bootstrap_servers,
        prefix=unique_prefix("concurrent"),
        kafka_topic_partitions=3,
        http_workers=2,
        rate_limit_per_minute=0,  # one test client plays many residents
    )
    process = ServiceProcess("intake", environment, tmp_path / "intake.log").start().ready()
    try:
        yield process
    finally:
        process.stop()


async def test_concurrent_submissions_keep_every_promise(intake_process: ServiceProcess) -> None:
    environment = intake_process.environment
    kafka = environment["STRATEGIA_KAFKA_BOOTSTRAP_SERVERS"]
    topic = environment["STRATEGIA_KAFKA_TOPIC_PREFIX"] + "intake.submissions.v1"
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=intake_process.url, limits=limits, timeout=60) as client:
        created = await client.post("/v1/consultations", json=consultation_payload(), headers=ADMIN)
        assert created.status_code == 201, created.text
        url = f"/v1/consultations/{created.json()['id']}/submissions"

        def request(key: str | None, **changes: Any) -> tuple[str | None, dict[str, Any]]:
            return key, submission_payload(**changes)

        plain = [request(f"plain-{n}", title=f"Propozycja {n}") for n in range(150)]
        keyless = [request(None, title=f"Bez klucza {n}") for n in range(20)]
        invalid = [request(f"bad-{n}", theme="tourism") for n in range(30)]
        # The same request sent four times at once: one submission, four equal answers.
        repeated = [
            request(f"again-{n}", title=f"Powtórka {n}") for n in range(10) for _ in range(4)
        ]
        # One key, two different requests at once: one wins, the other is refused.
        clashing = [
            request(f"clash-{n}", title=f"Wersja {version}") for n in range(5) for version in "AB"
        ]
        requests = plain + keyless + invalid + repeated + clashing
        random.shuffle(requests)

        async def send(key: str | None, payload: dict[str, Any]) -> httpx.Response:
            headers = {"Idempotency-Key": key} if key else {}
            return await client.post(url, json=payload, headers=headers)

        answers = await asyncio.gather(*(send(key, payload) for key, payload in requests))

    by_key: dict[str, list[httpx.Response]] = {}
    for (key, _), answer in zip(requests, answers, strict=True):
        assert answer.status_code in (202, 422), answer.text
        by_key.setdefault(key or f"none-{uuid.uuid4()}", []).append(answer)
    accepted = [a for a in answers if a.status_code == 202]
    assert all(
        a.json()["error"] in ("validation_failed", "idempotency_key_reused")
        for a in answers
        if a.status_code == 422
    )
    for n in range(30):
        assert [a.status_code for a in by_key[f"bad-{n}"]] == [422]
    for n in range(10):
        same = by_key[f"again-{n}"]
        assert [a.status_code for a in same] == [202] * 4
        assert len({a.json()["receipt"]["number"] for a in same}) == 1
        assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in same) == 3
    for n in range(5):
        assert sorted(a.status_code for a in by_key[f"clash-{n}"]) == [202, 422]

    submissions = {a.json()["id"]: a.json()["receipt"]["number"] for a in accepted}
    expected = 150 + 20 + 10 + 5
    assert len(submissions) == expected
    prefix = next(iter(submissions.values())).split("-")[0]
    assert sorted(submissions.values()) == [f"{prefix}-{n:05d}" for n in range(1, expected + 1)]

    database = await asyncpg.connect(environment["STRATEGIA_DATABASE_URL"])
    try:
        stored = await database.fetch("SELECT id, receipt_number FROM submissions")
        assert {str(row["id"]): row["receipt_number"] for row in stored} == submissions

        async def outbox_drained() -> bool:
            return await database.fetchval("SELECT count(*) FROM outbox") == 0

        await wait_for(outbox_drained, "the outbox to drain")
    finally:
        await database.close()
    # Everything is on the topic now; it holds one event per accepted submission, no more.
    events = await read_topic(kafka, topic, until=count(expected))
    assert await end_offset(kafka, topic) == expected
    published = {
        body(e)["data"]["submission_id"]: body(e)["data"]["receipt_number"] for e in events
    }
    assert published == submissions


async def test_the_worker_processes_share_the_connections(
    intake_process: ServiceProcess,
) -> None:
    """Keep-alive clients (a reverse proxy, a load generator) open their connections at
    once. Each worker listens on a socket of its own, so the kernel spreads them: on one
    shared socket the first worker to wake accepted the whole burst."""
    workers = worker_pids(intake_process)
    assert len(workers) == 2

    async def both_listening() -> bool:  # a worker listens once its app has started
        return all(tcp_sockets(pid, intake_process.port, LISTENING) == 1 for pid in workers)

    await wait_for(both_listening, "both workers to listen")
    clients = [socket.create_connection(("127.0.0.1", intake_process.port)) for _ in range(32)]
    try:
        for client in clients:
            client.sendall(b"GET /health/live HTTP/1.1\r\nHost: intake\r\n\r\n")
        for client in clients:
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
        held = {pid: tcp_sockets(pid, intake_process.port, ESTABLISHED) for pid in workers}
    finally:
        for client in clients:
            client.close()
    assert sum(held.values()) == 32
    assert all(count > 0 for count in held.values()), held


async def test_a_dead_worker_is_replaced_and_a_killed_supervisor_takes_its_workers_along(
    intake_process: ServiceProcess,
) -> None:
    first, second = worker_pids(intake_process)
    os.kill(first, signal.SIGKILL)

    async def replaced() -> bool:
        workers = worker_pids(intake_process)
        return len(workers) == 2 and first not in workers and second in workers

    await wait_for(replaced, "the supervisor to start another worker")
    await asyncio.to_thread(intake_process.ready)
    workers = worker_pids(intake_process)

    intake_process.kill()  # SIGKILL: the supervisor cannot stop its workers itself

    async def gone() -> bool:
        return not any(map(process_exists, workers))

    await wait_for(gone, "the workers to stop with their supervisor")
    async with httpx.AsyncClient(base_url=intake_process.url, timeout=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/health/live")


def worker_pids(service: ServiceProcess) -> list[int]:
    """The worker processes of a service run with several (its supervisor's children)."""
    assert service.process is not None
    parent = service.process.pid
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [
        int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def process_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


# TCP states in /proc/net/tcp.
ESTABLISHED = "01"
LISTENING = "0A"


def tcp_sockets(pid: int, port: int, state: str) -> int:
    """The process's open TCP sockets on local `port` in `state`."""
    inodes = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            target = os.readlink(descriptor)
            if target.startswith("socket:["):
                inodes.add(target.removeprefix("socket:[").removesuffix("]"))
    found = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            found += local_port == port and fields[3] == state and fields[9] in inodes
    return found


async def test_two_schedulers_never_take_the_same_due_opening(
    new_database: DatabaseFactory,
) -> None:
    """Every worker process and replica runs the window scheduler; while one holds a due
    consultation, the others skip it (`FOR UPDATE SKIP LOCKED`) instead of announcing it
    a second time or waiting for it."""
    dsn = await new_database.create("intake")
    await apply_migrations(dsn, MIGRATIONS)
    pool = await create_pool(dsn)
    outbox = OutboxWriter("intake", TopicNames(""))
    now = datetime.now(UTC)
    try:
        await add_consultation(
            pool, outbox, opens_at=now - timedelta(minutes=1), closes_at=now + timedelta(days=1)
        )
        async with PostgresIntakeUnitOfWork(pool, outbox) as first:
            assert len(await first.consultations.due_openings(now)) == 1
            async with PostgresIntakeUnitOfWork(pool, outbox) as second:
                async with asyncio.timeout(10):  # a plain FOR UPDATE would wait here
                    assert await second.consultations.due_openings(now) == []
    finally:
        await pool.close()


async def test_a_window_closed_while_a_batch_was_checked_refuses_the_batch(
    new_database: DatabaseFactory,
) -> None:
    """A group commit checks its batch against an unlocked read of the consultation and
    takes the lock only with the counter update. When the window closes in between (the
    closing transaction held the lock while the batch was checked), the update matches
    nothing, the batch is checked again under the lock and refused as the closed window
    says: no receipt number is taken, no submission, key or event is written."""
    dsn = await new_database.create("intake")
    await apply_migrations(dsn, MIGRATIONS)
    pool = await create_pool(dsn)
    outbox = OutboxWriter("intake", TopicNames(""))
    now = datetime.now(UTC)
    service = IntakeService(zone=ZoneInfo("Europe/Warsaw"))

    def unit_of_work() -> PostgresIntakeUnitOfWork:
        return PostgresIntakeUnitOfWork(pool, outbox)

    closer = await asyncpg.connect(dsn)
    try:
        consultation = await add_consultation(
            pool, outbox, opens_at=now - timedelta(days=1), closes_at=now + timedelta(days=1)
        )
        closing = closer.transaction()
        await closing.start()
        await closer.execute(
            "UPDATE consultations SET closes_at = $2 WHERE id = $1",
            consultation.id,
            now - timedelta(minutes=1),
        )
        batcher = SubmissionBatcher(service, unit_of_work)
        commands = [
            Submit(
                consultation_id=consultation.id,
                content=SubmissionContent.model_validate(
                    submission_payload(title=f"Propozycja {n}")
                ),
                channel=Channel.WEB,
                idempotency_key=f"late-{n}",
            )
            for n in range(3)
        ]
        answers = asyncio.gather(
            *(batcher.submit(command) for command in commands), return_exceptions=True
        )

        await wait_until_blocked_by(closer, "the batch to wait for the closing transaction")
        await closing.commit()
        outcomes = await asyncio.wait_for(answers, 30)
        assert [type(outcome) for outcome in outcomes] == [OutsideWindow] * 3
        assert batcher.transactions == 1  # one batch, not retried one by one
        counts = await closer.fetchrow(
            "SELECT (SELECT last_receipt_seq FROM consultations) AS sequence,"
            " (SELECT count(*) FROM submissions) AS submissions,"
            " (SELECT count(*) FROM idempotency_keys) AS keys,"
            " (SELECT count(*) FROM person_keys) AS person_keys,"
            " (SELECT count(*) FROM outbox WHERE topic LIKE '%submissions%') AS events"
        )
        assert dict(counts) == {
            "sequence": 0,
            "submissions": 0,
            "keys": 0,
            "person_keys": 0,
            "events": 0,
        }
    finally:
        await closer.close()
        await pool.close()


async def add_consultation(
    pool: asyncpg.Pool, outbox: OutboxWriter, *, opens_at: datetime, closes_at: datetime
) -> Consultation:
    """A consultation with the given window, stored straight through the repository."""
    async with PostgresIntakeUnitOfWork(pool, outbox) as setup:
        consultation = await setup.consultations.add(
            uuid.uuid4(),
            CreateConsultation(
                title="Konsultacje",
                description="Okno ustawione przez test",
                kind=ConsultationKind.GENERAL,
                opens_at=opens_at,
                closes_at=closes_at,
                themes=("social",),
            ),
        )
        await setup.commit()
    return consultation
