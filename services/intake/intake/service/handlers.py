"""Intake use cases. Each takes an open unit of work and commits it once: the state change
and its events together, or nothing. They return domain results; entrypoints shape them
into HTTP answers or Kafka effects."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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
from intake.service.ports import IntakeUnitOfWork, NewKey, SubmissionFilter
from shared.clock import Clock, utc_now
from shared.contracts.intake import submitter_email_associated_data
from shared.errors import DomainError
from shared.platform.shredding import SealRequest


class ConsultationChangedMeanwhile(Exception):
    """The consultation changed between the unlocked read of a group commit and its
    counter update: nothing was reserved; the batch is tried again with the lock first."""

    def __init__(self, consultation_id: uuid.UUID) -> None:
        super().__init__(f"consultation {consultation_id} changed while a batch was checked")


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
        """Accept a submission from any channel; an Idempotency-Key replays the first one.
        Raises the `DomainError` of a broken rule (and commits nothing then)."""
        [outcome] = await self.submit_batch(uow, command.consultation_id, [command])
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    async def submit_batch(
        self,
        uow: IntakeUnitOfWork,
        consultation_id: uuid.UUID,
        commands: Sequence[Submit],
        *,
        lock_first: bool = True,
    ) -> list[SubmitResult | DomainError]:
        """Several submissions to one consultation in one transaction (group commit).

        The outcome of each command is what it would have been alone, in order: the rules
        are checked one command at a time, a command that breaks one gets its error and
        takes nothing from the others, and a key seen earlier (stored, or earlier in the
        batch) replays that submission. The accepted ones get consecutive receipt
        sequences from one counter update and are written with one statement per table;
        each stages exactly one event. Commits when something was accepted; otherwise
        the unit of work is left as it was. A missing consultation raises `NotFound`.

        The consultation's row lock orders concurrent batches and window changes. With
        `lock_first` it is taken before anything is read. Without it (the group commit's
        first try) the consultation, the idempotency keys and the submitters' person keys
        are read unlocked, and the lock comes with the counter update, which only
        happens if the consultation is still as read (else `ConsultationChangedMeanwhile`:
        try again with `lock_first`). The lock is then held for three statements and
        the commit, not for every read: concurrent batches of several processes queue
        on it for less time. An idempotency key that a concurrent batch stored after
        the read makes the insert fail (its primary key), so a key is never used twice.
        """
        consultation = await self._consultation(uow, consultation_id, for_update=lock_first)
        scope = f"submit:{consultation_id}"
        keys = [c.idempotency_key for c in commands if c.idempotency_key is not None]
        stored = await uow.idempotency_keys.find(scope, keys) if keys else {}
        now = self.now()
        outcomes: list[SubmitResult | DomainError | None] = []
        stored_replays: dict[int, uuid.UUID] = {}  # outcome index -> stored submission
        batch_replays: dict[int, int] = {}  # outcome index -> index of the accepted one
        keys_in_batch: dict[str, tuple[str, int]] = {}  # key -> (fingerprint, accepted at)
        accepted_at: list[int] = []
        for index, command in enumerate(commands):
            key = command.idempotency_key
            fingerprint = request_fingerprint(command) if key is not None else ""
            if key is not None:
                known = stored.get(key)
                earlier = keys_in_batch.get(key)
                if known is not None:
                    if known.fingerprint != fingerprint or known.submission_id is None:
                        outcomes.append(IdempotencyKeyReused())
                    else:
                        stored_replays[index] = known.submission_id
                        outcomes.append(None)
                    continue
                if earlier is not None:
                    if earlier[0] != fingerprint:
                        outcomes.append(IdempotencyKeyReused())
                    else:
                        batch_replays[index] = earlier[1]
                        outcomes.append(None)
                    continue
            try:
                check_acceptable(command, consultation, now, self._zone, self._policy)
            except DomainError as error:
                outcomes.append(error)
                continue
            if key is not None:
                keys_in_batch[key] = (fingerprint, index)
            accepted_at.append(index)
            outcomes.append(None)

        submissions: dict[int, Submission] = {}
        if accepted_at:
            submission_ids = [uuid.uuid4() for _ in accepted_at]
            # The address travels sealed under the person's key (a new key is staged
            # here, so it is published before the event that needs it).
            with_email = [
                (submission_id, commands[index].content.submitter)
                for submission_id, index in zip(submission_ids, accepted_at, strict=True)
                if commands[index].content.submitter.email is not None
            ]
            sealed = await uow.person_keys.seal_many(
                [
                    SealRequest(
                        email=str(submitter.email),
                        phone=submitter.phone,
                        plaintext=str(submitter.email),
                        associated_data=submitter_email_associated_data(submission_id),
                    )
                    for submission_id, submitter in with_email
                ]
            )
            sealed_emails = {
                submission_id: value
                for (submission_id, _), value in zip(with_email, sealed, strict=True)
            }
            first = await uow.consultations.reserve_receipt_sequences(
                consultation.id, len(accepted_at), if_unchanged=None if lock_first else consultation
            )
            if first is None:
                raise ConsultationChangedMeanwhile(consultation.id)
            for offset, (index, submission_id) in enumerate(
                zip(accepted_at, submission_ids, strict=True)
            ):
                submissions[index] = accepted(
                    commands[index],
                    consultation,
                    submission_id=submission_id,
                    sequence=first + offset,
                    now=now,
                )
            await uow.submissions.add_many(list(submissions.values()))
            new_keys = [
                NewKey(key=key, fingerprint=fingerprint, submission_id=submissions[index].id)
                for key, (fingerprint, index) in keys_in_batch.items()
            ]
            if new_keys:
                await uow.idempotency_keys.add_many(scope, new_keys)
            for submission in submissions.values():
                uow.stage_event(
                    submission.received(consultation, sealed_emails.get(submission.id)),
                    key=submission.id,
                )
        found = (
            await uow.submissions.get_many(list(set(stored_replays.values())))
            if stored_replays
            else {}
        )
        if accepted_at:
            await uow.commit()

        results: list[SubmitResult | DomainError] = []
        for index, outcome in enumerate(outcomes):
            if outcome is not None:
                results.append(outcome)
            elif index in submissions:
                results.append(SubmitResult(submissions[index], replayed=False))
            elif index in batch_replays:
                results.append(SubmitResult(submissions[batch_replays[index]], replayed=True))
            else:
                replayed = found.get(stored_replays[index])
                if replayed is None:
                    results.append(NotFound(f"submission {stored_replays[index]} not found"))
                else:
                    results.append(SubmitResult(replayed, replayed=True))
        return results

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
