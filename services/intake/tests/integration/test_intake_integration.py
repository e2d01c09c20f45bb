"""Intake on the real broker and server: HTTP API, outbox events, Kafka commands, scheduler."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from devtools.kafka_auth import principal_connection
from devtools.testing import (
    ADMIN,
    CLERK,
    Record,
    RunningService,
    body,
    consultation_payload,
    end_offset,
    headers,
    read_topic,
    settings_for_test,
    start_service,
    submission_payload,
    unique_prefix,
    wait_for,
)
from intake.config import IntakeSettings
from shared.contracts.envelope import new_envelope
from shared.contracts.intake import (
    BODY_MAX,
    ConsentData,
    SubmitSubmission,
    SubmitterData,
    SubmitterKind,
)
from shared.contracts.topics import Topic
from shared.platform.messaging import DLT_ATTEMPTS, DLT_REASON

pytestmark = pytest.mark.integration


class Clock:
    """Intake's clock in these tests: real time, shifted at will (to create a consultation
    that is over by now, create it while the clock is in the past)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class Service(RunningService):
    """Intake under test: its client, tables and topics, and a consultation factory."""

    clock: Clock

    @property
    def kafka(self) -> str:
        return self.settings.kafka_bootstrap_servers

    async def consultation(self, **changes: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/consultations", json=consultation_payload(**changes), headers=ADMIN
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def past_consultation(self, **changes: Any) -> dict[str, Any]:
        """A consultation whose window is (partly) in the past: created a month ago."""
        self.clock.offset = -timedelta(days=30)
        try:
            return await self.consultation(**changes)
        finally:
            self.clock.offset = timedelta(0)


Factory = Callable[..., Awaitable[Service]]


def front_channel(service: Service) -> dict[str, Any]:
    """A front channel's producer options: the one principal that may send commands."""
    connection = principal_connection(
        service.kafka, service.settings.kafka_topic_prefix, "front-channel"
    )
    return connection.client_options()


@pytest.fixture
async def start_intake(kafka_bootstrap_servers: str, new_database: Any) -> AsyncIterator[Factory]:
    running: list[Service] = []

    async def start(dsn: str | None = None, prefix: str | None = None) -> Service:
        settings = settings_for_test(
            IntakeSettings,
            database_url=dsn or await new_database.create("intake"),
            kafka=kafka_bootstrap_servers,
            # Its own namespace: only this test's events on its topics.
            prefix=prefix or unique_prefix("intake"),
            scheduler_interval_seconds=0.5,
        )
        clock = Clock()
        started = await start_service("intake", settings, clock=clock)
        service = Service(started.service, started.settings, started.client)
        service.clock = clock
        running.append(service)
        return service

    yield start
    for service in reversed(running):
        await service.stop()


def for_consultation(consultation_id: str) -> Callable[[Record], bool]:
    return lambda record: body(record)["data"].get("consultation_id") == consultation_id


submission = submission_payload


async def test_consultation_admin_api(start_intake: Factory) -> None:
    service = await start_intake()
    created = await service.consultation()
    assert created["themes"] == ["social", "environmental", "economic", "spatial"]
    assert created["phase"] == "open"

    short = await service.client.post(
        "/v1/consultations",
        json={
            **{k: created[k] for k in ("title", "description", "kind", "opens_at")},
            # A day after it opens: after the opening whatever the hour, short of 35 days.
            "closes_at": (
                datetime.fromisoformat(created["opens_at"]) + timedelta(days=1)
            ).isoformat(),
        },
        headers=ADMIN,
    )
    assert short.status_code == 422
    assert "at least 35 days" in short.json()["message"]
    assert short.json()["errors"][0]["field"] == "closes_at"

    anonymous = await service.client.post("/v1/consultations", json={})
    assert anonymous.status_code == 401
    assert anonymous.json() == {"error": "unauthorized", "message": "an API token is required"}
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    as_clerk = await service.client.post("/v1/consultations", json={}, headers=CLERK)
    assert as_clerk.status_code == 403
    assert as_clerk.json()["error"] == "forbidden"

    listed = await service.client.get("/v1/consultations")
    assert [c["id"] for c in listed.json()] == [created["id"]]
    one = await service.client.get(f"/v1/consultations/{created['id']}")
    assert one.json() == created
    missing = await service.client.get(f"/v1/consultations/{uuid.uuid4()}")
    assert missing.status_code == 404

    later = (datetime.fromisoformat(created["closes_at"]) + timedelta(days=5)).isoformat()
    extended = await service.client.patch(
        f"/v1/consultations/{created['id']}", json={"closes_at": later}, headers=ADMIN
    )
    assert extended.status_code == 200, extended.text
    assert datetime.fromisoformat(extended.json()["closes_at"]) == datetime.fromisoformat(later)
    shortened = await service.client.patch(
        f"/v1/consultations/{created['id']}",
        json={"closes_at": created["closes_at"]},
        headers=ADMIN,
    )
    assert shortened.status_code == 409
    assert "not shortened" in shortened.json()["message"]

    events = await read_topic(
        service.kafka,
        service.topic(Topic.INTAKE_CONSULTATIONS),
        keep=for_consultation(created["id"]),
        until=lambda got: (
            {body(r)["event_type"] for r in got}
            >= {
                "intake.ConsultationAnnounced",
                "intake.ConsultationOpened",
                "intake.ConsultationWindowChanged",
            }
        ),
    )
    announced = next(body(r) for r in events if body(r)["event_type"].endswith("Announced"))
    assert announced["data"]["kind"] == "strategy"
    assert all(r.key == created["id"].encode() for r in events)


async def test_web_submission_receipt_event_and_idempotent_replay(start_intake: Factory) -> None:
    service = await start_intake()
    consultation = await service.consultation()
    url = f"/v1/consultations/{consultation['id']}/submissions"

    first = await service.client.post(url, json=submission(), headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 202, first.text
    accepted = first.json()
    assert accepted["receipt"]["number"] == f"K{consultation['number']}-00001"
    assert len(accepted["receipt"]["digest"]) == 64

    replay = await service.client.post(url, json=submission(), headers={"Idempotency-Key": "k-1"})
    assert replay.status_code == 202
    assert replay.json() == accepted
    assert replay.headers["Idempotent-Replayed"] == "true"
    reused = await service.client.post(
        url, json=submission(title="Inny tytuł"), headers={"Idempotency-Key": "k-1"}
    )
    assert reused.status_code == 422
    assert reused.json()["errors"][0]["field"] == "Idempotency-Key"

    second = await service.client.post(
        url, json=submission(submitter={"kind": "company", "organisation": "Firma"})
    )
    assert second.json()["receipt"]["number"] == f"K{consultation['number']}-00002"
    assert await service.count("submissions") == 2

    events = await read_topic(
        service.kafka,
        service.topic(Topic.INTAKE_SUBMISSIONS),
        keep=for_consultation(consultation["id"]),
        until=lambda got: len(got) >= 2,
    )
    assert len(events) == 2
    received = body(events[0])
    assert received["event_type"] == "intake.SubmissionReceived"
    data = received["data"]
    assert data["submission_id"] == accepted["id"]
    assert data["receipt_number"] == accepted["receipt"]["number"]
    assert data["digest"] == accepted["receipt"]["digest"]
    # The address travels only sealed, under the person's key (crypto-shredding).
    assert data["submitter_email"] is None
    assert b"jan.kowalski" not in (events[0].value or b"")
    [key_id] = await service.runtime.pool.fetch("SELECT key_id FROM person_keys")
    assert data["submitter_email_sealed"]["key_id"] == str(key_id["key_id"])
    assert (data["theme"], data["locality"], data["channel"]) == ("social", "Gassy", "web")
    assert events[0].key == accepted["id"].encode()
    assert body(events[1])["data"].get("submitter_email") is None
    assert body(events[1])["data"].get("submitter_email_sealed") is None

    stored = await service.client.get(f"/v1/submissions/{accepted['id']}", headers=ADMIN)
    assert stored.status_code == 200
    assert stored.json()["receipt"]["digest"] == accepted["receipt"]["digest"]
    assert (await service.client.get(f"/v1/submissions/{accepted['id']}")).status_code == 401

    page = await service.client.get(
        f"/v1/consultations/{consultation['id']}/submissions",
        params={"kind": "company", "limit": 10},
        headers=ADMIN,
    )
    assert page.json()["total"] == 1
    assert page.json()["items"][0]["submitter"]["organisation"] == "Firma"
    by_channel = await service.client.get(
        f"/v1/consultations/{consultation['id']}/submissions",
        params={"channel": "paper"},
        headers=ADMIN,
    )
    assert by_channel.json()["total"] == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (submission(consent={"processing": False, "contact": False}), "consent.processing"),
        ({k: v for k, v in submission().items() if k != "consent"}, "consent"),
        (submission(theme="tourism"), "theme"),
        (submission(submitter={"kind": "alien"}), "submitter.kind"),
        (submission(title="   "), "title"),
        (submission(body=""), "body"),
        (submission(body="x" * (BODY_MAX + 1)), "body"),
        (submission(submitter={"kind": "resident", "email": "not-an-email"}), "submitter.email"),
    ],
)
async def test_invalid_submissions_are_422_and_write_nothing(
    start_intake: Factory, payload: dict[str, Any], field: str
) -> None:
    service = await start_intake()
    consultation = await service.consultation()
    response = await service.client.post(
        f"/v1/consultations/{consultation['id']}/submissions",
        json=payload,
        headers={"Idempotency-Key": "bad-1"},
    )
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]
    assert await service.count("submissions") == 0
    assert await service.count("idempotency_keys") == 0
    # An event row is in the outbox until published, then on the topic: check both, in
    # this order, and a stray SubmissionReceived cannot slip between the two looks.
    submissions_topic = service.topic(Topic.INTAKE_SUBMISSIONS)
    assert await service.count("outbox WHERE topic = $1", submissions_topic) == 0
    assert await end_offset(service.kafka, submissions_topic) == 0


