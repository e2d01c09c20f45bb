"""Group commit on a fake unit of work: concurrent submissions to one consultation share one
transaction, and each request still gets the outcome it would have had alone."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from intake.domain.commands import CreateConsultation, Submit
from intake.domain.consultation import DEFAULT_THEMES, Consultation
from intake.domain.errors import IdempotencyKeyReused, InvalidRequest, NotFound, OutsideWindow
from intake.domain.submission import Submission
from intake.service.group_commit import SubmissionBatcher
from intake.service.handlers import IntakeService, SubmitResult
from shared.contracts.intake import (
    Channel,
    ConsultationKind,
    SubmissionContent,
    SubmissionReceived,
)

NOW = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
FakeStore = Any  # conftest.FakeStore: the fake database behind the units of work


@pytest.fixture
def service() -> IntakeService:
    return IntakeService(zone=ZoneInfo("Europe/Warsaw"), clock=lambda: NOW)


async def open_consultation(service: IntakeService, store: FakeStore) -> uuid.UUID:
    async with store.unit_of_work() as uow:
        consultation = await service.create_consultation(
            uow,
            CreateConsultation(
                title="Strategia Rozwoju Gminy 2040+",
                description="Konsultacje projektu strategii",
                kind=ConsultationKind.STRATEGY,
                opens_at=NOW - timedelta(days=1),
                closes_at=NOW + timedelta(days=40),
                themes=DEFAULT_THEMES,
            ),
        )
    return consultation.id


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


def command(consultation_id: uuid.UUID, **kw: Any) -> Submit:
    return Submit(
        consultation_id=consultation_id,
        content=kw.pop("content", content()),
        channel=kw.pop("channel", Channel.WEB),
        **kw,
    )


async def submit_together(
    batcher: SubmissionBatcher, commands: Sequence[Submit]
) -> list[SubmitResult | BaseException]:
    return await asyncio.gather(
        *(batcher.submit(each) for each in commands), return_exceptions=True
    )


def numbers(outcomes: Sequence[SubmitResult | BaseException]) -> list[str]:
    return [o.submission.receipt.number for o in outcomes if isinstance(o, SubmitResult)]


def received(store: FakeStore) -> list[SubmissionReceived]:
    return [e for e in store.committed_events if isinstance(e, SubmissionReceived)]


async def test_concurrent_submissions_share_one_transaction(
    service: IntakeService, store: FakeStore
) -> None:
    consultation_id = await open_consultation(service, store)
    batcher = SubmissionBatcher(service, store.unit_of_work)
    outcomes = await submit_together(batcher, [command(consultation_id) for _ in range(20)])

    assert (batcher.transactions, batcher.largest_batch) == (1, 20)
    assert numbers(outcomes) == [f"K1-{n:05d}" for n in range(1, 21)]
    assert [e.submission_id for e in received(store)] == [
        o.submission.id for o in outcomes if isinstance(o, SubmitResult)
    ]
    assert len(store.submissions.rows) == 20


async def test_requests_arriving_during_a_commit_go_together_in_the_next(
    service: IntakeService, store: FakeStore
) -> None:
    consultation_id = await open_consultation(service, store)
    gate = asyncio.Event()

    def gated_unit_of_work() -> Any:
        uow = store.unit_of_work()
        begin = uow._begin

        async def wait_then_begin() -> None:
            await gate.wait()
            await begin()

        uow._begin = wait_then_begin  # type: ignore[method-assign]
        return uow

    batcher = SubmissionBatcher(service, gated_unit_of_work)

    async def later() -> list[SubmitResult | BaseException]:
        await asyncio.sleep(0.01)  # the first transaction has begun (it waits at the gate)
        return await submit_together(batcher, [command(consultation_id) for _ in range(5)])

    async def open_gate() -> None:
        await asyncio.sleep(0.02)
        gate.set()

    first, others, _ = await asyncio.gather(
        batcher.submit(command(consultation_id)), later(), open_gate()
    )
    outcomes = [first, *others]

    assert batcher.transactions == 2
    assert batcher.largest_batch == 5
    assert numbers(outcomes) == [f"K1-{n:05d}" for n in range(1, 7)]


async def test_a_broken_rule_rejects_that_request_alone_and_takes_no_number(
    service: IntakeService, store: FakeStore
) -> None:
    consultation_id = await open_consultation(service, store)
    batcher = SubmissionBatcher(service, store.unit_of_work)
    outcomes = await submit_together(
        batcher,
        [
            command(consultation_id),
            command(consultation_id, content=content(theme="tourism")),
            command(consultation_id),
            command(consultation_id, channel=Channel.PAPER),  # paper needs received_on
            command(consultation_id),
        ],
    )
    assert batcher.transactions == 1
    assert isinstance(outcomes[1], InvalidRequest)
    assert isinstance(outcomes[3], InvalidRequest)
    assert numbers(outcomes) == ["K1-00001", "K1-00002", "K1-00003"]
    assert len(received(store)) == 3


async def test_one_key_in_one_batch_takes_effect_once(
    service: IntakeService, store: FakeStore
) -> None:
    consultation_id = await open_consultation(service, store)
    batcher = SubmissionBatcher(service, store.unit_of_work)
    outcomes = await submit_together(
        batcher,
        [
            command(consultation_id, idempotency_key="k-1"),
            command(consultation_id, idempotency_key="k-1"),
            command(consultation_id, idempotency_key="k-1", content=content(title="Inny")),
            command(consultation_id, idempotency_key="k-2"),
        ],
    )
    first, replay, reused, other = outcomes
    assert isinstance(first, SubmitResult) and isinstance(replay, SubmitResult)
    assert (first.replayed, replay.replayed) == (False, True)
    assert replay.submission == first.submission
    assert isinstance(reused, IdempotencyKeyReused)
    assert isinstance(other, SubmitResult)
    assert numbers([first, other]) == ["K1-00001", "K1-00002"]
    assert len(store.submissions.rows) == 2
    assert len(received(store)) == 2

    # ...and in a later batch the stored key replays the same submission.
    [again] = await submit_together(batcher, [command(consultation_id, idempotency_key="k-1")])
    assert isinstance(again, SubmitResult)
    assert (again.replayed, again.submission) == (True, first.submission)
    assert len(received(store)) == 2


async def test_a_key_of_a_request_rejected_earlier_in_the_batch_stays_free(
    service: IntakeService, store: FakeStore
) -> None:
    consultation_id = await open_consultation(service, store)
    batcher = SubmissionBatcher(service, store.unit_of_work)
    rejected, accepted = await submit_together(
        batcher,
        [
            command(consultation_id, idempotency_key="k", content=content(theme="tourism")),
            command(consultation_id, idempotency_key="k"),
        ],
    )
    assert isinstance(rejected, InvalidRequest)
    assert isinstance(accepted, SubmitResult) and accepted.replayed is False


async def test_a_batch_failing_for_another_reason_is_retried_request_by_request(
    service: IntakeService, store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    consultation_id = await open_consultation(service, store)
    add_many = store.submissions.add_many

    async def refuse_boom(submissions: Sequence[Submission]) -> None:
        if any(s.content.title == "boom" for s in submissions):
            raise RuntimeError("the database refused the row")
        await add_many(submissions)

    monkeypatch.setattr(store.submissions, "add_many", refuse_boom)
    batcher = SubmissionBatcher(service, store.unit_of_work)
    outcomes = await submit_together(
        batcher,
        [
            command(consultation_id),
            command(consultation_id, content=content(title="boom")),
            command(consultation_id),
        ],
    )
    assert isinstance(outcomes[1], RuntimeError)
    assert numbers(outcomes) == ["K1-00001", "K1-00002"]  # the failed batch left no gap
    assert batcher.transactions == 4  # the batch, then each request alone
    assert len(received(store)) == 2


async def test_an_unknown_consultation_is_not_found_for_each(
    service: IntakeService, store: FakeStore
) -> None:
    batcher = SubmissionBatcher(service, store.unit_of_work)
    outcomes = await submit_together(batcher, [command(uuid.uuid4()) for _ in range(2)])
    assert all(isinstance(outcome, NotFound) for outcome in outcomes)


async def test_a_batch_whose_consultation_changed_after_its_unlocked_read_is_checked_again(
    service: IntakeService, store: FakeStore
) -> None:
    """The first try reads the consultation unlocked; the window closes before its counter
    update, which then reserves nothing. The batch is rolled back and checked again with
    the lock first: it is refused as the closed window says, and nothing is written."""
    consultation_id = await open_consultation(service, store)
    consultations = store.consultations
    as_read = consultations.rows[consultation_id]
    # Closed by an administrator right after the unlocked read below saw it open.
    consultations.rows[consultation_id] = dataclasses.replace(as_read, closes_at=NOW)
    read = consultations.get
    locked_reads: list[bool] = []

    async def read_then_close(
        wanted: uuid.UUID, *, for_update: bool = False
    ) -> Consultation | None:
        locked_reads.append(for_update)
        return await read(wanted, for_update=True) if for_update else as_read

    consultations.get = read_then_close  # type: ignore[method-assign]
    batcher = SubmissionBatcher(service, store.unit_of_work)
    outcomes = await submit_together(
        batcher, [command(consultation_id, idempotency_key=f"k{n}") for n in range(3)]
    )

    assert [type(o) for o in outcomes] == [OutsideWindow] * 3
    assert locked_reads == [False, True]  # one unlocked try, then one locked
    assert batcher.transactions == 1
    assert store.consultations.sequences[consultation_id] == 0
    assert store.submissions.rows == {} and store.idempotency_keys.rows == {}
    assert received(store) == []
