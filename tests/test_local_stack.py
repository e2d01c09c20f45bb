"""The local stack and the test infrastructure really work: real processes, nothing mocked.

``test_make_up_and_down`` runs ``make up`` / ``make down`` in a private run dir on free ports,
so it neither disturbs nor depends on a developer's own ``make up`` or the session's fixtures.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import smtplib
import subprocess
import tempfile
import uuid
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError

from devtools.kafka_auth import admin_options
from devtools.proc import DevtoolsError, free_ports, pid_alive, port_open
from devtools.pytest_plugin import DatabaseFactory
from devtools.smtp_sink import SmtpSink
from devtools.stack import COMPONENTS, SERVICES, TOKEN_NAMES, StackConfig, service_env
from shared.contracts.topics import Topic
from shared.platform.kafka_access import password_variable
from shared.platform.kafka_security import KafkaConnection

ROOT = Path(__file__).resolve().parents[1]


def _make(target: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    assert make is not None, "GNU make is required"
    return subprocess.run(
        [make, "--no-print-directory", "-C", str(ROOT), target],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def the_stack_broker_enforces_acls(kafka: str, credentials: dict[str, str]) -> None:
    notifications = KafkaConnection(
        kafka,
        "SASL_PLAINTEXT",
        "notifications",
        credentials[password_variable("notifications")],
    )
    producer = AIOKafkaProducer(**notifications.client_options())
    await producer.start()
    try:
        # its own topic: allowed; intake's: refused (the forged receipt of the issue)
        await producer.send_and_wait(Topic.NOTIFICATIONS_DELIVERIES, b"{}")
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(Topic.INTAKE_SUBMISSIONS, b"{}")
    finally:
        await producer.stop()
    anonymous = AIOKafkaProducer(**KafkaConnection(kafka, "PLAINTEXT").client_options())
    with pytest.raises(KafkaConnectionError):
        await anonymous.start()
    await anonymous.stop()


@pytest.mark.timeout(900)
def test_make_up_and_down() -> None:
    # Not tmp_path: it sits under a 0700 directory, and the PostgreSQL server does not run as
    # root; 0711 lets it reach its data dir without relocation.
    run_dir = Path(tempfile.mkdtemp(prefix="strategia-stack-test-"))
    run_dir.chmod(0o711)
    names = [
        "KAFKA",
        "KAFKA_CONTROLLER",
        "PG",
        "SMTP",
        *(service.upper() for service in SERVICES),
        *(f"{service.upper()}_2" for service in SERVICES),  # the second instances
        "WEB",
    ]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    env = {
        **os.environ,
        "STRATEGIA_RUN_DIR": str(run_dir),
        "STRATEGIA_REPLICAS": "2",
        **{f"STRATEGIA_{name}_PORT": str(port) for name, port in ports.items()},
    }
    components = StackConfig.from_env(env).components()
    assert len(components) == len(COMPONENTS) + len(SERVICES)
    # Make sure the test's own settings cannot leak into the stack's services.
    env.pop("STRATEGIA_DATABASE_URL", None)
    try:
        up = _make("up", env, timeout=600)
        assert up.returncode == 0, f"make up failed:\n{up.stdout}\n{up.stderr}"

        pids = {c: int((run_dir / f"{c}.pid").read_text()) for c in components}
        assert all(pid_alive(pid) for pid in pids.values()), pids
        for service in SERVICES:
            for name in (service.upper(), f"{service.upper()}_2"):
                port = ports[name]
                response = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=10)
                assert response.status_code == 200, (name, response.text)
        assert f"{ports['INTAKE']}, {ports['INTAKE_2']}" in up.stdout  # replica ports printed
        web = httpx.get(f"http://127.0.0.1:{ports['WEB']}/", timeout=10)
        assert web.status_code == 200 and 'lang="pl"' in web.text
        assert f"http://127.0.0.1:{ports['WEB']}" in up.stdout
        tokens = (run_dir / "dev-tokens.env").read_text()
        for name in ("ADMIN_TOKEN", "COORDINATOR_TOKEN", "CLERK_TOKEN"):
            assert f"{name}=" in tokens
        # The broker runs secured: each service is its own principal, passwords kept 0600.
        credentials_file = run_dir / "kafka-credentials.env"
        assert credentials_file.stat().st_mode & 0o777 == 0o600
        credentials = dict(
            line.split("=", 1) for line in credentials_file.read_text().splitlines() if line
        )
        kafka = f"127.0.0.1:{ports['KAFKA']}"
        asyncio.run(the_stack_broker_enforces_acls(kafka, credentials))

        # A second `up` leaves the running stack alone.
        again = _make("up", env, timeout=300)
        assert again.returncode == 0, f"second make up failed:\n{again.stdout}\n{again.stderr}"
        assert {c: int((run_dir / f"{c}.pid").read_text()) for c in components} == pids

        down = _make("down", env, timeout=300)
        assert down.returncode == 0, f"make down failed:\n{down.stdout}\n{down.stderr}"
        alive = {c: pid for c, pid in pids.items() if pid_alive(pid)}
        assert not alive, f"still running after make down: {alive}"
        listening = {name: port for name, port in ports.items() if port_open(port)}
        assert not listening, f"ports still open after make down: {listening}"
        assert not list(run_dir.glob("*.pid"))
        assert (run_dir / "postgres" / "PG_VERSION").is_file(), "data must survive make down"
    finally:
        _make("clean", env, timeout=300)
        shutil.rmtree(run_dir, ignore_errors=True)


def test_replicas_get_their_own_ports() -> None:
    config = StackConfig.from_env({"STRATEGIA_REPLICAS": "3", "STRATEGIA_NEWS_3_PORT": "9999"})
    ports = {component: port for component, _, port in config.instances()}
    assert ports["intake"] == 8001
    assert ports["intake-2"] == 8101
    assert ports["notifications-3"] == 8203
    assert ports["news-3"] == 9999
    assert len(set(ports.values())) == 12
    assert [service for _, service, _ in config.instances()] == [*SERVICES] * 3
    with pytest.raises(DevtoolsError):
        StackConfig.from_env({"STRATEGIA_REPLICAS": "0"})


def test_only_notifications_gets_the_subscription_link_secret() -> None:
    config = StackConfig.from_env({})
    tokens = {name: f"value-of-{name}" for name in TOKEN_NAMES}
    for service in SERVICES:
        env = service_env(config, service, tokens)
        assert env["STRATEGIA_ADMIN_TOKEN"] == "value-of-ADMIN_TOKEN"
        holds_secret = env.get("STRATEGIA_SUBSCRIPTION_LINK_SECRET") == (
            "value-of-SUBSCRIPTION_LINK_SECRET"
        )
        assert holds_secret == (service == "notifications"), service


# --- the session fixtures every integration test relies on -----------------------------------


async def test_kafka_fixture_round_trip(kafka_bootstrap_servers: str) -> None:
    topic = f"devtools-check-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(**admin_options(kafka_bootstrap_servers))
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"ping", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        **admin_options(kafka_bootstrap_servers),
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=60)
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (b"k", b"ping")


async def test_new_database_gives_isolated_owned_databases(new_database: DatabaseFactory) -> None:
    first = new_database("intake")
    second = await new_database.create("intake")
    assert first != second
    conn = await asyncpg.connect(first)
    try:
        user, db = await conn.fetchrow("SELECT current_user, current_database()")
        assert user == db and db.startswith("intake_")
        await conn.execute("CREATE TABLE t (x int)")  # owner may create in public
    finally:
        await conn.close()
    conn = await asyncpg.connect(second)
    try:
        assert await conn.fetchval("SELECT to_regclass('t')") is None
    finally:
        await conn.close()


def test_smtp_sink_stores_messages_and_simulates_an_outage(smtp_sink: SmtpSink) -> None:
    message = EmailMessage()
    message["From"] = "strategia@localhost"
    message["To"] = "mieszkaniec@example.org"
    message["Subject"] = "Zgłoszenie przyjęte"
    message.set_content("Dziękujemy za zgłoszenie.")
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.send_message(message)

    smtp_sink.stop()
    with pytest.raises(OSError):
        smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=5)
    smtp_sink.start()
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as client:
        client.send_message(message)

    received = smtp_sink.wait_for_messages(2)
    assert [m["Subject"] for m in received] == ["Zgłoszenie przyjęte"] * 2
    assert received[0].get_content().strip() == "Dziękujemy za zgłoszenie."
