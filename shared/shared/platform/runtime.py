"""The service runtime: wires database, migrations, Kafka, outbox relay and HTTP.

A service builds one `ServiceRuntime`, registers its subscriptions and background workers
on it, and hands `create_http_app` its routers. Subscriptions are registered before the
broker starts (FastStream requires it); the database pool exists only after start-up, so
handlers receive connections from the runtime rather than from import-time globals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Union

import asyncpg
import uvicorn
from fastapi import APIRouter, FastAPI, Response, status
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from shared.contracts.envelope import Envelope, EventPayload
from shared.contracts.topics import dead_letter_topic
from shared.platform.database import apply_migrations, create_pool, pending_migrations
from shared.platform.http import (
    TokenAuth,
    install_correlation_middleware,
    install_error_handlers,
)
from shared.platform.logging import configure_logging
from shared.platform.messaging import DeadLetters, EventConsumer, KafkaPublisher
from shared.platform.outbox import OutboxRelay
from shared.platform.settings import ServiceSettings
from shared.platform.topics_admin import ensure_topics

log = logging.getLogger(__name__)

Worker = Callable[["ServiceRuntime"], Awaitable[None]]


def envelope_schema(models: Sequence[type[EventPayload]]) -> Any:
    """The wire format of a topic: the envelope around any of its payloads."""
    variants = tuple(Envelope[model] for model in models)  # type: ignore[valid-type]
    return variants[0] if len(variants) == 1 else Union[variants]  # noqa: UP007


class ServiceRuntime:
    def __init__(
        self,
        *,
        name: str,
        settings: ServiceSettings,
        migrations: Path,
        version: str = "0.1.0",
        consumer_name: str | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.migrations = migrations
        self.version = version
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            client_id=name,
            enable_idempotence=True,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            logger=logging.getLogger(f"{name}.kafka"),
        )
        self.publisher = KafkaPublisher(self.broker)
        self.consumer = EventConsumer(
            self.broker,
            consumer=consumer_name or name,
            pool=lambda: self.pool,
            dead_letters=DeadLetters(self.publisher, consumer_name or name),
            max_attempts=settings.consumer_max_attempts,
            retry_backoff=settings.consumer_retry_backoff_seconds,
            max_backoff=settings.consumer_max_backoff_seconds,
        )
        self.auth = TokenAuth(settings)
        self._pool: asyncpg.Pool | None = None
        self.relay: OutboxRelay | None = None
        self._workers: list[tuple[str, Worker]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.published_topics: list[str] = []
        self.started = False

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{self.name} has not started: no database pool yet")
        return self._pool

    def document_publication(
        self, topic: str, models: Sequence[type[EventPayload]], description: str
    ) -> None:
        """Declare what the service publishes (through the outbox) for its AsyncAPI file."""
        self.published_topics.append(topic)
        names = ", ".join(model.__name__ for model in models)
        self.broker.publisher(
            topic,
            title=f"{topic}:{self.name}",
            description=f"{description} ({names})",
            schema=envelope_schema(models),
        )

    def add_worker(self, name: str, worker: Worker) -> None:
        """A long-running coroutine started after the broker, cancelled on shutdown."""
        self._workers.append((name, worker))

    async def start(self) -> None:
        configure_logging(self.name, self.settings.log_level, json_format=self.settings.log_json)
        await apply_migrations(self.settings.database_url, self.migrations)
        self._pool = await create_pool(
            self.settings.database_url, max_size=self.settings.database_pool_size
        )
        await ensure_topics(
            self.settings.kafka_bootstrap_servers,
            [
                *self.published_topics,
                *self.consumer.topics,
                *(dead_letter_topic(topic) for topic in self.consumer.topics),
            ],
            partitions=self.settings.kafka_topic_partitions,
            replication=self.settings.kafka_topic_replication,
        )
        await self.broker.start()
        self.relay = OutboxRelay(
            self._pool,
            self.publisher,
            batch_size=self.settings.outbox_batch_size,
            poll_interval=self.settings.outbox_poll_interval_seconds,
            max_backoff=self.settings.outbox_max_backoff_seconds,
        )
        self.relay.start()
        for name, worker in self._workers:
            self._tasks.append(asyncio.create_task(self._supervise(name, worker), name=name))
        self.started = True
        log.info("service started", extra={"topics": self.consumer.topics})

    async def _supervise(self, name: str, worker: Worker) -> None:
        """Restart a crashed worker after a pause instead of letting it die silently."""
        while True:
            try:
                await worker(self)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker crashed; restarting", extra={"worker": name})
                await asyncio.sleep(2.0)

    async def stop(self) -> None:
        self.started = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.relay is not None:
            await self.relay.stop()
        await self.broker.stop()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def readiness(self) -> dict[str, Any]:
        checks: dict[str, Any] = {"started": self.started}
        try:
            async with self.pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
                pending = await pending_migrations(conn, self.migrations)
            checks["database"] = True
            checks["migrations"] = not pending
        except Exception as error:
            checks["database"] = False
            checks["migrations"] = False
            checks["database_error"] = repr(error)
        try:
            checks["kafka"] = await self.broker.ping(timeout=2.0)
        except Exception as error:
            checks["kafka"] = False
            checks["kafka_error"] = repr(error)
        return checks

    def asyncapi(self, description: str) -> AsyncAPI:
        return AsyncAPI(
            self.broker,
            title=f"Strategia {self.name}",
            version=self.version,
            description=description,
            schema_version="3.0.0",
        )


def health_router(runtime: ServiceRuntime) -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live")
    async def live() -> dict[str, str]:
        return {"status": "ok", "service": runtime.name}

    @router.get("/ready")
    async def ready(response: Response) -> dict[str, Any]:
        checks = await runtime.readiness()
        is_ready = all(checks.get(key) is True for key in ("started", "database", "migrations"))
        is_ready = is_ready and checks.get("kafka") is True
        if not is_ready:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"status": "ready" if is_ready else "not_ready", "checks": checks}

    return router


def create_http_app(
    runtime: ServiceRuntime, routers: Sequence[APIRouter], *, description: str
) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=f"Strategia {runtime.name}",
        version=runtime.version,
        description=description,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_correlation_middleware(app)
    app.include_router(health_router(runtime))
    for router in routers:
        app.include_router(router)
    return app


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run the service in the foreground (`python -m <service>`)."""
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
