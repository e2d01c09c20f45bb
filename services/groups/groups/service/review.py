"""Submission use cases: projection, routing, duplicates, assessment, decisions, the queue.

CPU-heavy text work (the classifier, duplicate detection) runs in a worker thread
(`asyncio.to_thread`), so the event loop keeps answering HTTP while it runs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from groups.domain.actor import Actor
from groups.domain.assessment import (
    FINAL_STATES,
    Assessment,
    CombinedScore,
    CostBand,
    Horizon,
    QueueFilter,
    QueueItem,
    Review,
    ReviewState,
    combine,
    filter_queue,
    move,
    queue_item,
    record_assessment,
    state_after_assessment,
)
from groups.domain.classifier import classify_within
from groups.domain.consultation import Consultation
from groups.domain.duplicates import (
    DuplicateLink,
    LinkState,
    TextItem,
    decide,
    possible_duplicates_of,
    support_counts,
)
from groups.domain.errors import InvalidInput, NotPermitted, Unknown
from groups.domain.group import Group, Role
from groups.domain.routing import override_theme
from groups.domain.submission import GroupSubmission
from groups.service.ports import GroupsUnitOfWork
from groups.service.routing import route_waiting_submissions
from groups.service.volunteering import consultation_of, group_of
from shared.clock import Clock, utc_now
from shared.contracts.groups import Outcome, SubmissionDecided, ThemeSource
from shared.contracts.intake import (
    ConsultationAnnounced,
    ConsultationClosed,
    ConsultationOpened,
    ConsultationWindowChanged,
    SubmissionReceived,
)

DEFAULT_THEMES = ("social", "environmental", "economic", "spatial")

Classifier = Callable[[str, str, Sequence[str]], tuple[str, float] | None]


def default_classifier(title: str, body: str, themes: Sequence[str]) -> tuple[str, float] | None:
    found = classify_within(title, body, themes)
    return None if found is None else (found.theme, round(found.confidence, 4))


@dataclass(frozen=True, slots=True)
class AssessmentInput:
    """What a member fills in; the member is whoever is signed in."""

    submission_id: uuid.UUID
    need: int
    reach: int
    strategy_fit: int
    competence: int
    cost_band: CostBand
    horizon: Horizon
    tags: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    submission: GroupSubmission
    item: QueueItem
    assessors: tuple[uuid.UUID, ...]
    support: int  # confirmed duplicates that count as support for it


@dataclass(frozen=True, slots=True)
class QueuePage:
    entries: list[QueueEntry]
    total: int


@dataclass(frozen=True, slots=True)
class AssessmentResult:
    submission: GroupSubmission
    score: CombinedScore


class SubmissionReview:
    def __init__(
        self,
        *,
        duplicate_threshold: float = 0.5,
        classifier: Classifier = default_classifier,
        clock: Clock = utc_now,
    ) -> None:
        self._threshold = duplicate_threshold
        self._classifier = classifier
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    # --- the consultations projection ----------------------------------------------

    async def consultation_event(
        self,
        uow: GroupsUnitOfWork,
        event: ConsultationAnnounced
        | ConsultationOpened
        | ConsultationClosed
        | ConsultationWindowChanged,
    ) -> None:
        current = await uow.consultations.get(event.consultation_id)
        if isinstance(event, ConsultationAnnounced):
            updated = Consultation(
                id=event.consultation_id,
                title=event.title,
                kind=event.kind.value,
                opens_at=event.opens_at,
                closes_at=event.closes_at,
                themes=tuple(event.themes),
                opened=current.opened if current else False,
                closed=current.closed if current else False,
            )
        elif current is None:
            # Announcements come first on the consultation's partition; without one the
            # themes are unknown and the projection cannot be built.
            raise Unknown("consultation_id", "no ConsultationAnnounced seen for it")
        elif isinstance(event, ConsultationOpened):
            updated = replace(current, title=event.title, opened=True)
        elif isinstance(event, ConsultationClosed):
            updated = replace(current, title=event.title, closes_at=event.closes_at, closed=True)
        else:
            updated = replace(
                current.with_window(event.opens_at, event.closes_at), title=event.title
            )
        await uow.consultations.save(updated)
        await uow.commit()

    # --- submissions arriving --------------------------------------------------------

    async def receive(self, uow: GroupsUnitOfWork, event: SubmissionReceived) -> GroupSubmission:
        """Project a submission (no contact data), give it a theme, route it, flag duplicates."""
        now = self.now()
        consultation = await uow.consultations.get(event.consultation_id)
        themes = consultation.themes if consultation else DEFAULT_THEMES
        theme: str | None = event.theme
        source: ThemeSource | None = ThemeSource.SUBMITTED
        confidence: float | None = None
        if theme is None:
            # Off the event loop: the classifier is CPU work (and loads its data once).
            found = await asyncio.to_thread(self._classifier, event.title, event.body, themes)
            source = None
            if found is not None:
                theme, source, confidence = found[0], ThemeSource.CLASSIFIER, found[1]
        submission = GroupSubmission(
            id=event.submission_id,
            consultation_id=event.consultation_id,
            title=event.title,
            body=event.body,
            submitter_kind=event.submitter_kind,
            locality=event.locality,
            channel=event.channel.value,
            receipt_number=event.receipt_number,
            received_at=event.received_at,
            review=Review(event.submission_id),
            theme=theme,
            theme_source=source,
            confidence=confidence,
        )
        # Text work first, outside the consultation's lock: placement and routing of the
        # consultation must not wait for it.
        links = await self._possible_duplicates(uow, submission)
        await uow.consultations.lock(event.consultation_id)
        if not await uow.submissions.add(submission):
            return submission  # known already; the inbox normally catches this first
        await uow.duplicates.add(links, submission.consultation_id)
        if theme is not None:
            await uow.trends.mark_dirty(submission.consultation_id, theme)
        groups = await uow.groups.of_consultation(event.consultation_id)
        await route_waiting_submissions(uow, event.consultation_id, groups, now)
        stored = await self._submission(uow, submission.id)
        await uow.commit()
        return stored

    async def _possible_duplicates(
        self, uow: GroupsUnitOfWork, submission: GroupSubmission
    ) -> tuple[DuplicateLink, ...]:
        """Earlier submissions of the same theme whose lemmatised text is this similar."""
        if submission.theme is None:
            return ()
        others = [
            TextItem(s.id, s.title, s.body, s.received_at)
            for s in await uow.submissions.of_consultation(
                submission.consultation_id, theme=submission.theme
            )
            if s.id != submission.id
        ]
        if not others:
            return ()
        new = TextItem(submission.id, submission.title, submission.body, submission.received_at)
        return await asyncio.to_thread(possible_duplicates_of, new, others, self._threshold)

    async def override_theme(
        self, uow: GroupsUnitOfWork, actor: Actor, submission_id: uuid.UUID, theme: str
    ) -> GroupSubmission:
        """A coordinator sets the theme: the submission leaves its group and is routed anew."""
        now = self.now()
        submission = await self._submission(uow, submission_id)
        consultation = await consultation_of(uow, submission.consultation_id)
        chosen = override_theme(theme, consultation.themes, actor=_coordinator_role(actor))
        if submission.is_final:
            raise InvalidInput(
                "theme", f"the submission is {submission.review.state}; reopen it first"
            )
        await uow.consultations.lock(consultation.id)
        previous = submission.theme
        await uow.assignments.remove_all(submission.id)
        moved = replace(
            submission,
            theme=chosen,
            theme_source=ThemeSource.COORDINATOR,
            confidence=None,
            group_id=None,
            routed_at=None,
        )
        await uow.submissions.save(moved)
        for changed in {previous, chosen} - {None}:
            assert changed is not None
            await uow.trends.mark_dirty(consultation.id, changed)
        groups = await uow.groups.of_consultation(consultation.id)
        await route_waiting_submissions(uow, consultation.id, groups, now)
        stored = await self._submission(uow, submission.id)
        await uow.commit()
        return stored

    # --- the group's queue -----------------------------------------------------------

    async def queue(
        self,
        uow: GroupsUnitOfWork,
        actor: Actor,
        group_id: uuid.UUID,
        query: QueueFilter,
        *,
        limit: int,
        offset: int,
    ) -> QueuePage:
        group = await group_of(uow, group_id)
        actor.require_in(group)
        submissions = await uow.submissions.of_group(group.id)
        ids = [s.id for s in submissions]
        assessments = await uow.assessments.of_submissions(ids)
        links = await uow.duplicates.touching(ids)
        possible = {
            end
            for link in links
            if link.state is LinkState.POSSIBLE
            for end in (link.original, link.duplicate)
        }
        support = await self._support(uow, submissions[0].consultation_id if submissions else None)
        items = {
            s.id: queue_item(
                s.review, assessments.get(s.id, []), possible_duplicate=s.id in possible
            )
            for s in submissions
        }
        kept = filter_queue(items.values(), query, me=actor.volunteer_id)
        by_id = {s.id: s for s in submissions}
        page = kept[offset : offset + limit]
        entries = [
            QueueEntry(
                submission=by_id[item.submission_id],
                item=item,
                assessors=tuple(await uow.assignments.of_submission(item.submission_id)),
                support=support.get(item.submission_id, 0),
            )
            for item in page
        ]
        return QueuePage(entries=entries, total=len(kept))

    async def _support(
        self, uow: GroupsUnitOfWork, consultation_id: uuid.UUID | None
    ) -> dict[uuid.UUID, int]:
        if consultation_id is None:
            return {}
        links = await uow.duplicates.of_consultation(consultation_id)
        confirmed = [link for link in links if link.state is LinkState.CONFIRMED]
        if not confirmed:
            return {}
        received = [
            TextItem(s.id, s.title, s.body, s.received_at)
            for s in await uow.submissions.of_consultation(consultation_id)
        ]
        return support_counts(confirmed, received)

    # --- assessment and decisions ------------------------------------------------------

    async def assess(
        self, uow: GroupsUnitOfWork, actor: Actor, group_id: uuid.UUID, scores: AssessmentInput
    ) -> AssessmentResult:
        """A member's assessment; a second one by the same member replaces the first."""
        group = await group_of(uow, group_id)
        actor.require_in(group)
        if actor.volunteer_id is None:
            raise NotPermitted("authorization", "assessments are made by the group's members")
        assessment = Assessment(member_id=actor.volunteer_id, **asdict(scores))
        submission = await self._in_group(uow, assessment.submission_id, group)
        recorded = record_assessment(
            await uow.assessments.of_submission(submission.id),
            assessment,
            submission.review.state,
        )
        now = self.now()
        await uow.assessments.save(assessment, now)
        state = state_after_assessment(submission.review.state)
        if state is not submission.review.state:
            submission = replace(
                submission, review=replace(submission.review, state=state, changed_at=now)
            )
            await uow.submissions.save(submission)
        assert submission.theme is not None
        await uow.trends.mark_dirty(submission.consultation_id, submission.theme)
        await uow.commit()
        score = combine(recorded)
        assert score is not None
        return AssessmentResult(submission, score)

    async def move(
        self,
        uow: GroupsUnitOfWork,
        actor: Actor,
        submission_id: uuid.UUID,
        target: ReviewState,
        *,
        reason: str | None = None,
        merged_into: uuid.UUID | None = None,
    ) -> GroupSubmission:
        """Move a submission through its review; a final state is announced (the submitter
        hears of it when they consented to contact)."""
        submission = await self._submission(uow, submission_id)
        if submission.group_id is None:
            raise InvalidInput("submission_id", "the submission is not in a group yet")
        group = await group_of(uow, submission.group_id)
        role = actor.require_in(group, "submission_id")
        merged_target: GroupSubmission | None = None
        if merged_into is not None:
            merged_target = await uow.submissions.get(merged_into)
            if merged_target is None or merged_target.consultation_id != submission.consultation_id:
                raise InvalidInput("merged_into", "no such submission in this consultation")
        now = self.now()
        review = move(
            submission.review, target, actor=role, now=now, reason=reason, merged_into=merged_into
        )
        moved = replace(submission, review=review)
        await uow.submissions.save(moved)
        if target in FINAL_STATES:
            uow.stage_event(
                SubmissionDecided(
                    submission_id=moved.id,
                    consultation_id=moved.consultation_id,
                    group_id=group.id,
                    receipt_number=moved.receipt_number,
                    title=moved.title,
                    outcome=Outcome(target.value),
                    public_reason=review.public_reason,
                    merged_into_receipt_number=(
                        merged_target.receipt_number if merged_target else None
                    ),
                    decided_at=now,
                ),
                key=moved.id,
            )
        await uow.commit()
        return moved

    # --- duplicates ------------------------------------------------------------------

    async def duplicates(
        self, uow: GroupsUnitOfWork, actor: Actor, group_id: uuid.UUID
    ) -> list[DuplicateLink]:
        group = await group_of(uow, group_id)
        actor.require_in(group)
        ids = [s.id for s in await uow.submissions.of_group(group.id)]
        return await uow.duplicates.touching(ids)

    async def decide_duplicate(
        self,
        uow: GroupsUnitOfWork,
        actor: Actor,
        group_id: uuid.UUID,
        original: uuid.UUID,
        duplicate: uuid.UUID,
        *,
        confirmed: bool,
    ) -> DuplicateLink:
        group = await group_of(uow, group_id)
        actor.require_in(group)
        link = await uow.duplicates.get(original, duplicate)
        if link is None:
            raise Unknown("duplicate_id", "no such possible duplicate")
        ends = [await self._submission(uow, end) for end in (original, duplicate)]
        if all(s.group_id != group.id for s in ends):
            raise InvalidInput("group_id", "neither submission is in this group")
        decider = actor.volunteer_id or COORDINATOR_ID
        decided = decide(link, confirmed=confirmed, member_id=decider, now=self.now())
        await uow.duplicates.save(decided)
        await uow.commit()
        return decided

    # --- helpers -----------------------------------------------------------------------

    async def _submission(self, uow: GroupsUnitOfWork, submission_id: uuid.UUID) -> GroupSubmission:
        found = await uow.submissions.get(submission_id)
        if found is None:
            raise Unknown("submission_id", f"no submission {submission_id}")
        return found

    async def _in_group(
        self, uow: GroupsUnitOfWork, submission_id: uuid.UUID, group: Group
    ) -> GroupSubmission:
        submission = await uow.submissions.get(submission_id)
        if submission is None or submission.group_id != group.id:
            raise Unknown("submission_id", "no such submission in this group")
        return submission


def _coordinator_role(actor: Actor) -> Role | None:
    return Role.COORDINATOR if actor.coordinator else None


# A coordinator has no member id: their duplicate decisions are recorded under the nil id.
COORDINATOR_ID = uuid.UUID(int=0)
