"""What the groups use cases need from storage, independent of PostgreSQL.

`GroupsUnitOfWork` is the unit of work use cases receive; `groups.adapters` implements it
on asyncpg, `tests/unit/conftest.py` on dictionaries. `lock_consultation` serialises every
change to one consultation's placement and routing (sign-ups, confirmations, withdrawals,
submissions arriving, theme overrides): the placement rule reads all volunteers and groups
of the consultation and must not run twice at once on the same state.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from groups.domain.assessment import Assessment
from groups.domain.consultation import Consultation
from groups.domain.duplicates import DuplicateLink, Similar
from groups.domain.group import Group
from groups.domain.routing import Assignment
from groups.domain.submission import GroupSubmission
from groups.domain.volunteers import SignUp, Volunteer
from shared.platform.one_time_tokens import OneTimeTokens
from shared.platform.shredding import PersonSealer
from shared.platform.unit_of_work import UnitOfWork


class Consultations(Protocol):
    async def get(self, consultation_id: uuid.UUID) -> Consultation | None: ...

    async def save(self, consultation: Consultation) -> None:
        """Insert or replace the projection."""
        ...

    async def lock(self, consultation_id: uuid.UUID) -> None:
        """Serialise placement and routing of this consultation until the unit ends."""
        ...


class Volunteers(Protocol):
    async def get(self, volunteer_id: uuid.UUID) -> Volunteer | None: ...

    async def of_consultation(self, consultation_id: uuid.UUID) -> list[Volunteer]: ...

    async def same_person(
        self, consultation_id: uuid.UUID, email: str | None, phone: str | None
    ) -> list[Volunteer]:
        """Volunteers of the consultation with this email or this phone."""
        ...

    async def placed_with_email(self, email: str) -> list[Volunteer]:
        """Placed volunteers of any consultation with this (normalised) email."""
        ...

    async def save(self, volunteer: Volunteer) -> None:
        """Insert or update (a newly placed volunteer gets the next seat number)."""
        ...

    async def pending_update(self, volunteer_id: uuid.UUID) -> SignUp | None: ...

    async def set_pending_update(self, volunteer_id: uuid.UUID, sign_up: SignUp | None) -> None:
        """A web sign-up of a known person, applied when its link is confirmed."""
        ...


class Groups(Protocol):
    async def get(self, group_id: uuid.UUID) -> Group | None:
        """With its members in seating order."""
        ...

    async def of_consultation(self, consultation_id: uuid.UUID) -> list[Group]: ...

    async def add(self, group: Group) -> None: ...

    async def set_lead(self, group_id: uuid.UUID, lead_id: uuid.UUID | None) -> None: ...


class Submissions(Protocol):
    async def add(self, submission: GroupSubmission) -> bool:
        """False when it is known already (a redelivered event)."""
        ...

    async def get(self, submission_id: uuid.UUID) -> GroupSubmission | None: ...

    async def save(self, submission: GroupSubmission) -> None: ...

    async def waiting(
        self, consultation_id: uuid.UUID, themes: Collection[str]
    ) -> list[GroupSubmission]:
        """Submissions of these themes in no group yet and not decided, in receipt order."""
        ...

    async def of_consultation(
        self, consultation_id: uuid.UUID, *, theme: str | None = None
    ) -> list[GroupSubmission]:
        """In receipt order (received_at, then id)."""
        ...

    async def of_group(self, group_id: uuid.UUID) -> list[GroupSubmission]:
        """In receipt order."""
        ...

    async def open_per_group(self, consultation_id: uuid.UUID) -> dict[uuid.UUID, int]:
        """Submissions not yet in a final state, per group."""
        ...


class Assignments(Protocol):
    async def open_of_group(self, group_id: uuid.UUID) -> list[Assignment]:
        """Assignments whose member has not assessed yet and whose submission is not final."""
        ...

    async def of_submission(self, submission_id: uuid.UUID) -> list[uuid.UUID]:
        """Every member assigned to the submission (assessed or not)."""
        ...

    async def add(self, assignments: Iterable[Assignment]) -> None: ...

    async def remove(self, submission_id: uuid.UUID, member_id: uuid.UUID) -> None: ...

    async def remove_all(self, submission_id: uuid.UUID) -> None: ...


class Assessments(Protocol):
    async def of_submission(self, submission_id: uuid.UUID) -> list[Assessment]: ...

    async def of_submissions(
        self, submission_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Assessment]]: ...

    async def save(self, assessment: Assessment, now: datetime) -> None:
        """Insert, or replace the member's earlier assessment of the submission."""
        ...


