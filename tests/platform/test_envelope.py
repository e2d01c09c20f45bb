"""Unit tests of the envelope and of message decoding (no I/O)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from shared.contracts.envelope import Envelope, EventPayload, new_envelope
from shared.contracts.registry import TOPIC_EVENTS, EventRegistry, topic_of
from shared.contracts.topics import Topic, TopicNames, dead_letter_topic
from shared.platform.messaging import PermanentFailure, decode_envelope


class Sample(EventPayload):
    event_type = "test.Sample"

    item_id: uuid.UUID
    note: str


REGISTRY = EventRegistry([Sample])


def test_new_envelope_fills_metadata_and_round_trips() -> None:
    payload = Sample(item_id=uuid.uuid4(), note="zażółć")
    envelope = new_envelope(payload, producer="tests", causation_id="cause")

    decoded = decode_envelope(envelope.to_bytes(), REGISTRY)

    assert decoded == envelope
    assert decoded.event_type == "test.Sample"
    assert decoded.event_version == 1
    assert decoded.correlation_id == str(envelope.event_id)
    assert decoded.causation_id == "cause"
    assert decoded.occurred_at.tzinfo is not None
    assert json.loads(envelope.to_bytes())["data"]["note"] == "zażółć"


def test_occurred_at_is_normalised_to_utc() -> None:
    warsaw_summer = timezone(timedelta(hours=2))
    envelope = Envelope[Sample](
        event_type="test.Sample",
        event_version=1,
        occurred_at=datetime(2026, 7, 1, 12, 0, tzinfo=warsaw_summer),
        producer="tests",
        correlation_id="c",
        data=Sample(item_id=uuid.uuid4(), note="x"),
    )
    assert envelope.occurred_at == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert envelope.occurred_at.utcoffset() == timedelta(0)


def test_envelope_is_frozen() -> None:
    envelope = new_envelope(Sample(item_id=uuid.uuid4(), note="x"), producer="tests")
    with pytest.raises(ValidationError):
        envelope.producer = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "invalid envelope"),
        (b"{}", "invalid envelope: event_id: Field required"),
        (
            json.dumps(
                {
                    "event_id": str(uuid.uuid4()),
                    "event_type": "test.Sample",
                    "event_version": 2,
                    "occurred_at": "2026-01-01T00:00:00Z",
                    "producer": "p",
                    "correlation_id": "c",
                    "data": {},
                }
            ).encode(),
            "unknown event type or version: test.Sample v2",
        ),
        (
            json.dumps(
                {
                    "event_id": str(uuid.uuid4()),
                    "event_type": "test.Sample",
                    "event_version": 1,
                    "occurred_at": "2026-01-01T00:00:00Z",
                    "producer": "p",
                    "correlation_id": "c",
                    "data": {"item_id": "nope", "note": "x"},
                }
            ).encode(),
            "invalid test.Sample v1 payload: item_id",
        ),
    ],
)
def test_undecodable_messages_are_permanent_failures(body: bytes, reason: str) -> None:
    with pytest.raises(PermanentFailure) as failure:
        decode_envelope(body, REGISTRY)
    assert reason in str(failure.value)


def test_every_topic_is_owned_versioned_and_registered() -> None:
    for topic in Topic:
        assert topic.owner in {"intake", "groups", "notifications", "news"}
        assert re.fullmatch(r"v[1-9][0-9]*", topic.value.rsplit(".", 1)[1])
        assert dead_letter_topic(topic.value) == f"{topic.value}.dlt"
        assert TOPIC_EVENTS[topic], f"{topic} declares no events"
        for model in TOPIC_EVENTS[topic]:
            assert topic_of(model) is topic
            assert model.event_type.split(".", 1)[0] == topic.owner


def test_an_event_type_not_declared_on_a_topic_cannot_be_staged() -> None:
    with pytest.raises(LookupError, match="not declared on any topic"):
        topic_of(Sample)


def test_a_reader_ignores_fields_a_newer_producer_added() -> None:
    envelope = new_envelope(Sample(item_id=uuid.uuid4(), note="x"), producer="tests")
    newer = json.loads(envelope.to_bytes())
    newer["data"]["added_in_1_1"] = {"anything": [1, 2]}
    newer["trace_flags"] = "01"
    decoded = decode_envelope(json.dumps(newer).encode(), REGISTRY)
    assert decoded.data == envelope.data
    assert decoded.event_id == envelope.event_id


def test_topic_names_put_a_namespace_before_topics_and_groups() -> None:
    names = TopicNames("gmina-1418023.")
    assert names(Topic.INTAKE_SUBMISSIONS) == "gmina-1418023.intake.submissions.v1"
    assert names.group("notifications") == "gmina-1418023.notifications"
    assert TopicNames()(Topic.INTAKE_SUBMISSIONS) == "intake.submissions.v1"