async def test_outside_the_window_is_409_with_when(start_intake: Factory) -> None:
    service = await start_intake()
    now = datetime.now(UTC)
    upcoming = await service.consultation(
        kind="general",
        opens_at=(now + timedelta(days=2)).isoformat(),
        closes_at=(now + timedelta(days=9)).isoformat(),
    )
    closed = await service.past_consultation(
        kind="general",
        opens_at=(now - timedelta(days=9)).isoformat(),
        closes_at=(now - timedelta(days=2)).isoformat(),
    )
    early = await service.client.post(
        f"/v1/consultations/{upcoming['id']}/submissions", json=submission()
    )
    assert early.status_code == 409
    assert "opens at" in early.json()["message"]
    late = await service.client.post(
        f"/v1/consultations/{closed['id']}/submissions", json=submission()
    )
    assert late.status_code == 409
    assert "closed at" in late.json()["message"]
    assert await service.count("submissions") == 0


async def test_clerk_enters_late_typed_paper_form_received_on_time(start_intake: Factory) -> None:
    service = await start_intake()
    now = datetime.now(UTC)
    closed = await service.past_consultation(
        kind="general",
        opens_at=(now - timedelta(days=20)).isoformat(),
        closes_at=(now - timedelta(days=3)).isoformat(),
    )
    url = f"/v1/consultations/{closed['id']}/submissions"
    received_on = (now - timedelta(days=5)).date().isoformat()
    paper = submission(channel="paper", received_on=received_on)

    as_public = await service.client.post(url, json=paper)
    assert as_public.status_code == 403
    assert as_public.json()["errors"][0]["field"] == "channel"

    accepted = await service.client.post(url, json=paper, headers=CLERK)
    assert accepted.status_code == 202, accepted.text
    stored = await service.client.get(f"/v1/submissions/{accepted.json()['id']}", headers=ADMIN)
    assert stored.json()["channel"] == "paper"
    assert stored.json()["received_on"] == received_on
    assert stored.json()["entered_by"] == "clerk"

    too_late = submission(channel="paper", received_on=(now - timedelta(days=1)).date().isoformat())
    rejected = await service.client.post(url, json=too_late, headers=CLERK)
    assert rejected.status_code == 409

    phone = await service.client.post(url, json=submission(channel="phone"), headers=CLERK)
    assert phone.status_code == 409  # a phone call counts when it is typed in

    # A form "received" within the window but typed in weeks later is not believed.
    backdated = submission(
        channel="paper", received_on=(now - timedelta(days=15)).date().isoformat()
    )
    refused = await service.client.post(url, json=backdated, headers=CLERK)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "received_on"
    assert "at most 14 days" in refused.json()["errors"][0]["reason"]


