"""Routing submissions to groups and assessors to submissions."""

from __future__ import annotations

import uuid

import pytest

from groups.domain.errors import InvalidInput, NotPermitted
from groups.domain.group import Role
from groups.domain.routing import (
    Assignment,
    GroupLoad,
    Reassignment,
    assign_assessors,
    override_theme,
    pick_assessors,
    reassign_open_assignments,
    route_submission,
    route_waiting,
)


def vid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


GROUPS = [
    GroupLoad(vid(101), "social", 1, open_submissions=5),
    GroupLoad(vid(102), "social", 2, open_submissions=3),
    GroupLoad(vid(103), "social", 3, open_submissions=3),
    GroupLoad(vid(201), "spatial", 1, open_submissions=0),
]


def test_submission_goes_to_the_least_loaded_group_of_its_theme() -> None:
    assert route_submission("social", GROUPS) == vid(102)  # tie with 103: lower ordinal
    assert route_submission("social", reversed(GROUPS)) == vid(102)  # input order irrelevant
    assert route_submission("spatial", GROUPS) == vid(201)


def test_submission_waits_while_its_theme_has_no_group() -> None:
    assert route_submission("economic", GROUPS) is None
    assert route_submission(None, GROUPS) is None


def test_waiting_submissions_spread_over_the_themes_groups() -> None:
    waiting = [(vid(i), "social") for i in range(1, 6)] + [(vid(9), "economic")]
    routes = route_waiting(waiting, GROUPS)
    assert [(r.submission_id.int, r.group_id.int) for r in routes] == [
        (1, 102),
        (2, 103),
        (3, 102),
        (4, 103),
        (5, 101),
    ]


def test_two_assessors_least_loaded_first() -> None:
    loads = {vid(1): 4, vid(2): 1, vid(3): 1, vid(4): 0}
    assert pick_assessors(loads) == (vid(4), vid(2))
    assert pick_assessors(loads, exclude=[vid(4)]) == (vid(2), vid(3))


def test_fewer_than_two_members_give_as_many_as_exist() -> None:
    assert pick_assessors({vid(1): 3}) == (vid(1),)
    assert pick_assessors({}) == ()
    with pytest.raises(InvalidInput):
        pick_assessors({vid(1): 0}, count=-1)


def test_batch_assignment_balances_and_never_repeats_a_member() -> None:
    members = {vid(1): 0, vid(2): 0, vid(3): 0}
    assignments = assign_assessors([vid(10), vid(11), vid(12)], members)
    by_submission: dict[uuid.UUID, list[uuid.UUID]] = {}
    for a in assignments:
        by_submission.setdefault(a.submission_id, []).append(a.member_id)
    assert all(len(set(ms)) == len(ms) == 2 for ms in by_submission.values())
    per_member = [sum(1 for a in assignments if a.member_id == m) for m in members]
    assert per_member == [2, 2, 2]


def test_a_leavers_open_assignments_go_to_other_members() -> None:
    leaving = vid(1)
    open_assignments = [
        Assignment(vid(10), leaving),
        Assignment(vid(10), vid(2)),
        Assignment(vid(11), leaving),
        Assignment(vid(11), vid(3)),
        Assignment(vid(12), vid(2)),
    ]
    loads = {leaving: 2, vid(2): 2, vid(3): 1, vid(4): 5}
    result = reassign_open_assignments(leaving, open_assignments, loads)
    # 10 cannot go to 2 (already assesses it): 3 is least loaded; then 11 cannot go to 3.
    assert result == (
        Reassignment(vid(10), leaving, vid(3)),
        Reassignment(vid(11), leaving, vid(2)),
    )


def test_nobody_left_to_take_an_assignment() -> None:
    result = reassign_open_assignments(
        vid(1), [Assignment(vid(10), vid(1)), Assignment(vid(10), vid(2))], {vid(2): 0}
    )
    assert result == (Reassignment(vid(10), vid(1), None),)


def test_only_a_coordinator_overrides_the_theme() -> None:
    themes = ["social", "spatial"]
    assert override_theme("spatial", themes, actor=Role.COORDINATOR) == "spatial"
    with pytest.raises(NotPermitted):
        override_theme("spatial", themes, actor=Role.LEAD)
    with pytest.raises(InvalidInput) as error:
        override_theme("culture", themes, actor=Role.COORDINATOR)
    assert error.value.field == "theme"
