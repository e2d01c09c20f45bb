"""The service runtime: wires database, migrations, Kafka, outbox relay and HTTP.

Every service is wired the same way. Its `bootstrap.py` declares

    SERVICE = ServiceDefinition(name=..., description=..., settings=<Settings>, build=build)

where `build(settings) -> Service` creates one `ServiceRuntime` (with the service's unit of
work class), registers subscriptions and background workers on it, and hands
`create_http_app` its routers. `python -m <service>` is `main("<service>")`. Subscriptions
are registered before the broker starts (FastStream requires it); the database pool exists
only after start-up, so handlers receive units of work from the runtime rather than
import-time globals.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, Union

import asyncpg
import uvicorn
from fastapi import APIRouter, FastAPI, Response, status
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from shared.contracts.envelope import Envelope, EventPayload
from shared.contracts.registry import TOPIC_EVENTS
from shared.contracts.topics import (
    Topic,
    TopicNames,
    dead_letter_config,
    dead_letter_topic,
    topic_config,
)
from shared.platform.database import (
    Migrations,
    apply_migrations,
    create_pool,
    pending_migrations,
)
from shared.platform.docs import install_docs
from shared.platform.http import (
    TokenAuth,
    error_responses,
    install_correlation_middleware,
    install_error_handlers,
)
from shared.platform.http_guards import (
    BodyLimit,
    RateLimiter,
    SecurityHeaders,
    install_unavailable_handler,
)
from shared.platform.kafka_access import service_access
from shared.platform.logging import configure_logging
from shared.platform.messaging import DeadLetters, EventConsumer, KafkaPublisher
from shared.platform.outbox import OutboxRelay, OutboxWriter
from shared.platform.settings import ServiceSettings
from shared.platform.topics_admin import ensure_topics
from shared.platform.unit_of_work import PostgresUnitOfWork
from shared.platform.workers import serve_in_processes

log = logging.getLogger(__name__)

U = TypeVar("U", bound=PostgresUnitOfWork)
Worker = Callable[[], Awaitable[None]]


def envelope_schema(models: Sequence[type[EventPayload]]) -> Any:
    """The wire format of a topic: the envelope around any of its payloads."""
    variants = tuple(Envelope[model] for model in models)  # type: ignore[valid-type]
    return variants[0] if len(variants) == 1 else Union[variants]  # noqa: UP007


class ConfigurationError(RuntimeError):
    """The service is configured in a way it must not run with."""


class ServiceRuntime(Generic[U]):
    def __init__(
        self,
        *,
        name: str,
        settings: ServiceSettings,
        migrations: Migrations,
        unit_of_work: Callable[[asyncpg.Pool, OutboxWriter], U],
        version: str = "0.1.0",
    ) -> None:
        self.name = name
        self.settings = settings
        self.migrations = migrations
        self.version = version
        self.topic_names = TopicNames(settings.kafka_topic_prefix)
        self.outbox = OutboxWriter(name, self.topic_names)
        self._unit_of_work_class = unit_of_work
        # Every client of the service (consumers, the relay's and the dead letters' producer,
        # the topic admin) connects as the service's own principal.
        self.kafka = settings.kafka_connection(name)
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            security=self.kafka.faststream_security() if self.kafka.password else None,
            client_id=name,
            # Idempotence needs a producer id, which the broker grants only to a principal
            # allowed to write somewhere; a service with nothing to write (news today) has
            # no producer rights at all, and sends nothing.
            enable_idempotence=bool(service_access(name).writes),
            ack_policy=AckPolicy.NACK_ON_ERROR,
            logger=logging.getLogger(f"{name}.kafka"),
        )
        self.publisher = KafkaPublisher(self.broker)
        self.consumer = EventConsumer[U](
            self.broker,
            consumer=name,
            group_id=self.topic_names.group(name),
            unit_of_work=self.unit_of_work,
            pool=lambda: self.pool,
            dead_letters=DeadLetters(
                self.publisher, name, max_bytes=settings.dead_letter_max_bytes
            ),
            topic_names=self.topic_names,
            max_attempts=settings.consumer_max_attempts,
            retry_backoff=settings.consumer_retry_backoff_seconds,
            max_backoff=settings.consumer_max_backoff_seconds,
            batch_max_records=settings.consumer_batch_max_records,
            batch_wait_ms=settings.consumer_batch_wait_ms,
            prerequisite_wait=settings.consumer_prerequisite_wait_seconds,
        )
        self.auth = TokenAuth(settings)
        self.rate_limiter = RateLimiter(lambda: self.pool, self.auth)
        self._pool: asyncpg.Pool | None = None
        self.relay: OutboxRelay | None = None
        self._workers: list[tuple[str, Worker]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.published: list[Topic] = []
        self.started = False
        self._refusals: list[str] = []

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{self.name} has not started: no database pool yet")
        return self._pool

    def unit_of_work(self) -> U:
        """A new unit of work on the service's database (open it with `async with`)."""
        return self._unit_of_work_class(self.pool, self.outbox)

    def document_publication(self, topic: Topic, description: str) -> None:
        """Declare a topic the service publishes (through the outbox) for its AsyncAPI file;
        its event types are the ones the registry binds to it."""
        if topic.owner != self.name:
            raise ValueError(f"{self.name} may not publish {topic}: it belongs to {topic.owner}")
        models = TOPIC_EVENTS[topic]
        address = self.topic_names(topic)
        self.published.append(topic)
        names = ", ".join(model.__name__ for model in models)
        self.broker.publisher(
            address,
            title=f"{topic}:{self.name}",
            description=f"{description} ({names})",
            schema=envelope_schema(models),
        )

    def refuse_to_start(self, reason: str) -> None:
        """A setting the service cannot run without (e.g. an unset secret): `start` fails
        saying so. Building the service (its documents, its OpenAPI) still works."""
        self._refusals.append(reason)

    def add_worker(self, name: str, worker: Worker) -> None:
        """A long-running coroutine started after the broker, cancelled on shutdown."""
        self._workers.append((name, worker))

    async def start(self) -> None:
        configure_logging(self.name, self.settings.log_level, json_format=self.settings.log_json)
        if self._refusals:
            raise ConfigurationError(f"{self.name} cannot start: {'; '.join(self._refusals)}")
        self.kafka.check()  # no credentials: fail now, saying which settings are missing
        await apply_migrations(self.settings.database_url, self.migrations)
        self._pool = await create_pool(
            self.settings.database_url, max_size=self.settings.database_pool_size
        )
        await ensure_topics(
            self.kafka,
            self._topics_to_create(),
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
        log.info("service started", extra={"subscribed": self.consumer.subscribed})

    def _topics_to_create(self) -> dict[str, dict[str, str]]:
        wanted = {
            self.topic_names(topic): topic_config(
                topic, compaction_seconds=self.settings.person_keys_compaction_seconds
            )
            for topic in (*self.published, *self.consumer.subscribed)
        }
        for topic in self.consumer.subscribed:
            wanted[dead_letter_topic(self.topic_names(topic))] = dead_letter_config(topic)
        return wanted

    async def _supervise(self, name: str, worker: Worker) -> None:
        """Restart a crashed worker after a pause instead of letting it die silently."""
        while True:
            try:
                await worker()
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
            # The log has the details; a public answer names no internals.
            log.warning("readiness: database check failed", extra={"error": repr(error)})
            checks["database"] = False
            checks["migrations"] = False
        try:
            checks["kafka"] = await self.broker.ping(timeout=2.0)
        except Exception as error:
            log.warning("readiness: Kafka check failed", extra={"error": repr(error)})
            checks["kafka"] = False
        return checks

    def asyncapi(self, description: str) -> AsyncAPI:
        return AsyncAPI(
            self.broker,
            title=f"Strategia {self.name}",
            version=self.version,
            description=description,
            schema_version="3.0.0",
        )


class Liveness(BaseModel):
    status: str
    service: str


class ReadinessChecks(BaseModel):
    started: bool
    database: bool
    migrations: bool
    kafka: bool


class Readiness(BaseModel):
    status: str
    checks: ReadinessChecks


def health_router(runtime: ServiceRuntime[Any]) -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live", response_model=Liveness)
    async def live() -> Liveness:
        return Liveness(status="ok", service=runtime.name)

    @router.get(
        "/ready",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "A dependency is not ready"}},
    )
    async def ready(response: Response) -> Readiness:
        checks = ReadinessChecks.model_validate(await runtime.readiness())
        is_ready = checks.started and checks.database and checks.migrations and checks.kafka
        if not is_ready:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Readiness(status="ready" if is_ready else "not_ready", checks=checks)

    return router


