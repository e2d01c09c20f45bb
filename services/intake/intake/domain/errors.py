"""Intake's rule violations, as kinds of the shared domain errors (see `shared.errors`)."""

from __future__ import annotations

from shared.errors import Conflict, FieldProblem, InvalidRequest, NotFound

__all__ = [
    "FieldProblem",
    "IdempotencyKeyReused",
    "InvalidRequest",
    "NotFound",
    "OutsideWindow",
    "WindowConflict",
]


class OutsideWindow(Conflict):
    """The consultation does not accept submissions at this moment."""

    code = "outside_window"


class WindowConflict(Conflict):
    """A change to the window that the rules forbid in the current phase."""


class IdempotencyKeyReused(InvalidRequest):
    """The Idempotency-Key was used before for a different request."""

    code = "idempotency_key_reused"

    def __init__(self) -> None:
        message = "this Idempotency-Key was already used for a different request"
        super().__init__(message, (FieldProblem("Idempotency-Key", message),))
