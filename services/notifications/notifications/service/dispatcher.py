"""Sends pending deliveries in batches over a few SMTP connections and records each outcome.

Order
-----
Each batch takes the due pending deliveries most urgent first, then oldest
(`DeliveryPriority`): an alert queued behind ten thousand news emails goes out with the
next batch, not after them.

Exactly-once, as far as SMTP allows
-----------------------------------
A batch is sent inside one transaction that holds the row locks of its deliveries: lock
up to `batch_size` due pending rows (`FOR UPDATE SKIP LOCKED`), hand the messages to the
relay (at most `concurrency` at a time, on connections kept open), then mark each sent (or
record its failure) and commit. So

* a delivery marked sent is never sent again, whatever restarts follow: it is marked in
  the transaction that holds its lock, right after the relay accepted it;
* a delivery whose process died before the relay accepted it stays pending (the locks die
  with the connection) and is sent after the restart;
* several dispatchers never send the same delivery at once (SKIP LOCKED);
* a graceful stop lets the messages already handed to the relay finish, sends no new
  ones, and commits what happened; the rest of the batch stays pending.

One window cannot be closed: the relay accepted messages and the process was killed (or
lost the database) before the commit. Those deliveries are still pending and are sent a
second time — at most one batch, and only what the relay had accepted. Each copy carries
the same Message-ID (derived from the delivery id), so a receiving system can drop it and
a person can recognise it. SMTP has no two-phase commit; the batch size bounds the window.

Failures are retried with capped exponential back-off (`RetryPolicy`); after the last
attempt, or at once for a permanently refused address, the delivery is failed and a
`DeliveryFailed` event is written to the outbox in the same transaction.

A relay that cannot be reached at all is an outage, not a failure of the messages: their
attempts are not counted (an hour-long outage must not fail every email), they stay due,
and the dispatcher probes the relay again after a short, capped back-off
(`RELAY_OUTAGE_MAX_BACKOFF_SECONDS`), so mail flows again within seconds of the relay's
return instead of after each delivery's own retry delay.

Before sending, the batch goes through the `prepare` hooks, each with a unit of work of
its own (not the batch's): a subscriber email gets its personal links, derived then and
never stored; a confirmation email gets its single-use token, which the hook commits
before anything is handed to the relay — so every link in an email that can be read is
already valid (a token issued in the batch's transaction would become valid only when
the whole batch commits, after the recipient may have clicked). A crash after such a
commit and before the sending leaves an unused token that expires; a resent email (the
window above) is prepared again with a new token, and either copy's link confirms.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from notifications.domain.deliveries import Delivery, DeliveryStatus, Purpose, RetryPolicy
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

# While the relay is unreachable, probe it with the next batch after 0.5, 1, 2, 4, 5, 5… s.
RELAY_OUTAGE_FIRST_BACKOFF_SECONDS = 0.5
RELAY_OUTAGE_MAX_BACKOFF_SECONDS = 5.0

# A hook gets a unit of work of its own and the batch; it returns the batch as it must be
# sent, and commits whatever it issued before returning.
Prepare = Callable[[NotificationsUnitOfWork, list[Delivery]], Awaitable[list[Delivery]]]


@dataclass(frozen=True, slots=True)
class PrepareHook:
    """A `Prepare` and the purposes it has work for: a batch without any of them opens no
    unit of work for it (a batch of receipts would otherwise pay a transaction per hook)."""

    purposes: frozenset[Purpose]
    run: Prepare


class EmailDispatcher:
    def __init__(
        self,
        sender: EmailSender,
        unit_of_work: Callable[[], NotificationsUnitOfWork],
        policy: RetryPolicy,
        *,
        poll_seconds: float,
        batch_size: int = 1,
        concurrency: int = 1,
        prepare: Sequence[PrepareHook] = (),
    ) -> None:
        self._sender = sender
        self._unit_of_work = unit_of_work
        self._policy = policy
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(concurrency)
        self._prepare = tuple(prepare)
        self._waker = NotifyWaker(DISPATCH_CHANNEL)
        # Set when the worker is being stopped: hand nothing new to the relay.
        self._stopping = False
        # The back-off before probing an unreachable relay again; None while it answers.
        self.relay_outage_backoff: float | None = None

    async def run(self, listener: DbConnection) -> None:
        """The worker: dispatch while work is due, else sleep until woken or due.

        `listener` is a connection of its own for LISTEN; when it closes the waker raises
        and the runtime's supervisor restarts the worker with a new one.
        """
        self._stopping = False
        async with self._waker.listening(listener):
            while True:
                if await self._dispatch_to_completion():
                    if self.relay_outage_backoff is not None:
                        await asyncio.sleep(self.relay_outage_backoff)
                    continue
                await self._waker.sleep(await self._idle_seconds())

    async def _dispatch_to_completion(self) -> int:
        # A stop (task cancellation) must not cut in between the relay's acceptance and
        # the commit that records it: that is the resend window. Let the messages in
        # flight finish (bounded by the SMTP timeout), start no new ones, commit, and only
        # then give in to the cancellation.
        batch = asyncio.ensure_future(self.dispatch_batch())
        try:
            return await asyncio.shield(batch)
        except asyncio.CancelledError:
            self._stopping = True
            try:
                await batch
            except Exception:
                log.exception("the last batch before stopping failed")
            raise

    async def _idle_seconds(self) -> float:
        async with self._unit_of_work() as uow:
            until_due = await uow.deliveries.seconds_until_next_due()
        if until_due is None or until_due <= 0:
            # Nothing pending, or due but locked by another dispatcher: poll.
            return self._poll_seconds
        return min(until_due, self._poll_seconds)

    async def dispatch_batch(self) -> int:
        """Attempt up to `batch_size` due deliveries; how many were attempted (0: none due)."""
        async with self._unit_of_work() as uow:
            claimed = await uow.deliveries.lock_due(self._batch_size)
            if not claimed:
                return 0
            # Before anything is sent: should a hook fail, the batch rolls back with
            # nothing handed to the relay.
            prepared = list(claimed)
            for hook in self._prepare:
                if any(delivery.purpose in hook.purposes for delivery in prepared):
                    async with self._unit_of_work() as own:
                        prepared = await hook.run(own, prepared)
            attempts = await asyncio.gather(*(self._attempt(delivery) for delivery in prepared))
            now = await uow.deliveries.database_now()
            unreachable = [
                delivery.wait_for_relay(failure.reason)
                for delivery, failure, tried in attempts
                if tried and failure is not None and failure.relay_unavailable
            ]
            outcomes = [
                delivery.mark_sent(now)
                if failure is None
                else delivery.record_failure(
                    failure.reason, now, self._policy, permanent=failure.permanent
                )
                for delivery, failure, tried in attempts
                if tried and (failure is None or not failure.relay_unavailable)
            ]
            await uow.deliveries.save_progress([*outcomes, *unreachable])
            for outcome in outcomes:
                if outcome.status is DeliveryStatus.FAILED:
                    self._stage_failure(uow, outcome)
            await uow.commit()
        self._log_outcomes(outcomes, left=len(claimed) - len(outcomes))
        self._note_relay(
            unreachable, delivered=any(o.status is DeliveryStatus.SENT for o in outcomes)
        )
        return len(claimed)

    def _note_relay(self, unreachable: Sequence[Delivery], *, delivered: bool) -> None:
        """Enter, prolong or end a relay outage after a batch."""
        if delivered or not unreachable:
            if self.relay_outage_backoff is not None:
                log.info("the SMTP relay answers again")
            self.relay_outage_backoff = None
            return
        if self.relay_outage_backoff is None:
            self.relay_outage_backoff = RELAY_OUTAGE_FIRST_BACKOFF_SECONDS
            log.warning(
                "the SMTP relay is unavailable; deliveries wait without using up attempts",
                extra={"error": unreachable[0].last_error},
            )
        else:
            self.relay_outage_backoff = min(
                self.relay_outage_backoff * 2, RELAY_OUTAGE_MAX_BACKOFF_SECONDS
            )

    async def _attempt(self, delivery: Delivery) -> tuple[Delivery, SendFailed | None, bool]:
        """Send one delivery: (the delivery, its failure or None, whether it was tried)."""
        async with self._slots:
            if self._stopping:
                return delivery, None, False  # stays pending; its lock ends with the batch
            with correlation_context(delivery.correlation_id):
                try:
                    await self._sender.send(delivery)
                except SendFailed as error:
                    return delivery, error, True
                except Exception as error:
                    # A bug must not wedge the queue on one delivery: count it as a failure.
                    log.exception(
                        "unexpected error while sending", extra={"delivery_id": str(delivery.id)}
                    )
                    return delivery, SendFailed(f"{type(error).__name__}: {error}"), True
        return delivery, None, True

    def _stage_failure(self, uow: NotificationsUnitOfWork, outcome: Delivery) -> None:
        uow.trace = Trace(
            correlation_id=outcome.correlation_id, causation_id=str(outcome.source_event_id)
        )
        assert outcome.failed_at is not None
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
                failed_at=outcome.failed_at,
            ),
            key=outcome.id,
        )

    def _log_outcomes(self, outcomes: Sequence[Delivery], *, left: int) -> None:
        sent = [d for d in outcomes if d.status is DeliveryStatus.SENT]
        # One line per batch for what went well (a fan-out is thousands of emails); one
        # per delivery for what did not, with what an operator needs to act.
        log.info(
            "email batch dispatched",
            extra={"sent": len(sent), "not_sent": len(outcomes) - len(sent), "left": left},
        )
        for delivery in outcomes:
            details = {
                "delivery_id": str(delivery.id),
                "event_id": str(delivery.source_event_id),
                "purpose": delivery.purpose.value,
                "attempts": delivery.attempts,
            }
            with correlation_context(delivery.correlation_id):
                if delivery.status is DeliveryStatus.SENT:
                    log.debug("email sent", extra=details)
                elif delivery.status is DeliveryStatus.FAILED:
                    log.error(
                        "email delivery failed for good",
                        extra={**details, "error": delivery.last_error},
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
