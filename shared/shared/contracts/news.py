"""Contracts published by the news service: articles and alerts.

`news.articles.v1` (key: article id) tells who else cares that an article went public,
changed or was withdrawn; notifications emails the new ones to their subscribers.
`news.alerts.v1` (key: id of the first message of the alert, so an alert's Update and
Cancel follow it on the same partition) carries every alert message as CAP understands
it: a new Alert, an Update replacing earlier messages, or a Cancel withdrawing them.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

from shared.contracts.envelope import TOLERANT_READER, EventPayload
from shared.contracts.fields import Line, SafeDatetime, Text

ARTICLE_TITLE_MAX = 200
ARTICLE_LEAD_MAX = 600
ALERT_EVENT_MAX = 100
# CAP 1.2 asks for headlines under 160 characters (they reach SMS and pagers).
ALERT_HEADLINE_MAX = 160
ALERT_DESCRIPTION_MAX = 20_000
ALERT_INSTRUCTION_MAX = 2000
ALERT_AREA_MAX = 300

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")]
Tag = Annotated[str, Field(pattern=r"^[0-9a-ząćęłńóśźż][0-9a-ząćęłńóśźż-]{0,39}$")]
ArticleTitle = Annotated[str, Text(ARTICLE_TITLE_MAX)]
ArticleLead = Annotated[str, Text(ARTICLE_LEAD_MAX)]
AlertEvent = Annotated[str, Text(ALERT_EVENT_MAX, multiline=False)]
AlertHeadline = Annotated[str, Text(ALERT_HEADLINE_MAX, multiline=False)]
AlertDescription = Annotated[str, Text(ALERT_DESCRIPTION_MAX)]
AlertInstruction = Annotated[str, Text(ALERT_INSTRUCTION_MAX)]
AlertLevel = Annotated[int, Field(ge=1, le=3)]


class ArticleOrigin(StrEnum):
    MANUAL = "manual"  # written by the gmina's office
    CONSULTATION = "consultation"  # generated from an intake consultation event


class ArticlePublished(EventPayload):
    """An article became public (at once, or when its scheduled time came)."""

    event_type = "news.ArticlePublished"

    article_id: uuid.UUID
    slug: Slug
    title: ArticleTitle
    lead: ArticleLead
    tags: tuple[Tag, ...] = Field(default=(), max_length=10)
    origin: ArticleOrigin
    consultation_id: uuid.UUID | None = None
    published_at: SafeDatetime
    title_en: ArticleTitle | None = None
    lead_en: ArticleLead | None = None


class ArticleUpdated(EventPayload):
    """A public article was changed (its slug, hence its address, stays)."""

    event_type = "news.ArticleUpdated"

    article_id: uuid.UUID
    slug: Slug
    title: ArticleTitle
    lead: ArticleLead
    tags: tuple[Tag, ...] = Field(default=(), max_length=10)
    updated_at: SafeDatetime


class ArticleWithdrawn(EventPayload):
    """A public article was unpublished."""

    event_type = "news.ArticleWithdrawn"

    article_id: uuid.UUID
    slug: Slug
    withdrawn_at: SafeDatetime


class AlertMessageType(StrEnum):
    """CAP `msgType`."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"


class AlertSourceKind(StrEnum):
    MANUAL = "manual"  # issued by the gmina's staff
    IMGW_METEO = "imgw_meteo"  # IMGW-PIB meteorological warnings
    IMGW_HYDRO = "imgw_hydro"  # IMGW-PIB hydrological warnings


class AlertAreaCode(BaseModel):
    """A CAP geocode: `kind` is its valueName (`TERYT`, `IMGW_KOD_ZLEWNI`)."""

    model_config = TOLERANT_READER

    kind: Line
    value: Line


class AlertAreaData(BaseModel):
    model_config = TOLERANT_READER

    description: Annotated[str, Text(ALERT_AREA_MAX)]
    codes: tuple[AlertAreaCode, ...] = ()


class AlertReference(BaseModel):
    """An earlier message this one replaces (CAP `references`: sender,identifier,sent)."""

    model_config = TOLERANT_READER

    alert_id: uuid.UUID
    sent: SafeDatetime


class AlertIssued(EventPayload):
    """One alert message. An Update or a Cancel names every earlier message of its chain
    in `references`, oldest first; the first of them is the Kafka key."""

    event_type = "news.AlertIssued"

    alert_id: uuid.UUID
    message_type: AlertMessageType
    references: tuple[AlertReference, ...] = ()
    source: AlertSourceKind
    issuer: Annotated[str, Text(300)] | None = None
    category: Line
    level: AlertLevel
    probability: Annotated[int, Field(ge=0, le=100)] | None = None
    event: AlertEvent
    headline: AlertHeadline
    description: AlertDescription | None = None
    instruction: AlertInstruction | None = None
    areas: tuple[AlertAreaData, ...]
    onset: SafeDatetime
    expires: SafeDatetime | None = Field(
        default=None, description="None: until further notice (open-ended IMGW warnings)."
    )
    sent: SafeDatetime
    event_en: AlertEvent | None = None
    headline_en: AlertHeadline | None = None
    description_en: AlertDescription | None = None
    instruction_en: AlertInstruction | None = None

    @property
    def chain_id(self) -> uuid.UUID:
        """The first message of the alert: what every message of it is keyed by."""
        return self.references[0].alert_id if self.references else self.alert_id
