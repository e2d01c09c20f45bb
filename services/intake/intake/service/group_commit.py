"""Group commit: concurrent submissions to one consultation share one transaction.

Every submission to a consultation must hold that consultation's row lock (gap-free
receipt numbers), so one transaction per submission serialises them all on the lock and
its round trips. Here a request joins the queue of its consultation; while one batch is
being committed, the requests arriving meanwhile queue up and go together in the next
transaction (`IntakeService.submit_batch`): one lock, one counter update, one insert per
table. A lone request waits for nobody (no timer): batching only happens under load.
The first try of a batch reads unlocked and takes the consultation's lock only for its
writes (`submit_batch(lock_first=False)`), so batches of several worker processes hold
it briefly; if the consultation changed in between, the batch is tried again locked.

Each request still gets its own outcome: a broken rule rejects that request alone. When a
batch's transaction fails for another reason (a lost connection, a bug), its requests are
retried one by one, so one bad request can never take others down with it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from intake.domain.commands import Submit
from intake.service.handlers import ConsultationChangedMeanwhile, IntakeService, SubmitResult
from intake.service.ports import IntakeUnitOfWork
from shared.errors import DomainError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Waiting:
    command: Submit
    answer: asyncio.Future[SubmitResult]


class SubmissionBatcher:
    def __init__(
        self,
        service: IntakeService,
        unit_of_work: Callable[[], IntakeUnitOfWork],
        *,
        max_batch: int = 256,
    ) -> None:
        self._service = service
        self._unit_of_work = unit_of_work
        self._max_batch = max_batch
        self._queues: dict[uuid.UUID, list[_Waiting]] = {}
        self._committers: dict[uuid.UUID, asyncio.Task[None]] = {}
        # Figures for benchmarks and tests: transactions run and submissions they carried.
        self.transactions = 0
        self.largest_batch = 0

    async def submit(self, command: Submit) -> SubmitResult:
        """The command's outcome, as `IntakeService.submit` would give it alone."""
        answer: asyncio.Future[SubmitResult] = asyncio.get_running_loop().create_future()
        consultation_id = command.consultation_id
        self._queues.setdefault(consultation_id, []).append(_Waiting(command, answer))
        if consultation_id not in self._committers:
            self._committers[consultation_id] = asyncio.create_task(
                self._commit_while_queued(consultation_id), name=f"group-commit-{consultation_id}"
            )
        return await answer

    async def _commit_while_queued(self, consultation_id: uuid.UUID) -> None:
        try:
            while queue := self._queues.get(consultation_id):
                batch = queue[: self._max_batch]
                del queue[: self._max_batch]
                # A request whose caller went away (client disconnected) is not submitted.
                batch = [waiting for waiting in batch if not waiting.answer.done()]
                if batch:
                    await self._commit(consultation_id, batch)
        finally:
            # No await between the emptiness check above and here: a request queued from
            # now on starts a new committer. Requests still queued are left only when the
            # committer was cancelled (shutting down): their callers are told.
            for waiting in self._queues.pop(consultation_id, []):
                waiting.answer.cancel()
            del self._committers[consultation_id]

    async def _commit(self, consultation_id: uuid.UUID, batch: list[_Waiting]) -> None:
        self.transactions += 1
        self.largest_batch = max(self.largest_batch, len(batch))
        commands = [waiting.command for waiting in batch]
        try:
            try:
                async with self._unit_of_work() as uow:
                    outcomes = await self._service.submit_batch(
                        uow, consultation_id, commands, lock_first=False
                    )
            except ConsultationChangedMeanwhile:  # rolled back: again, under the lock
                async with self._unit_of_work() as uow:
                    outcomes = await self._service.submit_batch(uow, consultation_id, commands)
        except asyncio.CancelledError:  # shutting down: the callers are told, not left waiting
            for waiting in batch:
                waiting.answer.cancel()
            raise
        except DomainError as error:  # about the consultation itself: the same for all
            for waiting in batch:
                _settle(waiting, error)
            return
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0], error)
                return
            log.warning(
                "group commit failed; retrying its submissions one by one",
                extra={"size": len(batch), "error": repr(error)},
            )
            for waiting in batch:
                await self._commit(consultation_id, [waiting])
            return
        for waiting, outcome in zip(batch, outcomes, strict=True):
            _settle(waiting, outcome)


def _settle(waiting: _Waiting, outcome: SubmitResult | BaseException) -> None:
    if waiting.answer.done():
        return
    if isinstance(outcome, BaseException):
        waiting.answer.set_exception(outcome)
    else:
        waiting.answer.set_result(outcome)
