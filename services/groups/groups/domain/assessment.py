"""Assessing a submission inside its group: review states, assessments, combined score.

Review states::

    new ─▶ in_review ─▶ assessed ─▶ recommended | rejected            (lead or coordinator)
     │         ▲  │         │
     │         │  ▼         └──────▶ merged | out_of_scope            (lead or coordinator)
     └──▶ needs_clarification                 (new, in_review and needs_clarification may
                                               also go to merged or out_of_scope directly)

- Members move a submission between the working states (new, in_review,
  needs_clarification, assessed). Only the lead, or a coordinator, moves it to a final state
  (recommended, merged, out_of_scope, rejected).
- out_of_scope and rejected carry a public reason: the submitter and the public read why.
  merged names the submission it was merged into.
- A final state is final, except that a coordinator may reopen it (back to assessed) to
  correct a mistake.
- A submission is recommended or rejected only after it was assessed; it can be out of
  scope or merged (a confirmed duplicate) at any working stage.

An assessment scores four criteria from 0 to 2; each member has at most one per submission
(a second replaces the first). The combined score is the median, per criterion and of the
assessors' totals (0–8); a spread of 2 or more on any criterion (one said 0, another 2)
flags the submission "to discuss".
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from groups.domain.errors import FieldProblem, InvalidInput, InvalidTransition, NotPermitted
from groups.domain.group import LEAD_ROLES, Role

REASON_MAX = 2_000
NOTE_MAX = 2_000
TAG_MAX = 40
TAGS_MAX = 10
SCORE_MIN, SCORE_MAX = 0, 2
DISCUSS_SPREAD = 2
CRITERIA = ("need", "reach", "strategy_fit", "competence")


class ReviewState(StrEnum):
    NEW = "new"
    IN_REVIEW = "in_review"
    NEEDS_CLARIFICATION = "needs_clarification"
    ASSESSED = "assessed"
    RECOMMENDED = "recommended"
    MERGED = "merged"
    OUT_OF_SCOPE = "out_of_scope"
    REJECTED = "rejected"


FINAL_STATES = frozenset(
    {ReviewState.RECOMMENDED, ReviewState.MERGED, ReviewState.OUT_OF_SCOPE, ReviewState.REJECTED}
)
REASON_REQUIRED = frozenset({ReviewState.OUT_OF_SCOPE, ReviewState.REJECTED})

_WORKING = (
    ReviewState.NEW,
    ReviewState.IN_REVIEW,
    ReviewState.NEEDS_CLARIFICATION,
    ReviewState.ASSESSED,
)
# Allowed moves: (from, to). Who may make them is decided by `_required_roles`.
_TRANSITIONS: frozenset[tuple[ReviewState, ReviewState]] = frozenset(
    {
        (ReviewState.NEW, ReviewState.IN_REVIEW),
        (ReviewState.NEW, ReviewState.NEEDS_CLARIFICATION),
        (ReviewState.IN_REVIEW, ReviewState.NEEDS_CLARIFICATION),
        (ReviewState.NEEDS_CLARIFICATION, ReviewState.IN_REVIEW),
        (ReviewState.IN_REVIEW, ReviewState.ASSESSED),
        (ReviewState.ASSESSED, ReviewState.IN_REVIEW),
        (ReviewState.ASSESSED, ReviewState.RECOMMENDED),
        (ReviewState.ASSESSED, ReviewState.REJECTED),
        *((state, ReviewState.MERGED) for state in _WORKING),
        *((state, ReviewState.OUT_OF_SCOPE) for state in _WORKING),
        *((state, ReviewState.ASSESSED) for state in FINAL_STATES),  # coordinator reopens
    }
)


class CostBand(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Horizon(StrEnum):
    SHORT = "short"
    MEDIUM = "medium"
    LONG = "long"


class QueueFlag(StrEnum):
    TO_DISCUSS = "to_discuss"
    POSSIBLE_DUPLICATE = "possible_duplicate"


@dataclass(frozen=True, slots=True)
class Review:
    """Where a submission stands in its group's review."""

    submission_id: uuid.UUID
    state: ReviewState = ReviewState.NEW
    public_reason: str | None = None
    merged_into: uuid.UUID | None = None
    changed_at: datetime | None = None


def _required_roles(source: ReviewState, target: ReviewState) -> frozenset[Role]:
    if source in FINAL_STATES:
        return frozenset({Role.COORDINATOR})
    if target in FINAL_STATES:
        return LEAD_ROLES
    return frozenset(Role)


