"""HTTP API of news: thin translation between requests and the use cases.

Request models are strict (unknown fields are refused) and built from the shared field
types; responses are typed models, the feeds Atom and the alerts also CAP 1.2 XML.
Domain errors become JSON errors in the shared handlers (`shared.platform.http`).
"""
# No `from __future__ import annotations`: FastAPI must evaluate the route signatures,
# which refer to values local to build_router.

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from news.domain.alerts import Alert, AlertStatus, Category, ManualAlertDraft
from news.domain.articles import Article, ArticleChanges, ArticleDraft, ArticleOrigin, ArticleState
from news.domain.cap import CAP_MEDIA_TYPE, CapSender, render_cap, severity
from news.domain.feeds import ATOM_MEDIA_TYPE, FeedInfo, alerts_feed, articles_feed
from news.service.handlers import AlertChanges, NewsService
from news.service.ports import NewsUnitOfWork
from shared.contracts.fields import PageLimit, PageOffset, SafeDatetime, Text
from shared.contracts.links import Page, item_link, page_link
from shared.contracts.news import AlertMessageType, AlertSourceKind
from shared.platform.gmina import GminaProfile
from shared.platform.http import Role, TokenAuth, error_responses
from shared.platform.http_guards import body_limit

STRICT = ConfigDict(extra="forbid", frozen=True)

ArticleTitle = Annotated[str, Text(200, multiline=False)]
ArticleLead = Annotated[str, Text(600)]
ArticleBody = Annotated[str, Text(50_000)]
TagIn = Annotated[str, Text(40, multiline=False)]
Tags = Annotated[tuple[TagIn, ...], Field(max_length=10)]
TagQuery = Annotated[str, Text(40, multiline=False)]
AlertEventIn = Annotated[str, Text(100, multiline=False)]
HeadlineIn = Annotated[str, Text(160, multiline=False)]
DescriptionIn = Annotated[str, Text(4000)]
InstructionIn = Annotated[str, Text(2000)]
NoteIn = Annotated[str, Text(1000)]
# A powiat (4 digits) or a gmina (7 digits, the last one its type).
TerytCode = Annotated[str, Field(pattern=r"^([0-9]{4}|[0-9]{7})$")]
Areas = Annotated[tuple[TerytCode, ...], Field(min_length=1, max_length=50)]
Level = Annotated[StrictInt, Field(ge=1, le=3)]
Probability = Annotated[StrictInt, Field(ge=0, le=100)]
# Bodies bigger than the platform's 16 KiB default: an article in two languages is up to
# ~101,600 characters (≤ 4 bytes each in UTF-8), an alert in two languages ~12,600 plus
# its areas. Larger bodies are refused with 413 before they are read.
ARTICLE_MAX_BYTES = 512 * 1024
ALERT_MAX_BYTES = 64 * 1024


# --- articles ---------------------------------------------------------------------------


class ArticleCreate(BaseModel):
    """A new article. Without `publish_at` (or with a past one) it is published at once;
    a future `publish_at` schedules it; `draft` keeps it unpublished."""

    model_config = STRICT

    title: ArticleTitle
    lead: ArticleLead
    body: ArticleBody = Field(description="Markdown (CommonMark, tables); rendered to safe HTML")
    tags: Tags = ()
    publish_at: SafeDatetime | None = None
    draft: StrictBool = False
    title_en: ArticleTitle | None = None
    lead_en: ArticleLead | None = None
    body_en: ArticleBody | None = None


class ArticlePatch(BaseModel):
    """Fields to change; absent ones stay. `publish_at` (re)schedules a draft or a
    scheduled article, or publishes it now when past."""

    model_config = STRICT

    title: ArticleTitle | None = None
    lead: ArticleLead | None = None
    body: ArticleBody | None = None
    tags: Tags | None = None
    publish_at: SafeDatetime | None = None


class ArticleView(BaseModel):
    id: uuid.UUID
    slug: str
    url: str
    title: str
    lead: str
    body_html: str
    tags: tuple[str, ...]
    state: ArticleState
    publish_at: datetime | None
    published_at: datetime | None
    withdrawn_at: datetime | None
    updated_at: datetime
    origin: ArticleOrigin
    consultation_id: uuid.UUID | None
    title_en: str | None
    lead_en: str | None
    body_en_html: str | None


class ArticlePageView(BaseModel):
    items: list[ArticleView]
    total: int
    limit: int
    offset: int


# --- alerts -----------------------------------------------------------------------------


