"""News use cases. Each takes an open unit of work and commits it once: the state change
and its events together, or nothing. They return domain results; entrypoints shape them
into HTTP answers, feeds or Kafka effects."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from news.domain.alerts import (
    Alert,
    AlertSource,
    AlertStatus,
    ManualAlertDraft,
    cancel_manual_alert,
    draft_of,
    issue_manual_alert,
    update_manual_alert,
)
from news.domain.articles import (
    Article,
    ArticleChanges,
    ArticleDraft,
    ArticleEvent,
    ArticleState,
    create_article,
    publish_due,
    update_article,
    withdraw_article,
)
from news.domain.consultations import (
    ConsultationEvent,
    NoticeKind,
    consultation_article,
    notice_from_event,
)
from news.domain.errors import NotFound
from news.domain.events import alert_issued, alert_key, article_event
from news.domain.imgw import FeedKind, FetchOutcome
from news.domain.lifecycle import (
    AlertCancelled,
    AlertUpdated,
    ImgwScope,
    IngestPlan,
    NewAlert,
    plan_ingest,
)
from news.service.ports import NewsUnitOfWork
from shared.clock import Clock, utc_now

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ArticlePage:
    items: list[Article]
    total: int


@dataclass(frozen=True, slots=True)
class AlertChanges:
    """`PATCH /v1/alerts/{id}`: None leaves a field as the current message has it."""

    event: str | None = None
    level: int | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    areas: tuple[str, ...] | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    probability: int | None = None
    event_en: str | None = None
    headline_en: str | None = None
    description_en: str | None = None
    instruction_en: str | None = None

    def applied_to(self, draft: ManualAlertDraft) -> ManualAlertDraft:
        given = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if getattr(self, field.name) is not None
        }
        return replace(draft, **given)


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one fetch changed: the messages issued (Alert, Update, Cancel)."""

    plan: IngestPlan
    issued: tuple[Alert, ...]


