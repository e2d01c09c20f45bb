"""Polish text analysis shared by the classifier, duplicate detection and trends.

Why these choices:

- Lemmas, not surface forms: Polish inflects heavily ("kanalizacja", "kanalizacji",
  "kanalizację"), so counting surfaces would split one topic into many. `simplemma` ships its
  Polish dictionary inside the wheel (nothing is downloaded at run time) and is deterministic.
- A bundled stop-word list (`data/stopwords_pl.txt`), not a package: the usual packages
  either pull in a whole NLP stack (spaCy) or download their lists at run time (NLTK); a short
  reviewed file is easier to keep right for consultation letters ("proszę", "wnioskuję").
- Bigrams only between words that stand next to each other in the text (no punctuation and no
  stop word between them), so "plan zagospodarowania" is a bigram but "szkoła w Gassach" is not.
- E-mail addresses, web addresses and phone numbers are removed before anything else, so no
  contact detail a resident typed into a submission can surface as a phrase.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

import simplemma

LANGUAGE = "pl"

# Contact details and links never become terms (see the module docstring).
_SCRUB = re.compile(
    r"\S+@\S+"  # e-mail addresses
    r"|(?:https?://|www\.)\S+"  # links
    r"|\+?\d[\d\s().-]{6,}\d",  # phone numbers and other long digit runs
)
# A word is a run of letters; punctuation is kept as a segment boundary.
_TOKEN = re.compile(r"[^\W\d_]+|[.,;:!?()\[\]\"„”«»–—/…]")

# Where simplemma's dictionary misses the gmina's own names or a frequent word.
_LEMMA_OVERRIDES: dict[str, str] = {
    "jeziorka": "jeziorka",
    "jeziorki": "jeziorka",
    "jeziorce": "jeziorka",
    "jeziorkę": "jeziorka",
    "jeziorką": "jeziorka",
    "jeziorek": "jeziorka",
    "obory": "obory",
    "oborach": "obory",
    "oborów": "obory",
    "skolimowie": "skolimów",
    "skolimowa": "skolimów",
    "fotowoltaiki": "fotowoltaika",
    "fotowoltaikę": "fotowoltaika",
    "warunki": "warunek",
    "drogi": "droga",
    "dróg": "droga",
}


@dataclass(frozen=True, slots=True)
class Term:
    """A unigram (one lemma) or a bigram ("lemma lemma") with the words as written."""

    key: str
    surface: str


@cache
def stop_words() -> frozenset[str]:
    """The bundled Polish stop words (surface forms and lemmas, lower case)."""
    text = resources.files("groups.domain.data").joinpath("stopwords_pl.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def normalise(text: str) -> str:
    """NFC, contact details removed, lower case: the form every other step starts from."""
    text = unicodedata.normalize("NFC", text)
    return _SCRUB.sub(" ", text).lower()


@lru_cache(maxsize=262_144)
def lemma(word: str) -> str:
    """The lemma of one lower-case word (cached: a consultation reuses a small vocabulary)."""
    override = _LEMMA_OVERRIDES.get(word)
    if override is not None:
        return override
    return str(simplemma.lemmatize(word, lang=LANGUAGE)).lower()


def _segments(text: str) -> list[list[tuple[str, str]]]:
    """Runs of (lemma, surface) content words between punctuation and stop words."""
    stops = stop_words()
    segments: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(normalise(text)):
        word = match.group()
        if len(word) < 2 or word in stops:
            if current:
                segments.append(current)
                current = []
            continue
        base = lemma(word)
        if base in stops or len(base) < 2:
            if current:
                segments.append(current)
                current = []
            continue
        current.append((base, word))
    if current:
        segments.append(current)
    return segments


@lru_cache(maxsize=16_384)
def analyse(text: str) -> tuple[Term, ...]:
    """Unigram terms in text order, then bigram terms in text order."""
    unigrams: list[Term] = []
    bigrams: list[Term] = []
    for segment in _segments(text):
        unigrams.extend(Term(base, word) for base, word in segment)
        bigrams.extend(
            Term(f"{a[0]} {b[0]}", f"{a[1]} {b[1]}")
            for a, b in itertools.pairwise(segment)
            if a[0] != b[0]
        )
    return (*unigrams, *bigrams)


def content_lemmas(text: str) -> tuple[str, ...]:
    """The lemmas of the content words, in text order."""
    return tuple(term.key for term in analyse(text) if " " not in term.key)


def terms(text: str) -> list[str]:
    """Unigram and bigram keys: the analyser handed to scikit-learn's vectorisers."""
    return [term.key for term in analyse(text)]


def bigrams(lemmas: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Adjacent pairs of an already filtered lemma sequence, joined by a space."""
    return tuple(f"{a} {b}" for a, b in itertools.pairwise(lemmas) if a != b)


def submission_text(title: str, body: str) -> str:
    """Title and body as one text; the title ends with a full stop so no bigram spans both."""
    return f"{title.strip()}. {body.strip()}"
