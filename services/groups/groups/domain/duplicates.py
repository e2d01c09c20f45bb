"""Possible duplicates among a consultation's submissions, and what members decide.

Similarity is the cosine of two term-count vectors (content lemmas plus lemma bigrams, see
`text`). Unlike TF-IDF it depends on the two texts only, so a flagged pair stays flagged when
more submissions arrive, and the same pair always scores the same. Pairs at or above the
threshold are flagged `possible`; a member confirms or dismisses the link. A confirmed
duplicate never deletes anything: it counts as support for the earlier submission of its
cluster (confirmed links join clusters transitively; the earliest received is the original).
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize

from groups.domain.errors import InvalidInput, InvalidTransition
from groups.domain.text import submission_text, terms

DEFAULT_THRESHOLD = 0.5
# Links flagged for one arriving submission (see `possible_duplicates_of`).
MAX_LINKS_PER_ARRIVAL = 5


@dataclass(frozen=True, slots=True)
class TextItem:
    submission_id: uuid.UUID
    title: str
    body: str
    received_at: datetime


class LinkState(StrEnum):
    POSSIBLE = "possible"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


@dataclass(frozen=True, slots=True)
class DuplicateLink:
    """`duplicate` (received later) may repeat `original` (received earlier)."""

    original: uuid.UUID
    duplicate: uuid.UUID
    similarity: float
    state: LinkState = LinkState.POSSIBLE
    decided_by: uuid.UUID | None = None
    decided_at: datetime | None = None


def _order_key(item: TextItem) -> tuple[datetime, uuid.UUID]:
    return (item.received_at, item.submission_id)


def _vectors(items: Sequence[TextItem]) -> Any:
    texts = [submission_text(item.title, item.body) for item in items]
    if not any(terms(text) for text in texts):
        return None
    counts = CountVectorizer(analyzer=terms).fit_transform(texts)
    return normalize(counts, norm="l2")  # rows of unit length: a product is the cosine


def find_possible_duplicates(
    items: Sequence[TextItem], threshold: float = DEFAULT_THRESHOLD
) -> tuple[DuplicateLink, ...]:
    """Every pair at or above `threshold`, most similar first (then by original, duplicate)."""
    _check_threshold(threshold)
    ordered = sorted(items, key=_order_key)
    matrix = _vectors(ordered)
    if matrix is None or len(ordered) < 2:
        return ()
    similarity = (matrix @ matrix.T).tocoo()
    links = [
        DuplicateLink(
            original=ordered[i].submission_id,
            duplicate=ordered[j].submission_id,
            similarity=round(float(value), 6),
        )
        for i, j, value in zip(similarity.row, similarity.col, similarity.data, strict=True)
        if i < j and value >= threshold - 1e-9
    ]
    return tuple(sorted(links, key=lambda ln: (-ln.similarity, ln.original, ln.duplicate)))


@dataclass(frozen=True, slots=True)
class Similar:
    """An earlier submission and its cosine similarity to an arriving one."""

    submission_id: uuid.UUID
    received_at: datetime
    similarity: float


def term_weights(title: str, body: str) -> dict[str, float]:
    """A submission's term counts scaled to unit length: the cosine of two submissions is
    the sum, over the terms they share, of the products of their weights — which an index
    of (term, weight) rows answers for one arrival without reading any other text."""
    counts = Counter(terms(submission_text(title, body)))
    norm = math.sqrt(sum(n * n for n in counts.values()))
    return {term: n / norm for term, n in counts.items()} if norm else {}


def cosine(a: dict[str, float], b: dict[str, float]) -> float:
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return sum(weight * large.get(term, 0.0) for term, weight in small.items())


def links_to(
    new: TextItem,
    similar: Iterable[Similar],
    threshold: float = DEFAULT_THRESHOLD,
    *,
    limit: int = MAX_LINKS_PER_ARRIVAL,
) -> tuple[DuplicateLink, ...]:
    """Links between an arriving submission and earlier ones found similar: the `limit` most
    similar at or above `threshold`, the earlier received of each pair as the original.

    The limit keeps a template campaign (hundreds of residents sending one text) from
    flagging every pair: each arrival links to its closest texts, and confirmed links join
    clusters transitively anyway.
    """
    _check_threshold(threshold)
    arriving = (new.received_at, new.submission_id)
    links = []
    for other in similar:
        if other.submission_id == new.submission_id or other.similarity < threshold - 1e-9:
            continue
        earlier = (other.received_at, other.submission_id) < arriving
        original, duplicate = (
            (other.submission_id, new.submission_id)
            if earlier
            else (new.submission_id, other.submission_id)
        )
        links.append(DuplicateLink(original, duplicate, round(other.similarity, 6)))
    ranked = sorted(links, key=lambda ln: (-ln.similarity, ln.original, ln.duplicate))
    return tuple(ranked[:limit])


def possible_duplicates_of(
    new: TextItem,
    others: Iterable[TextItem],
    threshold: float = DEFAULT_THRESHOLD,
    *,
    limit: int = MAX_LINKS_PER_ARRIVAL,
) -> tuple[DuplicateLink, ...]:
    """`links_to` computed from the texts themselves (the service asks its term index)."""
    weights = term_weights(new.title, new.body)
    similar = (
        Similar(o.submission_id, o.received_at, cosine(weights, term_weights(o.title, o.body)))
        for o in others
    )
    return links_to(new, similar, threshold, limit=limit)


def _check_threshold(threshold: float) -> None:
    if not 0.0 < threshold <= 1.0:
        raise InvalidInput("threshold", "must be above 0 and at most 1")


def decide(
    link: DuplicateLink, *, confirmed: bool, member_id: uuid.UUID, now: datetime
) -> DuplicateLink:
    """A member confirms or dismisses a possible duplicate (once)."""
    if link.state is not LinkState.POSSIBLE:
        raise InvalidTransition("state", f"the link was already {link.state}")
    return replace(
        link,
        state=LinkState.CONFIRMED if confirmed else LinkState.DISMISSED,
        decided_by=member_id,
        decided_at=now,
    )


def support_counts(
    links: Iterable[DuplicateLink], received: Iterable[TextItem]
) -> dict[uuid.UUID, int]:
    """How many confirmed duplicates support each original (clusters joined transitively).

    `received` gives every linked submission's reception moment; the earliest of a cluster
    is its original and gets the cluster's size minus one. Submissions stay as they are.
    """
    order = {item.submission_id: _order_key(item) for item in received}
    parent: dict[uuid.UUID, uuid.UUID] = {}

    def root(node: uuid.UUID) -> uuid.UUID:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for link in links:
        if link.state is not LinkState.CONFIRMED:
            continue
        for node in (link.original, link.duplicate):
            if node not in order:
                raise InvalidInput("received", f"no reception time for submission {node}")
        a, b = root(link.original), root(link.duplicate)
        if a != b:
            first, second = sorted((a, b), key=lambda node: order[node])
            parent[second] = first
    counts: dict[uuid.UUID, int] = {}
    for node in list(parent):
        top = root(node)
        if top != node:
            counts[top] = counts.get(top, 0) + 1
    return counts
