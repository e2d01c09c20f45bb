"""Sends pending deliveries, one at a time, and records each outcome.

Exactly-once, as far as SMTP allows
-----------------------------------
A delivery is sent inside a transaction that holds its row lock: lock the oldest due
pending row, hand the message to the relay, then mark it sent (or record the failure)
and commit. So

* a delivery marked sent is never sent again, whatever restarts follow;
* a delivery whose process died before the relay accepted it stays pending (the lock
  dies with the connection) and is sent after the restart;
* several dispatchers never send the same delivery at once (`FOR UPDATE SKIP LOCKED`);
* a graceful stop lets the delivery in flight finish and commit first.

One window cannot be closed: the relay accepted the message and the process was killed
(or lost the database) before the commit. The delivery is still pending and is sent a
second time. The copy carries the same Message-ID (derived from the delivery id), so a
receiving system can drop it and a person can recognise it. SMTP has no two-phase commit;
this is the smallest window it allows.

Failures are retried with capped exponential back-off (`RetryPolicy`); after the last
attempt, or at once for a permanently refused address, the delivery is failed and a
`DeliveryFailed` event is written to the outbox in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from notifications.domain.deliveries import Delivery, DeliveryStatus, RetryPolicy
from notifications.service.ports import (
    DISPATCH_CHANNEL,
    EmailSender,
    NotificationsUnitOfWork,
    SendFailed,
)
from shared.contracts.notifications import DeliveryFailed
from shared.platform.database import DbConnection
from shared.platform.logging import correlation_context
from shared.platform.notify import NotifyWaker
from shared.platform.outbox import Trace
from shared.platform.privacy import email_hash, redact

log = logging.getLogger(__name__)


class EmailDispatcher:
    def __init__(
        self,
        sender: EmailSender,
        unit_of_work: Callable[[], NotificationsUnitOfWork],
        policy: RetryPolicy,
        *,
        poll_seconds: float,
    ) -> None:
        self._sender = sender
        self._unit_of_work = unit_of_work
        self._policy = policy
        self._poll_seconds = poll_seconds
        self._waker = NotifyWaker(DISPATCH_CHANNEL)

    async def run(self, listener: DbConnection) -> None:
        """The worker: dispatch while work is due, else sleep until woken or due.

        `listener` is a connection of its own for LISTEN; when it closes the waker raises
        and the runtime's supervisor restarts the worker with a new one.
        """
        async with self._waker.listening(listener):
            while True:
                if await self._dispatch_to_completion():
                    continue
                await self._waker.sleep(await self._idle_seconds())

    async def _dispatch_to_completion(self) -> bool:
        # A stop (task cancellation) must not cut in between the relay's acceptance and
        # the commit that records it: that is the resend window. Let the attempt finish
        # (bounded by the SMTP timeout) and only then give in to the cancellation.
        attempt = asyncio.ensure_future(self.dispatch_one())
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await attempt
            raise

    async def _idle_seconds(self) -> float:
        async with self._unit_of_work() as uow:
            until_due = await uow.deliveries.seconds_until_next_due()
        if until_due is None or until_due <= 0:
            # Nothing pending, or due but locked by another dispatcher: poll.
            return self._poll_seconds
        return min(until_due, self._poll_seconds)

    async def dispatch_one(self) -> bool:
        """Attempt the oldest due delivery; False when none is due."""
        async with self._unit_of_work() as uow:
            delivery = await uow.deliveries.lock_next_due()
            if delivery is None:
                return False
            with correlation_context(delivery.correlation_id):
                await self._attempt(uow, delivery)
            return True

    async def _attempt(self, uow: NotificationsUnitOfWork, delivery: Delivery) -> None:
        failure: SendFailed | None = None
        try:
            await self._sender.send(delivery)
        except SendFailed as error:
            failure = error
        except Exception as error:
            # A bug must not wedge the queue on one delivery: count it as a failed attempt.
            log.exception("unexpected error while sending", extra={"delivery_id": str(delivery.id)})
            failure = SendFailed(f"{type(error).__name__}: {error}")
        now = await uow.deliveries.database_now()
        if failure is None:
            outcome = delivery.mark_sent(now)
        else:
            outcome = delivery.record_failure(
                failure.reason, now, self._policy, permanent=failure.permanent
            )
        await uow.deliveries.save_progress(outcome)
        if outcome.status is DeliveryStatus.FAILED:
            uow.trace = Trace(
                correlation_id=outcome.correlation_id,
                causation_id=str(outcome.source_event_id),
            )
            uow.stage_event(
                DeliveryFailed(
                    delivery_id=outcome.id,
                    source_event_id=outcome.source_event_id,
                    purpose=outcome.purpose.value,
                    # Nobody downstream needs the address: its hash names it (RODO
                    # minimisation), and the error loses it too.
                    recipient=f"sha256:{email_hash(outcome.recipient)}",
                    attempts=outcome.attempts,
                    last_error=redact(outcome.last_error or "", outcome.recipient),
                    failed_at=now,
                ),
                key=outcome.id,
            )
        await uow.commit()
        self._log_outcome(outcome)

    def _log_outcome(self, delivery: Delivery) -> None:
        details = {
            "delivery_id": str(delivery.id),
            "event_id": str(delivery.source_event_id),
            "purpose": delivery.purpose.value,
            "attempts": delivery.attempts,
        }
        if delivery.status is DeliveryStatus.SENT:
            log.info("email sent", extra=details)
        elif delivery.status is DeliveryStatus.FAILED:
            log.error(
                "email delivery failed for good", extra={**details, "error": delivery.last_error}
            )
        else:
            log.warning(
                "email delivery failed; will retry",
                extra={
                    **details,
                    "error": delivery.last_error,
                    "next_attempt_at": delivery.next_attempt_at.isoformat(),
                },
            )