class AlertCreate(BaseModel):
    """A manual alert (CAP Alert) for TERYT areas, valid from onset to expires."""

    model_config = STRICT

    event: AlertEventIn
    level: Level = Field(description="1 yellow (Moderate), 2 orange (Severe), 3 red (Extreme)")
    headline: HeadlineIn
    description: DescriptionIn
    instruction: InstructionIn | None = None
    areas: Areas
    onset: SafeDatetime
    expires: SafeDatetime
    probability: Probability | None = None
    category: Category = Category.SAFETY
    event_en: AlertEventIn | None = None
    headline_en: HeadlineIn | None = None
    description_en: DescriptionIn | None = None
    instruction_en: InstructionIn | None = None


class AlertPatch(BaseModel):
    """What changes; the answer is the Update message replacing the alert."""

    model_config = STRICT

    event: AlertEventIn | None = None
    level: Level | None = None
    headline: HeadlineIn | None = None
    description: DescriptionIn | None = None
    instruction: InstructionIn | None = None
    areas: Areas | None = None
    onset: SafeDatetime | None = None
    expires: SafeDatetime | None = None
    probability: Probability | None = None
    event_en: AlertEventIn | None = None
    headline_en: HeadlineIn | None = None
    description_en: DescriptionIn | None = None
    instruction_en: InstructionIn | None = None


class AlertCancel(BaseModel):
    model_config = STRICT

    note: NoteIn | None = Field(default=None, description="Why, shown in the Cancel message")


class AreaCodeView(BaseModel):
    kind: str
    value: str


class AreaView(BaseModel):
    description: str
    codes: list[AreaCodeView]


class ReferenceView(BaseModel):
    alert_id: uuid.UUID
    sent: datetime


class AlertView(BaseModel):
    id: uuid.UUID
    message_type: AlertMessageType
    references: list[ReferenceView]
    status: AlertStatus
    in_force: bool = Field(description="Current and already started (onset passed)")
    source: AlertSourceKind
    issuer: str | None
    category: Category
    level: int
    severity: str = Field(description="CAP severity of the level")
    probability: int | None
    event: str
    headline: str
    description: str
    instruction: str | None
    areas: list[AreaView]
    onset: datetime
    expires: datetime | None
    sent: datetime
    event_en: str | None
    headline_en: str | None
    description_en: str | None
    instruction_en: str | None
    cap_url: str


@dataclass(frozen=True, slots=True)
class Publishing:
    """Where things are found from outside: the web pages and this API."""

    public_base_url: str  # the web front (article and alert pages)
    api_public_url: str  # this service (feeds, CAP documents)
    profile: GminaProfile

    def article_url(self, article: Article) -> str:
        return item_link(self.public_base_url, Page.NEWS, article.slug)

    def alert_page(self, alert: Alert) -> str:
        return item_link(self.public_base_url, Page.ALERTS, str(alert.id))

    def cap_url(self, alert: Alert) -> str:
        return f"{self.api_public_url.rstrip('/')}/v1/alerts/{alert.id}.cap"

    def cap_sender(self) -> CapSender:
        profile = self.profile
        return CapSender(
            sender=profile.strategy_email,
            name=profile.name,
            name_en=profile.name_en,
            zone=profile.zone,
            gmina_teryt=profile.teryt,
            web=profile.website,
            contact=profile.strategy_email,
        )

    def feed(self, kind: str, title: str, page: Page, subtitle: str) -> FeedInfo:
        host = urlsplit(self.profile.website).hostname or "localhost"
        return FeedInfo(
            feed_id=f"tag:{host},2026:strategia:{kind}",
            title=title,
            self_url=f"{self.api_public_url.rstrip('/')}/feeds/{kind}.atom",
            site_url=page_link(self.public_base_url, page),
            author=self.profile.name,
            author_email=self.profile.strategy_email,
            subtitle=subtitle,
        )


def article_view(article: Article, now: datetime, publishing: Publishing) -> ArticleView:
    return ArticleView(
        id=article.id,
        slug=article.slug,
        url=publishing.article_url(article),
        title=article.title,
        lead=article.lead,
        body_html=article.body_html,
        tags=article.tags,
        state=article.state,
        publish_at=article.publish_at,
        # A scheduled article is public from publish_at on, even before the scheduler ran.
        published_at=article.published_at
        or (article.publish_at if article.is_public(now) else None),
        withdrawn_at=article.withdrawn_at,
        updated_at=article.updated_at,
        origin=article.origin,
        consultation_id=article.consultation_id,
        title_en=article.title_en,
        lead_en=article.lead_en,
        body_en_html=article.body_en_html,
    )


