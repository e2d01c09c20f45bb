"""The "Receipts" issue end to end, against a real Kafka broker, PostgreSQL and SMTP server.

Isolation: every test gets a fresh database, its own SMTP sink and its own topic namespace
(`kafka_topic_prefix`): its own `intake.submissions.v1` and consumer group.

Ordering: all events of one test are published with one Kafka key, so they share a
partition and are consumed in order, and the dispatcher sends in the order deliveries were
queued. A "sentinel" event published last is therefore a barrier: once its email has
arrived, every earlier event has had all its effects, so counting emails then proves that
a duplicate was not sent (no sleeping, no timing thresholds).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from devtools.kafka_auth import admin_options
from devtools.proc import free_ports
from devtools.pytest_plugin import DatabaseFactory, SmtpSink
from devtools.smtp_sink import TEMPORARY_FAILURE_PREFIX
from devtools.testing import (
    ADMIN_TOKEN,
    CLERK_TOKEN,
    RunningService,
    end_offset,
    eventually,
    settings_for_test,
    start_service,
    unique_prefix,
)
from notifications.config import NotificationsSettings
from notifications.domain.deliveries import TEXT_REMOVED_AFTER_SENDING
from notifications.service.receipts import ReceiptRequests
from shared.contracts.envelope import Envelope, RawEnvelope, new_envelope
from shared.contracts.groups import (
    VolunteerAssignmentNoticeV2,
    volunteer_message_associated_data,
)
from shared.contracts.intake import (
    Channel,
    Language,
    SubmissionReceived,
    SubmitterKind,
    submitter_email_associated_data,
)
from shared.contracts.registry import TOPIC_EVENTS
from shared.contracts.sealed import SealedValue
from shared.contracts.topics import Topic
from shared.platform.outbox import envelope_headers
from shared.platform.privacy import email_hash
from shared.platform.shredding import encode_key, new_data_key, seal_value

pytestmark = pytest.mark.integration


def unique_recipient() -> str:
    return f"mieszkaniec.{uuid.uuid4().hex[:12]}@example.org"


def submission_event(
    recipient: str | None, *, language: Language = Language.PL
) -> Envelope[SubmissionReceived]:
    suffix = uuid.uuid4().hex[:8].upper()
    payload = SubmissionReceived(
        submission_id=uuid.uuid4(),
        consultation_id=uuid.uuid4(),
        consultation_title="Strategia rozwoju Gminy Konstancin-Jeziorna 2026–2035",
        theme="spatial",
        submitter_kind=SubmitterKind.RESIDENT,
        locality="Słomczyn",
        title=f"Uwagi {suffix}",
        body="Proponuję ścieżkę rowerową wzdłuż Wisły.",
        channel=Channel.WEB,
        received_at=datetime.now(UTC),
        receipt_number=f"KJ/2026/{suffix}",
        digest=uuid.uuid4().hex + uuid.uuid4().hex,
        language=language,
        submitter_email=recipient,
    )
    return new_envelope(payload, producer="intake")


class Mailbox:
    """Reads the SMTP sink (a thread of its own) without blocking the event loop."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def to(self, recipient: str) -> list[EmailMessage]:
        messages = await asyncio.to_thread(self.sink.messages)
        return [message for message in messages if message["To"] == recipient]

    async def wait_for(self, recipient: str, count: int = 1) -> list[EmailMessage]:
        async def probe() -> list[EmailMessage] | None:
            found = await self.to(recipient)
            return found if len(found) >= count else None

        return await eventually(probe, f"{count} email(s) to {recipient}")


def receipt_numbers(messages: list[EmailMessage]) -> list[str]:
    return [str(message["Subject"]).split(" nr ", 1)[1].split(" – ", 1)[0] for message in messages]


