"""Email subscriptions to alerts, news and consultation announcements (pure rules).

Double opt-in: a request stores the wanted preferences and sends a confirmation link;
only its confirmation makes the subscription (or a change of it) count. A confirmed
subscriber who asks again keeps what they had until they confirm the new request, so
nobody can change another person's subscription by knowing their address.

Each subscription has a link token: the secret of the manage and unsubscribe links every
email to the subscriber carries. Unlike the confirmation token (single use, expiring,
stored as a hash) it must work from any email the subscriber kept, as often as used —
an RFC 8058 one-click POST from the mailbox provider included.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.contracts.intake import Language
from shared.contracts.links import Page, page_link

# Purpose of the one-time tokens in confirmation links.
CONFIRMATION_PURPOSE = "subscription_confirmation"
LEVELS = (1, 2, 3)


class SubscriptionTopic(StrEnum):
    ALERTS = "alerts"  # weather and other warnings (urgent)
    NEWS = "news"  # articles of the gmina's office
    CONSULTATIONS = "consultations"  # consultations announced, opened, closed


class SubscriptionStatus(StrEnum):
    PENDING = "pending"  # never confirmed: nothing is sent but the confirmation
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True, slots=True)
class Preferences:
    topics: tuple[SubscriptionTopic, ...]  # sorted, unique, at least one
    min_level: int = 1  # alerts of at least this level (1 yellow … 3 red)
    locale: Language = Language.PL

    @classmethod
    def of(
        cls,
        topics: tuple[SubscriptionTopic, ...] | list[SubscriptionTopic],
        min_level: int,
        locale: Language,
    ) -> Preferences:
        unique = tuple(sorted(set(topics)))
        if not unique:
            raise ValueError("at least one topic")
        if min_level not in LEVELS:
            raise ValueError("min_level must be 1, 2 or 3")
        return cls(unique, min_level, locale)


@dataclass(frozen=True, slots=True)
class Subscription:
    id: uuid.UUID
    email: str
    status: SubscriptionStatus
    preferences: Preferences  # what is sent now (once confirmed)
    requested: Preferences | None  # what the next confirmation applies
    link_token: str
    created_at: datetime
    updated_at: datetime
    confirmation_sent_at: datetime | None = None
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.status is SubscriptionStatus.CONFIRMED


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    subscription: Subscription
    # False within the cool-down after the last confirmation email: asking again and
    # again must not flood the address (whoever asks).
    send_confirmation: bool


def new_subscription(
    *,
    subscription_id: uuid.UUID,
    email: str,
    preferences: Preferences,
    link_token: str,
    now: datetime,
) -> Subscription:
    return Subscription(
        id=subscription_id,
        email=email,
        status=SubscriptionStatus.PENDING,
        preferences=preferences,
        requested=preferences,
        link_token=link_token,
        created_at=now,
        updated_at=now,
    )


def request(
    subscription: Subscription, preferences: Preferences, *, now: datetime, cooldown: timedelta
) -> RequestOutcome:
    """Someone asked to subscribe this address with `preferences` (it may be anyone)."""
    if subscription.status is SubscriptionStatus.CONFIRMED:
        # What is sent stays as it is until the owner of the address confirms.
        changed = dataclasses.replace(subscription, requested=preferences, updated_at=now)
    else:
        changed = dataclasses.replace(
            subscription,
            status=SubscriptionStatus.PENDING,
            preferences=preferences,
            requested=preferences,
            updated_at=now,
        )
    last = subscription.confirmation_sent_at
    send = last is None or now - last >= cooldown
    if send:
        changed = dataclasses.replace(changed, confirmation_sent_at=now)
    return RequestOutcome(changed, send)


def confirm(subscription: Subscription, *, now: datetime) -> Subscription:
    """The link in the confirmation email was used: apply what was requested."""
    return dataclasses.replace(
        subscription,
        status=SubscriptionStatus.CONFIRMED,
        preferences=subscription.requested or subscription.preferences,
        requested=None,
        confirmed_at=now,
        unsubscribed_at=None,
        updated_at=now,
    )


def change(subscription: Subscription, preferences: Preferences, *, now: datetime) -> Subscription:
    """New preferences through the manage link (which proves the address: it was emailed
    there), so they count at once; an unsubscribed address subscribes again."""
    return dataclasses.replace(
        subscription,
        status=SubscriptionStatus.CONFIRMED,
        preferences=preferences,
        requested=None,
        confirmed_at=subscription.confirmed_at or now,
        unsubscribed_at=None,
        updated_at=now,
    )


def unsubscribe(subscription: Subscription, *, now: datetime) -> Subscription:
    """Nothing more is sent. Unsubscribing twice changes nothing (a mailbox provider's
    one-click POST and the person's click may both come)."""
    if subscription.status is SubscriptionStatus.UNSUBSCRIBED:
        return subscription
    return dataclasses.replace(
        subscription,
        status=SubscriptionStatus.UNSUBSCRIBED,
        requested=None,
        unsubscribed_at=now,
        updated_at=now,
    )


@dataclass(frozen=True, slots=True)
class SubscriberLinks:
    """Where a subscriber's links lead; each ends with `?token=` + the link token.

    The unsubscribe and manage links lead to pages of the web front (which POST to this
    API); the one-click URL of the `List-Unsubscribe` header is this API itself, because
    the mailbox provider POSTs to it directly (RFC 8058)."""

    unsubscribe_page: str
    manage_page: str
    one_click: str

    @classmethod
    def of(cls, *, public_base_url: str, api_public_url: str) -> SubscriberLinks:
        return cls(
            unsubscribe_page=page_link(public_base_url, Page.UNSUBSCRIBE, token=""),
            manage_page=page_link(public_base_url, Page.SUBSCRIPTION_MANAGE, token=""),
            one_click=f"{api_public_url.rstrip('/')}{ONE_CLICK_PATH}?token=",
        )

    def unsubscribe_url(self, link_token: str) -> str:
        return self.unsubscribe_page + link_token

    def manage_url(self, link_token: str) -> str:
        return self.manage_page + link_token

    def one_click_url(self, link_token: str) -> str:
        return self.one_click + link_token


ONE_CLICK_PATH = "/v1/subscriptions/one-click-unsubscribe"
