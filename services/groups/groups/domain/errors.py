"""Rule violations the groups domain reports.

Every error names the field it is about and why, in English. The classes are kinds of the
shared domain errors (`shared.errors`), so the shared HTTP handlers answer them uniformly
(422 invalid input, 404 unknown, 403 not permitted, 409 conflicting state) and a Kafka
consumer dead-letters them with the reason.
"""

from __future__ import annotations

from typing import Self

from shared.errors import Conflict, FieldProblem, Forbidden, InvalidRequest, NotFound
from shared.errors import DomainError as SharedDomainError

__all__ = [
    "DomainError",
    "FieldProblem",
    "IdentityConflict",
    "InvalidInput",
    "InvalidTransition",
    "NotPermitted",
    "Unknown",
]


class DomainError(SharedDomainError):
    """Base of every groups rule violation: at least one (field, reason)."""

    def __init__(self, field: str, reason: str, *more: FieldProblem) -> None:
        problems: tuple[FieldProblem, ...] = (FieldProblem(field, reason), *more)
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in problems), problems)
        self.field = field
        self.reason = reason

    @classmethod
    def of(cls, problems: list[FieldProblem]) -> Self:
        """One error carrying every problem found (a form shows them all at once)."""
        first, *rest = problems
        return cls(first.field, first.reason, *rest)


class InvalidInput(DomainError, InvalidRequest):
    """The data breaks a rule about its content (HTTP 422)."""


class NotPermitted(DomainError, Forbidden):
    """The actor's role does not allow this action (HTTP 403)."""


class InvalidTransition(DomainError, Conflict):
    """The current state does not allow this change (HTTP 409)."""

    code = "conflict"


class IdentityConflict(DomainError, Conflict):
    """The email and the phone of a sign-up belong to two different volunteers (HTTP 409)."""

    code = "identity_conflict"


class Unknown(DomainError, NotFound):
    """What the request names does not exist (HTTP 404)."""
