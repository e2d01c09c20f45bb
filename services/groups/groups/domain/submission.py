"""A submission as the working groups see it: public text and where it stands.

No contact data ever reaches groups: `SubmissionReceived` carries none that is stored here
(the submitter's email stays with notifications). The theme is the submitter's, the
classifier's (no theme given) or a coordinator's; a submission without a group waits until
a group of its theme forms.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from groups.domain.assessment import FINAL_STATES, Review
from shared.contracts.groups import ThemeSource
from shared.contracts.intake import SubmitterKind


@dataclass(frozen=True, slots=True)
class GroupSubmission:
    id: uuid.UUID
    consultation_id: uuid.UUID
    title: str
    body: str
    submitter_kind: SubmitterKind
    locality: str | None
    channel: str
    receipt_number: str
    received_at: datetime
    review: Review
    theme: str | None = None
    theme_source: ThemeSource | None = None
    confidence: float | None = None
    group_id: uuid.UUID | None = None
    routed_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.review.state in FINAL_STATES

    @property
    def is_waiting(self) -> bool:
        """Not in a group yet (no group of its theme, or no theme at all)."""
        return self.group_id is None
