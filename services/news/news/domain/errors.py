"""Rule violations the news domain reports, as kinds of the shared domain errors.

Being `shared.errors` kinds, they are answered by the shared HTTP handlers (422 / 409 /
404) and dead-lettered by a Kafka consumer like every other service's rule violations.
"""

from __future__ import annotations

from shared.errors import Conflict, DomainError, FieldProblem, NotFound
from shared.errors import InvalidRequest as SharedInvalidRequest

__all__ = [
    "DomainError",
    "FieldProblem",
    "InvalidRequest",
    "NotFound",
    "StateConflict",
    "raise_if",
]


class InvalidRequest(SharedInvalidRequest):
    """The input breaks a rule about its content (HTTP 422)."""


class StateConflict(Conflict):
    """The change is not allowed in the current state, e.g. updating a cancelled alert (409)."""

    code = "state_conflict"


def raise_if(problems: list[FieldProblem], what: str) -> None:
    """Raise one InvalidRequest listing every problem, so a form shows them all at once."""
    if problems:
        fields = ", ".join(problem.field for problem in problems)
        raise InvalidRequest(f"invalid {what}: {fields}", tuple(problems))
