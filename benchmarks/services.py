"""The services under test as real OS processes (`python -m <service>`), as ops run them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from devtools.postgres import acreate_database
from devtools.testing import ServiceProcess, service_environment

ADMIN_TOKEN = f"bench-admin-{uuid.uuid4().hex}"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Infrastructure:
    kafka: str
    admin_dsn: str
    smtp_host: str
    smtp_port: int
    logs: Path


@dataclass
class Deployment:
    """One namespace (topic prefix) with fresh databases: the services started in it."""

    infra: Infrastructure
    prefix: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:8]}.")
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    async def start(
        self,
        service: str,
        *,
        workers: int = 1,
        replica_of: ServiceProcess | None = None,
        **settings: Any,
    ) -> ServiceProcess:
        """Start `service` with a fresh database, or as one more replica of `replica_of`
        (its database, topics and consumer group)."""
        database_url = (
            replica_of.environment["STRATEGIA_DATABASE_URL"]
            if replica_of is not None
            else await acreate_database(
                self.infra.admin_dsn, f"bench_{service}_{uuid.uuid4().hex[:8]}"
            )
        )
        environment = service_environment(
            database_url=database_url,
            kafka=self.infra.kafka,
            prefix=self.prefix,
            kafka_topic_partitions=3,
            log_level="WARNING",
            log_json=True,
            http_workers=workers,
            admin_token=ADMIN_TOKEN,
            **settings,
        )
        if service == "notifications":
            environment["STRATEGIA_SMTP_HOST"] = self.infra.smtp_host
            environment["STRATEGIA_SMTP_PORT"] = str(self.infra.smtp_port)
        name = service
        while name in self.processes:  # a replica: notifications-2, ...
            name = f"{service}-{int(name.rpartition('-')[2]) + 1 if name != service else 2}"
        log_file = self.infra.logs / f"{self.prefix}{name}.log"
        process = ServiceProcess(service, environment, log_file).start()
        self.processes[name] = process
        process.ready(timeout=120)
        return process

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            with contextlib.suppress(Exception):
                process.stop()
        self.processes.clear()


@contextlib.contextmanager
def deployment(infra: Infrastructure) -> Iterator[Deployment]:
    running = Deployment(infra)
    try:
        yield running
    finally:
        running.stop()


def open_consultation(intake_url: str) -> str:
    """A consultation open now for a day; returns its submissions path."""
    now = datetime.now(UTC)
    response = httpx.post(
        f"{intake_url}/v1/consultations",
        headers=ADMIN,
        json={
            "title": "Benchmark",
            "description": "Konsultacje do pomiarów",
            "kind": "general",
            "opens_at": (now - timedelta(hours=1)).isoformat(),
            "closes_at": (now + timedelta(days=1)).isoformat(),
        },
        timeout=30,
    )
    response.raise_for_status()
    return f"/v1/consultations/{response.json()['id']}/submissions"