def alert_view(alert: Alert, now: datetime, publishing: Publishing) -> AlertView:
    return AlertView(
        id=alert.id,
        message_type=AlertMessageType(alert.message_type.value),
        references=[
            ReferenceView(alert_id=ref.alert_id, sent=ref.sent) for ref in alert.references
        ],
        status=alert.status_at(now),
        in_force=alert.is_in_force(now),
        source=AlertSourceKind(alert.source.value),
        issuer=alert.issuer,
        category=alert.category,
        level=alert.level,
        severity=severity(alert.level).value,
        probability=alert.probability,
        event=alert.event,
        headline=alert.headline,
        description=alert.description,
        instruction=alert.instruction,
        areas=[
            AreaView(
                description=area.description,
                codes=[AreaCodeView(kind=code.kind.value, value=code.value) for code in area.codes],
            )
            for area in alert.areas
        ],
        onset=alert.onset,
        expires=alert.expires,
        sent=alert.sent,
        event_en=alert.event_en,
        headline_en=alert.headline_en,
        description_en=alert.description_en,
        instruction_en=alert.instruction_en,
        cap_url=publishing.cap_url(alert),
    )


def _xml_response(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": description,
            "content": {media_type: {"schema": {"type": "string"}}},
        }
    }


FEED_LIMIT = 50


