"""An alert fanned out to many subscribers, and the SMTP sink's own ceiling.

`alert_fan_out` fills notifications' database with confirmed alert subscribers (as if each
had followed the link in the confirmation email), publishes one `AlertIssued` on
`news.alerts.v1` and waits until the sink holds one email per subscriber: the time from the
publication to the last email the sink accepted, and emails/s.

`smtp_ceiling` sends minimal messages straight to the sink over N connections with
aiosmtplib (what the dispatcher uses): the most emails/s the sink itself takes here, so a
figure near it says the sink, not notifications, is the limit.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosmtplib
import asyncpg
from aiokafka import AIOKafkaProducer

from devtools.kafka_auth import admin_options
from shared.contracts.envelope import new_envelope
from shared.contracts.news import AlertAreaData, AlertIssued, AlertMessageType, AlertSourceKind
from shared.contracts.topics import Topic
from shared.platform.outbox import envelope_headers


@dataclass(frozen=True)
class FanOutResult:
    subscribers: int
    emails: int
    seconds: float  # publication -> last email accepted by the sink

    @property
    def per_second(self) -> float:
        return self.emails / self.seconds if self.seconds > 0 else 0.0


async def add_subscribers(database_url: str, count: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO subscriptions (id, email, status, topics, min_level, locale,"
            " created_at, updated_at, confirmed_at)"
            " SELECT gen_random_uuid(), 'bench-' || i || '@example.org', 'confirmed',"
            " ARRAY['alerts'], 1, CASE WHEN i % 10 = 0 THEN 'en' ELSE 'pl' END,"
            " now(), now(), now() FROM generate_series(1, $1) AS i",
            count,
        )
    finally:
        await conn.close()


def storm_warning() -> AlertIssued:
    now = datetime.now(UTC).replace(microsecond=0)
    return AlertIssued(
        alert_id=uuid.uuid4(),
        message_type=AlertMessageType.ALERT,
        references=(),
        source=AlertSourceKind.IMGW_METEO,
        issuer="Biuro Prognoz Meteorologicznych w Warszawie",
        category="Met",
        level=1,
        probability=80,
        event="Burze",
        headline="Ostrzeżenie meteorologiczne 1. stopnia: Burze",
        description="Prognozowane są burze z opadami deszczu do 30 mm i porywami wiatru.",
        instruction="Zabezpiecz rzeczy, które porwie wiatr.",
        areas=(AlertAreaData(description="powiat piaseczyński"),),
        onset=now,
        expires=now + timedelta(hours=9),
        sent=now,
        event_en="Thunderstorms",
        headline_en="Weather warning, level 1: Thunderstorms",
    )


async def alert_fan_out(
    kafka: str, prefix: str, mail_dir: Path, *, subscribers: int, wait_seconds: float = 900
) -> FanOutResult:
    envelope = new_envelope(storm_warning(), producer="news")
    producer = AIOKafkaProducer(**admin_options(kafka), acks="all")
    await producer.start()
    try:
        published = time.time()
        await producer.send_and_wait(
            prefix + Topic.NEWS_ALERTS,
            value=envelope.to_bytes(),
            key=str(envelope.data.alert_id).encode(),
            headers=[(k, v.encode()) for k, v in envelope_headers(envelope).items()],
        )
    finally:
        await producer.stop()
    deadline = time.monotonic() + wait_seconds
    names: list[str] = []
    while time.monotonic() < deadline:
        names = await asyncio.to_thread(lambda: [path.name for path in mail_dir.glob("*.eml")])
        if len(names) >= subscribers:
            break
        await asyncio.sleep(0.5)
    last = max((int(name.split("-", 1)[0]) / 1e9 for name in names), default=published)
    return FanOutResult(subscribers, len(names), last - published)


async def smtp_ceiling(host: str, port: int, *, count: int, connections: int) -> float:
    """Emails/s the sink accepts from `connections` reused sessions (messages of ~3 KiB)."""
    body = ("Ostrzeżenie meteorologiczne: burze z gradem.\r\n" * 64).encode()
    message = (
        b"From: bench@example.org\r\nTo: someone@example.org\r\nSubject: ceiling\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + b"\r\n"
    )
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def session() -> None:
        client = aiosmtplib.SMTP(hostname=host, port=port, start_tls=False, timeout=30)
        await client.connect()
        try:
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await client.sendmail("bench@example.org", ["someone@example.org"], message)
        finally:
            await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(session() for _ in range(connections)))
    return count / (time.perf_counter() - started)
