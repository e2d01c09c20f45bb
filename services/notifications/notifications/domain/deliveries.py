"""The life of one outgoing email: pending → sent | failed, with a bounded retry schedule.

Pure code: no I/O and no clock. Callers pass the current time, which keeps the rules
testable and lets the repository store exactly what the model decided.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from html import escape

from shared.platform.backoff import exponential_backoff

# Errors are stored and published; a whole SMTP transcript is not needed to act on one.
MAX_ERROR_LENGTH = 2000


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Purpose(StrEnum):
    """Why an email is sent; one delivery per (source event, purpose, subscription)."""

    RECEIPT = "receipt"
    # Subscriptions (notifications/service/subscriptions.py).
    SUBSCRIPTION_CONFIRMATION = "subscription_confirmation"
    ALERT = "alert"
    NEWS = "news"
    CONSULTATION = "consultation"
    # Working groups (groups.volunteer-messages.v1, groups.submissions.v1).
    VOLUNTEER_CONFIRMATION = "volunteer_confirmation"
    VOLUNTEER_ASSIGNMENT = "volunteer_assignment"
    VOLUNTEER_WAITLIST = "volunteer_waitlist"
    MEMBER_SIGN_IN = "member_sign_in"
    SUBMISSION_DECISION = "submission_decision"


# Emails whose text holds another service's single-use link secrets (groups' confirmation,
# sign-in and withdrawal tokens, which groups keeps only as hashes): once the relay has
# the message, or it has failed for good, the stored copy of its text is replaced by this
# note, so notifications' database holds such a secret only while its email is pending.
HOLDS_LINK_SECRETS: frozenset[Purpose] = frozenset(
    {
        Purpose.VOLUNTEER_CONFIRMATION,
        Purpose.VOLUNTEER_ASSIGNMENT,
        Purpose.VOLUNTEER_WAITLIST,
        Purpose.MEMBER_SIGN_IN,
    }
)
TEXT_REMOVED_AFTER_SENDING = "[removed once sent or failed: it held single-use link tokens]"


class DeliveryPriority(IntEnum):
    """The dispatcher sends the most urgent first, then the oldest: alerts before any
    other mail, one-to-one mail a person waits for (receipts, confirmation links) next,
    announcements to subscribers last."""

    URGENT = 0
    NORMAL = 1
    BULK = 2


class InvalidTransition(Exception):
    """A delivery was asked to change state in a way its life cycle does not allow."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off: retry n waits `base * 2**(n-1)`, capped; give up at the limit."""

    max_attempts: int
    base_backoff_seconds: float
    max_backoff_seconds: float

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_backoff_seconds <= 0 or self.max_backoff_seconds <= 0:
            raise ValueError("back-off durations must be positive")

    def backoff_after(self, failed_attempts: int) -> timedelta:
        """How long to wait after the `failed_attempts`-th consecutive failure."""
        return timedelta(
            seconds=exponential_backoff(
                failed_attempts, base=self.base_backoff_seconds, cap=self.max_backoff_seconds
            )
        )

    def schedule(self) -> list[timedelta]:
        """Waits between all attempts, e.g. for documentation: [2s, 4s, 8s, …]."""
        return [self.backoff_after(n) for n in range(1, self.max_attempts)]


@dataclass(frozen=True, slots=True)
class ComposedEmail:
    """A rendered message: one subject, a plain-text and an HTML alternative."""

    language: str
    subject: str
    text_body: str
    html_body: str


def message_id_for(delivery_id: uuid.UUID, gmina_teryt: str) -> str:
    """A Message-ID fixed per delivery, so a resent email is recognisable as the same one."""
    return f"<{delivery_id}@strategia.{gmina_teryt}>"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One email to one recipient, rendered when it was queued."""

    id: uuid.UUID
    source_event_id: uuid.UUID
    correlation_id: str
    purpose: Purpose
    recipient: str
    language: str
    subject: str
    text_body: str
    html_body: str
    message_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None = None
    failed_at: datetime | None = None
    priority: DeliveryPriority = DeliveryPriority.NORMAL
    # Mail to a subscriber: whose it is, and the RFC 8058 one-click unsubscribe URL (set
    # only in memory, when the email is sent: it carries the subscriber's link token).
    subscription_id: uuid.UUID | None = None
    list_unsubscribe: str | None = None

    @classmethod
    def queue(
        cls,
        *,
        delivery_id: uuid.UUID,
        source_event_id: uuid.UUID,
        correlation_id: str,
        purpose: Purpose,
        recipient: str,
        email: ComposedEmail,
        gmina_teryt: str,
        now: datetime,
        priority: DeliveryPriority = DeliveryPriority.NORMAL,
        subscription_id: uuid.UUID | None = None,
    ) -> Delivery:
        """A new delivery, due at once."""
        return cls(
            id=delivery_id,
            source_event_id=source_event_id,
            correlation_id=correlation_id,
            purpose=purpose,
            recipient=recipient,
            language=email.language,
            subject=email.subject,
            text_body=email.text_body,
            html_body=email.html_body,
            message_id=message_id_for(delivery_id, gmina_teryt),
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            last_error=None,
            created_at=now,
            priority=priority,
            subscription_id=subscription_id,
        )

    @property
    def is_pending(self) -> bool:
        return self.status is DeliveryStatus.PENDING

    def _require_pending(self, action: str) -> None:
        if not self.is_pending:
            raise InvalidTransition(f"cannot {action} a delivery that is {self.status.value}")

    def is_due(self, now: datetime) -> bool:
        return self.is_pending and self.next_attempt_at <= now

    def mark_sent(self, now: datetime) -> Delivery:
        """The SMTP relay accepted the message."""
        self._require_pending("send")
        return dataclasses.replace(
            self, status=DeliveryStatus.SENT, attempts=self.attempts + 1, sent_at=now
        )

    def wait_for_relay(self, error: str) -> Delivery:
        """The relay could not be reached: no attempt is counted and the delivery stays
        due; the error is kept so an operator sees why the mail waits."""
        self._require_pending("wait")
        return dataclasses.replace(self, last_error=error[:MAX_ERROR_LENGTH])

    def record_failure(
        self, error: str, now: datetime, policy: RetryPolicy, *, permanent: bool = False
    ) -> Delivery:
        """An attempt failed: schedule the next one, or fail for good.

        `permanent` is for rejections that no retry can fix (the relay refused the
        recipient); the delivery then fails at once instead of using up its attempts.
        """
        self._require_pending("retry")
        attempts = self.attempts + 1
        last_error = error[:MAX_ERROR_LENGTH]
        if permanent or attempts >= policy.max_attempts:
            return dataclasses.replace(
                self,
                status=DeliveryStatus.FAILED,
                attempts=attempts,
                last_error=last_error,
                failed_at=now,
            )
        return dataclasses.replace(
            self,
            attempts=attempts,
            last_error=last_error,
            next_attempt_at=now + policy.backoff_after(attempts),
        )


def personalised(text: str, substitutions: Mapping[str, str], *, html: bool) -> str:
    """A shared body made one recipient's: each marker (e.g. `%%UNSUBSCRIBE_URL%%`) replaced
    by its value, HTML-escaped in an HTML body."""
    for marker, value in substitutions.items():
        text = text.replace(marker, escape(value, quote=True) if html else value)
    return text
