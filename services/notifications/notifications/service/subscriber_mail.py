"""Fan-out: an alert message or a published article becomes one email per subscriber.

Runs in the inbox unit of work of the event, so the deliveries exist if and only if the
event counts as handled. The message is rendered once per language and stored once; the
deliveries are queued by one set-based insert over the confirmed subscribers of the topic
(see `Deliveries.fan_out`), at most one per subscriber per alert message or article
whatever redelivery or replay brings. Alerts are queued urgent, so the dispatcher sends
them before any other mail; news and consultation announcements are bulk, sent last.

The deliveries keep no personal link: `PersonalLinks.fill_in`, a dispatcher hook, derives
each subscriber's link token and puts the manage and unsubscribe links into the email
just before it is sent.

Who gets an alert message: confirmed alert subscribers whose minimum level it reaches,
and — for an Update or a Cancel — also everyone who received an earlier message of the
same alert, so a lowered level or a withdrawal reaches every person who was warned.
"""

from __future__ import annotations

import logging
from typing import Any

from notifications.domain.deliveries import Delivery, DeliveryPriority, Purpose
from notifications.domain.subscriber_mail import (
    SUBSCRIBER_PURPOSES,
    compose_alert,
    compose_article,
    topic_of_article,
    with_subscriber_links,
)
from notifications.domain.subscriptions import (
    SubscriberLinks,
    SubscriberLinkTokens,
    SubscriptionTopic,
)
from notifications.service.ports import Audience, FanOut, NotificationsUnitOfWork
from shared.contracts.envelope import Envelope
from shared.contracts.intake import Language
from shared.contracts.links import Page, item_link
from shared.contracts.news import AlertIssued, ArticlePublished
from shared.platform.gmina import GminaProfile

log = logging.getLogger(__name__)


class SubscriberMail:
    def __init__(self, profile: GminaProfile, *, public_base_url: str) -> None:
        self._profile = profile
        self._public_base_url = public_base_url

    async def on_alert_issued(self, uow: NotificationsUnitOfWork, envelope: Envelope[Any]) -> None:
        event: AlertIssued = envelope.data
        alert_url = item_link(self._public_base_url, Page.ALERTS, str(event.alert_id))
        contents = {
            language: await uow.deliveries.add_content(
                compose_alert(event, self._profile, language, alert_url=alert_url)
            )
            for language in Language
        }
        queued = await uow.deliveries.fan_out(
            FanOut(
                source_event_id=envelope.event_id,
                correlation_id=envelope.correlation_id,
                purpose=Purpose.ALERT,
                priority=DeliveryPriority.URGENT,
                subject_key=str(event.alert_id),
                contents=contents,
                audience=Audience(
                    topic=SubscriptionTopic.ALERTS,
                    level=event.level,
                    receivers_of=tuple(str(ref.alert_id) for ref in event.references),
                ),
                gmina_teryt=self._profile.teryt,
            )
        )
        await self._queued(uow, queued, envelope, kind=f"alert {event.message_type.value}")

    async def on_article_event(self, uow: NotificationsUnitOfWork, envelope: Envelope[Any]) -> None:
        """Only a newly published article is announced; edits and withdrawals are not
        news to mail about."""
        event = envelope.data
        if not isinstance(event, ArticlePublished):
            return
        topic = topic_of_article(event)
        article_url = item_link(self._public_base_url, Page.NEWS, event.slug)
        contents = {
            language: await uow.deliveries.add_content(
                compose_article(event, self._profile, language, article_url=article_url)
            )
            for language in Language
        }
        queued = await uow.deliveries.fan_out(
            FanOut(
                source_event_id=envelope.event_id,
                correlation_id=envelope.correlation_id,
                purpose=(
                    Purpose.CONSULTATION
                    if topic is SubscriptionTopic.CONSULTATIONS
                    else Purpose.NEWS
                ),
                priority=DeliveryPriority.BULK,
                subject_key=str(event.article_id),
                contents=contents,
                audience=Audience(topic=topic),
                gmina_teryt=self._profile.teryt,
            )
        )
        await self._queued(uow, queued, envelope, kind=f"article ({topic.value})")

    async def _queued(
        self, uow: NotificationsUnitOfWork, queued: int, envelope: Envelope[Any], *, kind: str
    ) -> None:
        if queued:
            await uow.deliveries.wake_dispatcher()
        await uow.commit()
        log.info(
            "subscriber emails queued",
            extra={"event_id": str(envelope.event_id), "kind": kind, "deliveries": queued},
        )


class PersonalLinks:
    """Dispatcher hook: each subscriber email gets its manage and unsubscribe links and
    its `List-Unsubscribe` URL, with the token derived from the server secret and the
    subscription's current link generation (one query per batch). Nothing is written:
    the links exist only in the message handed to the relay."""

    def __init__(self, links: SubscriberLinks, tokens: SubscriberLinkTokens) -> None:
        self._links = links
        self._tokens = tokens

    async def fill_in(
        self, uow: NotificationsUnitOfWork, deliveries: list[Delivery]
    ) -> list[Delivery]:
        wanted = {
            d.subscription_id
            for d in deliveries
            if d.purpose in SUBSCRIBER_PURPOSES and d.subscription_id is not None
        }
        if not wanted:
            return deliveries
        generations = await uow.subscriptions.link_generations(wanted)
        filled = []
        for delivery in deliveries:
            subscription_id = delivery.subscription_id
            if delivery.purpose in SUBSCRIBER_PURPOSES and subscription_id is not None:
                token = self._tokens.token_for(subscription_id, generations.get(subscription_id, 0))
                delivery = with_subscriber_links(delivery, self._links, token)
            filled.append(delivery)
        return filled