def move(
    review: Review,
    target: ReviewState,
    *,
    actor: Role | None,
    now: datetime,
    reason: str | None = None,
    merged_into: uuid.UUID | None = None,
) -> Review:
    """Move a submission to `target`, checking the state machine, the role and the reason.

    `actor` is the role the caller resolved with `group.role_of` (None: no role in the group).
    """
    if actor is None:
        raise NotPermitted("state", "only the group's members and coordinators review it")
    if (review.state, target) not in _TRANSITIONS:
        raise InvalidTransition("state", _why_not(review.state, target))
    allowed = _required_roles(review.state, target)
    if actor not in allowed:
        if review.state in FINAL_STATES:
            why = f"only a coordinator reopens a submission that is {review.state}"
        else:
            why = f"only the group's lead or a coordinator moves a submission to {target}"
        raise NotPermitted("state", why)
    problems: list[FieldProblem] = []
    public_reason = reason.strip() if reason is not None else None
    if target in REASON_REQUIRED:
        if not public_reason:
            problems.append(FieldProblem("reason", f"{target} needs a public reason"))
        elif len(public_reason) > REASON_MAX:
            problems.append(FieldProblem("reason", f"at most {REASON_MAX} characters"))
    if target is ReviewState.MERGED:
        if merged_into is None:
            problems.append(FieldProblem("merged_into", "name the submission it merges into"))
        elif merged_into == review.submission_id:
            problems.append(FieldProblem("merged_into", "a submission cannot merge into itself"))
    if problems:
        raise InvalidInput.of(problems)
    return replace(
        review,
        state=target,
        public_reason=public_reason if target in REASON_REQUIRED else None,
        merged_into=merged_into if target is ReviewState.MERGED else None,
        changed_at=now,
    )


def _why_not(source: ReviewState, target: ReviewState) -> str:
    if source == target:
        return f"the submission is already {source}"
    if source in FINAL_STATES:
        return f"{source} is final; a coordinator can only reopen it to assessed"
    if target in (ReviewState.RECOMMENDED, ReviewState.REJECTED):
        return f"cannot go from {source} to {target}: it must be assessed first"
    if target is ReviewState.ASSESSED:
        return f"cannot go from {source} to assessed: it must be in review first"
    return f"cannot go from {source} to {target}"


def state_after_assessment(state: ReviewState) -> ReviewState:
    """The first assessment starts the review (new → in_review); other states stay."""
    return ReviewState.IN_REVIEW if state is ReviewState.NEW else state


@dataclass(frozen=True, slots=True)
class Assessment:
    """One member's assessment of one submission (validated on creation)."""

    submission_id: uuid.UUID
    member_id: uuid.UUID
    need: int
    reach: int
    strategy_fit: int
    competence: int
    cost_band: CostBand
    horizon: Horizon
    tags: tuple[str, ...] = ()
    note: str | None = None

    def __post_init__(self) -> None:
        problems: list[FieldProblem] = []
        for name in CRITERIA:
            value = getattr(self, name)
            # bool is an int in Python; True must not pass as a score of 1.
            if type(value) is not int or not SCORE_MIN <= value <= SCORE_MAX:
                problems.append(FieldProblem(name, f"must be an integer {SCORE_MIN}–{SCORE_MAX}"))
        if not isinstance(self.cost_band, CostBand):
            problems.append(FieldProblem("cost_band", "one of low, medium, high"))
        if not isinstance(self.horizon, Horizon):
            problems.append(FieldProblem("horizon", "one of short, medium, long"))
        tags = normalise_tags(self.tags)
        if len(tags) > TAGS_MAX:
            problems.append(FieldProblem("tags", f"at most {TAGS_MAX} tags"))
        if any(len(tag) > TAG_MAX for tag in tags):
            problems.append(FieldProblem("tags", f"a tag has at most {TAG_MAX} characters"))
        note = self.note.strip() if self.note is not None else None
        if note is not None and len(note) > NOTE_MAX:
            problems.append(FieldProblem("note", f"at most {NOTE_MAX} characters"))
        if problems:
            raise InvalidInput.of(problems)
        object.__setattr__(self, "tags", tags)
        object.__setattr__(self, "note", note or None)

    @property
    def total(self) -> int:
        return self.need + self.reach + self.strategy_fit + self.competence