async def test_a_consultation_cannot_be_created_over_or_moved_into_the_past(
    start_intake: Factory,
) -> None:
    service = await start_intake()
    now = datetime.now(UTC)
    over = await service.client.post(
        "/v1/consultations",
        json=consultation_payload(
            kind="general",
            opens_at=(now - timedelta(days=9)).isoformat(),
            closes_at=(now - timedelta(minutes=1)).isoformat(),
        ),
        headers=ADMIN,
    )
    assert over.status_code == 422
    assert over.json()["errors"][0]["field"] == "closes_at"
    upcoming = await service.consultation(
        kind="general",
        opens_at=(now + timedelta(days=2)).isoformat(),
        closes_at=(now + timedelta(days=9)).isoformat(),
    )
    moved = await service.client.patch(
        f"/v1/consultations/{upcoming['id']}",
        json={
            "opens_at": (now - timedelta(days=9)).isoformat(),
            "closes_at": (now - timedelta(days=2)).isoformat(),
        },
        headers=ADMIN,
    )
    assert moved.status_code == 409
    assert "past" in moved.json()["message"]
    # Across the spring clock change: 35 calendar days in Warsaw are 34 days 23 hours.
    dst = await service.client.post(
        "/v1/consultations",
        json=consultation_payload(
            opens_at="2027-03-01T00:00:00+01:00", closes_at="2027-04-05T00:00:00+02:00"
        ),
        headers=ADMIN,
    )
    assert dst.status_code == 201, dst.text


