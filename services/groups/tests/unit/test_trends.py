"""Key-trends report: threshold, determinism, phrases, sub-topics, significance, wording."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from groups.domain.trends import (
    Dimension,
    Direction,
    SubTopic,
    TrendReport,
    TrendSubmission,
    compute_trends,
    decimal_pl,
    plural_pl,
)
from shared.contracts.intake import SubmitterKind

NOW = datetime(2027, 1, 5, 12, 0, tzinfo=UTC)
K = SubmitterKind

SEWER = [
    "Brak kanalizacji w {loc}. Szamba są drogie, prosimy o sieć kanalizacyjną i przyłącza.",
    "Kanalizacja w {loc} to najpilniejsza potrzeba, ścieki wylewają się z szamb.",
    "Prosimy o budowę kanalizacji i przyłączy do domów w {loc}.",
]
BUS = [
    "Autobus do Warszawy jeździ za rzadko, potrzebne częstsze kursy wieczorem.",
    "Prosimy o nowy rozkład jazdy autobusu i kursy do metra.",
    "Autobus nocny do Warszawy i więcej kursów w weekend.",
]
OTHERS = [
    "Żłobek i przedszkole dla dzieci w gminie.",
    "Smog zimą, dym z kopciuchów w gminie.",
    "Ulgi podatkowe dla przedsiębiorców w gminie.",
    "Klub seniora i zajęcia dla seniorów.",
    "Ochrona lasów i drzew przed wycinką.",
    "Turystyka uzdrowiskowa i promocja gminy.",
] * 4


def sub(
    n: int,
    body: str,
    kind: SubmitterKind = K.RESIDENT,
    locality: str | None = "Jeziorna",
    days_ago: float = 3,
    score: float | None = None,
) -> TrendSubmission:
    return TrendSubmission(
        id=uuid.UUID(int=n),
        title=body.split(",")[0].split(".")[0],
        body=body,
        submitter_kind=kind,
        locality=locality,
        received_at=NOW - timedelta(days=days_ago),
        mean_assessment=score,
    )


def corpus() -> list[TrendSubmission]:
    """12 village councils and 3 residents on sewers, 15 residents and 4 companies on buses."""
    items: list[TrendSubmission] = []
    places = ["Gassy", "Łęg", "Cieciszew", "Habdzin"]
    for i in range(12):
        loc = places[i % 4]
        items.append(sub(i + 1, SEWER[i % 3].format(loc=loc), K.VILLAGE_COUNCIL, loc, i * 3, 6.0))
    for i in range(3):
        items.append(sub(100 + i, SEWER[i].format(loc="Bielawie"), K.RESIDENT, "Bielawa", 2))
    for i in range(15):
        items.append(sub(200 + i, BUS[i % 3], K.RESIDENT, "Skolimów", i * 2, 2.0))
    for i in range(4):
        items.append(sub(300 + i, BUS[i % 3], K.COMPANY, "Chylice", 1, None))
    return items


def report(items: list[TrendSubmission] | None = None, others: list[str] | None = None):
    return compute_trends(
        "spatial",
        corpus() if items is None else items,
        OTHERS if others is None else others,
        now=NOW,
    )


# --- threshold ------------------------------------------------------------------------------


def test_below_ten_submissions_nothing_is_computed() -> None:
    result = report(corpus()[:9])
    assert not result.enough
    assert (result.submissions, result.minimum) == (9, 10)
    assert result.key_phrases == () and result.subtopics == () and result.momentum is None
    assert result.sentences_pl == ("Za mało zgłoszeń, by wskazać trendy: 9 z wymaganych 10.",)
    assert result.sentences_en == ("Not enough submissions to show trends: 9 of the 10 required.",)


def test_ten_submissions_are_enough() -> None:
    result = report(corpus()[:10])
    assert result.enough and result.submissions == 10 and result.subtopics


# --- determinism ------------------------------------------------------------------------------


def test_same_input_in_any_order_gives_an_identical_report() -> None:
    first = report()
    assert report() == first
    rng = random.Random(3)
    items, others = corpus(), list(OTHERS)
    rng.shuffle(items)
    rng.shuffle(others)
    assert report(items, others) == first


# --- key phrases ---------------------------------------------------------------------------


def test_key_phrases_are_ranked_against_the_other_themes() -> None:
    result = report()
    keys = [p.key for p in result.key_phrases]
    assert keys[0] in {"kanalizacja", "autobus", "kurs", "warszawa"}
    assert "kanalizacja" in keys and "autobus" in keys
    assert "gmina" not in keys  # as common in the other themes: not distinctive
    sewer = next(p for p in result.key_phrases if p.key == "kanalizacja")
    assert sewer.phrase == "kanalizacja" and sewer.documents == 15
    assert sewer.share == round(15 / 34, 4)


def test_without_contrast_phrases_rank_by_frequency() -> None:
    result = report(others=[])
    documents = [p.documents for p in result.key_phrases]
    assert documents == sorted(documents, reverse=True)


# --- sub-topics, over-representation ----------------------------------------------------------


SEWER_IDS = {uuid.UUID(int=n) for n in [*range(1, 13), 100, 101, 102]}


def sewer_topic(result: TrendReport) -> SubTopic:
    return next(t for t in result.subtopics if "kanalizacja" in t.label)


def test_sub_topics_separate_the_two_subjects() -> None:
    result = report()
    members = {t.label: set(t.representative_ids) for t in result.subtopics}
    assert len(members) >= 2
    sewer = sewer_topic(result)
    assert sewer.count == 15 and sewer.share == round(15 / 34, 4)
    assert sewer.localities == 5 and sewer.submitter_kinds == 2
    assert set(sewer.representative_ids) <= SEWER_IDS and len(sewer.representative_ids) == 3
    for topic in result.subtopics:
        if topic is not sewer:
            assert not set(topic.representative_ids) & SEWER_IDS
    assert sewer.mean_assessment == 6.0 and sewer.assessed == 12
    assert result.mean_assessment == round((12 * 6.0 + 15 * 2.0) / 27, 4)
    assert sum(t.count for t in result.subtopics) + result.unassigned == result.submissions
    counts = [t.count for t in result.subtopics]
    assert counts == sorted(counts, reverse=True)


def test_over_represented_kinds_are_tested_and_named() -> None:
    result = report()
    sewer = sewer_topic(result)
    (found,) = [o for o in sewer.over_represented if o.dimension is Dimension.SUBMITTER_KIND]
    assert found.value == "village_council" and found.count == 12 and found.group_size == 12
    assert found.ratio == round((12 / 12) / (15 / 34), 3)
    assert found.q_value <= 0.05
    ratio = decimal_pl(found.ratio)
    assert (
        f"Rady sołeckie zgłaszają sprawy z podtematu „{sewer.label}” {ratio}× częściej niż "
        "średnio." in result.sentences_pl
    )
    assert any(s.startswith("Village councils raise") for s in result.sentences_en)


def test_small_groups_are_suppressed_not_tested() -> None:
    # Four companies all raise buses (100%), but four is too few to say anything.
    result = report()
    for topic in result.subtopics:
        assert all(o.value != "company" for o in topic.over_represented)
    assert sum(t.suppressed_tests for t in result.subtopics) >= 1
    assert not any("Firmy" in s for s in result.sentences_pl)


def test_no_significance_without_a_real_difference() -> None:
    # Same kinds in both sub-topics in the same proportion: nothing is over-represented.
    items = [
        sub(i, (SEWER if i % 2 else BUS)[i % 3].format(loc="Gassach"), K.RESIDENT, "Gassy")
        for i in range(40)
    ]
    result = report(items)
    assert all(t.over_represented == () for t in result.subtopics)


# --- momentum ------------------------------------------------------------------------------


def test_momentum_compares_the_last_14_days_with_before() -> None:
    earlier = [sub(i, BUS[i % 3], days_ago=15 + i % 14) for i in range(14)]
    recent = [sub(100 + i, BUS[i % 3], days_ago=i % 14) for i in range(28)]
    result = report([*earlier, *recent])
    momentum = result.momentum
    assert momentum is not None
    assert (momentum.recent, momentum.earlier) == (28, 14)
    assert momentum.recent_per_day == 2.0
    # Observed from the first submission (28 days ago) to the cut (14 days ago): 14 days.
    assert momentum.earlier_per_day == 1.0
    assert momentum.direction is Direction.RISING and momentum.ratio == 2.0
    assert (
        "Zgłoszeń przybywa szybciej niż wcześniej: w ostatnich 14 dniach 2,0 zgłoszenia "
        "dziennie wobec 1,0 wcześniej." in result.sentences_pl
    )


@pytest.mark.parametrize(
    ("recent", "direction"),
    [(14, Direction.STEADY), (5, Direction.FALLING), (18, Direction.RISING)],
)
def test_momentum_directions(recent: int, direction: Direction) -> None:
    earlier = [sub(i, BUS[i % 3], days_ago=15 + i % 14) for i in range(14)]
    fresh = [sub(100 + i, BUS[i % 3], days_ago=1) for i in range(recent)]
    momentum = report([*earlier, *fresh]).momentum
    assert momentum is not None and momentum.direction is direction


def test_all_recent_is_new() -> None:
    momentum = report([sub(i, BUS[i % 3], days_ago=1) for i in range(12)]).momentum
    assert momentum is not None and momentum.direction is Direction.NEW
    assert momentum.earlier_per_day is None and momentum.ratio is None


# --- wording, public data -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "form"),
    [
        (1, "a"),
        (2, "b"),
        (4, "b"),
        (5, "c"),
        (12, "c"),
        (14, "c"),
        (22, "b"),
        (25, "c"),
        (112, "c"),
    ],
)
def test_polish_plural(n: int, form: str) -> None:
    assert plural_pl(n, "a", "b", "c") == form


def test_polish_decimal_comma() -> None:
    assert decimal_pl(2.4) == "2,4" and decimal_pl(2.449, 2) == "2,45"


def test_overview_sentence() -> None:
    result = report()
    assert result.sentences_pl[0] == (
        "Obszar przestrzenny: 34 zgłoszenia z 7 miejscowości, od 3 typów zgłaszających."
    )
    assert result.sentences_en[0] == (
        "Spatial theme: 34 submissions from 7 localities, by 3 kinds of submitter."
    )


def test_contact_details_in_texts_never_surface() -> None:
    items = [
        replace(s, body=s.body + " Kontakt: jan.kowalski@example.com, tel. 601 234 567.")
        for s in corpus()
    ]
    result = report(items)
    public = " ".join([*result.sentences_pl, *result.sentences_en])
    public += " ".join(p.phrase for p in result.key_phrases)
    for fragment in ("kowalski", "example", "601", "234 567"):
        assert fragment not in public.lower()


def test_now_needs_a_time_zone() -> None:
    from groups.domain.errors import InvalidInput

    with pytest.raises(InvalidInput):
        compute_trends("spatial", corpus(), OTHERS, now=NOW.replace(tzinfo=None))
