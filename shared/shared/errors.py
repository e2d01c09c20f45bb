"""Rule violations every service's domain reports, in a few kinds.

The domain raises them with an English message and, where a field is at fault, the field
and the reason. Entrypoints translate the kinds: HTTP answers 422 / 404 / 409 / 403 (see
`shared.platform.http`), a Kafka consumer dead-letters the message (a rule broken now is
broken on every retry). `code` is the machine-readable name clients may switch on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    reason: str


class DomainError(Exception):
    """Base of every domain rule violation."""

    code = "domain_error"

    def __init__(self, message: str, problems: tuple[FieldProblem, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems

    def describe(self) -> str:
        """One line for logs and dead-letter reasons: the message, then each field."""
        details = "; ".join(f"{p.field}: {p.reason}" for p in self.problems)
        return f"{self.message} ({details})" if details else self.message


class InvalidRequest(DomainError):
    """The request breaks a rule about its content."""

    code = "validation_failed"


class NotFound(DomainError):
    """What the request names does not exist."""

    code = "not_found"


class Conflict(DomainError):
    """The request is well-formed but the current state forbids it."""

    code = "conflict"


class Forbidden(DomainError):
    """The actor may not do this (a rule of the domain, not a missing token)."""

    code = "forbidden"
