"""How working groups form and who sits where: `place`, a pure and deterministic rule.

Inputs: the existing groups, the consultation's themes (in their order), and the volunteers
who count but have no seat yet (confirmed or waitlisted), in queue order (`candidates_from`).
Output: the groups to form, who goes where, who waits. Placed members are never moved: the
rule only adds seats and groups.

The rule takes the volunteers one at a time, in queue order, exactly as if they arrived one
by one:

1. **Seat.** The volunteer takes their first-ranked theme that has a group with room (fewer
   than `max_size` members), else the next ranked theme, and so on. Among several groups of
   one theme with room: the fewest members, then the lowest ordinal.
2. **Wait, or form.** A volunteer who fits nowhere joins the waiting pool. Everyone in the pool
   has no room in any theme they ranked. A theme is *feasible* when at least `min_size`
   volunteers in the pool ranked it (at any rank): only then can a new group of it reach the
   minimum. Each pooled volunteer *points* at their best-ranked feasible theme. Every feasible
   theme with at least `min_size` pointers forms one new group (in the consultation's theme
   order); if none has, the feasible theme with the most pointers forms one (ties: more
   volunteers who ranked it, then theme order). The pool is then seated by step 1 (in queue
   order) and step 2 repeats until no theme is feasible.
3. Whoever is still in the pool at the end is waitlisted, in queue order. A later run (after a
   withdrawal frees a place, or more volunteers arrive) seats them as soon as a group can take
   them: they come first in the queue.

So a theme gets its first group once `min_size` volunteers would join it, and when its groups
are full the overflow forms "Grupa społeczna 2" once `min_size` volunteers wait for it. A new
group never starts below `min_size`: the volunteers who point at it, or all its supporters
when it was chosen for having the most pointers, have no earlier-ranked room and join it.
A new group takes the next ordinal of its theme; its id comes from the caller's
`new_group_id`, called once per group in formation order.

Because volunteers are handled one at a time, one run over many volunteers and one run after
each arrival give the same groups with the same members and the same ids (as long as nobody
withdraws in between).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from groups.domain.errors import InvalidInput
from groups.domain.group import DEFAULT_THEME_LABELS, Group, ThemeLabel, group_names
from groups.domain.volunteers import Volunteer, VolunteerStatus


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    """Group sizes from configuration: a group forms at `min_size` and takes `max_size`."""

    min_size: int = 3
    max_size: int = 12

    def __post_init__(self) -> None:
        if self.min_size < 1:
            raise InvalidInput("min_size", "must be at least 1")
        if self.max_size < self.min_size:
            raise InvalidInput("max_size", "must be at least min_size")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A volunteer who counts and has no seat: their id and ranked themes."""

    volunteer_id: uuid.UUID
    themes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Seat:
    volunteer_id: uuid.UUID
    group_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class PlacementPlan:
    """Decisions of one run: apply `formed`, then `seats` (mark_placed), then `waitlisted`."""

    formed: tuple[Group, ...]  # new groups, with the members seated in them by this run
    seats: tuple[Seat, ...]  # every seat taken in this run, in decision order
    waitlisted: tuple[uuid.UUID, ...]  # in queue order
    groups: tuple[Group, ...]  # every group after the run, by theme order then ordinal


def candidates_from(volunteers: Iterable[Volunteer]) -> tuple[Candidate, ...]:
    """Confirmed and waitlisted volunteers, in queue order (confirmed_at, then id)."""
    waiting = [
        v for v in volunteers if v.status in (VolunteerStatus.CONFIRMED, VolunteerStatus.WAITLISTED)
    ]
    waiting.sort(key=Volunteer.queue_key)
    return tuple(Candidate(v.id, v.themes) for v in waiting)


@dataclass(slots=True)
class _Seating:
    """Mutable working state of one run (never leaves this module)."""

    policy: GroupPolicy
    theme_rank: Mapping[str, int]
    members: dict[uuid.UUID, list[uuid.UUID]]
    groups: dict[uuid.UUID, Group]
    by_theme: dict[str, list[uuid.UUID]] = field(default_factory=dict)

    def room_in(self, theme: str) -> uuid.UUID | None:
        open_groups = [
            gid
            for gid in self.by_theme.get(theme, [])
            if len(self.members[gid]) < self.policy.max_size
        ]
        if not open_groups:
            return None
        return min(open_groups, key=lambda gid: (len(self.members[gid]), self.groups[gid].ordinal))

    def next_ordinal(self, theme: str) -> int:
        return 1 + max(
            (self.groups[gid].ordinal for gid in self.by_theme.get(theme, [])), default=0
        )