async def test_kafka_command_goes_through_the_same_rules(start_intake: Factory) -> None:
    service = await start_intake()
    consultation = await service.consultation()
    good = new_envelope(
        SubmitSubmission(
            consultation_id=uuid.UUID(consultation["id"]),
            submitter=SubmitterData(kind=SubmitterKind.ASSOCIATION, organisation="Stowarzyszenie"),
            theme="environmental",
            title="Ścieżka rowerowa",
            body="Proponujemy ścieżkę wzdłuż Jeziorki.",
            consent=ConsentData(processing=True),
        ),
        producer="epuap-gateway",
    )
    bad = new_envelope(
        SubmitSubmission(
            consultation_id=uuid.UUID(consultation["id"]),
            submitter=SubmitterData(kind=SubmitterKind.RESIDENT),
            theme="tourism",
            title="Nieznany temat",
            body="Treść",
            consent=ConsentData(processing=True),
        ),
        producer="epuap-gateway",
    )
    producer = AIOKafkaProducer(**front_channel(service))
    await producer.start()
    try:
        for envelope in (bad, good, good):  # the good one is delivered twice
            await producer.send_and_wait(
                service.topic(Topic.INTAKE_SUBMISSION_COMMANDS),
                envelope.to_bytes(),
                key=consultation["id"].encode(),
            )
    finally:
        await producer.stop()

    async def stored() -> bool:
        return await service.count("submissions") == 1

    await wait_for(stored, "the command's submission")
    dead = await read_topic(
        service.kafka,
        service.topic(Topic.INTAKE_SUBMISSION_COMMANDS) + ".dlt",
        until=lambda got: len(got) >= 1,
    )
    assert json.loads(dead[0].value)["event_id"] == str(bad.event_id)
    assert "theme: unknown theme" in headers(dead[0])[DLT_REASON]

    events = await read_topic(
        service.kafka,
        service.topic(Topic.INTAKE_SUBMISSIONS),
        keep=for_consultation(consultation["id"]),
        until=lambda got: len(got) >= 1,
    )
    event = body(events[0])
    assert event["data"]["title"] == "Ścieżka rowerowa"
    assert event["data"]["channel"] == "kafka"
    stored = await service.client.get(
        f"/v1/submissions/{event['data']['submission_id']}", headers=ADMIN
    )
    assert stored.json()["entered_by"] == "kafka"  # the topic, not the sender's say-so
    assert event["correlation_id"] == good.correlation_id
    assert event["causation_id"] == str(good.event_id)
    assert await service.count("submissions") == 1


