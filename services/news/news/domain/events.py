"""Domain values as the integration events of `news.articles.v1` and `news.alerts.v1`.

One place maps what the domain decided onto the contracts other services read, so the
HTTP routes, the scheduler, the consultation consumer and the IMGW poller all publish the
same shapes.
"""

from __future__ import annotations

import uuid

from news.domain.alerts import Alert
from news.domain.articles import (
    Article,
    ArticleEvent,
    ArticlePublished,
    ArticleUpdated,
    ArticleWithdrawn,
)
from shared.contracts import news as contract


def alert_issued(alert: Alert) -> contract.AlertIssued:
    return contract.AlertIssued(
        alert_id=alert.id,
        message_type=contract.AlertMessageType(alert.message_type.value),
        references=tuple(
            contract.AlertReference(alert_id=ref.alert_id, sent=ref.sent)
            for ref in alert.references
        ),
        source=contract.AlertSourceKind(alert.source.value),
        issuer=alert.issuer,
        category=alert.category.value,
        level=alert.level,
        probability=alert.probability,
        event=alert.event,
        headline=alert.headline,
        description=alert.description or None,
        instruction=alert.instruction or None,
        areas=tuple(
            contract.AlertAreaData(
                description=area.description,
                codes=tuple(
                    contract.AlertAreaCode(kind=code.kind.value, value=code.value)
                    for code in area.codes
                ),
            )
            for area in alert.areas
        ),
        onset=alert.onset,
        expires=alert.expires,
        sent=alert.sent,
        event_en=alert.event_en,
        headline_en=alert.headline_en,
        description_en=alert.description_en or None,
        instruction_en=alert.instruction_en or None,
    )


def alert_key(alert: Alert) -> uuid.UUID:
    """The Kafka key of an alert message: its chain's first message, so an Update or a
    Cancel is never read before the Alert it refers to."""
    return alert.references[0].alert_id if alert.references else alert.id


def article_event(
    event: ArticleEvent, article: Article
) -> contract.ArticlePublished | contract.ArticleUpdated | contract.ArticleWithdrawn:
    """The contract of a domain article event; `article` is the article after it."""
    if isinstance(event, ArticlePublished):
        return contract.ArticlePublished(
            article_id=event.article_id,
            slug=event.slug,
            title=event.title,
            lead=article.lead,
            tags=event.tags,
            origin=contract.ArticleOrigin(event.origin.value),
            consultation_id=event.consultation_id,
            published_at=event.published_at,
            title_en=article.title_en,
            lead_en=article.lead_en,
        )
    if isinstance(event, ArticleUpdated):
        return contract.ArticleUpdated(
            article_id=event.article_id,
            slug=event.slug,
            title=event.title,
            lead=article.lead,
            tags=article.tags,
            updated_at=event.updated_at,
        )
    assert isinstance(event, ArticleWithdrawn)
    return contract.ArticleWithdrawn(
        article_id=event.article_id, slug=event.slug, withdrawn_at=event.withdrawn_at
    )
