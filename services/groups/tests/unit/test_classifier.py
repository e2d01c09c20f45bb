"""The theme classifier: held-apart evaluation, consultation themes."""

from __future__ import annotations

from collections import Counter

from groups.domain.classifier import (
    classify,
    classify_within,
    evaluate,
    labelled_submissions,
)

THEMES = ("social", "environmental", "economic", "spatial")


def test_labelled_set_is_large_balanced_and_well_formed() -> None:
    rows = labelled_submissions()
    assert len(rows) >= 120
    assert len({r.id for r in rows}) == len(rows)
    counts = Counter(r.theme for r in rows)
    assert set(counts) == set(THEMES)
    assert max(counts.values()) - min(counts.values()) <= len(rows) // 20
    assert all(r.title.strip() and r.body.strip() for r in rows)


def test_evaluation_runs_on_the_held_apart_part() -> None:
    result = evaluate()
    print(
        f"\nclassifier accuracy on {len(result.test_ids)} held-apart submissions "
        f"(trained on {len(result.train_ids)}): {result.accuracy:.3f}"
    )
    for figures in result.per_theme:
        print(
            f"  {figures.theme:<14} precision {figures.precision:.2f} recall "
            f"{figures.recall:.2f} f1 {figures.f1:.2f} (n={figures.support})"
        )
    assert not set(result.train_ids) & set(result.test_ids)
    assert len(result.train_ids) + len(result.test_ids) == len(labelled_submissions())
    assert len(result.test_ids) == round(0.25 * len(labelled_submissions()))
    assert sum(f.support for f in result.per_theme) == len(result.test_ids)
    assert result.accuracy > 0.25  # better than chance over four themes
    assert evaluate().test_ids == result.test_ids  # the split is fixed


def test_classify_answers_a_known_theme_with_a_probability() -> None:
    result = classify("Autobus do Warszawy", "Proszę o częstsze kursy autobusu wieczorem.")
    assert result.theme in THEMES
    assert 0.0 < result.confidence <= 1.0
    assert classify("Autobus do Warszawy", "Proszę o częstsze kursy autobusu wieczorem.") == result


def test_classify_within_a_subset_of_themes() -> None:
    title, body = "Smog", "Zimą dym z kopciuchów, trzeba wymienić piece."
    result = classify_within(title, body, ["social", "economic"])
    assert result is not None and result.theme in ("social", "economic")
    assert classify_within(title, body, ["environmental"]) == classify_within(
        title, body, ["environmental", "kultura"]
    )
    only = classify_within(title, body, ["environmental"])
    assert only is not None and only.confidence == 1.0


def test_no_known_theme_means_no_answer() -> None:
    assert classify_within("Smog", "Dym z pieców", ["kultura", "sport"]) is None
