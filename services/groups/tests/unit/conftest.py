"""Fakes for the fast tier: the groups unit of work on dictionaries (no broker, no server).

As in intake's `tests/unit/conftest.py`: the use cases run unchanged against in-memory
repositories; a unit of work left without commit restores the state it found, and tests
look at what was committed and which events were staged.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import uuid
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from groups.domain.assessment import FINAL_STATES, Assessment
from groups.domain.consultation import Consultation
from groups.domain.duplicates import DuplicateLink, Similar, cosine
from groups.domain.group import Group
from groups.domain.routing import Assignment
from groups.domain.submission import GroupSubmission
from groups.domain.volunteers import SignUp, Volunteer
from groups.service.ports import DirtyTheme, GroupsUnitOfWork, Recommendation, TrendSnapshot
from shared.platform.one_time_tokens import InMemoryOneTimeTokens
from shared.platform.shredding import InMemoryPersonKeys


class FakeConsultations:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def get(self, consultation_id: uuid.UUID) -> Consultation | None:
        return self.s.consultations.get(consultation_id)

    async def save(self, consultation: Consultation) -> None:
        self.s.consultations[consultation.id] = consultation

    async def lock(self, consultation_id: uuid.UUID) -> None:
        self.s.locks.append(consultation_id)


class FakeVolunteers:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def get(self, volunteer_id: uuid.UUID) -> Volunteer | None:
        return self.s.volunteers.get(volunteer_id)

    async def of_consultation(self, consultation_id: uuid.UUID) -> list[Volunteer]:
        return [v for v in self.s.volunteers.values() if v.consultation_id == consultation_id]

    async def same_person(
        self, consultation_id: uuid.UUID, email: str | None, phone: str | None
    ) -> list[Volunteer]:
        return [
            v
            for v in await self.of_consultation(consultation_id)
            if (email is not None and v.email == email) or (phone is not None and v.phone == phone)
        ]

    async def placed_with_email(self, email: str) -> list[Volunteer]:
        return [v for v in self.s.volunteers.values() if v.email == email and v.group_id]

    async def save(self, volunteer: Volunteer) -> None:
        before = self.s.volunteers.get(volunteer.id)
        if volunteer.group_id is None:
            self.s.seats.pop(volunteer.id, None)
        elif before is None or before.group_id != volunteer.group_id:
            self.s.seats[volunteer.id] = next(self.s.seat_numbers)
        self.s.volunteers[volunteer.id] = volunteer

    async def pending_update(self, volunteer_id: uuid.UUID) -> SignUp | None:
        return self.s.pending.get(volunteer_id)

    async def set_pending_update(self, volunteer_id: uuid.UUID, sign_up: SignUp | None) -> None:
        if sign_up is None:
            self.s.pending.pop(volunteer_id, None)
        else:
            self.s.pending[volunteer_id] = sign_up


class FakeGroups:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    def _with_members(self, group: Group) -> Group:
        members = sorted(
            (v.id for v in self.s.volunteers.values() if v.group_id == group.id),
            key=lambda member: self.s.seats[member],
        )
        return dataclasses.replace(group, member_ids=tuple(members))

    async def get(self, group_id: uuid.UUID) -> Group | None:
        group = self.s.groups.get(group_id)
        return None if group is None else self._with_members(group)

    async def of_consultation(self, consultation_id: uuid.UUID) -> list[Group]:
        return [
            self._with_members(g)
            for g in self.s.groups.values()
            if g.consultation_id == consultation_id
        ]

    async def add(self, group: Group) -> None:
        self.s.groups[group.id] = group

    async def set_lead(self, group_id: uuid.UUID, lead_id: uuid.UUID | None) -> None:
        self.s.groups[group_id] = dataclasses.replace(self.s.groups[group_id], lead_id=lead_id)


class FakeSubmissions:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    def _ordered(self) -> list[GroupSubmission]:
        return sorted(self.s.submissions.values(), key=lambda s: (s.received_at, s.id))

    async def add(self, submission: GroupSubmission) -> bool:
        if submission.id in self.s.submissions:
            return False
        self.s.submissions[submission.id] = submission
        return True

    async def get(self, submission_id: uuid.UUID) -> GroupSubmission | None:
        return self.s.submissions.get(submission_id)

    async def save(self, submission: GroupSubmission) -> None:
        self.s.submissions[submission.id] = submission

    async def of_consultation(
        self, consultation_id: uuid.UUID, *, theme: str | None = None
    ) -> list[GroupSubmission]:
        return [
            s
            for s in self._ordered()
            if s.consultation_id == consultation_id and theme in (None, s.theme)
        ]

    async def waiting(
        self, consultation_id: uuid.UUID, themes: Collection[str]
    ) -> list[GroupSubmission]:
        return [
            s
            for s in self._ordered()
            if s.consultation_id == consultation_id
            and s.group_id is None
            and s.theme in themes
            and not s.is_final
        ]

    async def of_group(self, group_id: uuid.UUID) -> list[GroupSubmission]:
        return [s for s in self._ordered() if s.group_id == group_id]

    async def open_per_group(self, consultation_id: uuid.UUID) -> dict[uuid.UUID, int]:
        counts: dict[uuid.UUID, int] = {}
        for s in await self.of_consultation(consultation_id):
            if s.group_id is not None and not s.is_final:
                counts[s.group_id] = counts.get(s.group_id, 0) + 1
        return counts


class FakeAssignments:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def open_of_group(self, group_id: uuid.UUID) -> list[Assignment]:
        assessed = {(a.submission_id, a.member_id) for a in self.s.assessments.values()}
        return sorted(
            (
                a
                for a in self.s.assignments
                if self.s.submissions[a.submission_id].group_id == group_id
                and self.s.submissions[a.submission_id].review.state not in FINAL_STATES
                and (a.submission_id, a.member_id) not in assessed
            ),
            key=lambda a: (a.submission_id, a.member_id),
        )

    async def of_submission(self, submission_id: uuid.UUID) -> list[uuid.UUID]:
        return [a.member_id for a in self.s.assignments if a.submission_id == submission_id]

    async def add(self, assignments: Iterable[Assignment]) -> None:
        for assignment in assignments:
            if assignment not in self.s.assignments:
                self.s.assignments.append(assignment)

    async def remove(self, submission_id: uuid.UUID, member_id: uuid.UUID) -> None:
        self.s.assignments.remove(Assignment(submission_id, member_id))

    async def remove_all(self, submission_id: uuid.UUID) -> None:
        self.s.assignments = [a for a in self.s.assignments if a.submission_id != submission_id]


class FakeAssessments:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def of_submission(self, submission_id: uuid.UUID) -> list[Assessment]:
        return [a for (sid, _), a in self.s.assessments.items() if sid == submission_id]

    async def of_submissions(
        self, submission_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Assessment]]:
        found: dict[uuid.UUID, list[Assessment]] = {}
        for (sid, _), a in self.s.assessments.items():
            if sid in submission_ids:
                found.setdefault(sid, []).append(a)
        return found

    async def save(self, assessment: Assessment, now: datetime) -> None:
        self.s.assessments[(assessment.submission_id, assessment.member_id)] = assessment


class FakeDuplicates:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def add(self, links: Iterable[DuplicateLink], consultation_id: uuid.UUID) -> None:
        for link in links:
            self.s.links.setdefault((link.original, link.duplicate), link)

    async def index_terms(
        self, submission_id: uuid.UUID, consultation_id: uuid.UUID, weights: dict[str, float]
    ) -> None:
        self.s.term_weights[submission_id] = (consultation_id, weights)

    async def similar(
        self,
        consultation_id: uuid.UUID,
        theme: str,
        weights: dict[str, float],
        *,
        at_least: float,
        limit: int,
    ) -> list[Similar]:
        found = []
        for submission_id, (consultation, indexed) in self.s.term_weights.items():
            submission = self.s.submissions[submission_id]
            similarity = cosine(weights, indexed)
            same_theme = consultation == consultation_id and submission.theme == theme
            if same_theme and similarity >= at_least:
                found.append(Similar(submission_id, submission.received_at, similarity))
        found.sort(key=lambda s: (-s.similarity, s.submission_id))
        return found[:limit]

    async def get(self, original: uuid.UUID, duplicate: uuid.UUID) -> DuplicateLink | None:
        return self.s.links.get((original, duplicate))

    async def touching(self, submission_ids: Sequence[uuid.UUID]) -> list[DuplicateLink]:
        return [
            ln
            for ln in self.s.links.values()
            if ln.original in submission_ids or ln.duplicate in submission_ids
        ]

    async def of_consultation(self, consultation_id: uuid.UUID) -> list[DuplicateLink]:
        return [
            ln
            for ln in self.s.links.values()
            if self.s.submissions[ln.original].consultation_id == consultation_id
        ]

    async def save(self, link: DuplicateLink) -> None:
        self.s.links[(link.original, link.duplicate)] = link


class FakeRecommendations:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def add(self, recommendation: Recommendation) -> None:
        self.s.recommendations[recommendation.id] = recommendation

    async def get(self, recommendation_id: uuid.UUID) -> Recommendation | None:
        return self.s.recommendations.get(recommendation_id)

    async def save(self, recommendation: Recommendation) -> None:
        self.s.recommendations[recommendation.id] = recommendation

    async def of_consultation(
        self, consultation_id: uuid.UUID, *, published_only: bool
    ) -> list[Recommendation]:
        return [
            r
            for r in self.s.recommendations.values()
            if r.consultation_id == consultation_id
            and (r.published_at is not None or not published_only)
        ]

    async def of_group(self, group_id: uuid.UUID) -> list[Recommendation]:
        return [r for r in self.s.recommendations.values() if r.group_id == group_id]


class FakeTrends:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def mark_dirty(self, consultation_id: uuid.UUID, theme: str) -> None:
        self.s.dirty[(consultation_id, theme)] = datetime.now(UTC)

    async def next_dirty(self) -> DirtyTheme | None:
        if not self.s.dirty:
            return None
        (cid, theme), since = min(self.s.dirty.items(), key=lambda item: item[1])
        return DirtyTheme(cid, theme, since)

    async def clear_dirty(self, dirty: DirtyTheme) -> None:
        if self.s.dirty.get((dirty.consultation_id, dirty.theme)) == dirty.dirty_since:
            del self.s.dirty[(dirty.consultation_id, dirty.theme)]

    async def add_snapshot(
        self, consultation_id: uuid.UUID, theme: str, submissions: int, report: dict[str, Any]
    ) -> TrendSnapshot:
        numbers = [n for (c, t, n) in self.s.snapshots if (c, t) == (consultation_id, theme)]
        number = max(numbers, default=0) + 1
        snapshot = TrendSnapshot(
            consultation_id, theme, number, datetime.now(UTC), submissions, report
        )
        self.s.snapshots[(consultation_id, theme, number)] = snapshot
        return snapshot

    async def snapshot(
        self, consultation_id: uuid.UUID, theme: str, number: int | None = None
    ) -> TrendSnapshot | None:
        numbers = [n for (c, t, n) in self.s.snapshots if (c, t) == (consultation_id, theme)]
        if not numbers:
            return None
        return self.s.snapshots.get((consultation_id, theme, number or max(numbers)))


class FakeSessions:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def add(self, token_hash: str, volunteer_id: uuid.UUID, expires_at: datetime) -> None:
        self.s.sessions[token_hash] = (volunteer_id, expires_at)

    async def volunteer_of(self, token_hash: str, now: datetime) -> uuid.UUID | None:
        found = self.s.sessions.get(token_hash)
        return found[0] if found and found[1] > now else None

    async def end_all(self, volunteer_id: uuid.UUID) -> None:
        self.s.sessions = {h: v for h, v in self.s.sessions.items() if v[0] != volunteer_id}


class FakeHousekeeping:
    def __init__(self, store: FakeStore) -> None:
        self.s = store

    async def forget_expired(self, before: datetime) -> int:
        sessions = {h: v for h, v in self.s.sessions.items() if v[1] >= before}
        tokens = {h: t for h, t in self.s.tokens.stored.items() if t.expires_at >= before}
        forgotten = len(self.s.sessions) - len(sessions) + len(self.s.tokens.stored) - len(tokens)
        self.s.sessions, self.s.tokens.stored = sessions, tokens
        return forgotten


# Every piece of state a unit of work may change: snapshotted when one opens.
_STATE = (
    "consultations",
    "volunteers",
    "seats",
    "pending",
    "groups",
    "submissions",
    "assignments",
    "assessments",
    "links",
    "recommendations",
    "dirty",
    "snapshots",
    "sessions",
)


class FakeStore:
    def __init__(self) -> None:
        self.consultations: dict[uuid.UUID, Consultation] = {}
        self.volunteers: dict[uuid.UUID, Volunteer] = {}
        self.seats: dict[uuid.UUID, int] = {}
        self.seat_numbers = itertools.count(1)
        self.pending: dict[uuid.UUID, SignUp] = {}
        self.groups: dict[uuid.UUID, Group] = {}
        self.submissions: dict[uuid.UUID, GroupSubmission] = {}
        self.assignments: list[Assignment] = []
        self.assessments: dict[tuple[uuid.UUID, uuid.UUID], Assessment] = {}
        self.links: dict[tuple[uuid.UUID, uuid.UUID], DuplicateLink] = {}
        self.term_weights: dict[uuid.UUID, tuple[uuid.UUID, dict[str, float]]] = {}
        self.recommendations: dict[uuid.UUID, Recommendation] = {}
        self.dirty: dict[tuple[uuid.UUID, str], datetime] = {}
        self.snapshots: dict[tuple[uuid.UUID, str, int], TrendSnapshot] = {}
        self.sessions: dict[str, tuple[uuid.UUID, datetime]] = {}
        self.tokens = InMemoryOneTimeTokens()
        self.person_keys = InMemoryPersonKeys()
        self.locks: list[uuid.UUID] = []
        self.committed_events: list[Any] = []

    def snapshot(self) -> dict[str, Any]:
        state = {name: copy.copy(getattr(self, name)) for name in _STATE}
        state["tokens"] = copy.deepcopy(self.tokens.stored)
        return state

    def restore(self, state: dict[str, Any]) -> None:
        for name in _STATE:
            setattr(self, name, state[name])
        self.tokens.stored = state["tokens"]

    def unit_of_work(self) -> FakeGroupsUnitOfWork:
        return FakeGroupsUnitOfWork(self)

    def events(self, kind: type[Any]) -> list[Any]:
        return [event for event in self.committed_events if isinstance(event, kind)]


class FakeGroupsUnitOfWork(GroupsUnitOfWork):
    def __init__(self, store: FakeStore) -> None:
        super().__init__()
        self._store = store
        self.consultations = FakeConsultations(store)
        self.volunteers = FakeVolunteers(store)
        self.groups = FakeGroups(store)
        self.submissions = FakeSubmissions(store)
        self.assignments = FakeAssignments(store)
        self.assessments = FakeAssessments(store)
        self.duplicates = FakeDuplicates(store)
        self.recommendations = FakeRecommendations(store)
        self.trends = FakeTrends(store)
        self.sessions = FakeSessions(store)
        self.tokens = store.tokens
        self.housekeeping = FakeHousekeeping(store)
        self.person_keys = store.person_keys
        self._snapshot: dict[str, Any] | None = None

    async def _begin(self) -> None:
        self._snapshot = self._store.snapshot()

    async def _commit(self) -> None:
        self._store.committed_events.extend(event.payload for event in self.events)
        self._snapshot = None

    async def rollback(self) -> None:
        if self._snapshot is not None:
            self._store.restore(self._snapshot)
            self._snapshot = None


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def clock() -> Clock:
    return Clock()