async def test_opening_and_closing_are_published_also_after_a_restart(
    start_intake: Factory, new_database: Any
) -> None:
    dsn = await new_database.create("intake")
    service = await start_intake(dsn)
    now = datetime.now(UTC)
    created = await service.consultation(
        kind="general",
        opens_at=(now + timedelta(seconds=2)).isoformat(),
        closes_at=(now + timedelta(seconds=3)).isoformat(),
    )
    await service.runtime.stop()  # down while the window opens and closes

    async def window_passed() -> bool:
        return datetime.now(UTC) > now + timedelta(seconds=3)

    await wait_for(window_passed, "the window to pass")
    await start_intake(dsn, service.settings.kafka_topic_prefix)
    events = await read_topic(
        service.kafka,
        service.topic(Topic.INTAKE_CONSULTATIONS),
        keep=for_consultation(created["id"]),
        until=lambda got: len({body(r)["event_id"] for r in got}) >= 3,
    )
    # delivery is at-least-once: a copy published before the stop may come again
    unique = {body(r)["event_id"]: body(r)["event_type"] for r in events}
    assert list(unique.values()) == [
        "intake.ConsultationAnnounced",
        "intake.ConsultationOpened",
        "intake.ConsultationClosed",
    ]


async def test_a_command_that_can_never_be_stored_is_dead_lettered_at_once(
    start_intake: Factory,
) -> None:
    """A NUL in a command's text fails validation: dead-lettered on the first attempt, with
    the field named, instead of failing in PostgreSQL five times over."""
    service = await start_intake()
    consultation = await service.consultation()
    command = json.loads(
        new_envelope(
            SubmitSubmission(
                consultation_id=uuid.UUID(consultation["id"]),
                submitter=SubmitterData(kind=SubmitterKind.RESIDENT),
                title="Tytuł",
                body="Treść",
                consent=ConsentData(processing=True),
            ),
            producer="epuap-gateway",
        ).to_bytes()
    )
    command["data"]["body"] = "Treść z bajtem \u0000 zerowym"
    producer = AIOKafkaProducer(**front_channel(service))
    await producer.start()
    try:
        await producer.send_and_wait(
            service.topic(Topic.INTAKE_SUBMISSION_COMMANDS), json.dumps(command).encode()
        )
    finally:
        await producer.stop()

    [dead] = await read_topic(
        service.kafka,
        service.topic(Topic.INTAKE_SUBMISSION_COMMANDS) + ".dlt",
        until=lambda got: len(got) >= 1,
    )
    assert headers(dead)[DLT_ATTEMPTS] == "1"
    assert "body: Value error, must not contain NUL" in headers(dead)[DLT_REASON]
    assert await service.count("submissions") == 0


async def test_a_command_cannot_pass_for_a_clerk_or_set_its_own_receipt_time(
    start_intake: Factory,
) -> None:
    service = await start_intake()
    consultation = await service.consultation()
    now = datetime.now(UTC)

    def command(**changes: Any) -> bytes:
        envelope = json.loads(
            new_envelope(
                SubmitSubmission(
                    consultation_id=uuid.UUID(consultation["id"]),
                    submitter=SubmitterData(kind=SubmitterKind.RESIDENT),
                    title="Tytuł",
                    body="Treść",
                    consent=ConsentData(processing=True),
                ),
                producer="clerk-desk",
            ).to_bytes()
        )
        envelope["data"].update(changes)
        return json.dumps(envelope).encode()

    paper = command(channel="paper", received_on=(now - timedelta(days=400)).date().isoformat())
    backdated = command(received_at=(now - timedelta(days=400)).isoformat())
    producer = AIOKafkaProducer(**front_channel(service))
    await producer.start()
    try:
        topic = service.topic(Topic.INTAKE_SUBMISSION_COMMANDS)
        await producer.send_and_wait(topic, paper, key=b"k")
        await producer.send_and_wait(topic, backdated, key=b"k")
    finally:
        await producer.stop()

    dead = await read_topic(
        service.kafka,
        service.topic(Topic.INTAKE_SUBMISSION_COMMANDS) + ".dlt",
        until=lambda got: len(got) >= 2,
    )
    reasons = [headers(record)[DLT_REASON] for record in dead]
    assert "channel: a Kafka command is a kafka submission" in reasons[0]
    assert "received_at: intake records when it receives a command" in reasons[1]
    assert await service.count("submissions") == 0
