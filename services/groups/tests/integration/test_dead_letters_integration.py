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
from shared.contracts.groups import (
    GroupsPersonKeyPublished,
    VolunteerConfirmationRequestedV2,
    volunteer_message_associated_data,
)
from shared.contracts.intake import ConsultationOpened
from shared.contracts.topics import Topic, dead_letter_topic
from shared.platform.messaging import DLT_REASON
from shared.platform.shredding import encode_key, new_data_key, seal_value

from .conftest import Groups, StartGroups

pytestmark = pytest.mark.integration


def envelope(event_type: str, data: dict[str, object], version: int = 1) -> bytes:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "event_version": version,
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
        # groups.volunteer-messages.v2: the address and name only sealed.
        keys_topic = f"{prefix}{Topic.GROUPS_PERSON_KEYS}"
        topic = f"{prefix}{Topic.GROUPS_VOLUNTEER_MESSAGES_V2}"
        key_id, key = uuid.uuid4(), new_data_key()
        published = new_envelope(
            GroupsPersonKeyPublished(key_id=key_id, key=encode_key(key)), producer="groups"
        )
        await groups.producer.send_and_wait(
            keys_topic, value=published.to_bytes(), key=str(key_id).encode()
        )
        volunteer_id, withdraw_token = uuid.uuid4(), "w" * 43

        def sealed(field: str, plaintext: str, *, bound_field: str | None = None) -> object:
            bound = volunteer_message_associated_data(
                VolunteerConfirmationRequestedV2,
                bound_field or field,
                volunteer_id,
                withdraw_token,
            )
            value = seal_value(key_id, key, plaintext, associated_data=bound)
            return value.model_dump(mode="json")

        message = {
            "volunteer_id": str(volunteer_id),
            "consultation_id": str(uuid.uuid4()),
            "consultation_title": "Strategia",
            "email_sealed": "not sealed",  # refused by the contract
            "name_sealed": sealed("name", "Anna"),
            "locale": "pl",
            "withdraw_token": withdraw_token,
            "withdraw_expires_at": datetime.now(UTC).isoformat(),
            "confirm_token": "c" * 43,
            "confirm_expires_at": datetime.now(UTC).isoformat(),
            "themes": ["social"],
        }
        letters = [
            message,
            {
                **message,
                "email_sealed": sealed("email", "anna@example.org"),
                "confirm_token": "../",
            },
            # Sealed under the right key but for another field: it does not open.
            {**message, "email_sealed": sealed("email", "anna@example.org", bound_field="name")},
        ]
        for letter in letters:
            await send(
                groups.producer,
                topic,
                envelope("groups.VolunteerConfirmationRequested", letter, version=2),
            )
        records = await read_topic(
            kafka_bootstrap_servers, dead_letter_topic(topic), until=count(3)
        )
        reasons = [headers(record)[DLT_REASON] for record in records]
        assert "email_sealed" in reasons[0] and "confirm_token" in reasons[1], reasons
        assert "email_sealed does not open" in reasons[2], reasons
        assert body(records[0])["event_type"] == "groups.VolunteerConfirmationRequested"
        # The dead letters hold the address only sealed.
        assert all("anna@example.org" not in record.value.decode() for record in records)

        # groups.volunteer-messages.v1, still read while it drains.
        old_topic = f"{prefix}{Topic.GROUPS_VOLUNTEER_MESSAGES}"
        old_message = {
            **{k: v for k, v in message.items() if not k.endswith("_sealed")},
            "email": "not-an-address",
            "name": "Anna",
        }
        await send(
            groups.producer,
            old_topic,
            envelope("groups.VolunteerConfirmationRequested", old_message),
        )
        await send(
            groups.producer,
            old_topic,
            envelope(
                "groups.VolunteerConfirmationRequested",
                {**old_message, "email": "anna@example.org", "confirm_token": "../../etc"},
            ),
        )
        records = await read_topic(
            kafka_bootstrap_servers,
            dead_letter_topic(old_topic),
            until=lambda found: len(found) >= 2,
        )
        reasons = [headers(record)[DLT_REASON] for record in records]
        assert "email" in reasons[0] and "confirm_token" in reasons[1]
        assert body(records[0])["event_type"] == "groups.VolunteerConfirmationRequested"
        assert await notifications.count("deliveries") == 0
    finally:
        await notifications.stop()