class NewsService:
    def __init__(
        self,
        *,
        scope: ImgwScope,
        zone: ZoneInfo,
        area_names: Mapping[str, str],
        clock: Clock = utc_now,
    ) -> None:
        self._scope = scope
        self._zone = zone
        self._area_names = dict(area_names)
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    # --- articles --------------------------------------------------------------------

    async def create_article(self, uow: NewsUnitOfWork, draft: ArticleDraft) -> Article:
        article, events = create_article(draft, article_id=uuid.uuid4(), now=self.now())
        await uow.articles.add(article)
        self._stage_article_events(uow, article, events)
        await uow.commit()
        return article

    async def change_article(
        self, uow: NewsUnitOfWork, article_id: uuid.UUID, changes: ArticleChanges
    ) -> Article:
        current = await self._article(uow, article_id, for_update=True)
        changed, events = update_article(current, changes, now=self.now())
        if changed != current:
            await uow.articles.save(changed)
        self._stage_article_events(uow, changed, events)
        await uow.commit()
        return changed

    async def unpublish_article(self, uow: NewsUnitOfWork, article_id: uuid.UUID) -> Article:
        current = await self._article(uow, article_id, for_update=True)
        withdrawn, events = withdraw_article(current, now=self.now())
        if withdrawn != current:
            await uow.articles.save(withdrawn)
        self._stage_article_events(uow, withdrawn, events)
        await uow.commit()
        return withdrawn

    async def article(
        self, uow: NewsUnitOfWork, article_id: uuid.UUID, *, include_unpublished: bool
    ) -> Article:
        """One article; the public sees it only while it is published."""
        found = await self._article(uow, article_id)
        if not include_unpublished and not found.is_public(self.now()):
            raise NotFound(f"article {article_id} not found")
        return found

    async def public_articles(
        self, uow: NewsUnitOfWork, *, tag: str | None, limit: int, offset: int
    ) -> ArticlePage:
        items, total = await uow.articles.public_page(
            now=self.now(), tag=tag, limit=limit, offset=offset
        )
        return ArticlePage(items=items, total=total)

    async def publish_due_articles(self, uow: NewsUnitOfWork) -> int:
        """Publish the scheduled articles whose time has come; safe on every replica."""
        now = self.now()
        published = 0
        for article in await uow.articles.due_scheduled(now):
            changed, events = publish_due(article, now=now)
            if changed.state is ArticleState.PUBLISHED:
                await uow.articles.save(changed)
                self._stage_article_events(uow, changed, events)
                published += 1
        await uow.commit()
        return published

    async def next_publication(self, uow: NewsUnitOfWork) -> datetime | None:
        return await uow.articles.next_scheduled()

    async def on_consultation_event(
        self, uow: NewsUnitOfWork, event: ConsultationEvent
    ) -> Article | None:
        """The article telling residents about a consultation event (once per event).

        An announcement of a consultation that is already open makes no article of its
        own: intake publishes its opening right after, and one article says it all.
        """
        notice = notice_from_event(event)
        now = self.now()
        if (
            notice.kind is NoticeKind.ANNOUNCED
            and notice.opens_at is not None
            and notice.opens_at <= now
        ):
            return None
        article, events = consultation_article(notice, now=now, zone=self._zone)
        if not await uow.articles.add(article):
            return None  # the same event delivered twice: its article exists
        self._stage_article_events(uow, article, events)
        await uow.commit()
        return article

    def _stage_article_events(
        self, uow: NewsUnitOfWork, article: Article, events: tuple[ArticleEvent, ...]
    ) -> None:
        for event in events:
            uow.stage_event(article_event(event, article), key=article.id)

    async def _article(
        self, uow: NewsUnitOfWork, article_id: uuid.UUID, *, for_update: bool = False
    ) -> Article:
        found = await uow.articles.get(article_id, for_update=for_update)
        if found is None:
            raise NotFound(f"article {article_id} not found")
        return found

    # --- manual alerts ---------------------------------------------------------------

    async def issue_alert(self, uow: NewsUnitOfWork, draft: ManualAlertDraft) -> Alert:
        alert = issue_manual_alert(
            draft, alert_id=uuid.uuid4(), now=self.now(), area_names=self._area_names
        )
        await uow.alerts.add(alert)
        self._stage_alert(uow, alert)
        await uow.commit()
        return alert

    async def update_alert(
        self, uow: NewsUnitOfWork, alert_id: uuid.UUID, changes: AlertChanges
    ) -> Alert:
        """Replace a manual alert by an Update (a new message that references it)."""
        current = await self._alert(uow, alert_id, for_update=True)
        superseded, update = update_manual_alert(
            current,
            changes.applied_to(draft_of(current)),
            alert_id=uuid.uuid4(),
            now=self.now(),
            area_names=self._area_names,
        )
        await uow.alerts.set_status(superseded.id, superseded.status)
        await uow.alerts.add(update)
        self._stage_alert(uow, update)
        await uow.commit()
        return update

    async def cancel_alert(
        self, uow: NewsUnitOfWork, alert_id: uuid.UUID, *, note: str | None
    ) -> Alert:
        """Withdraw a manual alert with a Cancel message."""
        current = await self._alert(uow, alert_id, for_update=True)
        cancelled, cancel = cancel_manual_alert(
            current, alert_id=uuid.uuid4(), now=self.now(), note=note
        )
        await uow.alerts.set_status(cancelled.id, cancelled.status)
        await uow.alerts.add(cancel)
        self._stage_alert(uow, cancel)
        await uow.commit()
        return cancel

    async def alert(self, uow: NewsUnitOfWork, alert_id: uuid.UUID) -> Alert:
        return await self._alert(uow, alert_id)

    async def current_alerts(self, uow: NewsUnitOfWork) -> list[Alert]:
        return await uow.alerts.current(self.now())

    async def _alert(
        self, uow: NewsUnitOfWork, alert_id: uuid.UUID, *, for_update: bool = False
    ) -> Alert:
        found = await uow.alerts.get(alert_id, for_update=for_update)
        if found is None:
            raise NotFound(f"alert {alert_id} not found")
        return found

    def _stage_alert(self, uow: NewsUnitOfWork, alert: Alert) -> None:
        uow.stage_event(alert_issued(alert), key=alert_key(alert))

    # --- IMGW ------------------------------------------------------------------------

    async def ingest(self, uow: NewsUnitOfWork, outcome: FetchOutcome) -> IngestReport:
        """Apply one fetch of an IMGW feed: new warnings become Alerts, changed ones
        Updates, vanished ones Cancels (see `news.domain.lifecycle`).

        Replica-safe: the feed's lock serialises ingests, so the state compared is what
        every earlier ingest committed; and a message the store already has (same id, or
        an active message for the same IMGW key) is neither stored nor published again.
        """
        await uow.alerts.lock_feed(outcome.kind)
        source = source_of(outcome.kind)
        known = await uow.alerts.active_from(source)
        plan = plan_ingest(known, outcome, scope=self._scope, now=self.now())
        issued: list[Alert] = []
        for expired in plan.expired:
            await uow.alerts.set_status(expired.id, AlertStatus.EXPIRED)
        for decision in plan.decisions:
            match decision:
                case NewAlert(alert):
                    message = alert
                case AlertUpdated(update, replaced):
                    for old in replaced:
                        await uow.alerts.set_status(old.id, old.status)
                    message = update
                case AlertCancelled(cancel, cancelled):
                    await uow.alerts.set_status(cancelled.id, cancelled.status)
                    message = cancel
            if await uow.alerts.add(message):
                self._stage_alert(uow, message)
                issued.append(message)
        await uow.commit()
        return IngestReport(plan=plan, issued=tuple(issued))


def source_of(kind: FeedKind) -> AlertSource:
    return AlertSource.IMGW_METEO if kind is FeedKind.METEO else AlertSource.IMGW_HYDRO
