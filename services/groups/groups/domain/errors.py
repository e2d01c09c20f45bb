"""Rule violations the groups domain reports.

Every error names the field it is about and why, in English; the entrypoints map the
classes to HTTP (422 invalid input, 403 not permitted, 409 conflicting state) later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    reason: str


class DomainError(Exception):
    """Base of every domain rule violation: at least one (field, reason)."""

    def __init__(self, field: str, reason: str, *more: FieldProblem) -> None:
        self.problems: tuple[FieldProblem, ...] = (FieldProblem(field, reason), *more)
        self.field = field
        self.reason = reason
        message = "; ".join(f"{p.field}: {p.reason}" for p in self.problems)
        super().__init__(message)
        self.message = message

    @classmethod
    def of(cls, problems: list[FieldProblem]) -> Self:
        """One error carrying every problem found (a form shows them all at once)."""
        first, *rest = problems
        return cls(first.field, first.reason, *rest)


class InvalidInput(DomainError):
    """The data breaks a rule about its content (HTTP 422)."""


class NotPermitted(DomainError):
    """The actor's role does not allow this action (HTTP 403)."""


class InvalidTransition(DomainError):
    """The current state does not allow this change (HTTP 409)."""


class IdentityConflict(DomainError):
    """The email and the phone of a sign-up belong to two different volunteers (HTTP 409)."""
