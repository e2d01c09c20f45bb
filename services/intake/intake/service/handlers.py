"""Intake use cases. Each takes an open unit of work and commits it once: the state change
and its events together, or nothing. They return domain results; entrypoints shape them
into HTTP answers or Kafka effects."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from intake.domain.commands import ChangeConsultation, CreateConsultation, Submit
from intake.domain.consultation import (
    Consultation,
    change_window,
    validate_new_window,
    validate_themes,
)
from intake.domain.errors import IdempotencyKeyReused, NotFound
from intake.domain.submission import (
    Submission,
    SubmissionPolicy,
    accepted,
    check_acceptable,
    request_fingerprint,
)
from intake.service.ports import IntakeUnitOfWork, SubmissionFilter
from shared.clock import Clock, utc_now


@dataclass(frozen=True, slots=True)
class SubmitResult:
    submission: Submission
    # True when an Idempotency-Key named an earlier, identical request: nothing new happened.
    replayed: bool


@dataclass(frozen=True, slots=True)
class SubmissionPage:
    items: list[Submission]
    total: int


class IntakeService:
    def __init__(
        self,
        *,
        zone: ZoneInfo,
        clock: Clock = utc_now,
        policy: SubmissionPolicy = SubmissionPolicy(),  # noqa: B008 - frozen
    ) -> None:
        self._zone = zone
        self._clock = clock
        self._policy = policy

    def now(self) -> datetime:
        return self._clock()

    # --- consultations -------------------------------------------------------------

    async def create_consultation(
        self, uow: IntakeUnitOfWork, command: CreateConsultation
    ) -> Consultation:
        validate_new_window(
            command.kind, command.opens_at, command.closes_at, zone=self._zone, now=self.now()
        )
        validate_themes(command.themes)
        consultation = await uow.consultations.add(uuid.uuid4(), command)
        uow.stage_event(consultation.announced(), key=consultation.id)
        await uow.commit()
        return consultation

    async def change_consultation(
        self, uow: IntakeUnitOfWork, command: ChangeConsultation
    ) -> Consultation:
        current = await self._consultation(uow, command.consultation_id, for_update=True)
        changed = current
        if command.opens_at is not None or command.closes_at is not None:
            changed = change_window(
                current,
                opens_at=command.opens_at,
                closes_at=command.closes_at,
                now=self.now(),
                zone=self._zone,
            )
        changed = replace(
            changed,
            title=command.title if command.title is not None else changed.title,
            description=(
                command.description if command.description is not None else changed.description
            ),
        )
        await uow.consultations.update(changed)
        if (changed.opens_at, changed.closes_at) != (current.opens_at, current.closes_at):
            uow.stage_event(changed.window_changed(current), key=changed.id)
        await uow.commit()
        return changed

    async def consultation(self, uow: IntakeUnitOfWork, consultation_id: uuid.UUID) -> Consultation:
        return await self._consultation(uow, consultation_id)

    async def consultations(
        self, uow: IntakeUnitOfWork, *, limit: int, offset: int
    ) -> list[Consultation]:
        return await uow.consultations.recent(limit=limit, offset=offset)

    async def _consultation(
        self, uow: IntakeUnitOfWork, consultation_id: uuid.UUID, *, for_update: bool = False
    ) -> Consultation:
        found = await uow.consultations.get(consultation_id, for_update=for_update)
        if found is None:
            raise NotFound(f"consultation {consultation_id} not found")
        return found

    # --- submissions ---------------------------------------------------------------

    async def submit(self, uow: IntakeUnitOfWork, command: Submit) -> SubmitResult:
        """Accept a submission from any channel; an Idempotency-Key replays the first one."""
        key = command.idempotency_key
        scope = f"submit:{command.consultation_id}"
        if key is not None:
            fingerprint = request_fingerprint(command)
            stored = await uow.idempotency_keys.claim(scope, key, fingerprint)
            if stored is not None:
                if stored.fingerprint != fingerprint or stored.submission_id is None:
                    raise IdempotencyKeyReused()
                return SubmitResult(await self.submission(uow, stored.submission_id), True)
        # Locking the consultation's row orders concurrent submissions and window changes.
        consultation = await self._consultation(uow, command.consultation_id, for_update=True)
        now = self.now()
        check_acceptable(command, consultation, now, self._zone, self._policy)
        submission = accepted(
            command,
            consultation,
            submission_id=uuid.uuid4(),
            sequence=await uow.consultations.next_receipt_sequence(consultation.id),
            now=now,
        )
        await uow.submissions.add(submission)
        if key is not None:
            await uow.idempotency_keys.remember(scope, key, submission.id)
        uow.stage_event(submission.received(consultation), key=submission.id)
        await uow.commit()
        return SubmitResult(submission, replayed=False)

    async def submission(self, uow: IntakeUnitOfWork, submission_id: uuid.UUID) -> Submission:
        found = await uow.submissions.get(submission_id)
        if found is None:
            raise NotFound(f"submission {submission_id} not found")
        return found

    async def submissions(
        self,
        uow: IntakeUnitOfWork,
        consultation_id: uuid.UUID,
        filters: SubmissionFilter,
        *,
        limit: int,
        offset: int,
    ) -> SubmissionPage:
        await self._consultation(uow, consultation_id)
        items, total = await uow.submissions.page(
            consultation_id, filters, limit=limit, offset=offset
        )
        return SubmissionPage(items=items, total=total)

    # --- scheduler -----------------------------------------------------------------

    async def announce_due_phase_changes(self, uow: IntakeUnitOfWork) -> int:
        """Stage Opened/Closed events whose moment has come; safe to run anywhere, any time."""
        now = self.now()
        staged = 0
        for consultation in await uow.consultations.due_openings(now):
            uow.stage_event(consultation.opened(), key=consultation.id)
            await uow.consultations.mark_opened(consultation.id, now)
            staged += 1
        for consultation in await uow.consultations.due_closings(now):
            uow.stage_event(consultation.closed(), key=consultation.id)
            await uow.consultations.mark_closed(consultation.id, now)
            staged += 1
        await uow.commit()
        return staged

    async def next_phase_change(self, uow: IntakeUnitOfWork) -> datetime | None:
        return await uow.consultations.next_phase_change()
