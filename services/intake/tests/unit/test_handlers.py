"""Intake's use cases on a fake unit of work: the rules, fast (no broker, no server)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from intake.domain.commands import ChangeConsultation, CreateConsultation, Submit
from intake.domain.consultation import DEFAULT_THEMES
from intake.domain.errors import (
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
    OutsideWindow,
    WindowConflict,
)
from intake.service.handlers import IntakeService
from shared.contracts.intake import (
    Channel,
    ConsultationAnnounced,
    ConsultationClosed,
    ConsultationKind,
    ConsultationOpened,
    ConsultationWindowChanged,
    SubmissionContent,
    SubmissionReceived,
    submitter_email_associated_data,
)
from shared.platform.shredding import open_value

WARSAW = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def service(clock: Clock) -> IntakeService:
    return IntakeService(zone=WARSAW, clock=clock)


def create(**changes: Any) -> CreateConsultation:
    fields: dict[str, Any] = {
        "title": "Strategia Rozwoju Gminy 2040+",
        "description": "Konsultacje projektu strategii",
        "kind": ConsultationKind.STRATEGY,
        "opens_at": NOW - timedelta(days=1),
        "closes_at": NOW + timedelta(days=40),
        "themes": DEFAULT_THEMES,
    }
    fields.update(changes)
    return CreateConsultation(**fields)


def content(**changes: Any) -> SubmissionContent:
    fields: dict[str, Any] = {
        "submitter": {"kind": "resident", "email": "jan@example.com", "locality": "Gassy"},
        "theme": "social",
        "title": "Żłobek w Gassach",
        "body": "Brakuje żłobka.",
        "consent": {"processing": True},
    }
    fields.update(changes)
    return SubmissionContent.model_validate(fields)


async def open_consultation(service: IntakeService, store: Any, **changes: Any) -> uuid.UUID:
    async with store.unit_of_work() as uow:
        consultation = await service.create_consultation(uow, create(**changes))
    return consultation.id


async def submit(service: IntakeService, store: Any, consultation_id: uuid.UUID, **kw: Any) -> Any:
    command = Submit(
        consultation_id=consultation_id,
        content=kw.pop("content", content()),
        channel=kw.pop("channel", Channel.WEB),
        **kw,
    )
    async with store.unit_of_work() as uow:
        return await service.submit(uow, command)


class TestConsultations:
    async def test_creation_announces_the_consultation(self, service: IntakeService, store: Any):
        consultation_id = await open_consultation(service, store)
        [event] = store.committed_events
        assert isinstance(event, ConsultationAnnounced)
        assert event.consultation_id == consultation_id
        assert event.themes == DEFAULT_THEMES

    async def test_a_too_short_strategy_is_refused_and_nothing_commits(
        self, service: IntakeService, store: Any
    ):
        with pytest.raises(InvalidRequest, match="35 days"):
            await open_consultation(service, store, closes_at=NOW + timedelta(days=10))
        assert store.consultations.rows == {}
        assert store.committed_events == []

    async def test_extending_an_open_window_publishes_the_change(
        self, service: IntakeService, store: Any
    ):
        consultation_id = await open_consultation(service, store)
        later = NOW + timedelta(days=50)
        async with store.unit_of_work() as uow:
            changed = await service.change_consultation(
                uow, ChangeConsultation(consultation_id=consultation_id, closes_at=later)
            )
        assert changed.closes_at == later
        event = store.committed_events[-1]
        assert isinstance(event, ConsultationWindowChanged)
        assert event.previous_closes_at == NOW + timedelta(days=40)
        assert event.closes_at == later

    async def test_a_new_title_alone_publishes_no_window_change(
        self, service: IntakeService, store: Any
    ):
        consultation_id = await open_consultation(service, store)
        async with store.unit_of_work() as uow:
            changed = await service.change_consultation(
                uow, ChangeConsultation(consultation_id=consultation_id, title="Nowy tytuł")
            )
        assert changed.title == "Nowy tytuł"
        assert store.consultations.rows[consultation_id].title == "Nowy tytuł"
        assert [type(e) for e in store.committed_events] == [ConsultationAnnounced]

    async def test_shortening_an_open_window_is_a_conflict_and_changes_nothing(
        self, service: IntakeService, store: Any
    ):
        consultation_id = await open_consultation(service, store)
        async with store.unit_of_work() as uow:
            with pytest.raises(WindowConflict, match="not shortened"):
                await service.change_consultation(
                    uow,
                    ChangeConsultation(
                        consultation_id=consultation_id,
                        title="Zmieniony",
                        closes_at=NOW + timedelta(days=36),
                    ),
                )
        assert store.consultations.rows[consultation_id].closes_at == NOW + timedelta(days=40)
        assert store.consultations.rows[consultation_id].title == "Strategia Rozwoju Gminy 2040+"

    async def test_an_unknown_consultation_is_not_found(self, service: IntakeService, store: Any):
        async with store.unit_of_work() as uow:
            with pytest.raises(NotFound):
                await service.change_consultation(
                    uow, ChangeConsultation(consultation_id=uuid.uuid4(), title="x")
                )


class TestSubmissions:
    async def test_receipts_are_gap_free_and_each_publishes_one_event(
        self, service: IntakeService, store: Any
    ):
        consultation_id = await open_consultation(service, store)
        first = await submit(service, store, consultation_id)
        with pytest.raises(InvalidRequest):  # a rejected one in between takes no number
            await submit(service, store, consultation_id, content=content(theme="tourism"))
        second = await submit(service, store, consultation_id)
        assert [first.submission.receipt.number, second.submission.receipt.number] == [
            "K1-00001",
            "K1-00002",
        ]
        received = [e for e in store.committed_events if isinstance(e, SubmissionReceived)]
        assert [e.submission_id for e in received] == [
            first.submission.id,
            second.submission.id,
        ]
        assert received[0].receipt_number == "K1-00001"
        # The address travels only sealed, under the person's one key, bound to the event.
        assert received[0].submitter_email is None
        sealed = received[0].submitter_email_sealed
        assert sealed is not None and b"jan@" not in sealed.model_dump_json().encode()
        key_id, key = store.person_keys.keys["jan@example.com"]
        assert sealed.key_id == key_id == received[1].submitter_email_sealed.key_id  # type: ignore[union-attr]
        assert (
            open_value(
                key, sealed, associated_data=submitter_email_associated_data(first.submission.id)
            )
            == "jan@example.com"
        )

    async def test_outside_the_window_is_refused(
        self, service: IntakeService, store: Any, clock: Clock
    ):
        consultation_id = await open_consultation(service, store)
        clock.now = NOW + timedelta(days=41)
        with pytest.raises(OutsideWindow, match="closed"):
            await submit(service, store, consultation_id)
        assert store.submissions.rows == {}

    async def test_a_paper_form_counts_by_the_day_it_arrived(
        self, service: IntakeService, store: Any, clock: Clock
    ):
        consultation_id = await open_consultation(service, store)
        arrived = (NOW + timedelta(days=39)).astimezone(WARSAW).date()
        clock.now = NOW + timedelta(days=45)  # typed in after the close
        result = await submit(
            service,
            store,
            consultation_id,
            content=content(received_on=arrived),
            channel=Channel.PAPER,
            entered_by="clerk",
        )
        assert result.submission.content.received_on == arrived
        assert result.submission.entered_by == "clerk"
        with pytest.raises(OutsideWindow):
            await submit(
                service,
                store,
                consultation_id,
                content=content(received_on=date(2027, 1, 8)),
                channel=Channel.PAPER,
            )

    async def test_an_idempotency_key_replays_the_first_answer(
        self, service: IntakeService, store: Any
    ):
        consultation_id = await open_consultation(service, store)
        first = await submit(service, store, consultation_id, idempotency_key="k-1")
        replay = await submit(service, store, consultation_id, idempotency_key="k-1")
        assert (first.replayed, replay.replayed) == (False, True)
        assert replay.submission == first.submission
        assert len(store.submissions.rows) == 1
        assert sum(isinstance(e, SubmissionReceived) for e in store.committed_events) == 1
        with pytest.raises(IdempotencyKeyReused):
            await submit(
                service,
                store,
                consultation_id,
                idempotency_key="k-1",
                content=content(title="Inny tytuł"),
            )

    async def test_a_key_of_a_rejected_request_stays_free(self, service: IntakeService, store: Any):
        consultation_id = await open_consultation(service, store)
        with pytest.raises(InvalidRequest):
            await submit(
                service,
                store,
                consultation_id,
                idempotency_key="k-2",
                content=content(consent={"processing": False}),
            )
        accepted = await submit(service, store, consultation_id, idempotency_key="k-2")
        assert accepted.replayed is False


class TestScheduler:
    async def test_openings_and_closings_are_announced_once(
        self, service: IntakeService, store: Any, clock: Clock
    ):
        consultation_id = await open_consultation(
            service,
            store,
            kind=ConsultationKind.GENERAL,
            opens_at=NOW + timedelta(hours=1),
            closes_at=NOW + timedelta(hours=2),
        )
        async with store.unit_of_work() as uow:
            assert await service.next_phase_change(uow) == NOW + timedelta(hours=1)
        clock.now = NOW + timedelta(hours=3)
        for _ in range(2):  # the second run finds nothing due
            async with store.unit_of_work() as uow:
                await service.announce_due_phase_changes(uow)
        phases = [type(e) for e in store.committed_events if e.consultation_id == consultation_id]
        assert phases == [ConsultationAnnounced, ConsultationOpened, ConsultationClosed]
        async with store.unit_of_work() as uow:
            assert await service.next_phase_change(uow) is None
