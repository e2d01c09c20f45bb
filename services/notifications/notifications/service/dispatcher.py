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

import asyncpg

from notifications.adapters.delivery_repository import DISPATCH_CHANNEL, DeliveryRepository
from notifications.domain.deliveries import Delivery, DeliveryStatus, RetryPolicy
from notifications.service.ports import EmailSender, SendFailed
from shared.contracts.envelope import new_envelope
from shared.contracts.notifications import DeliveryFailed
from shared.contracts.topics import Topic
from shared.platform.database import DbConnection
from shared.platform.logging import correlation_context
from shared.platform.outbox import add_to_outbox
from shared.platform.runtime import ServiceRuntime

log = logging.getLogger(__name__)

PRODUCER = "notifications"


class EmailDispatcher:
    def __init__(
        self,
        sender: EmailSender,
        repository: DeliveryRepository,
        policy: RetryPolicy,
        *,
        poll_seconds: float,
    ) -> None:
        self._sender = sender
        self._repository = repository
        self._policy = policy
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    async def run(self, runtime: ServiceRuntime) -> None:
        """The worker: dispatch while work is due, else sleep until woken or due."""
        pool = runtime.pool
        async with pool.acquire() as listener:

            def on_notify(*_: object) -> None:
                self._wake.set()

            await listener.add_listener(DISPATCH_CHANNEL, on_notify)
            try:
                while True:
                    if listener.is_closed():
                        # NOTIFYs are lost with the connection; the supervisor restarts us.
                        raise ConnectionError("dispatcher's LISTEN connection was closed")
                    # Clear before looking, so a NOTIFY arriving meanwhile is not missed.
                    self._wake.clear()
                    if await self._dispatch_to_completion(pool):
                        continue
                    await self._sleep(await self._idle_seconds(pool))
            finally:
                with contextlib.suppress(Exception):
                    await listener.remove_listener(DISPATCH_CHANNEL, on_notify)

    async def _dispatch_to_completion(self, pool: asyncpg.Pool) -> bool:
        # A stop (task cancellation) must not cut in between the relay's acceptance and
        # the commit that records it: that is the resend window. Let the attempt finish
        # (bounded by the SMTP timeout) and only then give in to the cancellation.
        attempt = asyncio.ensure_future(self.dispatch_one(pool))
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await attempt
            raise

    async def _idle_seconds(self, pool: asyncpg.Pool) -> float:
        async with pool.acquire() as conn:
            until_due = await self._repository.seconds_until_next_due(conn)
        if until_due is None or until_due <= 0:
            # Nothing pending, or due but locked by another dispatcher: poll.
            return self._poll_seconds
        return min(until_due, self._poll_seconds)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def dispatch_one(self, pool: asyncpg.Pool) -> bool:
        """Attempt the oldest due delivery; False when none is due."""
        async with pool.acquire() as conn, conn.transaction():
            delivery = await self._repository.lock_next_due(conn)
            if delivery is None:
                return False
            with correlation_context(delivery.correlation_id):
                await self._attempt(conn, delivery)
            return True

    async def _attempt(self, conn: DbConnection, delivery: Delivery) -> None:
        failure: SendFailed | None = None
        try:
            await self._sender.send(delivery)
        except SendFailed as error:
            failure = error
        except Exception as error:
            # A bug must not wedge the queue on one delivery: count it as a failed attempt.
            log.exception("unexpected error while sending", extra={"delivery_id": str(delivery.id)})
            failure = SendFailed(f"{type(error).__name__}: {error}")
        now = await self._repository.database_now(conn)
        if failure is None:
            outcome = delivery.mark_sent(now)
        else:
            outcome = delivery.record_failure(
                failure.reason, now, self._policy, permanent=failure.permanent
            )
        await self._repository.save_progress(conn, outcome)
        if outcome.status is DeliveryStatus.FAILED:
            await add_to_outbox(
                conn,
                new_envelope(
                    DeliveryFailed(
                        delivery_id=outcome.id,
                        source_event_id=outcome.source_event_id,
                        purpose=outcome.purpose.value,
                        recipient=outcome.recipient,
                        attempts=outcome.attempts,
                        last_error=outcome.last_error or "",
                        failed_at=now,
                    ),
                    producer=PRODUCER,
                    correlation_id=outcome.correlation_id,
                    causation_id=str(outcome.source_event_id),
                ),
                topic=Topic.NOTIFICATIONS_DELIVERIES,
                key=str(outcome.id),
            )
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
