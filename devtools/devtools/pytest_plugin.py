"""pytest fixtures giving tests a real Kafka broker, a real PostgreSQL server and an SMTP sink.

Kafka and PostgreSQL come, in this order of preference, from:

1. ``STRATEGIA_TEST_KAFKA_BOOTSTRAP_SERVERS`` / ``STRATEGIA_TEST_POSTGRES_DSN`` (an admin DSN:
   it must be allowed to create roles and databases);
2. testcontainers, when a Docker engine answers (``STRATEGIA_TEST_DOCKER=0`` skips this;
   PostgreSQL only: Kafka must run with SASL and ACLs, see ``devtools.kafka_auth``);
3. local processes (devtools.kafka / devtools.postgres) on free ports with throw-away data, so
   ``make test`` runs next to ``make up``.

Each is started once per session and stopped at its end. Nothing is ever skipped or mocked:
when no source works, the fixture raises and says what is missing.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from devtools.kafka import start_kafka
from devtools.kafka_auth import register_admin
from devtools.postgres import acreate_database, create_database, drop_database, start_postgres
from devtools.proc import free_ports
from devtools.smtp_sink import SmtpSink

__all__ = [
    "DatabaseFactory",
    "SmtpSink",
    "kafka_bootstrap_servers",
    "new_database",
    "postgres_admin_dsn",
    "smtp_sink",
]


@functools.cache
def docker_available() -> bool:
    """True when a Docker engine answers a ping within a few seconds (never hangs longer)."""
    if os.environ.get("STRATEGIA_TEST_DOCKER", "").strip().lower() in {"0", "false", "no"}:
        return False
    try:
        # Via importlib: the docker SDK ships no type stubs (it comes with testcontainers).
        docker: Any = importlib.import_module("docker")
        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False  # no SDK, no socket, engine down: all mean "no Docker"


@contextlib.contextmanager
def _throwaway_dir(kind: str) -> Iterator[Path]:
    # Not pytest's tmp_path: /tmp/pytest-of-<user> is 0700, and when we are root the PostgreSQL
    # server runs as another user, who must be able to traverse to its data dir.
    path = Path(tempfile.mkdtemp(prefix=f"strategia-test-{kind}-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _missing(what: str, errors: list[str]) -> RuntimeError:
    details = "\n".join(f"  - {error}" for error in errors)
    return RuntimeError(
        f"no {what} available for the tests; tried:\n{details}\n"
        "Run `make install` (installs Java, Maven and PostgreSQL as root), or point the tests "
        f"at a running server with the STRATEGIA_TEST_* environment variables."
    )


@contextlib.contextmanager
def _postgres_container() -> Iterator[str]:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers < 4.10
        from testcontainers.postgres import PostgresContainer
    container: Any = PostgresContainer("postgres:16-alpine", driver=None)
    container.start()
    try:
        yield str(container.get_connection_url())
    finally:
        container.stop()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _teardown_on_sigterm() -> None:
    """Make SIGTERM (e.g. from ``timeout pytest``) run the session teardown like Ctrl-C does.

    Otherwise the interpreter dies at once and our detached Kafka/PostgreSQL keep running.
    """
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _interrupt)


@contextlib.contextmanager
def local_kafka() -> Iterator[str]:
    """A secured broker process (SASL SCRAM-SHA-512, ACLs) on free ports with data in a temp
    dir; yields its bootstrap servers and registers its admin (`devtools.kafka_auth`)."""
    _teardown_on_sigterm()
    with _throwaway_dir("kafka") as tmp:
        port, controller_port = free_ports(2)
        broker = start_kafka(
            tmp / "data",
            port,
            controller_port,
            tmp / "kafka.log",
            admin_password=secrets.token_hex(24),
        )
        register_admin(broker.admin())
        try:
            yield broker.bootstrap_servers
        finally:
            broker.stop()


@contextlib.contextmanager
def local_postgres() -> Iterator[str]:
    """A PostgreSQL process on a free port with a temp cluster; yields its admin DSN."""
    _teardown_on_sigterm()
    with _throwaway_dir("postgres") as tmp:
        server = start_postgres(
            tmp / "data", free_ports(1)[0], tmp / "postgres.log", fast_unsafe=True
        )
        try:
            yield server.admin_dsn
        finally:
            server.stop()


_Source = Callable[[], contextlib.AbstractContextManager[str]]


def _provide(what: str, env_var: str, container: _Source | None, local: _Source) -> Iterator[str]:
    """Shared resolution order of the session fixtures (see the module docstring)."""
    configured = os.environ.get(env_var, "").strip()
    if configured:
        yield configured
        return
    errors: list[str] = []
    sources: list[tuple[str, _Source]] = []
    if container is None:
        errors.append("testcontainers: not used (it cannot run this broker's security)")
    elif docker_available():
        sources.append(("testcontainers", container))
    else:
        errors.append("testcontainers: no Docker engine answered")
    sources.append(("local process", local))
    for name, factory in sources:
        stack = contextlib.ExitStack()
        try:
            value = stack.enter_context(factory())
        except Exception as exc:
            stack.close()
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        with stack:
            yield value
        return
    errors.insert(0, f"{env_var}: not set")
    raise _missing(what, errors)


@pytest.fixture(scope="session")
def kafka_bootstrap_servers() -> Iterator[str]:
    """``host:port`` of a real, secured Kafka broker shared by the whole session (its admin:
    `devtools.kafka_auth.admin_connection`). testcontainers' Kafka module starts a broker
    without SASL and ACLs, so Kafka comes from the environment or a local process."""
    yield from _provide("Kafka broker", "STRATEGIA_TEST_KAFKA_BOOTSTRAP_SERVERS", None, local_kafka)


@pytest.fixture(scope="session")
def postgres_admin_dsn() -> Iterator[str]:
    """Superuser DSN of a real PostgreSQL server shared by the whole session."""
    yield from _provide(
        "PostgreSQL server", "STRATEGIA_TEST_POSTGRES_DSN", _postgres_container, local_postgres
    )


class DatabaseFactory:
    """Creates fresh databases, each owned by its own new role; drops them at teardown.

    ``factory()`` / ``factory("intake")`` return a DSN (role with a random password) like
    ``postgresql://intake_1a2b...:<pw>@127.0.0.1:<port>/intake_1a2b...``. Sync calls work in sync
    and async tests alike (the work runs on a private thread and loop); in async code
    ``await factory.create()`` avoids blocking the event loop.
    """

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self.names: list[str] = []

    def _new_name(self, prefix: str) -> str:
        clean = re.sub(r"[^a-z0-9_]", "_", prefix.lower())[:40] or "test"
        if not clean[0].isalpha():
            clean = f"t_{clean}"
        name = f"{clean}_{uuid.uuid4().hex[:12]}"
        self.names.append(name)
        return name

    def __call__(self, prefix: str = "test") -> str:
        return create_database(self.admin_dsn, self._new_name(prefix))

    async def create(self, prefix: str = "test") -> str:
        return await acreate_database(self.admin_dsn, self._new_name(prefix))

    def drop_all(self) -> None:
        # WITH (FORCE) also disconnects pools a test forgot to close.
        for name in reversed(self.names):
            with contextlib.suppress(Exception):
                drop_database(self.admin_dsn, name)
        self.names.clear()


@pytest.fixture
def new_database(postgres_admin_dsn: str) -> Iterator[DatabaseFactory]:
    """Factory of isolated databases (see :class:`DatabaseFactory`)."""
    factory = DatabaseFactory(postgres_admin_dsn)
    try:
        yield factory
    finally:
        factory.drop_all()


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    """An in-process SMTP sink on a free port: ``.host``, ``.port``, ``.messages()``,
    ``.wait_for_messages(n)``, and ``.stop()`` / ``.start()`` to simulate an outage."""
    sink = SmtpSink(tmp_path / "mail", "127.0.0.1", free_ports(1)[0])
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()
