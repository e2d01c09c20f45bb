"""Across services: a web submission to intake becomes exactly one receipt email.

intake and notifications run in this process as two runtimes with their own databases,
talking only through the real Kafka broker; the email lands on a real SMTP server.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import pytest

from devtools.pytest_plugin import DatabaseFactory, SmtpSink
from devtools.testing import (
    ADMIN,
    RunningService,
    body,
    consultation_payload,
    count,
    read_topic,
    settings_for_test,
    start_service,
    unique_prefix,
    wait_for,
    wait_until_consumed,
)
from intake.config import IntakeSettings
from notifications.config import NotificationsSettings
from shared.contracts.topics import Topic

pytestmark = pytest.mark.integration


@pytest.fixture
async def system(
    kafka_bootstrap_servers: str, new_database: DatabaseFactory, smtp_sink: SmtpSink
) -> AsyncIterator[tuple[RunningService, RunningService]]:
    # One namespace for both: only this test's events flow, whatever the broker carried.
    prefix = unique_prefix("flow")
    intake = await start_service(
        "intake",
        settings_for_test(
            IntakeSettings,
            database_url=await new_database.create("intake"),
            kafka=kafka_bootstrap_servers,
            prefix=prefix,
        ),
    )
    notifications = await start_service(
        "notifications",
        settings_for_test(
            NotificationsSettings,
            database_url=await new_database.create("notifications"),
            kafka=kafka_bootstrap_servers,
            prefix=prefix,
            smtp_host=smtp_sink.host,
            smtp_port=smtp_sink.port,
            dispatcher_poll_seconds=0.5,
        ),
    )
    yield intake, notifications
    await notifications.stop()
    await intake.stop()


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content: str = part.get_content()
    return content


async def test_web_submission_sends_one_receipt_with_number_and_digest(
    system: tuple[RunningService, RunningService], smtp_sink: SmtpSink
) -> None:
    intake, notifications = system
    client = intake.client
    consultation = (
        await client.post(
            "/v1/consultations",
            headers=ADMIN,
            json=consultation_payload(title="Strategia Rozwoju Gminy Konstancin-Jeziorna 2040+"),
        )
    ).json()
    recipient = f"mieszkanka.{uuid.uuid4().hex[:10]}@example.org"
    payload: dict[str, Any] = {
        "submitter": {"kind": "resident", "email": recipient, "locality": "Słomczyn"},
        "theme": "spatial",
        "title": "Chodnik do szkoły",
        "body": "Prosimy o chodnik wzdłuż drogi do szkoły w Słomczynie.",
        "consent": {"processing": True, "contact": True},
    }
    url = f"/v1/consultations/{consultation['id']}/submissions"
    first = await client.post(url, json=payload, headers={"Idempotency-Key": "flow-1"})
    replay = await client.post(url, json=payload, headers={"Idempotency-Key": "flow-1"})
    assert first.status_code == replay.status_code == 202
    receipt = first.json()["receipt"]

    def ours() -> list[EmailMessage]:
        return [m for m in smtp_sink.messages() if m["To"] == recipient]

    async def delivered() -> bool:
        sent = await notifications.runtime.pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE recipient = $1 AND status = 'sent'", recipient
        )
        return bool(sent == 1) and len(ours()) == 1

    await wait_for(delivered, "the receipt email")

    # The idempotent replay produced no second event, so no second delivery either: once
    # intake's outbox is drained and notifications has committed everything on the topic,
    # every effect there will ever be is in its database.
    async def drained() -> bool:
        return await intake.count("outbox") == 0

    await wait_for(drained, "intake's outbox to drain")
    await wait_until_consumed(
        notifications.settings.kafka_bootstrap_servers,
        notifications.runtime.consumer.group_id,
        notifications.topic(Topic.INTAKE_SUBMISSIONS),
    )
    assert await notifications.count("deliveries WHERE recipient = $1", recipient) == 1

    # The address crossed Kafka only sealed, under the key intake published for the person.
    kafka = notifications.settings.kafka_bootstrap_servers
    [event] = await read_topic(kafka, intake.topic(Topic.INTAKE_SUBMISSIONS), until=count(1))
    assert recipient.encode() not in (event.value or b"")
    sealed = body(event)["data"]["submitter_email_sealed"]
    [key] = await read_topic(kafka, intake.topic(Topic.INTAKE_PERSON_KEYS), until=count(1))
    assert key.key == sealed["key_id"].encode()
    assert await notifications.count("received_person_keys WHERE key IS NOT NULL") == 1

    (message,) = ours()
    text = " ".join(text_part(message).split())  # the text part is wrapped at 76 columns
    assert receipt["number"] in message["Subject"]
    assert receipt["number"] in text
    assert receipt["digest"] in text
    assert "Strategia Rozwoju Gminy Konstancin-Jeziorna 2040+" in text
    assert "Burmistrz Gminy Konstancin-Jeziorna" in text  # RODO art. 13 controller
    assert message.get_body(preferencelist=("html",)) is not None
