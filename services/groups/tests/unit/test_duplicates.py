"""Possible duplicates, members' decisions, support counts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from groups.domain.duplicates import (
    MAX_LINKS_PER_ARRIVAL,
    DuplicateLink,
    LinkState,
    TextItem,
    decide,
    find_possible_duplicates,
    possible_duplicates_of,
    support_counts,
)
from groups.domain.errors import InvalidInput, InvalidTransition

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def item(n: int, title: str, body: str, day: int | None = None) -> TextItem:
    return TextItem(uuid.UUID(int=n), title, body, T0 + timedelta(days=n if day is None else day))


ITEMS = [
    item(1, "Kanalizacja w Gassach", "W Gassach nie ma kanalizacji, prosimy o budowę sieci."),
    item(2, "Brak kanalizacji w Gassach", "Prosimy o budowę kanalizacji w Gassach, sieci brak."),
    item(3, "Żłobek w Słomczynie", "Brakuje żłobka dla małych dzieci w Słomczynie."),
    item(4, "Smog", "Zimą dym z kopciuchów nad Konstancinem."),
]


def test_similar_lemmatised_texts_are_flagged() -> None:
    links = find_possible_duplicates(ITEMS)
    assert [(link.original.int, link.duplicate.int) for link in links] == [(1, 2)]
    assert links[0].state is LinkState.POSSIBLE and 0.5 <= links[0].similarity <= 1


def test_threshold_is_configurable_and_checked() -> None:
    assert find_possible_duplicates(ITEMS, threshold=0.99) == ()
    assert len(find_possible_duplicates(ITEMS, threshold=0.01)) >= 1
    with pytest.raises(InvalidInput):
        find_possible_duplicates(ITEMS, threshold=0)


def test_deterministic_and_independent_of_order_and_of_other_submissions() -> None:
    links = find_possible_duplicates(ITEMS)
    assert find_possible_duplicates(list(reversed(ITEMS))) == links
    more = [*ITEMS, item(5, "Chodnik", "Chodnik przy szkole w Jeziornie.")]
    assert find_possible_duplicates(more)[0] == links[0]  # scores do not depend on the corpus


def test_the_earlier_submission_is_the_original() -> None:
    late_first = [item(1, "A", ITEMS[0].body, day=9), item(2, "A", ITEMS[0].body, day=1)]
    (link,) = find_possible_duplicates(late_first)
    assert (link.original.int, link.duplicate.int) == (2, 1)


def test_links_of_one_arriving_submission() -> None:
    links = possible_duplicates_of(ITEMS[1], [ITEMS[0], ITEMS[2], ITEMS[3]])
    assert [(link.original.int, link.duplicate.int) for link in links] == [(1, 2)]
    assert possible_duplicates_of(ITEMS[3], ITEMS[:3]) == ()


def test_one_arrival_agrees_with_the_whole_matrix() -> None:
    for index, new in enumerate(ITEMS):
        others = [*ITEMS[:index], *ITEMS[index + 1 :]]
        expected = tuple(
            link
            for link in find_possible_duplicates(ITEMS, threshold=0.1)
            if new.submission_id in (link.original, link.duplicate)
        )
        assert possible_duplicates_of(new, others, threshold=0.1, limit=len(ITEMS)) == expected


def test_a_template_campaign_links_each_arrival_to_a_few_texts_only() -> None:
    campaign = [item(n, "Szablon", ITEMS[0].body, day=n) for n in range(1, 40)]
    links = possible_duplicates_of(campaign[-1], campaign[:-1])
    assert len(links) == MAX_LINKS_PER_ARRIVAL
    assert all(link.duplicate == campaign[-1].submission_id for link in links)


def test_a_member_decides_once() -> None:
    (link,) = find_possible_duplicates(ITEMS)
    member = uuid.UUID(int=77)
    confirmed = decide(link, confirmed=True, member_id=member, now=T0)
    assert confirmed.state is LinkState.CONFIRMED and confirmed.decided_by == member
    dismissed = decide(link, confirmed=False, member_id=member, now=T0)
    assert dismissed.state is LinkState.DISMISSED
    with pytest.raises(InvalidTransition):
        decide(confirmed, confirmed=False, member_id=member, now=T0)


def test_confirmed_duplicates_count_as_support_and_delete_nothing() -> None:
    ids = [uuid.UUID(int=n) for n in range(1, 6)]
    received = [TextItem(i, "t", "b", T0 + timedelta(days=i.int)) for i in ids]
    links = [
        DuplicateLink(ids[1], ids[2], 0.8, LinkState.CONFIRMED),  # 3 repeats 2
        DuplicateLink(ids[0], ids[1], 0.7, LinkState.CONFIRMED),  # 2 repeats 1
        DuplicateLink(ids[3], ids[4], 0.9, LinkState.DISMISSED),  # not counted
        DuplicateLink(ids[0], ids[3], 0.6, LinkState.POSSIBLE),  # not decided
    ]
    assert support_counts(links, received) == {ids[0]: 2}
    assert len(received) == 5  # nothing removed
    with pytest.raises(InvalidInput):
        support_counts(links, received[:1])