class DuplicateLinks(Protocol):
    async def add(self, links: Iterable[DuplicateLink], consultation_id: uuid.UUID) -> None: ...

    async def get(self, original: uuid.UUID, duplicate: uuid.UUID) -> DuplicateLink | None: ...

    async def touching(self, submission_ids: Sequence[uuid.UUID]) -> list[DuplicateLink]:
        """Links with either end among `submission_ids`."""
        ...

    async def of_consultation(self, consultation_id: uuid.UUID) -> list[DuplicateLink]: ...

    async def save(self, link: DuplicateLink) -> None: ...

    async def index_terms(
        self, submission_id: uuid.UUID, consultation_id: uuid.UUID, weights: dict[str, float]
    ) -> None:
        """Keep a submission's term weights for the arrivals after it."""
        ...

    async def similar(
        self,
        consultation_id: uuid.UUID,
        theme: str,
        weights: dict[str, float],
        *,
        at_least: float,
        limit: int,
    ) -> list[Similar]:
        """Indexed submissions of the theme whose cosine with `weights` is `at_least`,
        most similar first."""
        ...


@dataclass(frozen=True, slots=True)
class Recommendation:
    id: uuid.UUID
    consultation_id: uuid.UUID
    group_id: uuid.UUID
    theme: str
    title: str
    body: str
    submission_ids: tuple[uuid.UUID, ...]
    trend_snapshot: int | None
    drafted_by: uuid.UUID | None
    created_at: datetime
    published_at: datetime | None = None


class Recommendations(Protocol):
    async def add(self, recommendation: Recommendation) -> None: ...

    async def get(self, recommendation_id: uuid.UUID) -> Recommendation | None: ...

    async def save(self, recommendation: Recommendation) -> None: ...

    async def of_consultation(
        self, consultation_id: uuid.UUID, *, published_only: bool
    ) -> list[Recommendation]:
        """Oldest first."""
        ...

    async def of_group(self, group_id: uuid.UUID) -> list[Recommendation]: ...


@dataclass(frozen=True, slots=True)
class TrendSnapshot:
    consultation_id: uuid.UUID
    theme: str
    number: int
    computed_at: datetime
    submissions: int
    report: dict[str, Any]  # a `TrendReport` as JSON


@dataclass(frozen=True, slots=True)
class DirtyTheme:
    consultation_id: uuid.UUID
    theme: str
    dirty_since: datetime


class Trends(Protocol):
    async def mark_dirty(self, consultation_id: uuid.UUID, theme: str) -> None:
        """The theme's trends are out of date; wakes the trends worker on commit."""
        ...

    async def next_dirty(self) -> DirtyTheme | None: ...

    async def clear_dirty(self, dirty: DirtyTheme) -> None:
        """Clear the flag unless the theme changed again since it was read."""
        ...

    async def add_snapshot(
        self, consultation_id: uuid.UUID, theme: str, submissions: int, report: dict[str, Any]
    ) -> TrendSnapshot:
        """The next numbered snapshot of the theme."""
        ...

    async def snapshot(
        self, consultation_id: uuid.UUID, theme: str, number: int | None = None
    ) -> TrendSnapshot | None:
        """The numbered snapshot, or the latest."""
        ...


class Sessions(Protocol):
    async def add(self, token_hash: str, volunteer_id: uuid.UUID, expires_at: datetime) -> None: ...

    async def volunteer_of(self, token_hash: str, now: datetime) -> uuid.UUID | None:
        """The member of an unexpired session."""
        ...

    async def end_all(self, volunteer_id: uuid.UUID) -> None: ...


class Housekeeping(Protocol):
    async def forget_expired(self, before: datetime) -> int:
        """Delete member sessions and link tokens that expired before `before` (they open
        nothing any more, and a table of them is only a liability); how many went."""
        ...


class GroupsUnitOfWork(UnitOfWork):
    consultations: Consultations
    volunteers: Volunteers
    groups: Groups
    submissions: Submissions
    assignments: Assignments
    assessments: Assessments
    duplicates: DuplicateLinks
    recommendations: Recommendations
    trends: Trends
    sessions: Sessions
    tokens: OneTimeTokens
    housekeeping: Housekeeping
    # Per-person keys the volunteers' addresses and names are sealed under on
    # groups.volunteer-messages.v2 (crypto-shredding); a new key is staged on
    # groups.person-keys.v1 before the message that uses it.
    person_keys: PersonSealer
