"""What the service layer needs from the outside world, independent of the technology."""

from __future__ import annotations

from typing import Protocol

from notifications.domain.deliveries import Delivery


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
