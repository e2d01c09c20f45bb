"""What the service layer needs from the outside world, independent of the technology."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from notifications.domain.deliveries import Delivery, DeliveryStatus
from notifications.domain.volunteer_mail import Submitter
from shared.platform.unit_of_work import UnitOfWork

# LISTEN/NOTIFY channel that wakes the dispatchers when a delivery is queued.
DISPATCH_CHANNEL = "notifications_deliveries"


class SendFailed(Exception):
    """The relay did not accept the message.

    `permanent` means retrying cannot help (e.g. the recipient's mailbox does not exist);
    anything else (relay down, timeout, temporary refusal) is worth another attempt.
    """

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


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

    async def wake_dispatcher(self) -> None:
        """Wake the dispatchers once this unit of work commits."""
        ...

    async def lock_next_due(self) -> Delivery | None:
        """The oldest due pending delivery, locked until the unit of work ends."""
        ...

    async def save_progress(self, delivery: Delivery) -> None: ...

    async def seconds_until_next_due(self) -> float | None: ...

    async def get(self, delivery_id: uuid.UUID) -> Delivery | None: ...

    async def page(
        self, filters: DeliveryFilter, *, limit: int, after: PageCursor | None = None
    ) -> list[Delivery]:
        """Newest first, keyset-paginated (stable while new deliveries keep arriving)."""
        ...


class Submitters(Protocol):
    """Submitters who consented to be contacted about the outcome (decision emails)."""

    async def remember(self, submitter: Submitter) -> None: ...

    async def get(self, submission_id: uuid.UUID) -> Submitter | None: ...


class NotificationsUnitOfWork(UnitOfWork):
    deliveries: Deliveries
    submitters: Submitters
