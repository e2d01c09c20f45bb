"""news on the real broker and server: a service factory, a local IMGW, Kafka helpers.

The service runs with a test clock (the IMGW fixtures are dated July 2025), in a topic
namespace and database of its own. The IMGW feeds are served by a local HTTP server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from lxml import etree

from devtools.kafka_auth import admin_options
from devtools.pytest_plugin import DatabaseFactory
from devtools.testing import (
    RunningService,
    body,
    count,
    end_offset,
    read_topic,
    settings_for_test,
    start_service,
    unique_prefix,
    wait_for,
)
from news.bootstrap import imgw_polling, imgw_source, news_service
from news.config import NewsSettings
from news.service.imgw import ImgwPolling
from shared.contracts.envelope import Envelope
from shared.contracts.topics import Topic
from shared.platform.outbox import envelope_headers

from .imgw_server import FakeImgw

DATA = Path(__file__).parent.parent / "data"
CAP_SCHEMA = etree.XMLSchema(etree.parse(str(DATA / "CAP-v1.2.xsd")))
MORNING = datetime(2025, 7, 8, 7, 30, tzinfo=UTC)  # 09:30 in Warsaw


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class News(RunningService):
    clock: Clock
    imgw: FakeImgw

    def polling(self) -> ImgwPolling:
        """A poll cycle on this service's database and feeds, run when the test says."""
        settings = self.settings
        assert isinstance(settings, NewsSettings)
        service = news_service(settings, clock=self.clock)
        return imgw_polling(settings, service, self.runtime.unit_of_work, imgw_source(settings))

    async def events(self, topic: Topic, expected: int, event_type: str) -> list[dict[str, Any]]:
        """The first `expected` events of `event_type` on `topic` (fails if fewer come)."""
        records = await read_topic(
            self.settings.kafka_bootstrap_servers,
            self.topic(topic),
            until=count(expected),
            keep=lambda record: body(record)["event_type"] == event_type,
        )
        return [body(record) | {"key": (record.key or b"").decode()} for record in records]

    async def all_events(self, topic: Topic, event_type: str) -> list[dict[str, Any]]:
        """Every event of `event_type` on `topic`, once the outbox has sent everything."""

        async def drained() -> bool:
            return await self.count("outbox") == 0

        await wait_for(drained, "the outbox to drain")
        kafka = self.settings.kafka_bootstrap_servers
        total = await end_offset(kafka, self.topic(topic))
        records = await read_topic(kafka, self.topic(topic), until=count(total))
        return [
            body(record) | {"key": (record.key or b"").decode()}
            for record in records
            if body(record)["event_type"] == event_type
        ]


Factory = Callable[..., Awaitable[News]]


@pytest.fixture
def imgw() -> Iterator[FakeImgw]:
    server = FakeImgw().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def start_news(
    kafka_bootstrap_servers: str, new_database: DatabaseFactory, imgw: FakeImgw
) -> AsyncIterator[Factory]:
    running: list[News] = []

    async def start(
        *,
        clock: Clock | None = None,
        database_url: str | None = None,
        prefix: str | None = None,
        **overrides: Any,
    ) -> News:
        values: dict[str, Any] = {
            "imgw_meteo_url": imgw.meteo_url,
            "imgw_hydro_url": imgw.hydro_url,
            "imgw_enabled": False,
            "imgw_timeout_seconds": 2.0,
            "imgw_fetch_attempts": 2,
            "imgw_backoff_seconds": 0.05,
            "imgw_max_backoff_seconds": 0.1,
            "scheduler_interval_seconds": 0.5,
            "public_base_url": "https://www.example.gmina.pl",
            "api_public_url": "https://api.example.gmina.pl/news",
        }
        values.update(overrides)
        settings = settings_for_test(
            NewsSettings,
            database_url=database_url or await new_database.create("news"),
            kafka=kafka_bootstrap_servers,
            prefix=prefix or unique_prefix("news"),
            **values,
        )
        clock = clock or Clock(MORNING)
        started = await start_service("news", settings, clock=clock)
        news = News(started.service, started.settings, started.client)
        news.clock = clock
        news.imgw = imgw
        running.append(news)
        return news

    yield start
    for news in reversed(running):
        await news.stop()


@pytest.fixture(scope="module")
async def kafka_producer(kafka_bootstrap_servers: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(**admin_options(kafka_bootstrap_servers), acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def publish(producer: AIOKafkaProducer, topic: str, envelope: Envelope[Any]) -> None:
    """Publish an envelope as its producer's outbox relay would (key: the aggregate id)."""
    data = envelope.data.model_dump(mode="json")
    key = str(data.get("consultation_id") or data.get("alert_id") or envelope.event_id)
    await producer.send_and_wait(
        topic,
        value=envelope.to_bytes(),
        key=key.encode(),
        headers=[(name, value.encode()) for name, value in envelope_headers(envelope).items()],
    )
