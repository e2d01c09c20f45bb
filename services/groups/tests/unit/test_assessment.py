"""Review state machine, assessments, combined score, queue filters."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from groups.domain.assessment import (
    FINAL_STATES,
    Assessment,
    CostBand,
    Horizon,
    QueueFilter,
    QueueFlag,
    Review,
    ReviewState,
    combine,
    filter_queue,
    move,
    queue_item,
    record_assessment,
    state_after_assessment,
)
from groups.domain.errors import InvalidInput, InvalidTransition, NotPermitted
from groups.domain.group import Role

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
SUB = uuid.UUID(int=1)


def vid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def review(state: ReviewState) -> Review:
    return Review(SUB, state)


def assessment(
    member: int, need: int = 1, reach: int = 1, fit: int = 1, comp: int = 1, **kw: object
) -> Assessment:
    fields: dict[str, object] = {
        "submission_id": SUB,
        "member_id": vid(member),
        "need": need,
        "reach": reach,
        "strategy_fit": fit,
        "competence": comp,
        "cost_band": CostBand.MEDIUM,
        "horizon": Horizon.SHORT,
    }
    fields.update(kw)
    return Assessment(**fields)  # type: ignore[arg-type]


# --- state machine -----------------------------------------------------------------------


def test_the_working_path_is_open_to_members() -> None:
    r = move(review(ReviewState.NEW), ReviewState.IN_REVIEW, actor=Role.MEMBER, now=NOW)
    r = move(r, ReviewState.NEEDS_CLARIFICATION, actor=Role.MEMBER, now=NOW)
    r = move(r, ReviewState.IN_REVIEW, actor=Role.MEMBER, now=NOW)
    r = move(r, ReviewState.ASSESSED, actor=Role.MEMBER, now=NOW)
    assert r.state is ReviewState.ASSESSED and r.changed_at == NOW


@pytest.mark.parametrize("target", sorted(FINAL_STATES))
def test_only_lead_or_coordinator_moves_to_a_final_state(target: ReviewState) -> None:
    extra = {"reason": "Poza kompetencjami gminy.", "merged_into": vid(2)}
    with pytest.raises(NotPermitted) as error:
        move(review(ReviewState.ASSESSED), target, actor=Role.MEMBER, now=NOW, **extra)  # type: ignore[arg-type]
    assert "lead or a coordinator" in error.value.reason
    for actor in (Role.LEAD, Role.COORDINATOR):
        done = move(review(ReviewState.ASSESSED), target, actor=actor, now=NOW, **extra)  # type: ignore[arg-type]
        assert done.state is target


def test_no_role_in_the_group_may_do_nothing() -> None:
    with pytest.raises(NotPermitted):
        move(review(ReviewState.NEW), ReviewState.IN_REVIEW, actor=None, now=NOW)


@pytest.mark.parametrize(
    ("source", "target", "why"),
    [
        (ReviewState.NEW, ReviewState.RECOMMENDED, "must be assessed first"),
        (ReviewState.IN_REVIEW, ReviewState.REJECTED, "must be assessed first"),
        (ReviewState.NEW, ReviewState.ASSESSED, "must be in review first"),
        (ReviewState.NEW, ReviewState.NEW, "already new"),
        (ReviewState.REJECTED, ReviewState.RECOMMENDED, "final"),
    ],
)
def test_invalid_transitions_say_why(source: ReviewState, target: ReviewState, why: str) -> None:
    with pytest.raises(InvalidTransition) as error:
        move(review(source), target, actor=Role.COORDINATOR, now=NOW, reason="x")
    assert error.value.field == "state"
    assert why in error.value.reason


@pytest.mark.parametrize("target", [ReviewState.OUT_OF_SCOPE, ReviewState.REJECTED])
def test_out_of_scope_and_rejected_need_a_public_reason(target: ReviewState) -> None:
    for reason in (None, "   "):
        with pytest.raises(InvalidInput) as error:
            move(review(ReviewState.ASSESSED), target, actor=Role.LEAD, now=NOW, reason=reason)
        assert error.value.field == "reason"
    done = move(
        review(ReviewState.ASSESSED), target, actor=Role.LEAD, now=NOW, reason=" Droga powiatowa. "
    )
    assert done.public_reason == "Droga powiatowa."


def test_out_of_scope_and_merged_are_possible_before_assessment() -> None:
    r = move(
        review(ReviewState.NEW),
        ReviewState.OUT_OF_SCOPE,
        actor=Role.LEAD,
        now=NOW,
        reason="Sprawa sądowa.",
    )
    assert r.state is ReviewState.OUT_OF_SCOPE
    m = move(
        review(ReviewState.IN_REVIEW),
        ReviewState.MERGED,
        actor=Role.LEAD,
        now=NOW,
        merged_into=vid(7),
    )
    assert m.merged_into == vid(7)


def test_merged_names_another_submission() -> None:
    with pytest.raises(InvalidInput) as error:
        move(review(ReviewState.ASSESSED), ReviewState.MERGED, actor=Role.LEAD, now=NOW)
    assert error.value.field == "merged_into"
    with pytest.raises(InvalidInput):
        move(
            review(ReviewState.ASSESSED),
            ReviewState.MERGED,
            actor=Role.LEAD,
            now=NOW,
            merged_into=SUB,
        )


def test_only_a_coordinator_reopens_a_final_state() -> None:
    done = move(
        review(ReviewState.ASSESSED), ReviewState.REJECTED, actor=Role.LEAD, now=NOW, reason="Nie."
    )
    with pytest.raises(NotPermitted):
        move(done, ReviewState.ASSESSED, actor=Role.LEAD, now=NOW)
    reopened = move(done, ReviewState.ASSESSED, actor=Role.COORDINATOR, now=NOW)
    assert reopened.state is ReviewState.ASSESSED and reopened.public_reason is None


def test_first_assessment_starts_the_review() -> None:
    assert state_after_assessment(ReviewState.NEW) is ReviewState.IN_REVIEW
    assert state_after_assessment(ReviewState.ASSESSED) is ReviewState.ASSESSED


# --- assessments ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 3, True, 1.5])
def test_scores_are_integers_0_to_2(bad: object) -> None:
    with pytest.raises(InvalidInput) as error:
        assessment(1, need=bad)  # type: ignore[arg-type]
    assert error.value.field == "need"


def test_cost_band_and_horizon_are_checked() -> None:
    with pytest.raises(InvalidInput) as error:
        assessment(1, cost_band="cheap")
    assert error.value.field == "cost_band"


def test_tags_are_normalised() -> None:
    a = assessment(1, tags=(" Kanalizacja ", "kanalizacja", "", "Dzieci  i  młodzież"), note="  ")
    assert a.tags == ("kanalizacja", "dzieci i młodzież")
    assert a.note is None
    with pytest.raises(InvalidInput):
        assessment(1, tags=tuple(f"t{i}" for i in range(11)))


def test_one_assessment_per_member_a_second_replaces_the_first() -> None:
    first = record_assessment((), assessment(1, need=0), ReviewState.NEW)
    both = record_assessment(first, assessment(2), ReviewState.IN_REVIEW)
    replaced = record_assessment(both, assessment(1, need=2), ReviewState.IN_REVIEW)
    assert [(a.member_id.int, a.need) for a in replaced] == [(2, 1), (1, 2)]


def test_no_assessment_after_a_final_state() -> None:
    with pytest.raises(InvalidTransition):
        record_assessment((), assessment(1), ReviewState.RECOMMENDED)


def test_combined_score_is_the_median() -> None:
    score = combine(
        [assessment(1, 2, 1, 0, 1), assessment(2, 1, 1, 1, 1), assessment(3, 1, 2, 1, 2)]
    )
    assert score is not None
    assert (score.need, score.reach, score.strategy_fit, score.competence) == (1, 1, 1, 1)
    assert score.overall == 4.0  # totals 4, 4, 6
    assert score.disputed == () and not score.to_discuss
    assert combine([]) is None


def test_even_count_median_and_ordinal_bands() -> None:
    score = combine(
        [
            assessment(1, 2, 2, 2, 2, cost_band=CostBand.LOW, horizon=Horizon.LONG),
            assessment(2, 1, 1, 1, 1, cost_band=CostBand.HIGH, horizon=Horizon.MEDIUM),
        ]
    )
    assert score is not None
    assert score.need == 1.5 and score.overall == 6.0
    assert score.cost_band is CostBand.LOW and score.horizon is Horizon.MEDIUM


def test_a_spread_of_two_flags_to_discuss() -> None:
    score = combine([assessment(1, need=0), assessment(2, need=2), assessment(3, need=1)])
    assert score is not None and score.to_discuss and score.disputed == ("need",)
    calm = combine([assessment(1, need=0), assessment(2, need=1)])
    assert calm is not None and not calm.to_discuss


# --- queue ------------------------------------------------------------------------------


def test_queue_filters() -> None:
    me = vid(1)
    items = [
        queue_item(Review(vid(10), ReviewState.IN_REVIEW), [assessment(1, tags=("Szkoła",))]),
        queue_item(
            Review(vid(11), ReviewState.IN_REVIEW),
            [assessment(2, need=0), assessment(3, need=2)],
        ),
        queue_item(Review(vid(12), ReviewState.NEW), [], possible_duplicate=True),
    ]
    ids = lambda found: [i.submission_id.int for i in found]  # noqa: E731
    assert ids(filter_queue(items, QueueFilter(state=ReviewState.NEW), me=me)) == [12]
    assert ids(filter_queue(items, QueueFilter(assessed_by_me=True), me=me)) == [10]
    assert ids(filter_queue(items, QueueFilter(assessed_by_me=False), me=me)) == [11, 12]
    assert ids(filter_queue(items, QueueFilter(tag=" SZKOŁA"), me=me)) == [10]
    assert ids(filter_queue(items, QueueFilter(flag=QueueFlag.TO_DISCUSS), me=me)) == [11]
    assert ids(filter_queue(items, QueueFilter(flag=QueueFlag.POSSIBLE_DUPLICATE), me=me)) == [12]
    both = QueueFilter(state=ReviewState.IN_REVIEW, assessed_by_me=False)
    assert ids(filter_queue(items, both, me=me)) == [11]
