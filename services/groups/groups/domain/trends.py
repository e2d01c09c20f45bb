"""Key trends of one theme: the public report the working group and residents read.

Public data only: the input carries no names, emails or phones, contact details typed into
texts are scrubbed by `text.normalise`, a phrase must occur in at least two submissions, and a
kind or locality is named only with at least `min_cell` submissions behind the figure.

What is computed, and how (all deterministic: the submissions are sorted by id first, so the
same set in any order gives an identical report):

- **Key phrases**: lemma unigrams and bigrams ranked against the other themes with the
  weighted log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008),
  over document frequencies (a long letter repeating a word counts once). Shown in their most
  common written form, preferring one whose first word is its dictionary form ("ścieżka
  rowerowa", not "ścieżki rowerowej"). Without other themes: by document frequency.
- **Sub-topics**: NMF over the theme's TF-IDF matrix, initialised by NNDSVD (no random
  numbers); k = √(n/4) rounded, between 2 and 8. Each submission belongs to its strongest
  component; one sharing no term with the others stays unassigned. A sub-topic's label is its
  three heaviest phrases.
- **Over-representation**: for each sub-topic, each submitter kind and each locality, the
  one-sided Fisher exact test of "this group raises this sub-topic more often than the theme
  as a whole", with Benjamini–Hochberg over every test of the report (q ≤ 0.05). A test is
  suppressed — not run and not shown — unless the group has at least `min_group` submissions
  in the theme and at least `min_cell` of them in the sub-topic: below that there is too little
  to say and too much to identify.
- **Momentum**: submissions of the last 14 days per day against the rate before that, over the
  theme's observed period (from its first submission); rising at ×1.25 or more, falling at
  ×0.8 or less.
- **Mean assessment**: the mean of the combined assessments given (None when none).

Cost: one pass of lemmatisation (cached per word), sparse matrices, NMF with a fixed number
of iterations and at most 8 components: linear in the number of submissions.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
from scipy.stats import fisher_exact
from sklearn.decomposition import NMF
from sklearn.feature_extraction.text import TfidfVectorizer

from groups.domain.errors import InvalidInput
from groups.domain.text import Term, analyse, submission_text
from shared.contracts.intake import SubmitterKind


@dataclass(frozen=True, slots=True)
class TrendSettings:
    min_submissions: int = 10
    recent_days: int = 14
    key_phrases: int = 15
    min_phrase_documents: int = 2
    max_subtopics: int = 8
    representatives: int = 3
    fdr: float = 0.05
    min_group: int = 10
    min_cell: int = 5
    prior_strength: float = 0.1  # Dirichlet prior mass as a share of all counts
    rising: float = 1.25
    falling: float = 0.8


DEFAULT_SETTINGS = TrendSettings()


@dataclass(frozen=True, slots=True)
class TrendSubmission:
    """What trends may see of a submission: no personal data."""

    id: uuid.UUID
    title: str
    body: str
    submitter_kind: SubmitterKind
    locality: str | None
    received_at: datetime
    mean_assessment: float | None = None


class Direction(StrEnum):
    NEW = "new"  # nothing before the recent window
    RISING = "rising"
    STEADY = "steady"
    FALLING = "falling"


class Dimension(StrEnum):
    SUBMITTER_KIND = "submitter_kind"
    LOCALITY = "locality"


@dataclass(frozen=True, slots=True)
class Momentum:
    recent: int
    earlier: int
    recent_per_day: float
    earlier_per_day: float | None
    ratio: float | None
    direction: Direction


@dataclass(frozen=True, slots=True)
class KeyPhrase:
    key: str  # lemmas
    phrase: str  # as residents write it
    score: float  # z-score of the log-odds ratio (or document count without contrast)
    documents: int
    share: float


@dataclass(frozen=True, slots=True)
class OverRepresentation:
    dimension: Dimension
    value: str
    count: int  # submissions of this group in the sub-topic
    group_size: int  # submissions of this group in the theme
    expected: float
    ratio: float
    p_value: float
    q_value: float


@dataclass(frozen=True, slots=True)
class SubTopic:
    label: str
    phrases: tuple[str, ...]
    count: int
    share: float
    localities: int
    submitter_kinds: int
    over_represented: tuple[OverRepresentation, ...]
    suppressed_tests: int
    momentum: Momentum
    mean_assessment: float | None
    assessed: int
    representative_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True, slots=True)
class TrendReport:
    theme: str
    submissions: int
    minimum: int
    enough: bool
    localities: int
    submitter_kinds: int
    key_phrases: tuple[KeyPhrase, ...]
    subtopics: tuple[SubTopic, ...]
    unassigned: int
    momentum: Momentum | None
    mean_assessment: float | None
    assessed: int
    sentences_pl: tuple[str, ...]
    sentences_en: tuple[str, ...]


# --- wording ------------------------------------------------------------------------------

THEME_NAMES: Mapping[str, tuple[str, str]] = {
    "social": ("Obszar społeczny", "Social theme"),
    "environmental": ("Obszar środowiskowy", "Environmental theme"),
    "economic": ("Obszar gospodarczy", "Economic theme"),
    "spatial": ("Obszar przestrzenny", "Spatial theme"),
}

# Nominative plural: the subject of "… zgłaszają …".
KIND_NAMES: Mapping[SubmitterKind, tuple[str, str]] = {
    SubmitterKind.RESIDENT: ("Mieszkańcy", "Residents"),
    SubmitterKind.VILLAGE_COUNCIL: ("Rady sołeckie", "Village councils"),
    SubmitterKind.ENTREPRENEUR: ("Przedsiębiorcy", "Entrepreneurs"),
    SubmitterKind.ACTIVIST: ("Aktywiści", "Activists"),
    SubmitterKind.COMPANY: ("Firmy", "Companies"),
    SubmitterKind.ASSOCIATION: ("Stowarzyszenia", "Associations"),
    SubmitterKind.ORGANISATION: ("Organizacje", "Organisations"),
}


def plural_pl(n: int, one: str, few: str, many: str) -> str:
    """Polish noun form after an integer: 1 zgłoszenie, 2–4 zgłoszenia, 5 zgłoszeń, 22 …ia."""
    if n == 1:
        return one
    if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14):
        return few
    return many


def decimal_pl(value: float, places: int = 1) -> str:
    """Polish decimal comma: 2,4."""
    return f"{value:.{places}f}".replace(".", ",")


def _submissions_pl(n: int) -> str:
    return f"{n} {plural_pl(n, 'zgłoszenie', 'zgłoszenia', 'zgłoszeń')}"


def _submissions_en(n: int) -> str:
    return f"{n} submission{'' if n == 1 else 's'}"


def _theme_name(theme: str) -> tuple[str, str]:
    return THEME_NAMES.get(theme, (f"Obszar „{theme}”", f"Theme “{theme}”"))


# --- computation --------------------------------------------------------------------------


def compute_trends(
    theme: str,
    submissions: Sequence[TrendSubmission],
    other_texts: Iterable[str],
    *,
    now: datetime,
    settings: TrendSettings = DEFAULT_SETTINGS,
) -> TrendReport:
    """The key-trends report of `theme` (see the module docstring).

    `other_texts` are the other themes' submissions (title and body joined, e.g. with
    `text.submission_text`), used only as the contrast for key phrases.
    """
    if now.tzinfo is None:
        raise InvalidInput("now", "needs a time zone")
    ordered = sorted(submissions, key=lambda s: s.id)
    if len({s.id for s in ordered}) != len(ordered):
        raise InvalidInput("submissions", "a submission is listed twice")
    n = len(ordered)
    if n < settings.min_submissions:
        return _not_enough(theme, n, settings)

    analysed = [analyse(submission_text(s.title, s.body)) for s in ordered]
    surfaces = _surfaces(analysed)
    key_phrases = _key_phrases(analysed, other_texts, surfaces, settings)
    start = min(s.received_at for s in ordered)
    cut = now - timedelta(days=settings.recent_days)
    labels, strengths, topic_terms = _subtopics(analysed, settings)
    subtopics = _describe_subtopics(
        ordered, labels, strengths, topic_terms, surfaces, start, cut, settings
    )
    momentum = _momentum(ordered, start, cut, settings)
    mean, assessed = _mean_assessment(ordered)
    report = TrendReport(
        theme=theme,
        submissions=n,
        minimum=settings.min_submissions,
        enough=True,
        localities=len({s.locality for s in ordered if s.locality}),
        submitter_kinds=len({s.submitter_kind for s in ordered}),
        key_phrases=key_phrases,
        subtopics=subtopics,
        unassigned=sum(1 for label in labels if label < 0),
        momentum=momentum,
        mean_assessment=mean,
        assessed=assessed,
        sentences_pl=(),
        sentences_en=(),
    )
    pl, en = _sentences(report, settings)
    return _with_sentences(report, pl, en)


def _not_enough(theme: str, n: int, settings: TrendSettings) -> TrendReport:
    minimum = settings.min_submissions
    return TrendReport(
        theme=theme,
        submissions=n,
        minimum=minimum,
        enough=False,
        localities=0,
        submitter_kinds=0,
        key_phrases=(),
        subtopics=(),
        unassigned=0,
        momentum=None,
        mean_assessment=None,
        assessed=0,
        sentences_pl=(f"Za mało zgłoszeń, by wskazać trendy: {n} z wymaganych {minimum}.",),
        sentences_en=(f"Not enough submissions to show trends: {n} of the {minimum} required.",),
    )


def _with_sentences(report: TrendReport, pl: list[str], en: list[str]) -> TrendReport:
    return replace(report, sentences_pl=tuple(pl), sentences_en=tuple(en))


def _surfaces(analysed: Sequence[tuple[Term, ...]]) -> dict[str, str]:
    """The display form of every term: base-form first word preferred, then most frequent."""
    seen: dict[str, Counter[str]] = {}
    for terms in analysed:
        for term in terms:
            seen.setdefault(term.key, Counter())[term.surface] += 1
    display: dict[str, str] = {}
    for key, forms in seen.items():
        head = key.split(" ")[0]
        display[key] = min(forms, key=lambda form: (form.split(" ")[0] != head, -forms[form], form))
    return display


def _document_frequencies(analysed: Iterable[tuple[Term, ...]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for terms in analysed:
        counts.update({term.key for term in terms})
    return counts


def _key_phrases(
    analysed: Sequence[tuple[Term, ...]],
    other_texts: Iterable[str],
    surfaces: Mapping[str, str],
    settings: TrendSettings,
) -> tuple[KeyPhrase, ...]:
    mine = _document_frequencies(analysed)
    theirs = _document_frequencies(analyse(text) for text in other_texts)
    n_docs = len(analysed)
    candidates = [key for key, df in mine.items() if df >= settings.min_phrase_documents]
    scores: dict[str, float] = {}
    if theirs:
        n_mine, n_theirs = sum(mine.values()), sum(theirs.values())
        total = n_mine + n_theirs
        a0 = settings.prior_strength * total
        for key in candidates:
            y_i, y_j = mine[key], theirs.get(key, 0)
            alpha = a0 * (y_i + y_j) / total
            delta = math.log((y_i + alpha) / (n_mine + a0 - y_i - alpha)) - math.log(
                (y_j + alpha) / (n_theirs + a0 - y_j - alpha)
            )
            scores[key] = delta / math.sqrt(1 / (y_i + alpha) + 1 / (y_j + alpha))
        candidates = [key for key in candidates if scores[key] > 0]
    else:
        scores = {key: float(mine[key]) for key in candidates}
    best = sorted(candidates, key=lambda key: (-scores[key], key))[: settings.key_phrases]
    return tuple(
        KeyPhrase(
            key=key,
            phrase=surfaces[key],
            score=round(scores[key], 4),
            documents=mine[key],
            share=round(mine[key] / n_docs, 4),
        )
        for key in best
    )


def _subtopics(
    analysed: Sequence[tuple[Term, ...]], settings: TrendSettings
) -> tuple[list[int], Any, list[list[str]]]:
    """(component of each submission or -1, strengths matrix, top term keys per component)."""
    n = len(analysed)
    keys = [[term.key for term in terms] for terms in analysed]
    vectoriser = TfidfVectorizer(
        analyzer=lambda doc: doc, min_df=2, sublinear_tf=True, dtype=np.float64
    )
    try:
        matrix = vectoriser.fit_transform(keys)
    except ValueError:  # no term occurs twice: nothing to group
        return [-1] * n, np.zeros((n, 0)), []
    vocabulary = vectoriser.get_feature_names_out()
    k = max(2, min(settings.max_subtopics, round(math.sqrt(n / 4))))
    k = min(k, matrix.shape[0], matrix.shape[1])
    model = NMF(n_components=k, init="nndsvd", max_iter=400, tol=1e-4, random_state=0)
    strengths = model.fit_transform(matrix)
    components = model.components_
    top_terms = [
        [str(vocabulary[i]) for i in np.argsort(-row, kind="stable")[:3] if row[i] > 0]
        for row in components
    ]
    labels = [int(np.argmax(row)) if row.max(initial=0.0) > 0 else -1 for row in strengths]
    return labels, strengths, top_terms


def _describe_subtopics(
    ordered: Sequence[TrendSubmission],
    labels: Sequence[int],
    strengths: Any,
    topic_terms: Sequence[Sequence[str]],
    surfaces: Mapping[str, str],
    start: datetime,
    cut: datetime,
    settings: TrendSettings,
) -> tuple[SubTopic, ...]:
    n = len(ordered)
    members: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        if label >= 0:
            members.setdefault(label, []).append(index)
    kind_sizes = Counter(s.submitter_kind.value for s in ordered)
    locality_sizes = Counter(s.locality for s in ordered if s.locality)

    # Every test of the report first, so Benjamini–Hochberg sees them all.
    tests: list[tuple[int, Dimension, str, int, int, float]] = []
    suppressed: Counter[int] = Counter()
    for topic, indices in members.items():
        in_topic_kinds = Counter(ordered[i].submitter_kind.value for i in indices)
        in_topic_places = Counter(ordered[i].locality for i in indices if ordered[i].locality)
        for dimension, sizes, cells in (
            (Dimension.SUBMITTER_KIND, kind_sizes, in_topic_kinds),
            (Dimension.LOCALITY, locality_sizes, in_topic_places),
        ):
            for value, size in sorted(sizes.items()):
                a = cells.get(value, 0)
                if a == 0:
                    continue
                if size < settings.min_group or a < settings.min_cell:
                    suppressed[topic] += 1
                    continue
                m = len(indices)
                table = [[a, size - a], [m - a, n - size - (m - a)]]
                p = float(fisher_exact(table, alternative="greater")[1])
                tests.append((topic, dimension, value, a, size, p))
    q_values = _benjamini_hochberg([t[-1] for t in tests])

    found: dict[int, list[OverRepresentation]] = {}
    for (topic, dimension, value, a, size, p), q in zip(tests, q_values, strict=True):
        m = len(members[topic])
        ratio = (a / size) / (m / n)
        if q <= settings.fdr and ratio > 1:
            found.setdefault(topic, []).append(
                OverRepresentation(
                    dimension=dimension,
                    value=value,
                    count=a,
                    group_size=size,
                    expected=round(size * m / n, 3),
                    ratio=round(ratio, 3),
                    p_value=p,
                    q_value=q,
                )
            )

    result: list[SubTopic] = []
    for topic, indices in members.items():
        chosen = [ordered[i] for i in indices]
        phrases = tuple(surfaces[key] for key in topic_terms[topic])
        strongest = sorted(indices, key=lambda i: (-float(strengths[i, topic]), ordered[i].id))
        mean, assessed = _mean_assessment(chosen)
        result.append(
            SubTopic(
                label=", ".join(phrases),
                phrases=phrases,
                count=len(indices),
                share=round(len(indices) / n, 4),
                localities=len({s.locality for s in chosen if s.locality}),
                submitter_kinds=len({s.submitter_kind for s in chosen}),
                over_represented=tuple(
                    sorted(found.get(topic, []), key=lambda o: (o.q_value, -o.ratio, o.value))
                ),
                suppressed_tests=suppressed[topic],
                momentum=_momentum(chosen, start, cut, settings),
                mean_assessment=mean,
                assessed=assessed,
                representative_ids=tuple(
                    ordered[i].id for i in strongest[: settings.representatives]
                ),
            )
        )
    return tuple(sorted(result, key=lambda t: (-t.count, t.label)))


def _benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Adjusted q-values (step-up), in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    q = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = running
    return q


def _momentum(
    chosen: Sequence[TrendSubmission], start: datetime, cut: datetime, settings: TrendSettings
) -> Momentum:
    recent = sum(1 for s in chosen if s.received_at >= cut)
    earlier = len(chosen) - recent
    recent_rate = recent / settings.recent_days
    if earlier == 0:
        return Momentum(recent, 0, round(recent_rate, 4), None, None, Direction.NEW)
    days = max(1.0, (cut - start).total_seconds() / 86_400)
    earlier_rate = earlier / days
    ratio = recent_rate / earlier_rate
    if ratio >= settings.rising:
        direction = Direction.RISING
    elif ratio <= settings.falling:
        direction = Direction.FALLING
    else:
        direction = Direction.STEADY
    return Momentum(
        recent, earlier, round(recent_rate, 4), round(earlier_rate, 4), round(ratio, 4), direction
    )


def _mean_assessment(chosen: Iterable[TrendSubmission]) -> tuple[float | None, int]:
    scores = [s.mean_assessment for s in chosen if s.mean_assessment is not None]
    if not scores:
        return None, 0
    return round(math.fsum(scores) / len(scores), 4), len(scores)


# --- sentences ----------------------------------------------------------------------------


def _sentences(report: TrendReport, settings: TrendSettings) -> tuple[list[str], list[str]]:
    name_pl, name_en = _theme_name(report.theme)
    pl = [
        f"{name_pl}: {_submissions_pl(report.submissions)} z {report.localities} "
        f"miejscowości, od {_kinds_pl(report.submitter_kinds)}."
    ]
    en = [
        f"{name_en}: {_submissions_en(report.submissions)} from {report.localities} "
        f"localit{'y' if report.localities == 1 else 'ies'}, "
        f"by {_kinds_en(report.submitter_kinds)}."
    ]
    if report.key_phrases:
        phrases = ", ".join(p.phrase for p in report.key_phrases[:8])
        pl.append(f"Najbardziej charakterystyczne wyrażenia: {phrases}.")
        en.append(f"Most distinctive phrases: {phrases}.")
    for topic in report.subtopics:
        pl.append(
            f"Podtemat „{topic.label}”: {_submissions_pl(topic.count)} "
            f"({decimal_pl(topic.share * 100)}%) z {topic.localities} miejscowości, "
            f"od {_kinds_pl(topic.submitter_kinds)}."
        )
        en.append(
            f"Sub-topic “{topic.label}”: {_submissions_en(topic.count)} "
            f"({topic.share * 100:.1f}%) from {topic.localities} "
            f"localit{'y' if topic.localities == 1 else 'ies'}, "
            f"by {_kinds_en(topic.submitter_kinds)}."
        )
        for found in topic.over_represented:
            times_pl, times_en = decimal_pl(found.ratio), f"{found.ratio:.1f}"
            if found.dimension is Dimension.SUBMITTER_KIND:
                kind_pl, kind_en = KIND_NAMES[SubmitterKind(found.value)]
                pl.append(
                    f"{kind_pl} zgłaszają sprawy z podtematu „{topic.label}” "
                    f"{times_pl}× częściej niż średnio."
                )
                en.append(f"{kind_en} raise “{topic.label}” {times_en}× as often as average.")
            else:
                pl.append(
                    f"Zgłoszenia z miejscowości {found.value} dotyczą podtematu "
                    f"„{topic.label}” {times_pl}× częściej niż średnio."
                )
                en.append(
                    f"Submissions from {found.value} concern “{topic.label}” "
                    f"{times_en}× as often as average."
                )
        if topic.momentum.direction is Direction.RISING:
            pl.append(
                f"Podtemat „{topic.label}” zyskuje na znaczeniu: "
                f"{_rates_pl(topic.momentum, settings)}."
            )
            en.append(
                f"Sub-topic “{topic.label}” is gaining ground: "
                f"{_rates_en(topic.momentum, settings)}."
            )
    if report.momentum is not None:
        pl.append(_momentum_pl(report.momentum, settings))
        en.append(_momentum_en(report.momentum, settings))
    if report.mean_assessment is not None:
        assessed = report.assessed
        of_pl = "ocenionego zgłoszenia" if assessed == 1 else "ocenionych zgłoszeń"
        pl.append(f"Średnia ocena {assessed} {of_pl}: {decimal_pl(report.mean_assessment)}.")
        en.append(
            f"Mean assessment of {assessed} assessed "
            f"submission{'' if assessed == 1 else 's'}: {report.mean_assessment:.1f}."
        )
    return pl, en


def _kinds_pl(n: int) -> str:
    return f"{n} {'typu' if n == 1 else 'typów'} zgłaszających"


def _kinds_en(n: int) -> str:
    return f"{n} kind{'' if n == 1 else 's'} of submitter"


def _rates_pl(momentum: Momentum, settings: TrendSettings) -> str:
    # A fraction takes the genitive singular in Polish: "1,5 zgłoszenia".
    earlier = momentum.earlier_per_day or 0.0
    return (
        f"w ostatnich {settings.recent_days} dniach {decimal_pl(momentum.recent_per_day)} "
        f"zgłoszenia dziennie wobec {decimal_pl(earlier)} wcześniej"
    )


def _rates_en(momentum: Momentum, settings: TrendSettings) -> str:
    earlier = momentum.earlier_per_day or 0.0
    return (
        f"{momentum.recent_per_day:.1f} submissions a day in the last {settings.recent_days} "
        f"days against {earlier:.1f} before"
    )


def _momentum_pl(momentum: Momentum, settings: TrendSettings) -> str:
    if momentum.direction is Direction.NEW:
        return f"Wszystkie zgłoszenia wpłynęły w ostatnich {settings.recent_days} dniach."
    lead = {
        Direction.RISING: "Zgłoszeń przybywa szybciej niż wcześniej",
        Direction.STEADY: "Zgłoszenia napływają w stałym tempie",
        Direction.FALLING: "Zgłoszeń przybywa wolniej niż wcześniej",
    }[momentum.direction]
    return f"{lead}: {_rates_pl(momentum, settings)}."


def _momentum_en(momentum: Momentum, settings: TrendSettings) -> str:
    if momentum.direction is Direction.NEW:
        return f"All submissions arrived in the last {settings.recent_days} days."
    lead = {
        Direction.RISING: "Submissions are arriving faster than before",
        Direction.STEADY: "Submissions are arriving at a steady pace",
        Direction.FALLING: "Submissions are arriving more slowly than before",
    }[momentum.direction]
    return f"{lead}: {_rates_en(momentum, settings)}."
