"""Articles: news written by the office or generated from consultation events.

States: draft → scheduled → published → withdrawn (a draft may be published at once).
A scheduled article becomes published when `publish_due` runs at or after `publish_at`;
`state_at(now)` already shows it as published, so readers never wait for the scheduler.
Changing a published article keeps its slug (links stay valid) and raises ArticleUpdated.

Markdown is rendered by markdown-it-py (CommonMark, raw HTML disabled) and the result is
sanitised by nh3 (ammonia) with an allow-list, so scripts, event handlers, iframes and
`javascript:` links cannot survive even if a renderer bug let them through.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

import nh3
from markdown_it import MarkdownIt

from news.domain.errors import FieldProblem, StateConflict, raise_if

TITLE_MAX = 200
LEAD_MAX = 600
BODY_MAX = 50_000
TAG_MAX = 40
TAGS_MAX = 10
SLUG_MAX = 80

_TAG = re.compile(r"^[0-9a-ząćęłńóśźż][0-9a-ząćęłńóśźż-]*$")
_TRANSLITERATION = str.maketrans({"ł": "l", "Ł": "L", "ß": "ss", "æ": "ae", "ø": "o"})

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5",
        "h6", "hr", "img", "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td",
        "th", "thead", "tr", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "th": {"style"},  # table alignment from markdown-it: text-align only (see filter)
    "td": {"style"},
    "ol": {"start"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_MARKDOWN.enable(["table", "strikethrough"])


class ArticleState(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


class ArticleOrigin(StrEnum):
    MANUAL = "manual"
    CONSULTATION = "consultation"


@dataclass(frozen=True, slots=True)
class Article:
    id: uuid.UUID
    slug: str
    title: str
    lead: str
    body_markdown: str
    body_html: str  # sanitised
    tags: tuple[str, ...]
    state: ArticleState
    publish_at: datetime | None  # when it is (or was) due; None for a draft
    published_at: datetime | None  # when it actually went public
    created_at: datetime
    updated_at: datetime
    origin: ArticleOrigin = ArticleOrigin.MANUAL
    consultation_id: uuid.UUID | None = None
    withdrawn_at: datetime | None = None
    title_en: str | None = None
    lead_en: str | None = None
    body_en_markdown: str | None = None
    body_en_html: str | None = None

    def state_at(self, now: datetime) -> ArticleState:
        if (
            self.state is ArticleState.SCHEDULED
            and self.publish_at is not None
            and self.publish_at <= now
        ):
            return ArticleState.PUBLISHED
        return self.state

    def is_public(self, now: datetime) -> bool:
        return self.state_at(now) is ArticleState.PUBLISHED

    def public_since(self) -> datetime | None:
        """When readers could first see it (a due scheduled article: its publish_at)."""
        if self.published_at is not None:
            return self.published_at
        return self.publish_at if self.state is ArticleState.SCHEDULED else None


# --- domain events ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArticlePublished:
    article_id: uuid.UUID
    slug: str
    title: str
    published_at: datetime
    tags: tuple[str, ...]
    origin: ArticleOrigin
    consultation_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class ArticleUpdated:
    article_id: uuid.UUID
    slug: str
    title: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ArticleWithdrawn:
    article_id: uuid.UUID
    slug: str
    withdrawn_at: datetime


ArticleEvent = ArticlePublished | ArticleUpdated | ArticleWithdrawn


# --- commands -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArticleDraft:
    """`POST /v1/articles`: publish_at None publishes now, unless `draft` is set."""

    title: str
    lead: str
    body: str
    tags: tuple[str, ...] = ()
    publish_at: datetime | None = None
    draft: bool = False
    title_en: str | None = None
    lead_en: str | None = None
    body_en: str | None = None


@dataclass(frozen=True, slots=True)
class ArticleChanges:
    """`PATCH /v1/articles/{id}`: None leaves a field as it is."""

    title: str | None = None
    lead: str | None = None
    body: str | None = None
    tags: tuple[str, ...] | None = None
    publish_at: datetime | None = None


def create_article(
    draft: ArticleDraft,
    *,
    article_id: uuid.UUID,
    now: datetime,
    origin: ArticleOrigin = ArticleOrigin.MANUAL,
    consultation_id: uuid.UUID | None = None,
) -> tuple[Article, tuple[ArticleEvent, ...]]:
    """A new article. A past or absent publish_at publishes now (no back-dating: the feed
    says when residents could first read it)."""
    problems: list[FieldProblem] = []
    title = _text(draft.title, "title", TITLE_MAX, problems)
    lead = _text(draft.lead, "lead", LEAD_MAX, problems)
    body = _text(draft.body, "body", BODY_MAX, problems)
    tags = _tags(draft.tags, problems)
    title_en = _optional(draft.title_en, "title_en", TITLE_MAX, problems)
    lead_en = _optional(draft.lead_en, "lead_en", LEAD_MAX, problems)
    body_en = _optional(draft.body_en, "body_en", BODY_MAX, problems)
    _aware(draft.publish_at, "publish_at", problems)
    raise_if(problems, "article")
    now = _moment(now)
    if draft.draft:
        state, publish_at, published_at = ArticleState.DRAFT, None, None
        if draft.publish_at is not None:
            publish_at = _moment(draft.publish_at)
    elif draft.publish_at is not None and _moment(draft.publish_at) > now:
        state, publish_at, published_at = (
            ArticleState.SCHEDULED,
            _moment(draft.publish_at),
            None,
        )
    else:
        state, publish_at, published_at = ArticleState.PUBLISHED, now, now
    article = Article(
        id=article_id,
        slug=slug_for(title, article_id),
        title=title,
        lead=lead,
        body_markdown=body,
        body_html=render_markdown(body),
        tags=tags,
        state=state,
        publish_at=publish_at,
        published_at=published_at,
        created_at=now,
        updated_at=now,
        origin=origin,
        consultation_id=consultation_id,
        title_en=title_en,
        lead_en=lead_en,
        body_en_markdown=body_en,
        body_en_html=render_markdown(body_en) if body_en else None,
    )
    events: tuple[ArticleEvent, ...] = ()
    if state is ArticleState.PUBLISHED:
        events = (_published(article),)
    return article, events


def update_article(
    article: Article, changes: ArticleChanges, *, now: datetime
) -> tuple[Article, tuple[ArticleEvent, ...]]:
    """Edit an article. Rescheduling is for drafts and scheduled ones only; a withdrawn
    article is closed. Publishing a draft happens through `publish_at` (a past one: now)."""
    state = article.state_at(now)
    if state is ArticleState.WITHDRAWN:
        raise StateConflict(
            "a withdrawn article can no longer be changed",
            (FieldProblem("state", "withdrawn"),),
        )
    problems: list[FieldProblem] = []
    title = (
        article.title
        if changes.title is None
        else _text(changes.title, "title", TITLE_MAX, problems)
    )
    lead = article.lead if changes.lead is None else _text(changes.lead, "lead", LEAD_MAX, problems)
    body = (
        article.body_markdown
        if changes.body is None
        else _text(changes.body, "body", BODY_MAX, problems)
    )
    tags = article.tags if changes.tags is None else _tags(changes.tags, problems)
    _aware(changes.publish_at, "publish_at", problems)
    raise_if(problems, "article")
    if changes.publish_at is not None and state is ArticleState.PUBLISHED:
        raise StateConflict(
            "the article is already published; publish_at can no longer change",
            (FieldProblem("publish_at", "already published"),),
        )
    now = _moment(now)
    updated = replace(
        article,
        title=title,
        lead=lead,
        body_markdown=body,
        body_html=render_markdown(body) if body != article.body_markdown else article.body_html,
        tags=tags,
        updated_at=now,
    )
    if updated == replace(article, updated_at=now) and changes.publish_at is None:
        return article, ()  # nothing changed: no event, no new timestamp
    events: list[ArticleEvent] = []
    if state is ArticleState.PUBLISHED:
        if article.state is ArticleState.SCHEDULED:  # due but not yet marked
            updated, published = _publish(updated, article.publish_at or now)
            events.append(published)
        events.append(ArticleUpdated(updated.id, updated.slug, updated.title, now))
    elif changes.publish_at is not None:
        if _moment(changes.publish_at) > now:
            updated = replace(
                updated, state=ArticleState.SCHEDULED, publish_at=_moment(changes.publish_at)
            )
        else:
            updated, published = _publish(replace(updated, publish_at=now), now)
            events.append(published)
    return updated, tuple(events)


def publish_due(article: Article, *, now: datetime) -> tuple[Article, tuple[ArticleEvent, ...]]:
    """The scheduler's step: a scheduled article whose time has come becomes published."""
    if article.state is not ArticleState.SCHEDULED or article.state_at(now) is not (
        ArticleState.PUBLISHED
    ):
        return article, ()
    published, event = _publish(article, article.publish_at or _moment(now))
    return published, (event,)


