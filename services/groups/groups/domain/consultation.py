"""Consultations as groups sees them: the projection of intake's life-cycle events.

Groups belong to one consultation and its themes. Volunteers may sign up while it is
announced or open; once closed (its window is over) no new sign-up is accepted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from groups.domain.errors import InvalidTransition


@dataclass(frozen=True, slots=True)
class Consultation:
    id: uuid.UUID
    title: str
    kind: str
    opens_at: datetime
    closes_at: datetime
    themes: tuple[str, ...]
    opened: bool = False
    closed: bool = False

    def is_closed(self, now: datetime) -> bool:
        return self.closed or now >= self.closes_at

    def check_accepts_volunteers(self, now: datetime) -> None:
        if self.is_closed(now):
            raise InvalidTransition(
                "consultation_id", f"the consultation closed on {self.closes_at.isoformat()}"
            )

    def with_window(self, opens_at: datetime, closes_at: datetime) -> Consultation:
        """A window change; a consultation extended past now is open again."""
        return replace(self, opens_at=opens_at, closes_at=closes_at, closed=False)
