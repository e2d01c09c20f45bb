"""The placement rule: scenarios, incremental arrival, withdrawal (pure unit tests)."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable, Sequence

import pytest

from groups.domain.errors import InvalidInput
from groups.domain.formation import (
    Candidate,
    GroupPolicy,
    PlacementPlan,
    candidates_from,
    place,
)
from groups.domain.group import Group, remove_member

THEMES = ("social", "environmental", "economic", "spatial")
S, E, C, P = THEMES  # C for economic (commerce), P for spatial (planning)


def vid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def id_factory(start: int = 10_000) -> Callable[[], uuid.UUID]:
    counter = itertools.count(start)
    return lambda: uuid.UUID(int=next(counter))


def volunteers(*rankings: Sequence[str], first: int = 1) -> list[Candidate]:
    return [Candidate(vid(first + i), tuple(r)) for i, r in enumerate(rankings)]


def run(
    candidates: Sequence[Candidate],
    groups: Sequence[Group] = (),
    policy: GroupPolicy | None = None,
    ids: Callable[[], uuid.UUID] | None = None,
) -> PlacementPlan:
    return place(groups, candidates, themes=THEMES, new_group_id=ids or id_factory(), policy=policy)


def shape(plan: PlacementPlan) -> list[tuple[str, int, list[int]]]:
    """(theme, ordinal, member numbers) of every group: easy to compare by eye."""
    return [(g.theme, g.ordinal, [m.int for m in g.member_ids]) for g in plan.groups]


def waiting(plan: PlacementPlan) -> list[int]:
    return [v.int for v in plan.waitlisted]


# --- one shared first preference -------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "expected_sizes", "expected_waiting"),
    [
        (0, [], []),
        (2, [], [1, 2]),
        (3, [3], []),
        (12, [12], []),
        (13, [12], [13]),
        (30, [12, 12, 6], []),
        (100, [12] * 8 + [4], []),
    ],
)
def test_same_preference(
    count: int, expected_sizes: list[int], expected_waiting: list[int]
) -> None:
    plan = run(volunteers(*([S],) * count))
    assert [len(g.member_ids) for g in plan.groups] == expected_sizes
    assert waiting(plan) == expected_waiting
    assert [g.ordinal for g in plan.groups] == list(range(1, len(expected_sizes) + 1))
    # Queue order fills group 1 first, then the overflow forms group 2, and so on.
    placed = [m.int for g in plan.groups for m in g.member_ids]
    assert placed == list(range(1, sum(expected_sizes) + 1))


def test_names_follow_theme_and_ordinal() -> None:
    plan = run(volunteers(*([S],) * 30))
    assert [g.name_pl for g in plan.groups] == [
        "Grupa społeczna 1",
        "Grupa społeczna 2",
        "Grupa społeczna 3",
    ]
    assert plan.groups[1].name_en == "Social group 2"


def test_ids_come_from_the_factory_in_formation_order() -> None:
    plan = run(volunteers(*([S],) * 30))
    assert [g.id.int for g in plan.formed] == [10_000, 10_001, 10_002]


def test_custom_policy_sizes() -> None:
    policy = GroupPolicy(min_size=5, max_size=6)
    plan = run(volunteers(*([S],) * 10), policy=policy)
    assert [len(g.member_ids) for g in plan.groups] == [6]
    assert waiting(plan) == [7, 8, 9, 10]  # four: one short of a second group
    plan = run(volunteers(*([S],) * 11), policy=policy)
    assert [len(g.member_ids) for g in plan.groups] == [6, 5]


def test_overflow_forms_exactly_at_minimum() -> None:
    plan = run(volunteers(*([S],) * 14))
    assert waiting(plan) == [13, 14]
    plan = run(volunteers(*([S],) * 15))
    assert [len(g.member_ids) for g in plan.groups] == [12, 3]
    assert waiting(plan) == []


def test_policy_rejects_impossible_sizes() -> None:
    with pytest.raises(InvalidInput) as error:
        GroupPolicy(min_size=5, max_size=4)
    assert error.value.field == "max_size"
    with pytest.raises(InvalidInput):
        GroupPolicy(min_size=0)


# --- mixed ranked preferences ------------------------------------------------------------


def test_two_volunteers_of_different_themes_wait() -> None:
    plan = run(volunteers([S, E], [E, S]))
    assert plan.groups == ()
    assert waiting(plan) == [1, 2]


def test_three_with_a_shared_theme_at_any_rank_form_it() -> None:
    # Social is ranked by all three (second by volunteer 2): it can reach the minimum.
    plan = run(volunteers([S, E], [E, S], [S]))
    assert shape(plan) == [(S, 1, [1, 2, 3])]


def test_three_with_no_common_theme_wait() -> None:
    plan = run(volunteers([S, E], [C, P], [E, C]))
    assert plan.groups == ()
    assert waiting(plan) == [1, 2, 3]


def test_twelve_mixed_arrive_in_queue_order() -> None:
    # Volunteer i ranks themes[i % 4] first and themes[(i + 1) % 4] second.
    rankings = [[THEMES[i % 4], THEMES[(i + 1) % 4]] for i in range(12)]
    plan = run(volunteers(*rankings))
    # After 5 arrivals three rank social → social 1 forms and takes 1, 4, 5 (4 ranks it
    # second); 2, 3, 6 then form economic 1; later arrivals take their first theme with room.
    assert shape(plan) == [(S, 1, [1, 4, 5, 8, 9, 12]), (C, 1, [2, 3, 6, 7, 10, 11])]
    assert waiting(plan) == []


def test_first_preference_with_room_else_the_next() -> None:
    existing = Group(
        vid(900),
        S,
        1,
        "Grupa społeczna 1",
        "Social group 1",
        tuple(vid(i) for i in range(100, 112)),
    )
    env = Group(vid(901), E, 1, "Grupa środowiskowa 1", "Environmental group 1", (vid(200),))
    plan = run(volunteers([S, E], [E, S], [C]), groups=[existing, env])
    # Social is full, so 1 goes to its second choice; 2 gets their first; 3 has no group.
    assert plan.seats[0].group_id == env.id and plan.seats[0].volunteer_id == vid(1)
    assert plan.seats[1].group_id == env.id and plan.seats[1].volunteer_id == vid(2)
    assert waiting(plan) == [3]


def test_among_a_themes_groups_the_fewest_members_then_the_lowest_ordinal() -> None:
    def social(n: int, ordinal: int, size: int) -> Group:
        members = tuple(vid(1000 * ordinal + i) for i in range(size))
        return Group(vid(n), S, ordinal, f"Grupa społeczna {ordinal}", "", members)

    plan = run(volunteers([S]), groups=[social(901, 1, 11), social(902, 2, 5)])
    assert plan.seats[0].group_id == vid(902)
    plan = run(volunteers([S]), groups=[social(902, 2, 5), social(901, 1, 5)])
    assert plan.seats[0].group_id == vid(901)


def test_thirteen_mixed() -> None:
    # Nine want social first (economic second), four want spatial only.
    rankings = [[S, C]] * 9 + [[P]] * 4
    plan = run(volunteers(*rankings))
    assert shape(plan) == [(S, 1, list(range(1, 10))), (P, 1, [10, 11, 12, 13])]
    assert waiting(plan) == []


def test_thirty_mixed_overflow_forms_a_second_group_of_the_first_choice() -> None:
    # 1–20 rank social then environmental; 21–30 rank environmental then social.
    rankings = [[S, E]] * 20 + [[E, S]] * 10
    plan = run(volunteers(*rankings))
    # 13–15 wait after social 1 fills, then form social 2 (their first choice) rather than
    # falling back; 21–24 take the room left in social 2 before environmental can form.
    assert shape(plan) == [
        (S, 1, list(range(1, 13))),
        (S, 2, list(range(13, 25))),
        (E, 1, list(range(25, 31))),
    ]
    assert waiting(plan) == []


def test_hundred_mixed_in_blocks() -> None:
    rankings = [[S, E]] * 40 + [[E]] * 30 + [[C, P]] * 20 + [[P]] * 10
    plan = run(volunteers(*rankings))
    assert shape(plan) == [
        (S, 1, list(range(1, 13))),
        (S, 2, list(range(13, 25))),
        (S, 3, list(range(25, 37))),
        (S, 4, list(range(37, 41))),
        (E, 1, list(range(41, 53))),
        (E, 2, list(range(53, 65))),
        (E, 3, list(range(65, 71))),
        (C, 1, list(range(71, 83))),
        (C, 2, list(range(83, 91))),
        (P, 1, list(range(91, 101))),
    ]
    assert waiting(plan) == []


def test_hundred_mixed_every_rule_holds() -> None:
    rng = random.Random(7)
    rankings = [rng.sample(THEMES, rng.randint(1, 3)) for _ in range(100)]
    plan = run(volunteers(*rankings))
    seated = [m for g in plan.groups for m in g.member_ids]
    assert len(seated) == len(set(seated))  # at most one group each
    assert len(seated) + len(plan.waitlisted) == 100
    assert all(3 <= len(g.member_ids) <= 12 for g in plan.groups)
    ranking = {vid(i + 1): r for i, r in enumerate(rankings)}
    for group in plan.groups:
        for member in group.member_ids:
            assert group.theme in ranking[member]
    # Nobody waits while a theme they ranked has room.
    room = {g.theme for g in plan.groups if len(g.member_ids) < 12}
    assert all(not room.intersection(ranking[w]) for w in plan.waitlisted)
    # Nor while enough of them ranked one theme to form a group of it.
    for theme in THEMES:
        assert sum(1 for w in plan.waitlisted if theme in ranking[w]) < 3


# --- arrival one by one, withdrawal ------------------------------------------------------


def one_by_one(candidates: Sequence[Candidate]) -> tuple[list[Group], list[uuid.UUID]]:
    """Run the rule after every arrival, applying each plan; check nobody ever moves."""
    ids = id_factory()
    groups: list[Group] = []
    waitlist: list[Candidate] = []
    for candidate in candidates:
        plan = place(groups, [*waitlist, candidate], themes=THEMES, new_group_id=ids)
        before = {g.id: g.member_ids for g in groups}
        for group in plan.groups:
            if group.id in before:  # placed members stay, in their order
                assert group.member_ids[: len(before[group.id])] == before[group.id]
        assert set(before) <= {g.id for g in plan.groups}
        groups = list(plan.groups)
        waiting_ids = set(plan.waitlisted)
        waitlist = [c for c in [*waitlist, candidate] if c.volunteer_id in waiting_ids]
    return groups, [c.volunteer_id for c in waitlist]


@pytest.mark.parametrize("seed", range(6))
def test_one_by_one_gives_the_same_result_as_all_at_once(seed: int) -> None:
    rng = random.Random(seed)
    count = rng.choice([13, 30, 100])
    rankings = [rng.sample(THEMES, rng.randint(1, 4)) for _ in range(count)]
    candidates = volunteers(*rankings)
    batch = run(candidates)
    groups, waitlist = one_by_one(candidates)
    assert [(g.id, g.theme, g.ordinal, g.member_ids) for g in groups] == [
        (g.id, g.theme, g.ordinal, g.member_ids) for g in batch.groups
    ]
    assert waitlist == list(batch.waitlisted)


def test_withdrawal_frees_a_place_for_the_first_on_the_waiting_list() -> None:
    first = run(volunteers(*([S],) * 14))
    assert waiting(first) == [13, 14]
    group = remove_member(first.groups[0], vid(5))
    waitlist = [Candidate(v, (S,)) for v in first.waitlisted]
    second = run(waitlist, groups=[group])
    assert [(s.volunteer_id.int, s.group_id) for s in second.seats] == [(13, group.id)]
    assert waiting(second) == [14]
    assert second.formed == ()
    assert second.groups[0].member_ids[:11] == group.member_ids  # nobody moved


def test_a_waitlisted_volunteer_takes_a_place_in_their_second_choice() -> None:
    env = Group(vid(901), E, 1, "Grupa środowiskowa 1", "Environmental group 1", (vid(200),))
    plan = run([Candidate(vid(1), (C, E))], groups=[env])
    assert [(s.volunteer_id, s.group_id) for s in plan.seats] == [(vid(1), env.id)]


def test_inputs_are_checked() -> None:
    g = Group(vid(900), S, 1, "Grupa społeczna 1", "Social group 1", (vid(1),))
    with pytest.raises(InvalidInput, match="already has a seat"):
        run(volunteers([S]), groups=[g])
    with pytest.raises(InvalidInput, match="listed twice"):
        run([Candidate(vid(2), (S,)), Candidate(vid(2), (S,))])
    with pytest.raises(InvalidInput, match="unknown themes"):
        run([Candidate(vid(2), ("culture",))])


def test_candidates_come_in_queue_order() -> None:
    from datetime import UTC, datetime, timedelta

    from groups.domain.volunteers import SignUpChannel, Volunteer, VolunteerStatus
    from shared.contracts.intake import Language

    t0 = datetime(2026, 12, 1, tzinfo=UTC)

    def volunteer(n: int, status: VolunteerStatus, minutes: int | None) -> Volunteer:
        return Volunteer(
            id=vid(n),
            name=f"V{n}",
            email=f"v{n}@example.com",
            phone=None,
            locality=None,
            themes=(S,),
            expertise=None,
            locale=Language.PL,
            channel=SignUpChannel.PHONE,
            status=status,
            signed_up_at=t0,
            confirmed_at=None if minutes is None else t0 + timedelta(minutes=minutes),
        )

    pool = [
        volunteer(1, VolunteerStatus.CONFIRMED, 30),
        volunteer(2, VolunteerStatus.WAITLISTED, 10),
        volunteer(3, VolunteerStatus.AWAITING_CONFIRMATION, None),
        volunteer(4, VolunteerStatus.PLACED, 5),
        volunteer(5, VolunteerStatus.WITHDRAWN, 1),
        volunteer(6, VolunteerStatus.CONFIRMED, 10),
    ]
    assert [c.volunteer_id.int for c in candidates_from(pool)] == [2, 6, 1]
