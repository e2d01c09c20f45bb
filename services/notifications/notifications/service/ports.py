"""What the service layer needs from the outside world, independent of the technology."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from notifications.domain.deliveries import (
    ComposedEmail,
    Delivery,
    DeliveryPriority,
    DeliveryStatus,
    Purpose,
)
from notifications.domain.subscriptions import Subscription, SubscriptionTopic
from notifications.domain.volunteer_mail import Submitter
from shared.contracts.intake import Language
from shared.platform.one_time_tokens import OneTimeTokens
from shared.platform.shredding import ReceivedKeys
from shared.platform.unit_of_work import UnitOfWork

# LISTEN/NOTIFY channel that wakes the dispatchers when a delivery is queued.
DISPATCH_CHANNEL = "notifications_deliveries"


class SendFailed(Exception):
    """The relay did not accept the message.

    `permanent` means retrying cannot help (e.g. the recipient's mailbox does not exist);
    anything else (relay down, timeout, temporary refusal) is worth another attempt;
    `relay_unavailable` means no connection to the relay could be made.
    """

    def __init__(
        self, reason: str, *, permanent: bool = False, relay_unavailable: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        # The relay could not be reached at all: says nothing about this message, so the
        # attempt is not counted against it (an outage must not use up its retries).
        self.relay_unavailable = relay_unavailable


class EmailSender(Protocol):
    async def send(self, delivery: Delivery) -> None:
        """Hand the message to the relay; return once it accepted, else raise `SendFailed`."""
        ...


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    source_event_id: uuid.UUID | None = None
    recipient: str | None = None
    status: DeliveryStatus | None = None


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Position after the last entry of a page in newest-first order."""

    created_at: datetime
    id: uuid.UUID


class Deliveries(Protocol):
    async def database_now(self) -> datetime: ...

    async def add(self, delivery: Delivery) -> bool:
        """Insert a new delivery; False when one exists already for its event and purpose."""
        ...

    async def add_many(self, deliveries: Sequence[Delivery]) -> int:
        """`add` for several in one go; how many were new."""
        ...

    async def wake_dispatcher(self) -> None:
        """Wake the dispatchers once this unit of work commits."""
        ...

    async def lock_due(self, limit: int) -> list[Delivery]:
        """Up to `limit` due pending deliveries, most urgent first, then oldest; locked
        until the unit of work ends (other dispatchers skip them)."""
        ...

    async def save_progress(self, deliveries: Sequence[Delivery]) -> None:
        """Store the outcome of attempts on rows this unit of work holds locked."""
        ...

    async def add_content(self, email: ComposedEmail) -> uuid.UUID:
        """Store a message shared by the deliveries of a fan-out; its id."""
        ...

    async def fan_out(self, fan_out: FanOut) -> int:
        """Queue one delivery per subscriber of `fan_out.audience` in one statement; a
        subscriber who has one for this purpose and subject already gets none. Returns
        how many were queued. The deliveries hold no personal link: their markers are
        filled in when each is sent."""
        ...

    async def seconds_until_next_due(self) -> float | None: ...

    async def get(self, delivery_id: uuid.UUID) -> Delivery | None: ...

    async def page(
        self, filters: DeliveryFilter, *, limit: int, after: PageCursor | None = None
    ) -> list[Delivery]:
        """Newest first, keyset-paginated (stable while new deliveries keep arriving)."""
        ...


class Subscriptions(Protocol):
    async def lock_by_email(self, email: str) -> Subscription | None:
        """The subscription of an address (any capitalisation), locked."""
        ...

    async def lock_by_id(self, subscription_id: uuid.UUID) -> Subscription | None: ...

    async def lock_by_legacy_link_token(self, token_hash: str) -> Subscription | None:
        """The subscription whose link token from before derived tokens hashes to
        `token_hash`, locked; none once its links were rotated."""
        ...

    async def link_generations(
        self, subscription_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        """The current link generation of each of these subscriptions (for the links of
        the emails being sent)."""
        ...

    async def add(self, subscription: Subscription) -> bool:
        """Store a new subscription; False when its address has one already (a request
        for the same address committed first)."""
        ...

    async def save(self, subscription: Subscription) -> None: ...


@dataclass(frozen=True, slots=True)
class Audience:
    """Confirmed subscribers of `topic`, with a level filter for alerts."""

    topic: SubscriptionTopic
    # Alerts: those whose minimum level is at most this one.
    level: int | None = None
    # Those who received any of these subjects (the earlier messages of an alert, so an
    # Update or a Cancel reaches everyone the alert reached, whatever its new level).
    receivers_of: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FanOut:
    """One message to many subscribers, queued as a single set-based insert."""

    source_event_id: uuid.UUID
    correlation_id: str
    purpose: Purpose
    priority: DeliveryPriority
    subject_key: str
    # Stored message per locale (see `add_content`); "pl" is required, the fallback.
    contents: Mapping[Language, uuid.UUID]
    audience: Audience
    gmina_teryt: str


class Submitters(Protocol):
    """Submitters who consented to be contacted about the outcome (decision emails)."""

    async def remember(self, submitter: Submitter) -> None: ...

    async def get(self, submission_id: uuid.UUID) -> Submitter | None: ...


class NotificationsUnitOfWork(UnitOfWork):
    deliveries: Deliveries
    subscriptions: Subscriptions
    one_time_tokens: OneTimeTokens
    submitters: Submitters
    # Copies of intake's per-person keys (intake.person-keys.v1): open sealed addresses.
    intake_keys: ReceivedKeys
    # Copies of groups' per-person keys (groups.person-keys.v1): open sealed volunteer
    # addresses and names.
    groups_keys: ReceivedKeys
