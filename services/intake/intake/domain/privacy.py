"""Data-subject requests (RODO art. 15 and 17) as intake tracks them: pure rules."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.contracts.privacy import SealedBox, SubjectKind


class RequestKind(StrEnum):
    ERASURE = "erasure"
    EXPORT = "export"


@dataclass(frozen=True, slots=True)
class Reply:
    service: str
    records: int
    answered_at: datetime
    sealed: SealedBox | None = None


@dataclass(slots=True)
class PrivacyRequest:
    id: uuid.UUID
    kind: RequestKind
    subject_kind: SubjectKind
    services: tuple[str, ...]
    requested_at: datetime
    private_key: bytes | None = None
    replies: dict[str, Reply] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every service that holds personal data has answered."""
        return all(service in self.replies for service in self.services)

    def per_service(self) -> dict[str, dict[str, Any]]:
        return {
            service: (
                {"done": True, "records": reply.records, "answered_at": reply.answered_at}
                if (reply := self.replies.get(service)) is not None
                else {"done": False, "records": None, "answered_at": None}
            )
            for service in self.services
        }