def build_router(
    service: NewsService,
    unit_of_work: Callable[[], NewsUnitOfWork],
    auth: TokenAuth,
    publishing: Publishing,
) -> APIRouter:
    router = APIRouter()
    admin = Depends(auth.require(Role.ADMIN))
    as_admin = error_responses(401, 403)

    # --- articles -----------------------------------------------------------------------

    @router.post(
        "/v1/articles",
        status_code=status.HTTP_201_CREATED,
        response_model=ArticleView,
        dependencies=[admin],
        responses=as_admin,
        tags=["articles"],
        openapi_extra=body_limit(ARTICLE_MAX_BYTES),
    )
    async def create_article(request: ArticleCreate) -> ArticleView:
        async with unit_of_work() as uow:
            article = await service.create_article(uow, ArticleDraft(**dict(request)))
        return article_view(article, service.now(), publishing)

    @router.get("/v1/articles", response_model=ArticlePageView, tags=["articles"])
    async def list_articles(
        tag: Annotated[TagQuery | None, Query(description="Only articles with this tag")] = None,
        limit: Annotated[PageLimit, Query()] = 20,
        offset: Annotated[PageOffset, Query()] = 0,
    ) -> ArticlePageView:
        """Published articles, newest first."""
        wanted = "-".join(tag.lower().split()) if tag is not None else None
        async with unit_of_work() as uow:
            page = await service.public_articles(uow, tag=wanted, limit=limit, offset=offset)
        return ArticlePageView(
            items=[article_view(article, service.now(), publishing) for article in page.items],
            total=page.total,
            limit=limit,
            offset=offset,
        )

    @router.get(
        "/v1/articles/{article_id}",
        response_model=ArticleView,
        responses=error_responses(401, 404),
        tags=["articles"],
    )
    async def get_article(article_id: uuid.UUID, request: Request) -> ArticleView:
        """A published article; with the admin token also a draft, scheduled or
        withdrawn one."""
        role = await auth.optional_role(request)
        async with unit_of_work() as uow:
            article = await service.article(uow, article_id, include_unpublished=role is Role.ADMIN)
        return article_view(article, service.now(), publishing)

    @router.patch(
        "/v1/articles/{article_id}",
        response_model=ArticleView,
        dependencies=[admin],
        responses={**as_admin, **error_responses(404, 409)},
        tags=["articles"],
        openapi_extra=body_limit(ARTICLE_MAX_BYTES),
    )
    async def patch_article(article_id: uuid.UUID, request: ArticlePatch) -> ArticleView:
        async with unit_of_work() as uow:
            article = await service.change_article(uow, article_id, ArticleChanges(**dict(request)))
        return article_view(article, service.now(), publishing)

    @router.post(
        "/v1/articles/{article_id}/unpublish",
        response_model=ArticleView,
        dependencies=[admin],
        responses={**as_admin, **error_responses(404, 409)},
        tags=["articles"],
    )
    async def unpublish_article(article_id: uuid.UUID) -> ArticleView:
        """Withdraw a published or scheduled article (again: no change)."""
        async with unit_of_work() as uow:
            article = await service.unpublish_article(uow, article_id)
        return article_view(article, service.now(), publishing)

    @router.get(
        "/feeds/articles.atom",
        response_class=Response,
        responses=_xml_response(ATOM_MEDIA_TYPE, "Atom 1.0 feed of the newest articles"),
        tags=["feeds"],
    )
    async def articles_atom() -> Response:
        async with unit_of_work() as uow:
            page = await service.public_articles(uow, tag=None, limit=FEED_LIMIT, offset=0)
        document = articles_feed(
            page.items,
            publishing.feed(
                "articles",
                f"{publishing.profile.name} — aktualności",
                Page.NEWS,
                "Aktualności, konsultacje i prace nad strategią rozwoju gminy",
            ),
            now=service.now(),
            article_url=publishing.article_url,
            limit=FEED_LIMIT,
        )
        return Response(document, media_type=ATOM_MEDIA_TYPE)

    # --- alerts -------------------------------------------------------------------------

    @router.post(
        "/v1/alerts",
        status_code=status.HTTP_201_CREATED,
        response_model=AlertView,
        dependencies=[admin],
        responses=as_admin,
        tags=["alerts"],
        openapi_extra=body_limit(ALERT_MAX_BYTES),
    )
    async def issue_alert(request: AlertCreate) -> AlertView:
        async with unit_of_work() as uow:
            alert = await service.issue_alert(uow, ManualAlertDraft(**dict(request)))
        return alert_view(alert, service.now(), publishing)

    @router.get("/v1/alerts/active", response_model=list[AlertView], tags=["alerts"])
    async def active_alerts() -> list[AlertView]:
        """Alerts neither replaced, cancelled nor expired (expired ones drop out by
        themselves), newest first; `in_force` tells whether the onset has passed."""
        async with unit_of_work() as uow:
            alerts = await service.current_alerts(uow)
        now = service.now()
        return [alert_view(alert, now, publishing) for alert in alerts]

    @router.get(
        "/v1/alerts/{alert_id}.cap",
        response_class=Response,
        responses={
            **_xml_response(CAP_MEDIA_TYPE, "The message as OASIS CAP 1.2"),
            **error_responses(404),
        },
        tags=["alerts"],
    )
    async def alert_cap(alert_id: uuid.UUID) -> Response:
        async with unit_of_work() as uow:
            alert = await service.alert(uow, alert_id)
        document = render_cap(alert, publishing.cap_sender(), web=publishing.alert_page(alert))
        return Response(document, media_type=CAP_MEDIA_TYPE)

    @router.get(
        "/v1/alerts/{alert_id}",
        response_model=AlertView,
        responses=error_responses(404),
        tags=["alerts"],
    )
    async def get_alert(alert_id: uuid.UUID) -> AlertView:
        """Any message, also a replaced or cancelled one (see `status`)."""
        async with unit_of_work() as uow:
            alert = await service.alert(uow, alert_id)
        return alert_view(alert, service.now(), publishing)

    @router.patch(
        "/v1/alerts/{alert_id}",
        response_model=AlertView,
        dependencies=[admin],
        responses={**as_admin, **error_responses(404, 409)},
        tags=["alerts"],
        openapi_extra=body_limit(ALERT_MAX_BYTES),
    )
    async def update_alert(alert_id: uuid.UUID, request: AlertPatch) -> AlertView:
        """Issue an Update replacing a manual alert; the answer is the new message (its
        `references` name the replaced ones)."""
        async with unit_of_work() as uow:
            update = await service.update_alert(uow, alert_id, AlertChanges(**dict(request)))
        return alert_view(update, service.now(), publishing)

    @router.post(
        "/v1/alerts/{alert_id}/cancel",
        response_model=AlertView,
        dependencies=[admin],
        responses={**as_admin, **error_responses(404, 409)},
        tags=["alerts"],
    )
    async def cancel_alert(
        alert_id: uuid.UUID, request: Annotated[AlertCancel | None, Body()] = None
    ) -> AlertView:
        """Withdraw a manual alert; the answer is the Cancel message."""
        note = request.note if request is not None else None
        async with unit_of_work() as uow:
            cancel = await service.cancel_alert(uow, alert_id, note=note)
        return alert_view(cancel, service.now(), publishing)

    @router.get(
        "/feeds/alerts.atom",
        response_class=Response,
        responses=_xml_response(
            ATOM_MEDIA_TYPE, "Atom 1.0 feed of the current alerts, each a CAP 1.2 message"
        ),
        tags=["feeds"],
    )
    async def alerts_atom() -> Response:
        async with unit_of_work() as uow:
            alerts = await service.current_alerts(uow)
        document = alerts_feed(
            alerts,
            publishing.feed(
                "alerts",
                f"{publishing.profile.name} — ostrzeżenia",
                Page.ALERTS,
                "Ostrzeżenia IMGW-PIB i komunikaty gminy (CAP 1.2)",
            ),
            publishing.cap_sender(),
            now=service.now(),
            cap_url=publishing.cap_url,
            web_url=publishing.alert_page,
        )
        return Response(document, media_type=ATOM_MEDIA_TYPE)

    return router
