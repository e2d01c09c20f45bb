"""Subscription use cases: request (double opt-in), confirm, manage, unsubscribe.

Each takes an open unit of work and commits it once. None of them tells a caller whether
an address was known: a request is answered the same way for a new address, a pending
one, a confirmed one and one that unsubscribed (and within the cool-down no email goes
out at all). Confirmation tokens are single-use, expiring and stored as a hash
(`shared.platform.one_time_tokens`); the token is issued only when its email is about to
be sent (`issue_confirmation_links`, a dispatcher hook), and committed before the email
goes to the relay, so a link that can be read can be used. Manage and unsubscribe links
carry a token derived from the server secret (`SubscriberLinkTokens`): nothing of it is
stored, and checking one recomputes it.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from notifications.domain.deliveries import Delivery, DeliveryPriority, Purpose
from notifications.domain.subscriber_mail import CONFIRMATION_MARKER, compose_confirmation
from notifications.domain.subscriptions import (
    CONFIRMATION_PURPOSE,
    Preferences,
    SubscriberLinkTokens,
    Subscription,
    change,
    confirm,
    is_derived_link_token,
    new_subscription,
    request,
    unsubscribe,
)
from notifications.service.ports import NotificationsUnitOfWork
from shared.contracts.links import Page, page_link
from shared.platform.gmina import GminaProfile
from shared.platform.logging import correlation_id_var
from shared.platform.one_time_tokens import TokenRejected, token_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SubscriptionPolicy:
    confirmation_valid_for: timedelta
    confirmation_cooldown: timedelta


class SubscriptionService:
    def __init__(
        self,
        profile: GminaProfile,
        *,
        public_base_url: str,
        policy: SubscriptionPolicy,
        link_tokens: SubscriberLinkTokens,
    ) -> None:
        self._profile = profile
        self._confirm_page = page_link(public_base_url, Page.SUBSCRIPTION_CONFIRM, token="")
        self._policy = policy
        self._link_tokens = link_tokens

    async def subscribe(
        self, uow: NotificationsUnitOfWork, email: str, preferences: Preferences
    ) -> None:
        """Ask for a subscription; the address's owner confirms it by the emailed link."""
        now = await uow.deliveries.database_now()
        subscription = await uow.subscriptions.lock_by_email(email)
        if subscription is None:
            candidate = new_subscription(
                subscription_id=uuid.uuid4(),
                email=email,
                preferences=preferences,
                now=now,
            )
            if await uow.subscriptions.add(candidate):
                subscription = candidate
            else:  # the same address asked at the same moment and was stored first
                subscription = await uow.subscriptions.lock_by_email(email)
                assert subscription is not None
        outcome = request(
            subscription, preferences, now=now, cooldown=self._policy.confirmation_cooldown
        )
        await uow.subscriptions.save(outcome.subscription)
        if outcome.send_confirmation:
            await self._queue_confirmation(uow, outcome.subscription)
        await uow.commit()
        # No address in the log: addresses stay in the database, which has a retention rule.
        log.info(
            "subscription requested",
            extra={
                "subscription_id": str(subscription.id),
                "confirmation_queued": outcome.send_confirmation,
            },
        )

    async def _queue_confirmation(
        self, uow: NotificationsUnitOfWork, subscription: Subscription
    ) -> None:
        wanted = subscription.requested or subscription.preferences
        request_id = uuid.uuid4()
        delivery = Delivery.queue(
            delivery_id=uuid.uuid4(),
            source_event_id=request_id,  # the request is the event this email answers
            correlation_id=correlation_id_var.get() or str(request_id),
            purpose=Purpose.SUBSCRIPTION_CONFIRMATION,
            recipient=subscription.email,
            email=compose_confirmation(
                wanted,
                self._profile,
                confirm_page=self._confirm_page,
                valid_hours=int(self._policy.confirmation_valid_for.total_seconds() // 3600),
            ),
            gmina_teryt=self._profile.teryt,
            now=await uow.deliveries.database_now(),
            priority=DeliveryPriority.NORMAL,
            subscription_id=subscription.id,
        )
        await uow.deliveries.add(delivery)
        await uow.deliveries.wake_dispatcher()

    async def issue_confirmation_links(
        self, uow: NotificationsUnitOfWork, deliveries: list[Delivery]
    ) -> list[Delivery]:
        """Dispatcher hook: put a fresh single-use token into each confirmation email.

        `uow` is the hook's own unit of work, not the batch's: the tokens are committed
        here, before the dispatcher hands the emails to the relay, so whoever reads the
        email — however fast — finds its link valid. A crash between this commit and the
        sending, or an attempt the relay refuses (retried later with a new token), leaves
        tokens nobody received: they expire unused. An email sent again
        after a crash (accepted by the relay, not yet recorded) is prepared again and
        carries a new token, while the first copy's stays valid too — whichever is used
        first confirms, and confirming revokes the other (see `confirm`)."""
        if not any(d.purpose is Purpose.SUBSCRIPTION_CONFIRMATION for d in deliveries):
            return deliveries
        now = await uow.deliveries.database_now()
        issued: list[Delivery] = []
        for delivery in deliveries:
            if delivery.purpose is Purpose.SUBSCRIPTION_CONFIRMATION:
                assert delivery.subscription_id is not None
                token = await uow.one_time_tokens.issue(
                    purpose=CONFIRMATION_PURPOSE,
                    subject=str(delivery.subscription_id),
                    ttl=self._policy.confirmation_valid_for,
                    now=now,
                )
                delivery = dataclasses.replace(
                    delivery,
                    text_body=delivery.text_body.replace(CONFIRMATION_MARKER, token.token),
                    html_body=delivery.html_body.replace(CONFIRMATION_MARKER, token.token),
                )
            issued.append(delivery)
        await uow.commit()
        return issued

    async def confirm(self, uow: NotificationsUnitOfWork, token: str) -> Subscription:
        """Spend a confirmation token: the requested preferences count from now on."""
        now = await uow.deliveries.database_now()
        subject = await uow.one_time_tokens.spend(token, purpose=CONFIRMATION_PURPOSE, now=now)
        subscription = await uow.subscriptions.lock_by_id(uuid.UUID(subject))
        if subscription is None:
            raise TokenRejected()
        confirmed = confirm(subscription, now=now)
        await uow.subscriptions.save(confirmed)
        # Older confirmation links of the address are of no use any more.
        await uow.one_time_tokens.revoke(purpose=CONFIRMATION_PURPOSE, subject=subject)
        await uow.commit()
        log.info("subscription confirmed", extra={"subscription_id": subject})
        return confirmed

    async def show(self, uow: NotificationsUnitOfWork, link_token: str) -> Subscription:
        """The subscription a manage link belongs to."""
        return await self._by_link(uow, link_token)

    async def change(
        self, uow: NotificationsUnitOfWork, link_token: str, preferences: Preferences
    ) -> Subscription:
        changed = change(
            await self._by_link(uow, link_token),
            preferences,
            now=await uow.deliveries.database_now(),
        )
        await uow.subscriptions.save(changed)
        await uow.commit()
        log.info("subscription changed", extra={"subscription_id": str(changed.id)})
        return changed

    async def unsubscribe(self, uow: NotificationsUnitOfWork, link_token: str) -> Subscription:
        """Stop every email to the subscriber (again: nothing changes)."""
        current = await self._by_link(uow, link_token)
        gone = unsubscribe(current, now=await uow.deliveries.database_now())
        if gone != current:
            await uow.subscriptions.save(gone)
            await uow.one_time_tokens.revoke(purpose=CONFIRMATION_PURPOSE, subject=str(gone.id))
            log.info("unsubscribed", extra={"subscription_id": str(gone.id)})
        await uow.commit()
        return gone

    async def _by_link(self, uow: NotificationsUnitOfWork, link_token: str) -> Subscription:
        """The subscription a manage or unsubscribe link belongs to, locked.

        A derived token is checked before the database is asked anything (its MAC), then
        its generation against the stored one. A token without a dot comes from before
        derived tokens: only its hash was kept (`legacy_link_token_hash`), and only until
        the links are rotated. Whatever is wrong, the answer is the same."""
        if is_derived_link_token(link_token):
            claim = self._link_tokens.verify(link_token)
            if claim is not None:
                found = await uow.subscriptions.lock_by_id(claim.subscription_id)
                if found is not None and found.link_generation == claim.generation:
                    return found
        else:
            legacy = await uow.subscriptions.lock_by_legacy_link_token(token_hash(link_token))
            if legacy is not None:
                return legacy
        raise TokenRejected()
