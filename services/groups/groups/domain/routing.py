"""Who gets what: submissions to groups, assessors to submissions, a leaver's open work.

Loads are counted by the caller (open submissions of a group, open assignments of a member)
and passed in, so these rules stay pure. Ties are broken by a stable key (a group's ordinal
then id, a member's id), so the same inputs always give the same answer. Batch functions
update the loads as they go, which spreads a backlog evenly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from groups.domain.errors import InvalidInput, NotPermitted
from groups.domain.group import Role

ASSESSORS_PER_SUBMISSION = 2


@dataclass(frozen=True, slots=True)
class GroupLoad:
    group_id: uuid.UUID
    theme: str
    ordinal: int
    open_submissions: int


@dataclass(frozen=True, slots=True)
class Route:
    submission_id: uuid.UUID
    group_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Assignment:
    """One member asked to assess one submission."""

    submission_id: uuid.UUID
    member_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Reassignment:
    """A leaver's open assignment and who takes it over (None: nobody left to take it)."""

    submission_id: uuid.UUID
    from_member: uuid.UUID
    to_member: uuid.UUID | None


def route_submission(theme: str | None, groups: Iterable[GroupLoad]) -> uuid.UUID | None:
    """The least-loaded group of the theme; None while the theme has no group (it waits)."""
    if theme is None:
        return None
    candidates = [g for g in groups if g.theme == theme]
    if not candidates:
        return None
    return min(candidates, key=lambda g: (g.open_submissions, g.ordinal, g.group_id)).group_id


def route_waiting(
    submissions: Sequence[tuple[uuid.UUID, str | None]], groups: Iterable[GroupLoad]
) -> tuple[Route, ...]:
    """Route waiting submissions (in the given order, e.g. by receipt) once groups exist.

    Each routed submission adds one to its group's load, so a backlog spreads over a theme's
    groups. Submissions whose theme still has no group are left out (they keep waiting).
    """
    loads = {g.group_id: g for g in groups}
    routes: list[Route] = []
    for submission_id, theme in submissions:
        group_id = route_submission(theme, loads.values())
        if group_id is None:
            continue
        current = loads[group_id]
        loads[group_id] = GroupLoad(
            current.group_id, current.theme, current.ordinal, current.open_submissions + 1
        )
        routes.append(Route(submission_id, group_id))
    return tuple(routes)


def pick_assessors(
    member_loads: Mapping[uuid.UUID, int],
    *,
    count: int = ASSESSORS_PER_SUBMISSION,
    exclude: Iterable[uuid.UUID] = (),
) -> tuple[uuid.UUID, ...]:
    """Up to `count` distinct members, least loaded first, then by id.

    `member_loads` maps each member to their open assignments; `exclude` holds members who
    already assess this submission. A group with fewer members gives as many as it has.
    """
    if count < 0:
        raise InvalidInput("count", "must not be negative")
    excluded = set(exclude)
    eligible = sorted(
        (load, member) for member, load in member_loads.items() if member not in excluded
    )
    return tuple(member for _, member in eligible[:count])


def assign_assessors(
    submission_ids: Sequence[uuid.UUID],
    member_loads: Mapping[uuid.UUID, int],
    *,
    count: int = ASSESSORS_PER_SUBMISSION,
) -> tuple[Assignment, ...]:
    """Assessors for several submissions in the given order, loads updated as they go."""
    loads = dict(member_loads)
    assignments: list[Assignment] = []
    for submission_id in submission_ids:
        for member in pick_assessors(loads, count=count):
            loads[member] += 1
            assignments.append(Assignment(submission_id, member))
    return tuple(assignments)


def reassign_open_assignments(
    leaving_member: uuid.UUID,
    open_assignments: Sequence[Assignment],
    member_loads: Mapping[uuid.UUID, int],
) -> tuple[Reassignment, ...]:
    """Hand a leaving member's open assignments to the least-loaded other members.

    `open_assignments` are all open assignments of the group (so nobody gets a submission they
    already assess); `member_loads` the remaining members' loads (the leaver is ignored).
    Handled in submission-id order; each hand-over adds to the receiver's load.
    """
    loads = {m: load for m, load in member_loads.items() if m != leaving_member}
    assessors: dict[uuid.UUID, set[uuid.UUID]] = {}
    for assignment in open_assignments:
        assessors.setdefault(assignment.submission_id, set()).add(assignment.member_id)
    mine = sorted({a.submission_id for a in open_assignments if a.member_id == leaving_member})
    result: list[Reassignment] = []
    for submission_id in mine:
        chosen = pick_assessors(loads, count=1, exclude=assessors[submission_id])
        to_member = chosen[0] if chosen else None
        if to_member is not None:
            loads[to_member] += 1
            assessors[submission_id].add(to_member)
        result.append(Reassignment(submission_id, leaving_member, to_member))
    return tuple(result)


def override_theme(
    new_theme: str, consultation_themes: Sequence[str], *, actor: Role | None
) -> str:
    """A coordinator sets a submission's theme (the caller then re-routes it with
    `route_submission` and drops the old group's open assignments)."""
    if actor is not Role.COORDINATOR:
        raise NotPermitted("theme", "only a coordinator can change a submission's theme")
    if new_theme not in consultation_themes:
        raise InvalidInput("theme", f"unknown theme; one of: {', '.join(consultation_themes)}")
    return new_theme