def create_http_app(
    runtime: ServiceRuntime[Any], routers: Sequence[APIRouter], *, description: str
) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    settings = runtime.settings
    app = FastAPI(
        title=f"Strategia {runtime.name}",
        version=runtime.version,
        description=description,
        lifespan=lifespan,
        docs_url=None,  # served with local assets by install_docs, or not at all
        redoc_url=None,
        # Documented on every route: what the platform answers whatever the route (a body
        # that cannot be read, too large or too slow; a dependency down; a bug).
        responses=error_responses(400, 408, 413, 500, 503),
    )
    install_error_handlers(app)
    install_unavailable_handler(app)
    install_correlation_middleware(app)
    # Outermost last: proxy headers first, so every answer below gets the security headers.
    app.add_middleware(
        BodyLimit,
        default_max_bytes=settings.http_max_body_bytes,
        read_timeout_seconds=settings.http_body_timeout_seconds,
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    if settings.http_docs:
        install_docs(app)
    app.include_router(health_router(runtime))
    for router in routers:
        app.include_router(router)
    return app


@dataclass(frozen=True, slots=True)
class Service:
    """A built service: its runtime (Kafka, database, workers) and its HTTP app."""

    runtime: ServiceRuntime[Any]
    app: FastAPI


S = TypeVar("S", bound=ServiceSettings)


@dataclass(frozen=True, slots=True)
class ServiceDefinition(Generic[S]):
    """What `bootstrap.SERVICE` declares: enough to run and document the service."""

    name: str
    description: str
    settings: type[S]
    build: Callable[[S], Service]

    def build_default(self) -> Service:
        return self.build(self.settings())


def definition_of(service: str) -> ServiceDefinition[Any]:
    definition = importlib.import_module(f"{service}.bootstrap").SERVICE
    if not isinstance(definition, ServiceDefinition):
        raise TypeError(f"{service}.bootstrap.SERVICE is not a ServiceDefinition")
    return definition


# Names the service to the worker processes of `serve_workers` (they import the factory).
SERVICE_VARIABLE = "STRATEGIA_SERVICE"


def main(service: str) -> None:
    """`python -m <service>`: build it from the environment's settings and serve HTTP,
    in `STRATEGIA_HTTP_WORKERS` processes."""
    definition = definition_of(service)
    settings = definition.settings()
    if settings.http_workers > 1:
        serve_workers(service, settings)
    else:
        serve(definition.build(settings).app, settings)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run the service in the foreground, in this process."""
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        # The app applies X-Forwarded-* itself, from trusted_proxies only.
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


def worker_app() -> FastAPI:
    """The app of one worker process (uvicorn's factory): the whole service, built anew."""
    definition = definition_of(os.environ[SERVICE_VARIABLE])
    return definition.build(definition.settings()).app


def serve_workers(service: str, settings: ServiceSettings) -> None:
    """Run `settings.http_workers` processes of the service on one port, each with a
    listening socket of its own (`shared.platform.workers`: the kernel spreads the
    connections across them).

    Each worker is the whole service (HTTP, consumers, relay, workers), which several
    processes run safely: the outbox relay publishes from one process at a time (advisory
    lock), consumers of one group share the partitions, and background workers claim rows
    with `FOR UPDATE SKIP LOCKED`. The parent restarts a worker that dies.
    """
    os.environ[SERVICE_VARIABLE] = service  # inherited by the spawned workers
    configure_logging(service, settings.log_level, json_format=settings.log_json)
    config = uvicorn.Config(
        f"{__name__}:worker_app",
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
    serve_in_processes(config, settings.http_workers)
