"""Rule violations the news domain reports; entrypoints map them to HTTP (422/409)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One broken rule: which field (dotted path) and why, in English."""

    field: str
    reason: str


class DomainError(Exception):
    """Base of every news domain rule violation."""

    def __init__(self, message: str, problems: tuple[FieldProblem, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems


class InvalidRequest(DomainError):
    """The input breaks a rule about its content (HTTP 422)."""


class StateConflict(DomainError):
    """The change is not allowed in the current state, e.g. updating a cancelled alert (409)."""


def raise_if(problems: list[FieldProblem], what: str) -> None:
    """Raise one InvalidRequest listing every problem, so a form shows them all at once."""
    if problems:
        fields = ", ".join(problem.field for problem in problems)
        raise InvalidRequest(f"invalid {what}: {fields}", tuple(problems))
