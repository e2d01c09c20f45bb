"""Rule violations the domain reports; entrypoints map them to HTTP or dead letters."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    reason: str


class DomainError(Exception):
    """Base of every domain rule violation."""

    def __init__(self, message: str, problems: tuple[FieldProblem, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems


class InvalidRequest(DomainError):
    """The request breaks a rule about its content (HTTP 422)."""


class OutsideWindow(DomainError):
    """The consultation does not accept submissions at this moment (HTTP 409)."""


class WindowConflict(DomainError):
    """A change to the window that the rules forbid in the current phase (HTTP 409)."""