def text_part(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    content: str = body.get_content()
    return " ".join(content.split())


class Harness:
    """One notifications service under test, restartable on the same database and group."""

    def __init__(
        self,
        settings: NotificationsSettings,
        producer: AIOKafkaProducer,
        sink: SmtpSink,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.mailbox = Mailbox(sink)
        self.sink = sink
        # The test's own copy of the submissions topic: no other test's events to wade through.
        self.topic = settings.kafka_topic_prefix + Topic.INTAKE_SUBMISSIONS
        # One key for every event of the test: one partition, consumed in publishing order.
        self.key = uuid.uuid4().hex.encode()
        self.running: RunningService | None = None

    async def start(self) -> RunningService:
        assert self.running is None, "already running"
        self.running = await start_service("notifications", self.settings)
        return self.running

    async def stop(self) -> None:
        if self.running is not None:
            running, self.running = self.running, None
            await running.stop()

    async def publish(self, envelope: Envelope[Any], topic: Topic | None = None) -> None:
        """To the test's submissions topic, or another topic of its namespace."""
        await self.producer.send_and_wait(
            self.topic if topic is None else self.settings.kafka_topic_prefix + topic,
            value=envelope.to_bytes(),
            key=self.key,
            headers=[(name, value.encode()) for name, value in envelope_headers(envelope).items()],
        )

    async def publish_key(self, topic: Topic, key_id: uuid.UUID, key: bytes | None) -> None:
        """An owner's key record on its key topic, or (key None) the key id's tombstone."""
        [key_event] = TOPIC_EVENTS[topic]
        value = (
            None
            if key is None
            else new_envelope(
                key_event(key_id=key_id, key=encode_key(key)), producer=topic.owner
            ).to_bytes()
        )
        await self.producer.send_and_wait(
            self.settings.kafka_topic_prefix + topic, value=value, key=str(key_id).encode()
        )

    async def assert_nothing_sent(self, recipient: str, event_id: uuid.UUID, topic: Topic) -> None:
        """The event (of an erased person) counts as seen, and left no mail, no delivery,
        no dead letter."""
        assert self.running is not None
        assert await self.mailbox.to(recipient) == []
        assert await self.delivery_of(event_id) is None
        assert await self.running.count("inbox WHERE event_id = $1", event_id) == 1
        assert await self.running.count("dead_letters") == 0
        dead = self.settings.kafka_topic_prefix + topic + ".dlt"
        assert await end_offset(self.settings.kafka_bootstrap_servers, dead) == 0

    async def wait_key_erased(self, key_id: uuid.UUID) -> None:
        async def key_erased() -> bool:
            rows = await self.fetch(
                "SELECT key FROM received_person_keys WHERE key_id = $1", key_id
            )
            return bool(rows) and rows[0]["key"] is None

        await eventually(key_erased, "the tombstone to erase notifications' copy of the key")

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.settings.database_url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    async def delivery_of(self, event_id: uuid.UUID) -> asyncpg.Record | None:
        try:
            rows = await self.fetch("SELECT * FROM deliveries WHERE source_event_id = $1", event_id)
        except asyncpg.UndefinedTableError:
            return None  # a service process is still applying its migrations
        return rows[0] if rows else None

    async def wait_for_delivery(
        self, event_id: uuid.UUID, what: str, condition: Callable[[asyncpg.Record], bool]
    ) -> asyncpg.Record:
        async def probe() -> asyncpg.Record | None:
            row = await self.delivery_of(event_id)
            return row if row is not None and condition(row) else None

        return await eventually(probe, what)

    async def pass_barrier(self) -> None:
        """Publish a sentinel and wait for its email: everything before it is done."""
        sentinel_recipient = unique_recipient()
        await self.publish(submission_event(sentinel_recipient))
        await self.mailbox.wait_for(sentinel_recipient)


@pytest.fixture(scope="module")
async def kafka_producer(kafka_bootstrap_servers: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(**admin_options(kafka_bootstrap_servers), acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


def service_settings(
    database_url: str, kafka_bootstrap_servers: str, sink: SmtpSink, **overrides: Any
) -> NotificationsSettings:
    values: dict[str, Any] = {
        "smtp_host": sink.host,
        "smtp_port": sink.port,
        "smtp_tls": "none",
        "smtp_timeout_seconds": 10.0,
        "mail_from": "Strategia Test <strategia@example.org>",
        "coordinator_token": None,
        "gmina_profile": "konstancin-jeziorna",
        "delivery_max_attempts": 8,
        "delivery_backoff_seconds": 0.2,
        "delivery_max_backoff_seconds": 1.0,
        "dispatcher_poll_seconds": 0.5,
    }
    values.update(overrides)
    return settings_for_test(
        NotificationsSettings,
        database_url=database_url,
        kafka=kafka_bootstrap_servers,
        prefix=unique_prefix("notifications"),
        **values,
    )


@pytest.fixture
async def make_harness(
    new_database: DatabaseFactory,
    kafka_bootstrap_servers: str,
    kafka_producer: AIOKafkaProducer,
    smtp_sink: SmtpSink,
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    harnesses: list[Harness] = []

    async def make(**overrides: Any) -> Harness:
        database_url = await new_database.create("notifications")
        settings = service_settings(database_url, kafka_bootstrap_servers, smtp_sink, **overrides)
        harness = Harness(settings, kafka_producer, smtp_sink)
        harnesses.append(harness)
        return harness

    try:
        yield make
    finally:
        for harness in harnesses:
            await harness.stop()


# --- receipts --------------------------------------------------------------------------------


async def test_one_receipt_per_event_and_none_without_an_address(
    make_harness: Callable[..., Awaitable[Harness]],
) -> None:
    harness = await make_harness()
    await harness.start()
    recipient = unique_recipient()
    with_email = submission_event(recipient)
    without_email = submission_event(None)
    english_recipient = unique_recipient()
    in_english = submission_event(english_recipient, language=Language.EN)

    await harness.publish(with_email)
    await harness.publish(without_email)
    await harness.publish(with_email)  # the same event again: a redelivery
    await harness.publish(in_english)
    await harness.pass_barrier()

    [message] = await harness.mailbox.to(recipient)
    payload = with_email.data
    assert message["Subject"] == (
        f"Potwierdzenie złożenia uwag nr {payload.receipt_number} – {payload.consultation_title}"
    )
    assert message.get_content_type() == "multipart/alternative"
    text = text_part(message)
    assert payload.receipt_number in text
    assert payload.digest in text
    assert "Burmistrz Gminy Konstancin-Jeziorna" in text
    html = message.get_body(("html",))
    assert isinstance(html, EmailMessage) and payload.digest in html.get_content()

    delivery = await harness.delivery_of(with_email.event_id)
    assert delivery is not None
    assert delivery["status"] == "sent"
    assert delivery["attempts"] == 1
    assert delivery["message_id"] == message["Message-ID"]
    assert delivery["message_id"] == f"<{delivery['id']}@strategia.1418023>"
    assert delivery["correlation_id"] == with_email.correlation_id

    assert await harness.delivery_of(without_email.event_id) is None

    [english] = await harness.mailbox.to(english_recipient)
    assert str(english["Subject"]).startswith("Confirmation of your submission no. ")
    assert in_english.data.digest in text_part(english)


async def test_restart_mid_stream_sends_every_receipt_exactly_once(
    make_harness: Callable[..., Awaitable[Harness]],
) -> None:
    harness = await make_harness()
    await harness.start()
    recipient = unique_recipient()
    events = [submission_event(recipient) for _ in range(12)]
    for event in events[:6]:
        await harness.publish(event)

    await harness.mailbox.wait_for(recipient, 3)
    await harness.stop()  # in the middle of the stream: some sent, some maybe pending
    for event in events[6:]:
        await harness.publish(event)  # while the service is down
    await harness.start()
    await harness.mailbox.wait_for(recipient, len(events))
    await harness.pass_barrier()

    messages = await harness.mailbox.to(recipient)
    assert sorted(receipt_numbers(messages)) == sorted(e.data.receipt_number for e in events)
    message_ids = [message["Message-ID"] for message in messages]
    assert len(set(message_ids)) == len(events)
    rows = await harness.fetch(
        "SELECT status, count(*) AS n FROM deliveries WHERE recipient = $1 GROUP BY status",
        recipient,
    )
    assert {row["status"]: row["n"] for row in rows} == {"sent": len(events)}


async def test_an_smtp_outage_waits_without_using_up_attempts_until_the_relay_is_back(
    make_harness: Callable[..., Awaitable[Harness]],
) -> None:
    # Three attempts would fail the delivery if the outage counted against it.
    harness = await make_harness(delivery_max_attempts=3, delivery_backoff_seconds=0.1)
    harness.sink.stop()
    await harness.start()
    recipient = unique_recipient()
    event = submission_event(recipient)
    await harness.publish(event)

    waiting = await harness.wait_for_delivery(
        event.event_id,
        "the dispatcher to find the relay unreachable",
        lambda row: row["last_error"] is not None,
    )
    assert "SMTP relay unavailable" in waiting["last_error"]
    assert waiting["attempts"] == 0 and waiting["status"] == "pending"

    harness.sink.start()
    [message] = await harness.mailbox.wait_for(recipient)
    sent = await harness.wait_for_delivery(
        event.event_id, "the delivery marked sent", lambda row: row["status"] == "sent"
    )
    assert sent["attempts"] == 1
    assert sent["message_id"] == message["Message-ID"]


async def test_delivery_fails_for_good_and_publishes_delivery_failed(
    make_harness: Callable[..., Awaitable[Harness]], kafka_bootstrap_servers: str
) -> None:
    harness = await make_harness(delivery_max_attempts=3, delivery_backoff_seconds=0.1)
    await harness.start()
    # The relay works but keeps refusing this recipient for now (450): attempts count.
    recipient = f"{TEMPORARY_FAILURE_PREFIX}.{uuid.uuid4().hex[:12]}@example.org"
    event = submission_event(recipient)
    await harness.publish(event)

    failed = await harness.wait_for_delivery(
        event.event_id, "the delivery failed", lambda row: row["status"] == "failed"
    )
    assert failed["attempts"] == 3
    assert failed["failed_at"] is not None
    assert failed["sent_at"] is None

    async def outbox_drained() -> bool:
        rows = await harness.fetch("SELECT count(*) AS n FROM outbox")
        return bool(rows[0]["n"] == 0)

    await eventually(outbox_drained, "the outbox relay to publish DeliveryFailed")
    published = await find_delivery_failed(
        kafka_bootstrap_servers,
        harness.settings.kafka_topic_prefix + Topic.NOTIFICATIONS_DELIVERIES,
        failed["id"],
    )
    assert published.event_type == "notifications.DeliveryFailed"
    assert published.producer == "notifications"
    assert published.correlation_id == event.correlation_id
    assert published.causation_id == str(event.event_id)
    assert published.data["source_event_id"] == str(event.event_id)
    assert published.data["recipient"] == f"sha256:{email_hash(recipient)}"
    assert recipient not in published.data["last_error"]
    assert published.data["purpose"] == "receipt"
    assert published.data["attempts"] == 3
    assert published.data["last_error"]


async def find_delivery_failed(
    bootstrap_servers: str, topic: str, delivery_id: uuid.UUID
) -> RawEnvelope:
    consumer = AIOKafkaConsumer(
        topic,
        **admin_options(bootstrap_servers),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:

        async def probe() -> RawEnvelope | None:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    envelope = RawEnvelope.model_validate_json(record.value)
                    if envelope.data.get("delivery_id") == str(delivery_id):
                        assert record.key == str(delivery_id).encode()
                        return envelope
            return None

        return await eventually(probe, f"DeliveryFailed of {delivery_id}")
    finally:
        await consumer.stop()


async def test_a_killed_service_sends_the_pending_receipt_after_restart(
    make_harness: Callable[..., Awaitable[Harness]], tmp_path: Path
) -> None:
    harness = await make_harness(delivery_max_attempts=1000)
    harness.sink.stop()  # keep the delivery pending while the process dies
    process = start_service_process(harness, tmp_path / "service.log")
    try:
        recipient = unique_recipient()
        event = submission_event(recipient)
        await harness.publish(event)
        await harness.wait_for_delivery(
            event.event_id,
            "a pending delivery the dispatcher tried",
            lambda row: row["status"] == "pending" and row["last_error"] is not None,
        )
    finally:
        process.send_signal(signal.SIGKILL)  # no shutdown code runs
        await asyncio.to_thread(process.wait, 30)

    harness.sink.start()
    await harness.start()
    [message] = await harness.mailbox.wait_for(recipient)
    await harness.pass_barrier()

    assert len(await harness.mailbox.to(recipient)) == 1
    delivery = await harness.delivery_of(event.event_id)
    assert delivery is not None and delivery["status"] == "sent"
    assert delivery["message_id"] == message["Message-ID"]


async def test_a_sigkill_in_the_middle_of_a_batch_queues_every_receipt_once(
    make_harness: Callable[..., Awaitable[Harness]], tmp_path: Path
) -> None:
    """The submissions subscription consumes in batches (one transaction, one offset
    commit each). A backlog is consumed in many small batches and the process is
    SIGKILLed while some are queued and others not — while a batch's transaction is open,
    or between its commit and its offset commit. After a restart every event has exactly
    one delivery and one receipt: what was not committed is redelivered, and what was
    committed but not acknowledged is skipped by the inbox."""
    harness = await make_harness(consumer_batch_max_records=4)
    recipient = unique_recipient()
    events = [submission_event(recipient) for _ in range(600)]
    for event in events:  # the backlog, before the service runs
        await harness.producer.send(
            harness.topic, value=event.to_bytes(), key=harness.key, headers=[]
        )
    await harness.producer.flush()
    event_ids = [event.event_id for event in events]

    async def queued() -> int:
        try:
            rows = await harness.fetch(
                "SELECT count(*) AS n FROM deliveries WHERE source_event_id = ANY($1)",
                event_ids,
            )
        except asyncpg.UndefinedTableError:
            return 0  # the process is still applying its migrations
        return int(rows[0]["n"])

    async def some_but_not_all_queued() -> int | None:
        found = await queued()
        return found if 0 < found < len(events) else None

    process = start_service_process(harness, tmp_path / "service.log")
    try:
        await eventually(some_but_not_all_queued, "part of the backlog queued")
    finally:
        process.send_signal(signal.SIGKILL)  # mid-stream, no shutdown code runs
        await asyncio.to_thread(process.wait, 30)
    assert 0 < await queued() < len(events)

    await harness.start()
    await harness.mailbox.wait_for(recipient, len(events))
    await harness.pass_barrier()

    rows = await harness.fetch(
        "SELECT source_event_id, status FROM deliveries WHERE source_event_id = ANY($1)",
        event_ids,
    )
    assert sorted(row["source_event_id"] for row in rows) == sorted(event_ids)
    assert {row["status"] for row in rows} == {"sent"}
    claimed = await harness.fetch(
        "SELECT count(*) AS n FROM inbox WHERE event_id = ANY($1)", event_ids
    )
    assert claimed[0]["n"] == len(events)
    messages = await harness.mailbox.to(recipient)
    assert sorted(set(receipt_numbers(messages))) == sorted(e.data.receipt_number for e in events)
    # One receipt per event; the one window SMTP leaves open (the relay accepted, the
    # process died before recording it) may repeat an email, with the same Message-ID.
    assert len({message["Message-ID"] for message in messages}) == len(events)


async def test_a_batch_of_receipts_is_queued_with_one_insert_and_sent(
    make_harness: Callable[..., Awaitable[Harness]],
) -> None:
    """The set-based form the consumer tries first for a batch (one insert for all its
    receipts) stores what one insert per receipt stores, skips what exists, and the
    dispatcher sends each once. (Were it broken, the platform would fall back to the
    event-by-event path and every other test would still pass: this one would not.)"""
    harness = await make_harness()
    running = await harness.start()
    events = [submission_event(unique_recipient()) for _ in range(3)]
    events.append(submission_event(None))
    single = submission_event(unique_recipient())
    receipts = ReceiptRequests(harness.settings.gmina())
    async with running.runtime.unit_of_work() as uow:
        await receipts.on_submissions_received(uow, events[:2])
    async with running.runtime.unit_of_work() as uow:
        await receipts.on_submissions_received(uow, events)  # the first two again
    async with running.runtime.unit_of_work() as uow:
        await receipts.on_submission_received(uow, single)  # one insert per receipt

    for event in [*events[:3], single]:
        assert event.data.submitter_email is not None
        [message] = await harness.mailbox.wait_for(str(event.data.submitter_email))
        assert event.data.receipt_number in str(message["Subject"])
    columns = (
        "purpose, language, status, attempts, priority, subscription_id,"
        " last_error, sent_at IS NOT NULL AS sent, message_id LIKE '<%>' AS has_message_id"
    )
    rows = await harness.fetch(
        f"SELECT source_event_id, {columns} FROM deliveries ORDER BY created_at"
    )
    assert sorted(row["source_event_id"] for row in rows) == sorted(
        event.event_id for event in [*events[:3], single]
    )
    [reference] = [row for row in rows if row["source_event_id"] == single.event_id]
    for row in rows:
        assert dict(row) | {"source_event_id": None} == dict(reference) | {"source_event_id": None}


def start_service_process(harness: Harness, log_file: Path) -> subprocess.Popen[bytes]:
    """`python -m notifications` as a real OS process, with the harness's settings."""
    settings = harness.settings
    env = {
        **os.environ,
        "STRATEGIA_DATABASE_URL": settings.database_url,
        "STRATEGIA_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "STRATEGIA_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "STRATEGIA_KAFKA_TOPIC_PARTITIONS": str(settings.kafka_topic_partitions),
        "STRATEGIA_HTTP_PORT": str(free_ports(1)[0]),
        "STRATEGIA_SMTP_HOST": settings.smtp_host,
        "STRATEGIA_SMTP_PORT": str(settings.smtp_port),
        "STRATEGIA_SMTP_TLS": settings.smtp_tls.value,
        "STRATEGIA_DELIVERY_MAX_ATTEMPTS": str(settings.delivery_max_attempts),
        "STRATEGIA_DELIVERY_BACKOFF_SECONDS": str(settings.delivery_backoff_seconds),
        "STRATEGIA_DELIVERY_MAX_BACKOFF_SECONDS": str(settings.delivery_max_backoff_seconds),
        "STRATEGIA_DISPATCHER_POLL_SECONDS": str(settings.dispatcher_poll_seconds),
        "STRATEGIA_GMINA_PROFILE": settings.gmina_profile,
        # notifications' own Kafka principal, as the in-process harness has it
        "STRATEGIA_KAFKA_SECURITY_PROTOCOL": settings.kafka_security_protocol,
        "STRATEGIA_KAFKA_SASL_USERNAME": settings.kafka_sasl_username or "",
        "STRATEGIA_KAFKA_SASL_PASSWORD": (
            settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        ),
        "STRATEGIA_CONSUMER_BATCH_MAX_RECORDS": str(settings.consumer_batch_max_records),
    }
    # Required: without it notifications refuses to start.
    if settings.subscription_link_secret is not None:
        env["STRATEGIA_SUBSCRIPTION_LINK_SECRET"] = (
            settings.subscription_link_secret.get_secret_value()
        )
    with open(log_file, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "notifications"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


# --- HTTP: the delivery log ------------------------------------------------------------------


async def test_delivery_log_for_admins(make_harness: Callable[..., Awaitable[Harness]]) -> None:
    harness = await make_harness()
    running = await harness.start()
    first_recipient = unique_recipient()
    second_recipient = unique_recipient()
    first = submission_event(first_recipient)
    second = submission_event(first_recipient)
    other = submission_event(second_recipient)
    # The first is queued before the others are published: receipts queued by one
    # consumer batch share one clock reading, and "newest first" needs distinct times.
    await harness.publish(first)
    await harness.mailbox.wait_for(first_recipient)
    for event in (second, other):
        await harness.publish(event)
    await harness.mailbox.wait_for(first_recipient, 2)
    await harness.mailbox.wait_for(second_recipient)

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with running.client as client:
        assert (await client.get("/health/ready")).status_code == 200

        assert (await client.get("/v1/deliveries")).status_code == 401
        wrong = await client.get("/v1/deliveries", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        clerk = await client.get(
            "/v1/deliveries", headers={"Authorization": f"Bearer {CLERK_TOKEN}"}
        )
        assert clerk.status_code == 403

        by_event = await client.get(
            "/v1/deliveries", params={"event_id": str(first.event_id)}, headers=admin
        )
        assert by_event.status_code == 200
        [entry] = by_event.json()["items"]
        assert entry["source_event_id"] == str(first.event_id)
        assert entry["recipient"] == first_recipient
        assert entry["purpose"] == "receipt"
        assert entry["status"] == "sent"
        assert entry["attempts"] == 1
        assert entry["sent_at"] is not None
        assert entry["message_id"].endswith("@strategia.1418023>")
        assert entry["text_body"] is None and entry["html_body"] is None
        assert by_event.json()["next_cursor"] is None

        # Case-insensitive recipient, newest first, one per page.
        pages: list[dict[str, Any]] = []
        params: dict[str, Any] = {"recipient": first_recipient.upper(), "limit": 1}
        while True:
            response = await client.get("/v1/deliveries", params=params, headers=admin)
            assert response.status_code == 200
            body = response.json()
            pages.extend(body["items"])
            if body["next_cursor"] is None:
                break
            params["cursor"] = body["next_cursor"]
        assert [page["source_event_id"] for page in pages] == [
            str(second.event_id),
            str(first.event_id),
        ]

        with_bodies = await client.get(
            "/v1/deliveries",
            params={"event_id": str(other.event_id), "include_bodies": "true"},
            headers=admin,
        )
        [full] = with_bodies.json()["items"]
        assert other.data.digest in full["text_body"]
        assert other.data.receipt_number in full["subject"]

        everything = await client.get("/v1/deliveries", params={"limit": 200}, headers=admin)
        assert everything.status_code == 200
        assert len(everything.json()["items"]) >= 3

        for bad, field in (
            ({"limit": 0}, "limit"),
            ({"limit": 201}, "limit"),
            ({"event_id": "not-a-uuid"}, "event_id"),
            ({"status": "lost"}, "status"),
            ({"cursor": "garbage!"}, "cursor"),
        ):
            response = await client.get("/v1/deliveries", params=bad, headers=admin)
            assert response.status_code == 422, bad
            body = response.json()
            assert body["error"] == "validation_failed"
            assert [error["field"] for error in body["errors"]] == [field]
            assert body["errors"][0]["reason"]


async def test_a_receipt_goes_out_for_an_event_from_a_newer_intake(
    make_harness: Callable[..., Awaitable[Harness]],
) -> None:
    """During a rolling deploy intake may already add an optional field notifications does
    not know yet: the receipt must go out all the same (a tolerant reader)."""
    harness = await make_harness()
    await harness.start()
    recipient = unique_recipient()
    event = submission_event(recipient)
    newer = json.loads(event.to_bytes())
    newer["data"]["submitter_preferred_contact"] = "email"  # added in a later minor version
    newer["data"]["attachments"] = [{"name": "mapa.pdf", "size": 1024}]
    await harness.producer.send_and_wait(
        harness.topic, value=json.dumps(newer).encode(), key=harness.key
    )

    [message] = await harness.mailbox.wait_for(recipient)
    assert event.data.receipt_number in str(message["Subject"])
    # The relay accepts the message before the dispatcher's commit records it as sent.
    await harness.wait_for_delivery(
        event.event_id, "the delivery marked sent", lambda row: row["status"] == "sent"
    )


def sealed_submission_event(
    recipient: str, key_id: uuid.UUID, key: bytes
) -> Envelope[SubmissionReceived]:
    """What intake publishes now: the address only sealed under the person's key."""
    clear = submission_event(None).data
    sealed = seal_value(
        key_id, key, recipient, associated_data=submitter_email_associated_data(clear.submission_id)
    )
    return new_envelope(
        clear.model_copy(update={"submitter_email_sealed": sealed}), producer="intake"
    )


async def test_a_sealed_address_waits_for_its_key_and_an_erased_one_gets_no_mail(
    make_harness: Callable[..., Awaitable[Harness]],
) -> None:
    harness = await make_harness()
    await harness.start()

    async def publish_key(key_id: uuid.UUID, key: bytes | None) -> None:
        await harness.publish_key(Topic.INTAKE_PERSON_KEYS, key_id, key)

    # The event overtakes its key (two topics): it is retried, not dead-lettered, and the
    # receipt goes out once the key is there.
    early_recipient, early_key_id, early_key = unique_recipient(), uuid.uuid4(), new_data_key()
    early = sealed_submission_event(early_recipient, early_key_id, early_key)
    assert early_recipient.encode() not in early.to_bytes()
    await harness.publish(early)

    await asyncio.sleep(1.5)  # the consumer has met the event without its key by now
    assert await harness.delivery_of(early.event_id) is None
    await publish_key(early_key_id, early_key)
    [message] = await harness.mailbox.wait_for(early_recipient)
    assert early.data.receipt_number in str(message["Subject"])

    # An erased person: key, then its tombstone, then an event sealed under it — no mail,
    # no delivery, no dead letter; the copy of the key is gone.
    erased_recipient, erased_key_id, erased_key = unique_recipient(), uuid.uuid4(), new_data_key()
    await publish_key(erased_key_id, erased_key)
    await publish_key(erased_key_id, None)
    erased = sealed_submission_event(erased_recipient, erased_key_id, erased_key)
    await harness.wait_key_erased(erased_key_id)
    await harness.publish(erased)
    await harness.pass_barrier()
    await harness.assert_nothing_sent(erased_recipient, erased.event_id, Topic.INTAKE_SUBMISSIONS)


# --- groups' sealed volunteer messages (groups.volunteer-messages.v2) -----------------------


def sealed_assignment(
    recipient: str, key_id: uuid.UUID, key: bytes, lead: tuple[uuid.UUID, bytes] | None = None
) -> Envelope[VolunteerAssignmentNoticeV2]:
    """What groups publishes: the address and names only sealed, each under its person's
    key (the lead's name under the lead's), bound to this message."""
    volunteer_id, token = uuid.uuid4(), secrets.token_urlsafe(32)

    def sealed(field: str, plaintext: str, under: tuple[uuid.UUID, bytes]) -> SealedValue:
        bound = volunteer_message_associated_data(
            VolunteerAssignmentNoticeV2, field, volunteer_id, token
        )
        return seal_value(*under, plaintext, associated_data=bound)

    payload = VolunteerAssignmentNoticeV2(
        volunteer_id=volunteer_id,
        consultation_id=uuid.uuid4(),
        consultation_title="Strategia 2040+",
        email_sealed=sealed("email", recipient, (key_id, key)),
        name_sealed=sealed("name", "Wolontariuszka Zofia", (key_id, key)),
        locale=Language.PL,
        withdraw_token=token,
        withdraw_expires_at=datetime.now(UTC) + timedelta(hours=48),
        group_id=uuid.uuid4(),
        group_name_pl="Grupa społeczna 1",
        group_name_en="Social group 1",
        theme="social",
        lead_name_sealed=sealed("lead_name", "Liderka Halina", lead) if lead else None,
    )
    return new_envelope(payload, producer="groups")


async def test_a_sealed_volunteer_message_waits_for_its_key_and_an_erased_one_gets_no_mail(
    make_harness: Callable[..., Awaitable[Harness]],
) -> None:
    # The default five attempts at a 0.1 s back-off would be spent within the test's
    # 1.5 s pause before the key: waiting for a key does not count as an attempt.
    harness = await make_harness()
    await harness.start()

    async def publish_key(key_id: uuid.UUID, key: bytes | None) -> None:
        await harness.publish_key(Topic.GROUPS_PERSON_KEYS, key_id, key)

    # The message overtakes its key: retried, not dead-lettered, sent once the key is
    # there — with the names opened; an erased lead is just not named.
    recipient, key_id, key = unique_recipient(), uuid.uuid4(), new_data_key()
    lead_key_id, lead_key = uuid.uuid4(), new_data_key()
    early = sealed_assignment(recipient, key_id, key, lead=(lead_key_id, lead_key))
    assert recipient.encode() not in early.to_bytes() and b"Zofia" not in early.to_bytes()
    await harness.publish(early, Topic.GROUPS_VOLUNTEER_MESSAGES_V2)
    await asyncio.sleep(1.5)  # the consumer has met the message without its key by now
    assert await harness.delivery_of(early.event_id) is None
    await publish_key(lead_key_id, lead_key)
    await publish_key(lead_key_id, None)  # the lead has been erased meanwhile
    await publish_key(key_id, key)
    [message] = await harness.mailbox.wait_for(recipient)
    assert "Zofia" in text_part(message) and "Halina" not in text_part(message)
    # The withdrawal link's token is in the email, and no longer in notifications'
    # database once the email is sent.
    withdraw_token = early.data.withdraw_token
    assert withdraw_token in text_part(message)
    sent = await harness.wait_for_delivery(
        early.event_id, "the assignment marked sent", lambda row: row["status"] == "sent"
    )
    assert withdraw_token not in sent["text_body"] + sent["html_body"]
    assert sent["text_body"] == TEXT_REMOVED_AFTER_SENDING

    # An erased volunteer: key, tombstone, then a message sealed under it — no mail, no
    # delivery, no dead letter.
    erased_recipient, erased_key_id, erased_key = unique_recipient(), uuid.uuid4(), new_data_key()
    await publish_key(erased_key_id, erased_key)
    await publish_key(erased_key_id, None)
    await harness.wait_key_erased(erased_key_id)
    erased = sealed_assignment(erased_recipient, erased_key_id, erased_key)
    await harness.publish(erased, Topic.GROUPS_VOLUNTEER_MESSAGES_V2)
    # A sentinel after it on the same partition: when it is mailed, the erased one is done.
    # Its lead's name is sealed under a live key: the lead is named.
    sentinel_recipient = unique_recipient()
    sentinel = sealed_assignment(sentinel_recipient, key_id, key, lead=(key_id, key))
    await harness.publish(sentinel, Topic.GROUPS_VOLUNTEER_MESSAGES_V2)
    [sentinel_mail] = await harness.mailbox.wait_for(sentinel_recipient)
    assert "Liderka Halina" in text_part(sentinel_mail)
    await harness.assert_nothing_sent(
        erased_recipient, erased.event_id, Topic.GROUPS_VOLUNTEER_MESSAGES_V2
    )
