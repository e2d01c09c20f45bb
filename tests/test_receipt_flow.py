"""Across services: a web submission to intake becomes exactly one receipt email.

intake and notifications run in this process as two runtimes with their own databases,
talking only through the real Kafka broker; the email lands on a real SMTP server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from devtools.pytest_plugin import DatabaseFactory, SmtpSink
from devtools.testing import wait_for
from intake.bootstrap import Intake, build
from intake.config import IntakeSettings
from intake.service.handlers import IntakeTopics
from notifications.bootstrap import build_runtime
from notifications.config import NotificationsSettings
from shared.platform.runtime import ServiceRuntime

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer flow-admin"}


@pytest.fixture
async def system(
    kafka_bootstrap_servers: str, new_database: DatabaseFactory, smtp_sink: SmtpSink
) -> AsyncIterator[tuple[Intake, ServiceRuntime]]:
    # Private topics: only this test's events flow, whatever the broker carried before.
    topics = IntakeTopics.private("flow")
    intake = build(
        IntakeSettings(
            database_url=await new_database.create("intake"),
            kafka_bootstrap_servers=kafka_bootstrap_servers,
            admin_token="flow-admin",
            log_json=False,
            outbox_poll_interval_seconds=0.5,
        ),
        consumer_name=f"intake-{uuid.uuid4().hex[:8]}",
        topics=topics,
    )
    notifications = build_runtime(
        NotificationsSettings(
            database_url=await new_database.create("notifications"),
            kafka_bootstrap_servers=kafka_bootstrap_servers,
            smtp_host=smtp_sink.host,
            smtp_port=smtp_sink.port,
            log_json=False,
            dispatcher_poll_seconds=0.5,
        ),
        consumer_name=f"notifications-{uuid.uuid4().hex[:8]}",
        submissions_topic=topics.submissions,
    )
    await intake.runtime.start()
    await notifications.start()
    yield intake, notifications
    await notifications.stop()
    await intake.runtime.stop()


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content: str = part.get_content()
    return content


async def test_web_submission_sends_one_receipt_with_number_and_digest(
    system: tuple[Intake, ServiceRuntime], smtp_sink: SmtpSink
) -> None:
    intake, notifications = system
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=intake.app), base_url="http://intake"
    )
    now = datetime.now(UTC)
    consultation = (
        await client.post(
            "/v1/consultations",
            headers=ADMIN,
            json={
                "title": "Strategia Rozwoju Gminy Konstancin-Jeziorna 2040+",
                "description": "Konsultacje projektu strategii.",
                "kind": "strategy",
                "opens_at": (now - timedelta(hours=1)).isoformat(),
                "closes_at": (now + timedelta(days=39)).isoformat(),
            },
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
        sent = await notifications.pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE recipient = $1 AND status = 'sent'", recipient
        )
        return bool(sent == 1) and len(ours()) == 1

    await wait_for(delivered, "the receipt email")

    # The idempotent replay produced no second event, so no second delivery either: the
    # intake outbox is drained and notifications has consumed everything it was sent.
    async def drained() -> bool:
        return await intake.runtime.pool.fetchval("SELECT count(*) FROM outbox") == 0

    await wait_for(drained, "intake's outbox to drain")
    await asyncio.sleep(0)  # let the consumer loop run once more
    assert (
        await notifications.pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE recipient = $1", recipient
        )
        == 1
    )

    (message,) = ours()
    text = " ".join(text_part(message).split())  # the text part is wrapped at 76 columns
    assert receipt["number"] in message["Subject"]
    assert receipt["number"] in text
    assert receipt["digest"] in text
    assert "Strategia Rozwoju Gminy Konstancin-Jeziorna 2040+" in text
    assert "Burmistrz Gminy Konstancin-Jeziorna" in text  # RODO art. 13 controller
    assert message.get_body(preferencelist=("html",)) is not None
