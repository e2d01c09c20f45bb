"""How long the groups service takes to recompute one theme's key trends.

Not part of `make bench` (that one needs the real broker). Run it alone::

    .venv/bin/python -m benchmarks.groups_trends            # 1,000 and 5,000 submissions
    .venv/bin/python -m benchmarks.groups_trends 500 2000

Synthetic submissions are made from the bundled labelled set: each takes the title of a
random labelled submission of its theme and two or three sentences from others of the same
theme, a random submitter kind, locality and day within 60 days (fixed seed). The contrast
corpus (the other themes) has as many texts as the theme. The Polish dictionary is loaded
before timing; each size is timed four times: a first run (words new to the lemma cache),
then three recomputations (what the service does on every refresh), reported by their median.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from groups.domain.classifier import LabelledSubmission, labelled_submissions
from groups.domain.text import analyse, submission_text
from groups.domain.trends import TrendSubmission, compute_trends
from shared.contracts.intake import SubmitterKind

THEME = "spatial"
NOW = datetime(2027, 1, 5, 12, 0, tzinfo=UTC)
LOCALITIES = (
    "Bielawa", "Borowina", "Cieciszew", "Ciszyca", "Dębówka", "Gassy", "Habdzin",
    "Kępa Oborska", "Łęg", "Obory", "Słomczyn", "Skolimów", "Konstancin", "Jeziorna", None,
)  # fmt: skip


def _sentences(examples: Sequence[LabelledSubmission]) -> list[str]:
    return [
        sentence.strip().rstrip(".") + "."
        for example in examples
        for sentence in example.body.split(". ")
        if sentence.strip()
    ]


def synthetic_texts(theme: str, count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(title, body) pairs recombined from the labelled submissions of `theme`."""
    examples = [e for e in labelled_submissions() if e.theme == theme]
    sentences = _sentences(examples)
    return [
        (rng.choice(examples).title, " ".join(rng.sample(sentences, rng.randint(2, 3))))
        for _ in range(count)
    ]


def synthetic_submissions(count: int, seed: int = 2040) -> list[TrendSubmission]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    kinds = list(SubmitterKind)
    return [
        TrendSubmission(
            id=uuid.UUID(int=rng.getrandbits(128)),
            title=title,
            body=body,
            submitter_kind=rng.choice(kinds),
            locality=rng.choice(LOCALITIES),
            received_at=NOW - timedelta(days=rng.uniform(0, 60)),
            mean_assessment=rng.choice((None, None, 3.0, 4.5, 6.0)),
        )
        for title, body in synthetic_texts(THEME, count, rng)
    ]


def contrast_texts(count: int, seed: int = 2041) -> list[str]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    others = sorted({e.theme for e in labelled_submissions()} - {THEME})
    per_theme = count // len(others) + 1
    return [
        submission_text(title, body)
        for theme in others
        for title, body in synthetic_texts(theme, per_theme, rng)
    ][:count]


def benchmark_trends(sizes: Sequence[int] = (1000, 5000)) -> dict[int, tuple[float, float]]:
    """Seconds per size: (first run, median recomputation); printed as it goes."""
    analyse("Rozgrzewka: słownik języka polskiego.")  # load the lemmatiser's data first
    figures: dict[int, tuple[float, float]] = {}
    for size in sizes:
        submissions = synthetic_submissions(size)
        others = contrast_texts(size)
        runs = []
        for _ in range(4):
            analyse.cache_clear()  # a recomputation re-analyses texts; only words stay cached
            started = time.perf_counter()
            report = compute_trends(THEME, submissions, others, now=NOW)
            runs.append(time.perf_counter() - started)
        figures[size] = (runs[0], statistics.median(runs[1:]))
        print(
            f"{size:>6} submissions (+{len(others)} contrast texts): first run {runs[0]:.2f} s, "
            f"recomputation {figures[size][1]:.2f} s, {len(report.subtopics)} sub-topics",
            flush=True,
        )
    return figures


def main(argv: Sequence[str]) -> None:
    sizes = tuple(int(arg) for arg in argv) or (1000, 5000)
    benchmark_trends(sizes)


if __name__ == "__main__":
    main(sys.argv[1:])
