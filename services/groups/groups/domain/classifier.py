"""Offline theme classifier for submissions sent without a theme.

Trained at first use from the bundled `data/labelled_submissions.jsonl` (208 Polish
submissions written for this project, 52 per default theme, from one line to a long letter)
and cached for the process;
nothing is downloaded. Features: TF-IDF of lemma unigrams and bigrams (`text.terms`) plus
TF-IDF of character 3–5-grams of the lemmatised text, which copes with words the small
training set never saw in that exact lemma ("kanalizacyjny" next to "kanalizacja"). The model
is a logistic regression (lbfgs, no random numbers): same data, same model, same answers.

Probabilities are the model's; a consultation with a subset of the themes, or custom themes,
is classified with `classify_within`, which only ever picks a theme the model knows *and* the
consultation has, and answers None when they share none — the model cannot name a theme it
was never taught.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.model_selection import train_test_split
from sklearn.pipeline import FeatureUnion, Pipeline

from groups.domain.text import content_lemmas, submission_text, terms

DATA_FILE = "labelled_submissions.jsonl"
TEST_SHARE = 0.25
SPLIT_SEED = 2040  # fixed: the held-apart part is the same in every run


@dataclass(frozen=True, slots=True)
class LabelledSubmission:
    id: str
    theme: str
    title: str
    body: str
    submitter_kind: str
    locality: str | None


@dataclass(frozen=True, slots=True)
class Classification:
    theme: str
    confidence: float  # the model's probability of `theme`, 0–1


@cache
def labelled_submissions() -> tuple[LabelledSubmission, ...]:
    """The bundled labelled set, in file order."""
    raw = resources.files("groups.domain.data").joinpath(DATA_FILE).read_text("utf-8")
    return tuple(
        LabelledSubmission(**json.loads(line)) for line in raw.splitlines() if line.strip()
    )


def _lemmatised(text: str) -> str:
    return " ".join(content_lemmas(text))


def _pipeline() -> Pipeline:
    features = FeatureUnion(
        [
            ("terms", TfidfVectorizer(analyzer=terms, sublinear_tf=True)),
            (
                "chars",
                TfidfVectorizer(
                    preprocessor=_lemmatised,
                    analyzer="char_wb",
                    ngram_range=(3, 5),
                    sublinear_tf=True,
                ),
            ),
        ]
    )
    return Pipeline([("features", features), ("model", LogisticRegression(C=10, max_iter=2000))])


class ThemeClassifier:
    """A trained classifier over the themes present in its training data."""

    def __init__(self, examples: Sequence[LabelledSubmission]) -> None:
        if len({e.theme for e in examples}) < 2:
            raise ValueError("training needs examples of at least two themes")
        self._pipeline = _pipeline()
        self._pipeline.fit(
            [submission_text(e.title, e.body) for e in examples], [e.theme for e in examples]
        )
        self.themes: tuple[str, ...] = tuple(str(t) for t in self._pipeline.classes_)

    def probabilities(self, title: str, body: str) -> dict[str, float]:
        """The model's probability of every theme it knows."""
        row: Any = self._pipeline.predict_proba([submission_text(title, body)])[0]
        return {theme: float(p) for theme, p in zip(self.themes, row, strict=True)}

    def classify(self, title: str, body: str) -> Classification:
        """The most probable theme (ties: the theme first in alphabetical order)."""
        probabilities = self.probabilities(title, body)
        theme = min(probabilities, key=lambda t: (-probabilities[t], t))
        return Classification(theme, probabilities[theme])

    def classify_within(
        self, title: str, body: str, themes: Sequence[str]
    ) -> Classification | None:
        """The most probable of the consultation's `themes` that the model knows.

        The confidence is renormalised over those themes (it answers "which of these?").
        None when the model knows none of them: a coordinator has to choose by hand.
        """
        known = [t for t in themes if t in self.themes]
        if not known:
            return None
        probabilities = self.probabilities(title, body)
        mass = sum(probabilities[t] for t in known)
        theme = min(known, key=lambda t: (-probabilities[t], t))
        return Classification(theme, probabilities[theme] / mass if mass > 0 else 1 / len(known))


@cache
def default_classifier() -> ThemeClassifier:
    """The classifier trained on the whole bundled set (trained once per process)."""
    return ThemeClassifier(labelled_submissions())


def classify(title: str, body: str) -> Classification:
    """Theme of a submission over the default themes (see the module docstring)."""
    return default_classifier().classify(title, body)


def classify_within(title: str, body: str, themes: Sequence[str]) -> Classification | None:
    """Theme of a submission over a consultation's themes, None if the model knows none."""
    return default_classifier().classify_within(title, body, themes)


@dataclass(frozen=True, slots=True)
class ThemeFigures:
    theme: str
    precision: float
    recall: float
    f1: float
    support: int  # held-apart submissions of this theme


@dataclass(frozen=True, slots=True)
class Evaluation:
    accuracy: float
    train_ids: tuple[str, ...]
    test_ids: tuple[str, ...]
    per_theme: tuple[ThemeFigures, ...]


def split(
    examples: Sequence[LabelledSubmission], test_share: float = TEST_SHARE, seed: int = SPLIT_SEED
) -> tuple[list[LabelledSubmission], list[LabelledSubmission]]:
    """A stratified, seeded split into (training, held apart)."""
    train, test = train_test_split(
        list(examples),
        test_size=test_share,
        stratify=[e.theme for e in examples],
        random_state=seed,
    )
    return list(train), list(test)


def evaluate(test_share: float = TEST_SHARE, seed: int = SPLIT_SEED) -> Evaluation:
    """Train on one part of the bundled set and measure on the part held apart."""
    train, test = split(labelled_submissions(), test_share, seed)
    model = ThemeClassifier(train)
    truth = [e.theme for e in test]
    predicted = [model.classify(e.title, e.body).theme for e in test]
    themes = sorted(set(truth))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=themes, zero_division=0
    )
    return Evaluation(
        accuracy=float(accuracy_score(truth, predicted)),
        train_ids=tuple(e.id for e in train),
        test_ids=tuple(e.id for e in test),
        per_theme=tuple(
            ThemeFigures(theme, float(p), float(r), float(f), int(s))
            for theme, p, r, f, s in zip(themes, precision, recall, f1, support, strict=True)
        ),
    )
