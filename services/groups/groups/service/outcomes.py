"""What the groups produce: key trends (numbered snapshots), recommendations, the report.

Trends are recomputed by a background worker, never inside a request: a change to a
theme (a submission arrives or is re-themed, an assessment is recorded) marks the theme
dirty in the same transaction and NOTIFYs the worker, which recomputes in a thread and
stores the next numbered snapshot. Readers always get the latest snapshot at once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from pydantic import TypeAdapter

from groups.domain.actor import Actor
from groups.domain.assessment import combine
from groups.domain.errors import InvalidInput, InvalidTransition, Unknown
from groups.domain.group import Group
from groups.domain.submission import GroupSubmission
from groups.domain.text import submission_text
from groups.domain.trends import (
    DEFAULT_SETTINGS,
    TrendReport,
    TrendSettings,
    TrendSubmission,
    compute_trends,
)
from groups.service.ports import (
    GroupsUnitOfWork,
    Recommendation,
    TrendSnapshot,
)
from groups.service.volunteering import consultation_of, group_of
from shared.clock import Clock, utc_now
from shared.contracts.groups import RecommendationPublished

log = logging.getLogger(__name__)

REPORT_ADAPTER: TypeAdapter[TrendReport] = TypeAdapter(TrendReport)


class TrendStatus(StrEnum):
    READY = "ready"  # a snapshot with the full report
    NOT_ENOUGH = "not_enough"  # below the minimum: nothing is computed
    PENDING = "pending"  # enough submissions, the first snapshot is being computed


@dataclass(frozen=True, slots=True)
class TrendView:
    consultation_id: uuid.UUID
    theme: str
    status: TrendStatus
    submissions: int
    minimum: int
    snapshot: TrendSnapshot | None


@dataclass(frozen=True, slots=True)
class CitedSubmission:
    id: uuid.UUID
    receipt_number: str
    title: str
    state: str


@dataclass(frozen=True, slots=True)
class PublicRecommendation:
    recommendation: Recommendation
    group: Group
    cited: tuple[CitedSubmission, ...]
    evidence: TrendSnapshot | None


@dataclass(frozen=True, slots=True)
class ReportRow:
    submission: GroupSubmission
    group_name: str | None
    recommendations: tuple[Recommendation, ...]


class Outcomes:
    def __init__(
        self,
        *,
        trend_settings: TrendSettings = DEFAULT_SETTINGS,
        clock: Clock = utc_now,
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        self._trend_settings = trend_settings
        self._clock = clock
        self._new_id = new_id

    def now(self) -> datetime:
        return self._clock()

    # --- trends --------------------------------------------------------------------

    async def recompute_next(self, unit_of_work: Callable[[], GroupsUnitOfWork]) -> bool:
        """Recompute one dirty theme; False when none is dirty.

        Read, compute (in a thread, outside any transaction: a recomputation may take
        seconds and must hold no lock), then store the next snapshot and clear the flag —
        unless the theme changed again meanwhile, in which case it stays dirty and is
        recomputed next round.
        """
        async with unit_of_work() as uow:
            dirty = await uow.trends.next_dirty()
            if dirty is None:
                return False
            mine, others = await _trend_input(uow, dirty.consultation_id, dirty.theme)
        try:
            report = await asyncio.to_thread(
                compute_trends,
                dirty.theme,
                mine,
                others,
                now=self.now(),
                settings=self._trend_settings,
            )
        except Exception:
            # The same data would fail the same way: drop the flag instead of retrying in
            # a loop; the theme's next change marks it again.
            log.exception("trend recomputation failed", extra={"theme": dirty.theme})
            async with unit_of_work() as uow:
                await uow.trends.clear_dirty(dirty)
                await uow.commit()
            return True
        async with unit_of_work() as uow:
            snapshot = await uow.trends.add_snapshot(
                dirty.consultation_id,
                dirty.theme,
                report.submissions,
                REPORT_ADAPTER.dump_python(report, mode="json"),
            )
            await uow.trends.clear_dirty(dirty)
            await uow.commit()
        log.info(
            "trends recomputed",
            extra={
                "consultation_id": str(dirty.consultation_id),
                "theme": dirty.theme,
                "snapshot": snapshot.number,
                "submissions": report.submissions,
            },
        )
        return True

    async def group_trends(
        self, uow: GroupsUnitOfWork, group_id: uuid.UUID, number: int | None = None
    ) -> TrendView:
        """A group's trends are its theme's (every group of a theme shares them)."""
        group = await group_of(uow, group_id)
        assert group.consultation_id is not None
        return await self.theme_trends(uow, group.consultation_id, group.theme, number)

    async def theme_trends(
        self,
        uow: GroupsUnitOfWork,
        consultation_id: uuid.UUID,
        theme: str,
        number: int | None = None,
    ) -> TrendView:
        consultation = await consultation_of(uow, consultation_id)
        if theme not in consultation.themes:
            raise InvalidInput(
                "theme", f"not a theme of this consultation: {', '.join(consultation.themes)}"
            )
        snapshot = await uow.trends.snapshot(consultation_id, theme, number)
        if number is not None and snapshot is None:
            raise Unknown("snapshot", f"no trend snapshot {number} of {theme}")
        minimum = self._trend_settings.min_submissions
        if snapshot is not None:
            status = TrendStatus.READY if snapshot.report["enough"] else TrendStatus.NOT_ENOUGH
            return TrendView(
                consultation_id, theme, status, snapshot.submissions, minimum, snapshot
            )
        count = len(await uow.submissions.of_consultation(consultation_id, theme=theme))
        status = TrendStatus.PENDING if count >= minimum else TrendStatus.NOT_ENOUGH
        return TrendView(consultation_id, theme, status, count, minimum, None)

    # --- recommendations -------------------------------------------------------------

    async def draft_recommendation(
        self,
        uow: GroupsUnitOfWork,
        actor: Actor,
        group_id: uuid.UUID,
        *,
        title: str,
        body: str,
        submission_ids: Sequence[uuid.UUID],
        trend_snapshot: int | None,
    ) -> Recommendation:
        group = await group_of(uow, group_id)
        actor.require_in(group)
        assert group.consultation_id is not None
        cited = list(dict.fromkeys(submission_ids))
        for submission_id in cited:
            found = await uow.submissions.get(submission_id)
            if found is None or found.consultation_id != group.consultation_id:
                raise InvalidInput(
                    "submission_ids", f"{submission_id} is not a submission of this consultation"
                )
        if trend_snapshot is not None and (
            await uow.trends.snapshot(group.consultation_id, group.theme, trend_snapshot) is None
        ):
            raise InvalidInput(
                "trend_snapshot", f"no trend snapshot {trend_snapshot} of {group.theme}"
            )
        recommendation = Recommendation(
            id=self._new_id(),
            consultation_id=group.consultation_id,
            group_id=group.id,
            theme=group.theme,
            title=title,
            body=body,
            submission_ids=tuple(cited),
            trend_snapshot=trend_snapshot,
            drafted_by=actor.volunteer_id,
            created_at=self.now(),
        )
        await uow.recommendations.add(recommendation)
        await uow.commit()
        return recommendation

    async def publish_recommendation(
        self, uow: GroupsUnitOfWork, actor: Actor, recommendation_id: uuid.UUID
    ) -> Recommendation:
        found = await uow.recommendations.get(recommendation_id)
        if found is None:
            raise Unknown("recommendation_id", f"no recommendation {recommendation_id}")
        group = await group_of(uow, found.group_id)
        actor.require_lead_of(group, "recommendation_id")
        if found.published_at is not None:
            raise InvalidTransition("recommendation_id", "the recommendation is published already")
        published = replace(found, published_at=self.now())
        await uow.recommendations.save(published)
        assert published.published_at is not None
        uow.stage_event(
            RecommendationPublished(
                recommendation_id=published.id,
                consultation_id=published.consultation_id,
                group_id=published.group_id,
                theme=published.theme,
                title=published.title,
                body=published.body,
                submission_ids=published.submission_ids,
                trend_snapshot=published.trend_snapshot,
                published_at=published.published_at,
            ),
            key=published.id,
        )
        await uow.commit()
        return published

    async def group_recommendations(
        self, uow: GroupsUnitOfWork, actor: Actor, group_id: uuid.UUID
    ) -> list[Recommendation]:
        group = await group_of(uow, group_id)
        actor.require_in(group)
        return await uow.recommendations.of_group(group.id)

    async def public_recommendations(
        self, uow: GroupsUnitOfWork, consultation_id: uuid.UUID
    ) -> list[PublicRecommendation]:
        await consultation_of(uow, consultation_id)
        result: list[PublicRecommendation] = []
        for recommendation in await uow.recommendations.of_consultation(
            consultation_id, published_only=True
        ):
            cited = []
            for submission_id in recommendation.submission_ids:
                s = await uow.submissions.get(submission_id)
                if s is not None:
                    cited.append(
                        CitedSubmission(s.id, s.receipt_number, s.title, s.review.state.value)
                    )
            evidence = (
                await uow.trends.snapshot(
                    consultation_id, recommendation.theme, recommendation.trend_snapshot
                )
                if recommendation.trend_snapshot is not None
                else None
            )
            result.append(
                PublicRecommendation(
                    recommendation=recommendation,
                    group=await group_of(uow, recommendation.group_id),
                    cited=tuple(cited),
                    evidence=evidence,
                )
            )
        return result

    # --- the consultation report -------------------------------------------------------

    async def report(
        self, uow: GroupsUnitOfWork, actor: Actor, consultation_id: uuid.UUID
    ) -> list[ReportRow]:
        """Every submission, those still waiting for a group included, with its state,
        public reason and the published recommendations that cite it."""
        actor.require_coordinator()
        await consultation_of(uow, consultation_id)
        groups = {g.id: g for g in await uow.groups.of_consultation(consultation_id)}
        recommendations = await uow.recommendations.of_consultation(
            consultation_id, published_only=True
        )
        citing: dict[uuid.UUID, list[Recommendation]] = {}
        for recommendation in recommendations:
            for submission_id in recommendation.submission_ids:
                citing.setdefault(submission_id, []).append(recommendation)
        return [
            ReportRow(
                submission=s,
                group_name=groups[s.group_id].name_pl if s.group_id in groups else None,
                recommendations=tuple(citing.get(s.id, ())),
            )
            for s in await uow.submissions.of_consultation(consultation_id)
        ]


async def _trend_input(
    uow: GroupsUnitOfWork, consultation_id: uuid.UUID, theme: str
) -> tuple[list[TrendSubmission], list[str]]:
    """The theme's submissions (public fields and mean assessment) and the other themes'
    texts (the contrast for key phrases)."""
    everything = await uow.submissions.of_consultation(consultation_id)
    mine = [s for s in everything if s.theme == theme]
    assessments = await uow.assessments.of_submissions([s.id for s in mine])
    trend_submissions = []
    for s in mine:
        score = combine(assessments.get(s.id, []))
        trend_submissions.append(
            TrendSubmission(
                id=s.id,
                title=s.title,
                body=s.body,
                submitter_kind=s.submitter_kind,
                locality=s.locality,
                received_at=s.received_at,
                mean_assessment=score.overall if score else None,
            )
        )
    others = [submission_text(s.title, s.body) for s in everything if s.theme not in (theme, None)]
    return trend_submissions, others