def withdraw_article(
    article: Article, *, now: datetime
) -> tuple[Article, tuple[ArticleEvent, ...]]:
    """Unpublish. Withdrawing twice is harmless (no second event); a draft is refused."""
    if article.state is ArticleState.WITHDRAWN:
        return article, ()
    if article.state is ArticleState.DRAFT:
        raise StateConflict(
            "a draft was never published; delete or publish it instead",
            (FieldProblem("state", "draft"),),
        )
    now = _moment(now)
    withdrawn = replace(article, state=ArticleState.WITHDRAWN, withdrawn_at=now, updated_at=now)
    return withdrawn, (ArticleWithdrawn(article.id, article.slug, now),)


# --- text rules ---------------------------------------------------------------------


def render_markdown(markdown: str) -> str:
    """Markdown → HTML that is safe to embed in a page or an Atom feed."""
    html = _MARKDOWN.render(markdown)
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_keep_attribute,
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def _keep_attribute(tag: str, name: str, value: str) -> str | None:
    # markdown-it writes table alignment as style="text-align:..."; nothing else passes.
    if name == "style":
        return value if re.fullmatch(r"text-align:(left|right|center)", value) else None
    return value


def normalise_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Lower case, blanks to hyphens, duplicates dropped, first occurrence order kept."""
    seen: dict[str, None] = {}
    for tag in tags:
        clean = "-".join(tag.strip().lower().split())
        if clean:
            seen.setdefault(clean, None)
    return tuple(seen)


def slugify(text: str) -> str:
    """`Żłobek w Gassach!` → `zlobek-w-gassach` (ASCII, for URLs)."""
    ascii_text = (
        unicodedata.normalize("NFKD", text.translate(_TRANSLITERATION))
        .encode("ascii", "ignore")
        .decode()
    )
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:SLUG_MAX].rstrip("-") or "artykul"


def slug_for(title: str, article_id: uuid.UUID) -> str:
    """Readable and unique without a database look-up: the title plus 8 hex of the id."""
    return f"{slugify(title)}-{article_id.hex[:8]}"


def _tags(tags: Iterable[str], problems: list[FieldProblem]) -> tuple[str, ...]:
    clean = normalise_tags(tags)
    if len(clean) > TAGS_MAX:
        problems.append(FieldProblem("tags", f"at most {TAGS_MAX} tags"))
    for position, tag in enumerate(clean):
        if len(tag) > TAG_MAX or not _TAG.match(tag):
            problems.append(
                FieldProblem(
                    f"tags[{position}]",
                    f"letters, digits and hyphens only, at most {TAG_MAX} characters",
                )
            )
    return clean


def _text(value: str, name: str, limit: int, problems: list[FieldProblem]) -> str:
    text = value.strip()
    if not text:
        problems.append(FieldProblem(name, "must not be empty"))
    elif len(text) > limit:
        problems.append(FieldProblem(name, f"at most {limit} characters"))
    return text


def _optional(value: str | None, name: str, limit: int, problems: list[FieldProblem]) -> str | None:
    if value is None or not value.strip():
        return None
    return _text(value, name, limit, problems)


def _aware(value: datetime | None, name: str, problems: list[FieldProblem]) -> None:
    if value is not None and value.tzinfo is None:
        problems.append(FieldProblem(name, "time zone required"))


def _moment(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def _publish(article: Article, at: datetime) -> tuple[Article, ArticlePublished]:
    published = replace(article, state=ArticleState.PUBLISHED, published_at=_moment(at))
    return published, _published(published)


def _published(article: Article) -> ArticlePublished:
    assert article.published_at is not None
    return ArticlePublished(
        article_id=article.id,
        slug=article.slug,
        title=article.title,
        published_at=article.published_at,
        tags=article.tags,
        origin=article.origin,
        consultation_id=article.consultation_id,
    )
