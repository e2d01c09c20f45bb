"""Every malformed event groups (or notifications, for the groups' emails) cannot process
goes to `<topic>.dlt` with the reason, and the partition moves on."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from devtools.pytest_plugin import DatabaseFactory, SmtpSink
from devtools.testing import (
    body,
    count,
    headers,
    read_topic,
    settings_for_test,
    start_service,
)
from notifications.config import NotificationsSettings
from shared.contracts.envelope import new_envelope
from shared.contracts.intake import ConsultationOpened
from shared.contracts.topics import Topic, dead_letter_topic
from shared.platform.messaging import DLT_REASON

from .conftest import Groups, StartGroups

pytestmark = pytest.mark.integration


def envelope(event_type: str, data: dict[str, object]) -> bytes:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "event_version": 1,
            "occurred_at": datetime.now(UTC).isoformat(),
            "producer": "intake",
            "correlation_id": "test",
            "data": data,
        }
    ).encode()


def submission_data(**changes: object) -> dict[str, object]:
    return {
        "submission_id": str(uuid.uuid4()),
        "consultation_id": str(uuid.uuid4()),
        "consultation_title": "Strategia",
        "theme": "social",
        "submitter_kind": "resident",
        "locality": None,
        "title": "Żłobek",
        "body": "Brakuje żłobka.",
        "channel": "web",
        "received_at": datetime.now(UTC).isoformat(),
        "receipt_number": "K1-00001",
        "digest": "0" * 64,
        "language": "pl",
        **changes,
    }


async def send(producer: AIOKafkaProducer, topic: str, value: bytes, key: bytes = b"k") -> None:
    await producer.send_and_wait(topic, value=value, key=key)


async def test_malformed_events_to_groups_are_dead_lettered_with_a_reason(
    groups: Groups,
) -> None:
    producer = groups.producer
    submissions = groups.topic(Topic.INTAKE_SUBMISSIONS)
    consultations = groups.topic(Topic.INTAKE_CONSULTATIONS)
    poison = {
        submissions: [
            (b"{not json", "invalid envelope"),
            (envelope("intake.SubmissionExploded", {}), "unknown event type"),
            (
                envelope("intake.SubmissionReceived", submission_data(title="Żłob\x00ek")),
                "NUL",
            ),
            (
                envelope("intake.SubmissionReceived", submission_data(theme="Społeczny!")),
                "theme",
            ),
            (
                envelope("intake.SubmissionReceived", submission_data(receipt_number=None)),
                "receipt_number",
            ),
        ],
        consultations: [
            (
                new_envelope(
                    ConsultationOpened(
                        consultation_id=uuid.uuid4(),
                        title="Nieznane",
                        opens_at=datetime.now(UTC),
                        closes_at=datetime.now(UTC),
                    ),
                    producer="intake",
                ).to_bytes(),
                "no ConsultationAnnounced",
            ),
        ],
    }
    for topic, letters in poison.items():
        for value, _ in letters:
            await send(producer, topic, value)
    # A good event after the poison is still processed: the partition moved on.
    consultation_id = await groups.consultation()
    good = await groups.submission(consultation_id)
    await groups.stored_submission(good)

    for topic, letters in poison.items():
        records = await read_topic(
            groups.settings.kafka_bootstrap_servers,
            dead_letter_topic(topic),
            until=count(len(letters)),
        )
        reasons = [headers(record)[DLT_REASON] for record in records]
        assert len(reasons) == len(letters)
        for (_, expected), reason in zip(letters, reasons, strict=True):
            assert expected in reason, reason
    assert await groups.count("submissions") == 1


async def test_malformed_volunteer_messages_are_dead_lettered_by_notifications(
    start_groups: StartGroups,
    new_database: DatabaseFactory,
    kafka_bootstrap_servers: str,
    smtp_sink: SmtpSink,
) -> None:
    groups = await start_groups()
    prefix = groups.settings.kafka_topic_prefix
    settings = settings_for_test(
        NotificationsSettings,
        database_url=await new_database.create("notifications"),
        kafka=kafka_bootstrap_servers,
        prefix=prefix,
        smtp_host=smtp_sink.host,
        smtp_port=smtp_sink.port,
    )
    notifications = await start_service("notifications", settings)
    try:
        topic = f"{prefix}{Topic.GROUPS_VOLUNTEER_MESSAGES}"
        message = {
            "volunteer_id": str(uuid.uuid4()),
            "consultation_id": str(uuid.uuid4()),
            "consultation_title": "Strategia",
            "email": "not-an-address",
            "name": "Anna",
            "locale": "pl",
            "withdraw_token": "w" * 43,
            "withdraw_expires_at": datetime.now(UTC).isoformat(),
            "confirm_token": "c" * 43,
            "confirm_expires_at": datetime.now(UTC).isoformat(),
            "themes": ["social"],
        }
        await send(
            groups.producer, topic, envelope("groups.VolunteerConfirmationRequested", message)
        )
        await send(
            groups.producer,
            topic,
            envelope(
                "groups.VolunteerConfirmationRequested",
                {**message, "email": "anna@example.org", "confirm_token": "../../etc"},
            ),
        )
        records = await read_topic(
            kafka_bootstrap_servers, dead_letter_topic(topic), until=lambda found: len(found) >= 2
        )
        reasons = [headers(record)[DLT_REASON] for record in records]
        assert "email" in reasons[0] and "confirm_token" in reasons[1]
        assert body(records[0])["event_type"] == "groups.VolunteerConfirmationRequested"
        assert await notifications.count("deliveries") == 0
    finally:
        await notifications.stop()
