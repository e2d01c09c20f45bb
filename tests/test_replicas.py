"""Replicas as a deployment runs them: several OS processes of one service, one database.

- Two notifications replicas share the partitions of `intake.submissions.v1` (one consumer
  group) and still queue exactly one receipt per event and send it, also when one replica
  is killed (SIGKILL) in the middle of the stream.
- Two intake replicas publish through one outbox: whichever relay leads (advisory lock),
  each consultation's events reach Kafka in the order they were committed, also when the
  leading replica is killed and the other takes over.

To cover another consuming service (groups), start its replicas with `start_replicas` and
check `group_assignment` and its own effects table the same way.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devtools.pytest_plugin import DatabaseFactory, SmtpSink
from devtools.testing import (
    ADMIN,
    Record,
    RunningService,
    ServiceProcess,
    body,
    consultation_payload,
    group_assignment,
    read_topic,
    service_environment,
    settings_for_test,
    start_replicas,
    start_service,
    submission_payload,
    unique_prefix,
    wait_for,
    wait_until_consumed,
)
from intake.config import IntakeSettings
from shared.contracts.topics import Topic, TopicNames

pytestmark = pytest.mark.integration

PARTITIONS = 4
# What changes a consultation's window, in the order its admin made the changes (openings
# come from the scheduler whenever it runs).
CHANGES = {"intake.ConsultationAnnounced", "intake.ConsultationWindowChanged"}
OPENED = "intake.ConsultationOpened"


def opened(records: list[Record]) -> dict[str, set[str]]:
    """Consultation id -> the ids of the opening events published for it."""
    found: dict[str, set[str]] = {}
    for record in records:
        event = body(record)
        if event["event_type"] == OPENED:
            found.setdefault(event["data"]["consultation_id"], set()).add(event["event_id"])
    return found


@pytest.fixture
async def intake(
    kafka_bootstrap_servers: str, new_database: DatabaseFactory
) -> AsyncIterator[RunningService]:
    """intake in this process; it creates the topics with several partitions."""
    service = await start_service(
        "intake",
        settings_for_test(
            IntakeSettings,
            database_url=await new_database.create("intake"),
            kafka=kafka_bootstrap_servers,
            prefix=unique_prefix("replicas"),
            kafka_topic_partitions=PARTITIONS,
            rate_limit_per_minute=0,
        ),
    )
    yield service
    await service.stop()


async def submit(intake: RunningService, consultation_id: str, recipients: list[str]) -> None:
    for recipient in recipients:
        answer = await intake.client.post(
            f"/v1/consultations/{consultation_id}/submissions",
            json=submission_payload(
                submitter={"kind": "resident", "email": recipient}, title=recipient
            ),
        )
        assert answer.status_code == 202, answer.text


async def test_notification_replicas_share_the_partitions_and_send_one_receipt_per_event(
    intake: RunningService,
    new_database: DatabaseFactory,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> None:
    kafka = intake.settings.kafka_bootstrap_servers
    prefix = intake.settings.kafka_topic_prefix
    topic = intake.topic(Topic.INTAKE_SUBMISSIONS)
    group_id = TopicNames(prefix).group("notifications")
    environment = service_environment(
        database_url=await new_database.create("notifications"),  # one database for both
        kafka=kafka,
        prefix=prefix,
        kafka_topic_partitions=PARTITIONS,
        smtp_host=smtp_sink.host,
        smtp_port=smtp_sink.port,
        dispatcher_poll_seconds=0.5,
    )
    replicas = await asyncio.to_thread(start_replicas, "notifications", environment, tmp_path)
    try:

        async def both_hold_partitions() -> bool:
            # One group member per subscription and replica: the members holding this
            # topic's partitions are one per replica.
            held = [parts for parts in await group_assignment(kafka, group_id, topic) if parts]
            return len(held) == 2 and set().union(*held) == set(range(PARTITIONS))

        await wait_for(both_hold_partitions, "two replicas sharing the partitions")

        consultation = await intake.client.post(
            "/v1/consultations", json=consultation_payload(), headers=ADMIN
        )
        consultation_id = consultation.json()["id"]
        run = uuid.uuid4().hex[:8]
        recipients = [f"r{n}.{run}@example.org" for n in range(60)]
        await submit(intake, consultation_id, recipients[:30])

        def sent_to() -> set[str]:
            return {str(m["To"]) for m in smtp_sink.messages()}

        async def some_sent() -> bool:
            return len(sent_to() & set(recipients)) >= 10

        await wait_for(some_sent, "the first receipts")
        await asyncio.to_thread(replicas[0].stop, signal.SIGKILL)  # mid-stream, no goodbye
        await submit(intake, consultation_id, recipients[30:])

        async def all_sent() -> bool:
            return set(recipients) <= sent_to()

        await wait_for(all_sent, "every receipt, from the surviving replica", deadline_s=120)
        await wait_for(lambda: _outbox_empty(intake), "intake's outbox to drain")
        await wait_until_consumed(kafka, group_id, topic)
        await wait_for(
            lambda: _all_sent(environment["STRATEGIA_DATABASE_URL"]), "deliveries to settle"
        )
    finally:
        for replica in replicas:
            await asyncio.to_thread(replica.stop)

    database = await asyncpg.connect(environment["STRATEGIA_DATABASE_URL"])
    try:
        rows = await database.fetch("SELECT source_event_id, recipient, status FROM deliveries")
    finally:
        await database.close()
    assert sorted(row["recipient"] for row in rows) == sorted(recipients)  # one per event
    assert {row["status"] for row in rows} == {"sent"}
    assert len({row["source_event_id"] for row in rows}) == len(recipients)

    ours = [m for m in smtp_sink.messages() if str(m["To"]) in set(recipients)]
    assert {str(m["To"]) for m in ours} == set(recipients)
    # The one window SMTP leaves open (accepted by the relay, killed before the commit)
    # may resend a receipt once, with the same Message-ID; never a second, different email.
    assert _message_ids_per_recipient(ours) == {r: 1 for r in recipients}
    assert max(Counter(str(m["Message-ID"]) for m in ours).values()) <= 2


def _message_ids_per_recipient(messages: list[EmailMessage]) -> dict[str, int]:
    ids: dict[str, set[str]] = {}
    for message in messages:
        ids.setdefault(str(message["To"]), set()).add(str(message["Message-ID"]))
    return {recipient: len(found) for recipient, found in ids.items()}


async def _outbox_empty(service: RunningService) -> bool:
    return await service.count("outbox") == 0


async def _all_sent(database_url: str) -> bool:
    database = await asyncpg.connect(database_url)
    try:
        pending = await database.fetchval(
            "SELECT count(*) FROM deliveries WHERE status = 'pending'"
        )
    finally:
        await database.close()
    return bool(pending == 0)


async def test_intake_replicas_publish_each_consultations_events_in_commit_order(
    kafka_bootstrap_servers: str, new_database: DatabaseFactory, tmp_path: Path
) -> None:
    environment = service_environment(
        database_url=await new_database.create("intake"),  # one database, one outbox
        kafka=kafka_bootstrap_servers,
        prefix=unique_prefix("relays"),
        kafka_topic_partitions=PARTITIONS,
        outbox_poll_interval_seconds=0.2,
        scheduler_interval_seconds=0.5,  # both replicas' schedulers look for openings
    )
    # The first replica is alone when it starts, so its relay takes the lead; the second
    # one's relay waits for the lock.
    first, second = (
        ServiceProcess("intake", environment, tmp_path / f"intake-{n}.log") for n in (1, 2)
    )
    await asyncio.to_thread(lambda: first.start().ready())
    await asyncio.to_thread(lambda: second.start().ready())
    expected: dict[str, list[str]] = {}
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            consultations = []
            for _ in range(4):
                created = await client.post(
                    f"{first.url}/v1/consultations", json=consultation_payload(), headers=ADMIN
                )
                assert created.status_code == 201, created.text
                consultations.append(created.json())
                expected[created.json()["id"]] = [created.json()["closes_at"]]

            async def extend(consultation: dict[str, Any], url: str, times: int) -> None:
                for _ in range(times):
                    closes = datetime.fromisoformat(expected[consultation["id"]][-1])
                    new_close = (closes + timedelta(days=1)).isoformat()
                    answer = await client.patch(
                        f"{url}/v1/consultations/{consultation['id']}",
                        json={"closes_at": new_close},
                        headers=ADMIN,
                    )
                    assert answer.status_code == 200, answer.text
                    expected[consultation["id"]].append(answer.json()["closes_at"])

            # Both replicas take changes, the consultations interleaved...
            await asyncio.gather(
                *(extend(c, (first.url, second.url)[n % 2], 6) for n, c in enumerate(consultations))
            )
            # ...then the leading replica dies mid-stream and the other takes over its relay.
            await asyncio.to_thread(first.stop, signal.SIGKILL)
            await asyncio.gather(*(extend(c, second.url, 6) for c in consultations))
    finally:
        await asyncio.to_thread(first.stop)
        topic = environment["STRATEGIA_KAFKA_TOPIC_PREFIX"] + "intake.consultations.v1"
        wanted = sum(len(closes) for closes in expected.values())
        try:
            records = await read_topic(
                kafka_bootstrap_servers,
                topic,
                keep=lambda record: body(record)["event_type"] in {*CHANGES, OPENED},
                until=lambda got: (
                    len({body(r)["event_id"] for r in got if body(r)["event_type"] != OPENED})
                    >= wanted
                    and len(opened(got)) == len(expected)
                ),
            )
        finally:
            await asyncio.to_thread(second.stop)

    # Two schedulers, one opening each (they claim due rows with SKIP LOCKED).
    assert {key: len(ids) for key, ids in opened(records).items()} == dict.fromkeys(expected, 1)
    # Delivery is at-least-once (a killed relay's last rows may come again); consumers
    # keep the first copy of each event, and those must be in commit order per key.
    seen: set[str] = set()
    published: dict[str, list[str]] = {}
    for record in records:
        event = body(record)
        if event["event_type"] == OPENED:
            continue
        if event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        assert record.key == event["data"]["consultation_id"].encode()
        published.setdefault(event["data"]["consultation_id"], []).append(
            event["data"]["closes_at"]
        )
    normalised = {
        key: [datetime.fromisoformat(value) for value in values]
        for key, values in published.items()
    }
    assert normalised == {
        key: [datetime.fromisoformat(value) for value in values] for key, values in expected.items()
    }