def normalise_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Trimmed, lower case, blanks dropped, first occurrence kept (so filters match)."""
    seen: dict[str, None] = {}
    for tag in tags:
        clean = " ".join(tag.split()).lower()
        if clean:
            seen.setdefault(clean, None)
    return tuple(seen)


def record_assessment(
    assessments: Sequence[Assessment], new: Assessment, state: ReviewState
) -> tuple[Assessment, ...]:
    """The submission's assessments with `new` added, replacing the member's earlier one."""
    if state in FINAL_STATES:
        raise InvalidTransition("state", f"the submission is {state}; it is no longer assessed")
    if any(a.submission_id != new.submission_id for a in assessments):
        raise InvalidInput("submission_id", "assessments of another submission were passed")
    kept = tuple(a for a in assessments if a.member_id != new.member_id)
    return (*kept, new)


@dataclass(frozen=True, slots=True)
class CombinedScore:
    """Medians of a submission's assessments, and whether the assessors disagree."""

    assessments: int
    need: float
    reach: float
    strategy_fit: float
    competence: float
    overall: float  # median of the assessors' totals, 0–8
    disputed: tuple[str, ...]  # criteria whose spread is 2 or more
    cost_band: CostBand  # lower median (an ordinal scale has no midpoints)
    horizon: Horizon

    @property
    def to_discuss(self) -> bool:
        return bool(self.disputed)


def combine(assessments: Sequence[Assessment]) -> CombinedScore | None:
    """The combined score (None before the first assessment)."""
    if not assessments:
        return None
    medians = {
        name: float(statistics.median(getattr(a, name) for a in assessments)) for name in CRITERIA
    }
    disputed = tuple(
        name
        for name in CRITERIA
        if max(getattr(a, name) for a in assessments) - min(getattr(a, name) for a in assessments)
        >= DISCUSS_SPREAD
    )
    bands = list(CostBand)
    horizons = list(Horizon)
    return CombinedScore(
        assessments=len(assessments),
        need=medians["need"],
        reach=medians["reach"],
        strategy_fit=medians["strategy_fit"],
        competence=medians["competence"],
        overall=float(statistics.median(a.total for a in assessments)),
        disputed=disputed,
        cost_band=bands[statistics.median_low(bands.index(a.cost_band) for a in assessments)],
        horizon=horizons[statistics.median_low(horizons.index(a.horizon) for a in assessments)],
    )


@dataclass(frozen=True, slots=True)
class QueueItem:
    """A submission as the group's review queue shows it."""

    submission_id: uuid.UUID
    state: ReviewState
    assessed_by: frozenset[uuid.UUID]
    tags: frozenset[str]
    flags: frozenset[QueueFlag]
    score: CombinedScore | None


def queue_item(
    review: Review, assessments: Sequence[Assessment], *, possible_duplicate: bool = False
) -> QueueItem:
    """Build a queue entry from a review, its assessments and its duplicate links."""
    score = combine(assessments)
    flags: set[QueueFlag] = set()
    if score is not None and score.to_discuss:
        flags.add(QueueFlag.TO_DISCUSS)
    if possible_duplicate:
        flags.add(QueueFlag.POSSIBLE_DUPLICATE)
    return QueueItem(
        submission_id=review.submission_id,
        state=review.state,
        assessed_by=frozenset(a.member_id for a in assessments),
        tags=frozenset(tag for a in assessments for tag in a.tags),
        flags=frozenset(flags),
        score=score,
    )


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Every given criterion must hold (None: not filtered on it)."""

    state: ReviewState | None = None
    assessed_by_me: bool | None = None
    tag: str | None = None
    flag: QueueFlag | None = None
    _tag_key: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tag is not None:
            normalised = normalise_tags([self.tag])
            object.__setattr__(self, "_tag_key", normalised[0] if normalised else None)


def filter_queue(
    items: Iterable[QueueItem], query: QueueFilter, *, me: uuid.UUID | None
) -> tuple[QueueItem, ...]:
    """The queue items matching `query`, in the given order; `me` is the asking member."""

    def keep(item: QueueItem) -> bool:
        if query.state is not None and item.state is not query.state:
            return False
        if query.assessed_by_me is not None and (me in item.assessed_by) != query.assessed_by_me:
            return False
        if query.tag is not None and query._tag_key not in item.tags:
            return False
        return query.flag is None or query.flag in item.flags

    return tuple(item for item in items if keep(item))
