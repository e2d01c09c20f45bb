"""groups under test on the real broker and server: the service in-process, its own
database and topic namespace, and helpers to feed it intake's events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from devtools.kafka_auth import admin_options
from devtools.testing import (
    CLERK,
    RunningService,
    eventually,
    settings_for_test,
    start_service,
    unique_prefix,
)
from groups.config import GroupsSettings
from shared.clock import Clock
from shared.contracts.envelope import EventPayload, new_envelope
from shared.contracts.groups import VolunteerMessageV2, volunteer_message_associated_data
from shared.contracts.intake import (
    Channel,
    ConsultationAnnounced,
    ConsultationKind,
    Language,
    SubmissionReceived,
    SubmitterKind,
)
from shared.contracts.registry import TOPIC_EVENTS
from shared.contracts.sealed import SealedValue
from shared.contracts.topics import Topic
from shared.platform.outbox import envelope_headers
from shared.platform.shredding import open_value

THEMES = ("social", "environmental", "economic", "spatial")


class MovableClock:
    """The service's clock, moved by the test (link and session expiry)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


class Groups(RunningService):
    """groups under test, with a producer for intake's topics in its namespace."""

    producer: AIOKafkaProducer

    async def publish(self, topic: Topic, payload: EventPayload, key: uuid.UUID) -> None:
        envelope = new_envelope(payload, producer="intake")
        await self.producer.send_and_wait(
            self.topic(topic),
            value=envelope.to_bytes(),
            key=str(key).encode(),
            headers=[(k, v.encode()) for k, v in envelope_headers(envelope).items()],
        )

    async def opened(self, message: dict[str, Any], field: str) -> str:
        """A sealed field of a `groups.volunteer-messages.v2` record's data, opened with
        groups' own copy of the person's key (what notifications does with its copy)."""
        [model] = (
            m
            for m in TOPIC_EVENTS[Topic.GROUPS_VOLUNTEER_MESSAGES_V2]
            if m.event_type == message["event_type"]
        )
        data = message["data"]
        sealed = SealedValue.model_validate(data[f"{field}_sealed"])
        key = await self.runtime.pool.fetchval(
            "SELECT key FROM person_keys WHERE key_id = $1", sealed.key_id
        )
        assert key is not None, f"no key {sealed.key_id} in groups"
        assert issubclass(model, VolunteerMessageV2)
        bound = volunteer_message_associated_data(
            model, field, uuid.UUID(data["volunteer_id"]), data["withdraw_token"]
        )
        return open_value(bytes(key), sealed, associated_data=bound)

    async def consultation(
        self, themes: tuple[str, ...] = THEMES, *, closes_in: timedelta = timedelta(days=40)
    ) -> uuid.UUID:
        """Announce a consultation on intake's topic and wait until groups knows it."""
        consultation_id = uuid.uuid4()
        now = datetime.now(UTC)
        await self.publish(
            Topic.INTAKE_CONSULTATIONS,
            ConsultationAnnounced(
                consultation_id=consultation_id,
                title="Strategia Rozwoju Gminy 2040+",
                kind=ConsultationKind.STRATEGY,
                opens_at=now - timedelta(days=1),
                closes_at=now + closes_in,
                themes=themes,
            ),
            consultation_id,
        )

        async def known() -> bool:
            response = await self.client.get(f"/v1/consultations/{consultation_id}/groups")
            return response.status_code == 200

        await eventually(known, f"consultation {consultation_id} in groups")
        return consultation_id

    async def submission(
        self,
        consultation_id: uuid.UUID,
        *,
        theme: str | None = "social",
        title: str = "Żłobek w Gassach",
        body: str = "W Gassach brakuje żłobka; proszę o ujęcie go w strategii.",
        kind: SubmitterKind = SubmitterKind.RESIDENT,
        locality: str | None = "Gassy",
        received_at: datetime | None = None,
        submitter_email: str | None = None,
        contact_consent: bool = False,
    ) -> uuid.UUID:
        submission_id = uuid.uuid4()
        await self.publish(
            Topic.INTAKE_SUBMISSIONS,
            SubmissionReceived(
                submission_id=submission_id,
                consultation_id=consultation_id,
                consultation_title="Strategia Rozwoju Gminy 2040+",
                theme=theme,
                submitter_kind=kind,
                locality=locality,
                title=title,
                body=body,
                channel=Channel.WEB,
                received_at=received_at or datetime.now(UTC),
                receipt_number=f"K1-{uuid.uuid4().int % 100000:05d}",
                digest="0" * 64,
                language=Language.PL,
                submitter_email=submitter_email,
                contact_consent=contact_consent,
            ),
            submission_id,
        )
        return submission_id

    async def stored_submission(self, submission_id: uuid.UUID) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            row = await self.runtime.pool.fetchrow(
                "SELECT * FROM submissions WHERE id = $1", submission_id
            )
            return dict(row) if row else None

        return await eventually(probe, f"submission {submission_id} in groups")

    async def clerk_sign_up(
        self, consultation_id: uuid.UUID, themes: list[str], **changes: Any
    ) -> dict[str, Any]:
        n = uuid.uuid4().int
        payload: dict[str, Any] = {
            "name": f"Wolontariusz {n % 10000}",
            "email": f"w{n % 10**12}@example.org",
            "themes": themes,
            "consent": {"processing": True},
            "channel": "phone",
            **changes,
        }
        response = await self.client.post(
            f"/v1/consultations/{consultation_id}/volunteers", json=payload, headers=CLERK
        )
        assert response.status_code == 202, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def groups(self, consultation_id: uuid.UUID) -> list[dict[str, Any]]:
        response = await self.client.get(f"/v1/consultations/{consultation_id}/groups")
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found


StartGroups = Callable[..., Awaitable[Groups]]


@pytest.fixture
async def start_groups(
    kafka_bootstrap_servers: str, new_database: Any
) -> AsyncIterator[StartGroups]:
    running: list[Groups] = []
    producer = AIOKafkaProducer(**admin_options(kafka_bootstrap_servers), acks="all")
    await producer.start()

    async def start(clock: Clock | None = None, **overrides: Any) -> Groups:
        settings = settings_for_test(
            GroupsSettings,
            database_url=overrides.pop("database_url", None) or await new_database.create("groups"),
            kafka=kafka_bootstrap_servers,
            prefix=overrides.pop("prefix", None) or unique_prefix("groups"),
            trend_poll_seconds=0.5,
            **overrides,
        )
        options = {"clock": clock} if clock is not None else {}
        started = await start_service("groups", settings, **options)
        service = Groups(started.service, started.settings, started.client)
        service.producer = producer
        running.append(service)
        return service

    try:
        yield start
    finally:
        for service in running:
            await service.stop()
        await producer.stop()


@pytest.fixture
async def groups(start_groups: StartGroups) -> Groups:
    return await start_groups()
