"""Email subscriptions to alerts, news and consultation announcements (pure rules).

Double opt-in: a request stores the wanted preferences and sends a confirmation link;
only its confirmation makes the subscription (or a change of it) count. A confirmed
subscriber who asks again keeps what they had until they confirm the new request, so
nobody can change another person's subscription by knowing their address.

Every email to a subscriber carries manage and unsubscribe links. Unlike the
confirmation token (single use, expiring, stored as a hash) their token must work from any
email the subscriber kept, as often as used — an RFC 8058 one-click POST from the mailbox
provider included. So it is not stored at all: it is derived from a server secret
(`SubscriberLinkTokens`, an HMAC over the subscription id and its link generation) and
checked by recomputing it. A leaked database holds no usable link; raising the link
generation (when an unsubscribed address subscribes again) retires every earlier link.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
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
    created_at: datetime
    updated_at: datetime
    confirmation_sent_at: datetime | None = None
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    # Part of every manage/unsubscribe link token (see `SubscriberLinkTokens`): raising it
    # makes every link sent before invalid.
    link_generation: int = 0

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
    now: datetime,
) -> Subscription:
    return Subscription(
        id=subscription_id,
        email=email,
        status=SubscriptionStatus.PENDING,
        preferences=preferences,
        requested=preferences,
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
    """The link in the confirmation email was used: apply what was requested.

    An address that had unsubscribed and now subscribes again gets new links: those in
    the emails of its earlier subscription (kept, forwarded, archived) stop working."""
    rotated = subscription.unsubscribed_at is not None
    return dataclasses.replace(
        subscription,
        status=SubscriptionStatus.CONFIRMED,
        preferences=subscription.requested or subscription.preferences,
        requested=None,
        confirmed_at=now,
        unsubscribed_at=None,
        updated_at=now,
        link_generation=subscription.link_generation + (1 if rotated else 0),
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

# Domain separation: a MAC made for these links means nothing anywhere else.
_LINK_CONTEXT = "subscription-link"
MIN_LINK_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a genuine link token says: whose subscription, and of which generation."""

    subscription_id: uuid.UUID
    generation: int


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SubscriberLinkTokens:
    """The token of a subscriber's manage and unsubscribe links, derived, never stored.

    token = `<subscription id>.<link generation>.<HMAC-SHA256(secret,
    "subscription-link:<id>:<generation>")>`, the id and the MAC in unpadded URL-safe
    base64. Only whoever holds the server secret can make one; checking one recomputes
    the MAC (constant-time comparison), then the caller compares the generation with the
    stored one. Anything else — tampered, truncated, foreign, another secret's — is `None`,
    one answer for all.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_LINK_SECRET_BYTES:
            raise ValueError(f"the link secret needs at least {MIN_LINK_SECRET_BYTES} bytes")
        self._secret = secret

    def _mac(self, subscription_id: uuid.UUID, generation: int) -> str:
        message = f"{_LINK_CONTEXT}:{subscription_id}:{generation}".encode("ascii")
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def token_for(self, subscription_id: uuid.UUID, generation: int) -> str:
        if generation < 0:
            raise ValueError("a link generation is never negative")
        mac = self._mac(subscription_id, generation)
        return f"{_b64(subscription_id.bytes)}.{generation}.{mac}"

    def verify(self, token: str) -> LinkClaim | None:
        parts = token.split(".")
        if len(parts) != 3:
            return None
        id_part, generation_part, mac = parts
        if (
            len(id_part) != 22
            or not generation_part.isascii()
            or not generation_part.isdigit()
            or len(generation_part) > 9
            or (len(generation_part) > 1 and generation_part.startswith("0"))
        ):
            return None
        try:
            subscription_id = uuid.UUID(bytes=_unb64(id_part))
        except (binascii.Error, ValueError):
            return None
        generation = int(generation_part)
        expected = self._mac(subscription_id, generation)
        if not hmac.compare_digest(expected.encode("ascii"), mac.encode("ascii", "replace")):
            return None
        return LinkClaim(subscription_id, generation)


def is_derived_link_token(token: str) -> bool:
    """A token of the current form (tokens made before it were random, without dots)."""
    return "." in token