def place(
    groups: Sequence[Group],
    candidates: Sequence[Candidate],
    *,
    themes: Sequence[str],
    new_group_id: Callable[[], uuid.UUID],
    policy: GroupPolicy | None = None,
    labels: Mapping[str, ThemeLabel] = DEFAULT_THEME_LABELS,
) -> PlacementPlan:
    """Run the placement rule of the module docstring once over everyone waiting."""
    policy = policy or GroupPolicy()
    theme_rank = {theme: index for index, theme in enumerate(themes)}
    _check_inputs(groups, candidates, theme_rank)
    state = _Seating(
        policy=policy,
        theme_rank=theme_rank,
        members={g.id: list(g.member_ids) for g in groups},
        groups={g.id: g for g in groups},
    )
    for group in sorted(groups, key=lambda g: (theme_rank[g.theme], g.ordinal)):
        state.by_theme.setdefault(group.theme, []).append(group.id)

    formed: list[uuid.UUID] = []
    seats: list[Seat] = []
    pending: list[Candidate] = []
    for candidate in candidates:
        if not _seat(state, [candidate], seats):
            continue  # seated at once
        pending.append(candidate)
        while to_form := _themes_to_form(state, pending):
            for theme in to_form:
                gid = new_group_id()
                ordinal = state.next_ordinal(theme)
                name_pl, name_en = group_names(theme, ordinal, labels)
                state.groups[gid] = Group(gid, theme, ordinal, name_pl, name_en)
                state.members[gid] = []
                state.by_theme.setdefault(theme, []).append(gid)
                formed.append(gid)
            pending = _seat(state, pending, seats)

    result = {
        gid: replace(group, member_ids=tuple(state.members[gid]))
        for gid, group in state.groups.items()
    }
    return PlacementPlan(
        formed=tuple(result[gid] for gid in formed),
        seats=tuple(seats),
        waitlisted=tuple(c.volunteer_id for c in pending),
        groups=tuple(sorted(result.values(), key=lambda g: (theme_rank[g.theme], g.ordinal))),
    )


def _check_inputs(
    groups: Sequence[Group], candidates: Sequence[Candidate], theme_rank: Mapping[str, int]
) -> None:
    seated = {member for group in groups for member in group.member_ids}
    seen: set[uuid.UUID] = set()
    for group in groups:
        if group.theme not in theme_rank:
            raise InvalidInput(
                "groups", f"group {group.id} has theme {group.theme!r} not in themes"
            )
    for candidate in candidates:
        if candidate.volunteer_id in seated:
            raise InvalidInput(
                "candidates", f"volunteer {candidate.volunteer_id} already has a seat"
            )
        if candidate.volunteer_id in seen:
            raise InvalidInput("candidates", f"volunteer {candidate.volunteer_id} listed twice")
        seen.add(candidate.volunteer_id)
        unknown = [t for t in candidate.themes if t not in theme_rank]
        if unknown:
            raise InvalidInput(
                "candidates", f"volunteer {candidate.volunteer_id} ranks unknown themes {unknown}"
            )


def _seat(state: _Seating, pending: list[Candidate], seats: list[Seat]) -> list[Candidate]:
    """Step 1 for each, in order: first-ranked theme with room, else the next.

    Returns who is still waiting (so a falsy result means everyone was seated)."""
    still: list[Candidate] = []
    for candidate in pending:
        for theme in candidate.themes:
            gid = state.room_in(theme)
            if gid is not None:
                state.members[gid].append(candidate.volunteer_id)
                seats.append(Seat(candidate.volunteer_id, gid))
                break
        else:
            still.append(candidate)
    return still


def _themes_to_form(state: _Seating, pending: list[Candidate]) -> list[str]:
    """Step 2: which themes form a new group now (empty: the pool keeps waiting)."""
    minimum = state.policy.min_size
    supporters = Counter(theme for c in pending for theme in c.themes)
    feasible = {theme for theme, count in supporters.items() if count >= minimum}
    if not feasible:
        return []
    pointers: Counter[str] = Counter()
    for candidate in pending:
        best = next((theme for theme in candidate.themes if theme in feasible), None)
        if best is not None:
            pointers[best] += 1
    ready = sorted(
        (theme for theme in feasible if pointers[theme] >= minimum),
        key=lambda theme: state.theme_rank[theme],
    )
    if ready:
        return ready
    return [
        min(
            feasible,
            key=lambda theme: (-pointers[theme], -supporters[theme], state.theme_rank[theme]),
        )
    ]
