"""Manage and unsubscribe links: derived from the server secret, never stored; and every
link in an email is valid by the time the relay has it. On fakes, fast."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError

from notifications.bootstrap import SERVICE
from notifications.config import NotificationsSettings
from notifications.domain.deliveries import (
    ComposedEmail,
    Delivery,
    DeliveryPriority,
    DeliveryStatus,
    Purpose,
    RetryPolicy,
)
from notifications.domain.subscriber_mail import MANAGE_URL, SUBSCRIBER_PURPOSES, UNSUBSCRIBE_URL
from notifications.domain.subscriptions import (
    LinkClaim,
    Preferences,
    SubscriberLinks,
    SubscriberLinkTokens,
    SubscriptionStatus,
    SubscriptionTopic,
)
from notifications.service.dispatcher import EmailDispatcher, PrepareHook
from notifications.service.subscriber_mail import PersonalLinks
from notifications.service.subscriptions import SubscriptionPolicy, SubscriptionService
from shared.contracts.intake import Language
from shared.platform.gmina import load_profile
from shared.platform.one_time_tokens import TokenRejected, token_hash
from shared.platform.runtime import ConfigurationError

from .conftest import NOW, FakeStore

CONFIRMATION = frozenset({Purpose.SUBSCRIPTION_CONFIRMATION})

SECRET = b"s" * 32
TOKENS = SubscriberLinkTokens(SECRET)
ALERTS = Preferences.of([SubscriptionTopic.ALERTS], 1, Language.PL)
LINKS = SubscriberLinks.of(
    public_base_url="https://gmina.pl", api_public_url="https://api.gmina.pl"
)


@pytest.fixture
def service() -> SubscriptionService:
    return SubscriptionService(
        load_profile("konstancin-jeziorna"),
        public_base_url="https://gmina.pl",
        policy=SubscriptionPolicy(
            confirmation_valid_for=timedelta(hours=72), confirmation_cooldown=timedelta(0)
        ),
        link_tokens=TOKENS,
    )


# --- the token ------------------------------------------------------------------------


def test_a_token_names_its_subscription_and_generation_and_only_the_secret_makes_it() -> None:
    subscription_id = uuid.uuid4()
    token = TOKENS.token_for(subscription_id, 3)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}\.3\.[A-Za-z0-9_-]{43}", token)
    assert TOKENS.verify(token) == LinkClaim(subscription_id, 3)
    assert TOKENS.token_for(subscription_id, 3) == token  # derived: the same every time
    assert TOKENS.token_for(subscription_id, 4) != token
    assert TOKENS.token_for(uuid.uuid4(), 3) != token
    # Another deployment's secret makes other tokens, and does not accept these.
    other = SubscriberLinkTokens(b"t" * 32)
    assert other.verify(token) is None
    assert TOKENS.verify(other.token_for(subscription_id, 3)) is None


def test_any_tampering_is_refused() -> None:
    subscription_id, another = uuid.uuid4(), uuid.uuid4()
    token = TOKENS.token_for(subscription_id, 0)
    id_part, generation, mac = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for index, char in enumerate(token):
        if char == ".":
            continue
        changed = alphabet[(alphabet.index(char) + 1) % len(alphabet)]
        tampered = token[:index] + changed + token[index + 1 :]
        claim = TOKENS.verify(tampered)
        # A changed last character of a base64 part may decode to the same bytes; it then
        # names the same subscription, never another one.
        assert claim is None or claim == LinkClaim(subscription_id, 0), tampered
    other_id = TOKENS.token_for(another, 0).split(".")[0]
    forged = [
        f"{other_id}.{generation}.{mac}",  # someone else's subscription, this MAC
        f"{id_part}.1.{mac}",  # a later generation, this MAC
        f"{id_part}.00.{mac}",
        f"{id_part}.-1.{mac}",
        f"{id_part}.{generation}.{mac[:-1]}",
        f"{id_part}.{generation}",
        f"{id_part}.{generation}.{mac}.x",
        f"{id_part}..{mac}",
        "",
        "...",
        "x" * 43,  # the form of a random (legacy) token
        f"{id_part[:-2]}.{generation}.{mac}",
        f"{id_part}.{generation}.{mac}ż",
    ]
    for candidate in forged:
        assert TOKENS.verify(candidate) is None, candidate


def test_the_secret_must_be_long_enough() -> None:
    with pytest.raises(ValueError):
        SubscriberLinkTokens(b"short")
    with pytest.raises(ValidationError):
        NotificationsSettings(subscription_link_secret="too short")
    assert NotificationsSettings(subscription_link_secret="x" * 32).subscription_link_secret


async def test_the_service_refuses_to_start_without_the_secret() -> None:
    # Built all the same (its documents need it), whatever the environment says.
    service = SERVICE.build(NotificationsSettings(log_json=False, subscription_link_secret=None))
    with pytest.raises(ConfigurationError, match="STRATEGIA_SUBSCRIPTION_LINK_SECRET"):
        await service.runtime.start()


# --- using the links ------------------------------------------------------------------


async def confirmed(service: SubscriptionService, store: FakeStore, email: str) -> uuid.UUID:
    async with store.unit_of_work() as uow:
        await service.subscribe(uow, email, ALERTS)
    [subscription] = [s for s in store.subscriptions.rows.values() if s.email == email]
    async with store.unit_of_work() as uow:
        await service.change(uow, TOKENS.token_for(subscription.id, 0), ALERTS)
    return subscription.id


async def test_a_foreign_or_tampered_token_gets_the_one_invalid_link_answer(
    service: SubscriptionService, store: FakeStore
) -> None:
    subscription_id = await confirmed(service, store, "jan@example.org")
    good = TOKENS.token_for(subscription_id, 0)
    candidates = [
        SubscriberLinkTokens(b"t" * 32).token_for(subscription_id, 0),  # another secret
        TOKENS.token_for(uuid.uuid4(), 0),  # genuine, but no such subscription
        TOKENS.token_for(subscription_id, 1),  # genuine, but not its generation
        good[:-1] + ("A" if good[-1] != "A" else "B"),
        "not-a-link-token-at-all",
    ]
    for token in candidates:
        for action in (
            lambda uow, t=token: service.show(uow, t),
            lambda uow, t=token: service.unsubscribe(uow, t),
            lambda uow, t=token: service.change(uow, t, ALERTS),
        ):
            with pytest.raises(TokenRejected) as refused:
                async with store.unit_of_work() as uow:
                    await action(uow)
            assert str(refused.value) == str(TokenRejected())
    assert store.subscriptions.rows[subscription_id].status is SubscriptionStatus.CONFIRMED


async def test_subscribing_again_after_unsubscribing_retires_the_old_links(
    service: SubscriptionService, store: FakeStore
) -> None:
    subscription_id = await confirmed(service, store, "jan@example.org")
    old = TOKENS.token_for(subscription_id, 0)
    for _ in range(2):  # the mailbox provider's one-click POST and the person's click
        async with store.unit_of_work() as uow:
            assert (await service.unsubscribe(uow, old)).status is SubscriptionStatus.UNSUBSCRIBED
    # The old manage link may subscribe again: it proves the address. No rotation.
    async with store.unit_of_work() as uow:
        back = await service.change(uow, old, ALERTS)
    assert back.link_generation == 0
    async with store.unit_of_work() as uow:
        await service.unsubscribe(uow, old)

    # A new request confirmed by email: the links of the earlier subscription stop working.
    async with store.unit_of_work() as uow:
        await service.subscribe(uow, "jan@example.org", ALERTS)
    [confirmation] = [
        d
        for d in store.deliveries.rows.values()
        if d.purpose is Purpose.SUBSCRIPTION_CONFIRMATION and d.status is DeliveryStatus.PENDING
    ][-1:]
    async with store.unit_of_work() as uow:
        [prepared] = await service.issue_confirmation_links(uow, [confirmation])
    token = re.search(r"\?token=([A-Za-z0-9_-]+)", prepared.text_body)
    assert token
    async with store.unit_of_work() as uow:
        again = await service.confirm(uow, token.group(1))
    assert again.link_generation == 1 and again.status is SubscriptionStatus.CONFIRMED
    with pytest.raises(TokenRejected):
        async with store.unit_of_work() as uow:
            await service.show(uow, old)
    async with store.unit_of_work() as uow:
        shown = await service.show(uow, TOKENS.token_for(subscription_id, 1))
    assert shown.id == subscription_id


async def test_a_link_sent_before_derived_tokens_works_until_the_links_rotate(
    service: SubscriptionService, store: FakeStore
) -> None:
    subscription_id = await confirmed(service, store, "jan@example.org")
    legacy = "L" * 43  # what secrets.token_urlsafe(32) gave; only its hash is kept
    store.subscriptions.legacy_hashes[token_hash(legacy)] = subscription_id
    async with store.unit_of_work() as uow:
        assert (await service.show(uow, legacy)).id == subscription_id
    with pytest.raises(TokenRejected):
        async with store.unit_of_work() as uow:
            await service.show(uow, "M" * 43)
    store.subscriptions.rows[subscription_id] = dataclasses.replace(
        store.subscriptions.rows[subscription_id], link_generation=1
    )
    with pytest.raises(TokenRejected):
        async with store.unit_of_work() as uow:
            await service.show(uow, legacy)


# --- the dispatcher: links filled in and issued before the relay has the email ----------


class SpendingSender:
    """A relay whose recipient reads the email the instant it is accepted and uses its
    confirmation link at once — before the dispatcher records anything."""

    def __init__(self, service: SubscriptionService, store: FakeStore) -> None:
        self._service = service
        self._store = store
        self.sent: list[Delivery] = []
        self.confirmed: list[SubscriptionStatus] = []

    async def send(self, delivery: Delivery) -> None:
        self.sent.append(delivery)
        found = re.search(r"/subskrypcje/potwierdz\?token=([A-Za-z0-9_-]+)", delivery.text_body)
        if found:
            async with self._store.unit_of_work() as uow:
                subscription = await self._service.confirm(uow, found.group(1))
            self.confirmed.append(subscription.status)


def dispatcher(
    store: FakeStore, sender: SpendingSender, service: SubscriptionService
) -> EmailDispatcher:
    return hooked_dispatcher(
        sender,
        store,
        PrepareHook(CONFIRMATION, service.issue_confirmation_links),
        PrepareHook(SUBSCRIBER_PURPOSES, PersonalLinks(LINKS, TOKENS).fill_in),
        batch_size=10,
        concurrency=4,
    )


async def test_a_confirmation_link_works_the_moment_the_relay_has_the_email(
    service: SubscriptionService, store: FakeStore
) -> None:
    for index in range(5):
        async with store.unit_of_work() as uow:
            await service.subscribe(uow, f"p{index}@example.org", ALERTS)
    sender = SpendingSender(service, store)
    assert await dispatcher(store, sender, service).dispatch_batch() == 5
    assert sender.confirmed == [SubscriptionStatus.CONFIRMED] * 5
    assert all(s.is_active for s in store.subscriptions.rows.values())
    assert all(d.status is DeliveryStatus.SENT for d in store.deliveries.rows.values())


async def test_subscriber_mail_gets_its_links_when_sent_and_stores_none(
    service: SubscriptionService, store: FakeStore
) -> None:
    subscription_id = await confirmed(service, store, "jan@example.org")
    body = f"Wypisz: {UNSUBSCRIBE_URL}\nZarządzaj: {MANAGE_URL}\n"
    queued = Delivery.queue(
        delivery_id=uuid.uuid4(),
        source_event_id=uuid.uuid4(),
        correlation_id="c",
        purpose=Purpose.ALERT,
        recipient="jan@example.org",
        email=ComposedEmail("pl", "[Ostrzeżenie] Burze", body, f'<a href="{MANAGE_URL}">x</a>'),
        gmina_teryt="1418023",
        now=NOW,
        priority=DeliveryPriority.URGENT,
        subscription_id=subscription_id,
    )
    store.deliveries.rows[queued.id] = queued
    sender = SpendingSender(service, store)
    await dispatcher(store, sender, service).dispatch_batch()
    [sent] = [d for d in sender.sent if d.purpose is Purpose.ALERT]
    token = TOKENS.token_for(subscription_id, 0)
    assert sent.text_body == (
        f"Wypisz: https://gmina.pl/subskrypcje/wypisz?token={token}\n"
        f"Zarządzaj: https://gmina.pl/subskrypcje/zarzadzaj?token={token}\n"
    )
    assert sent.list_unsubscribe == (
        f"https://api.gmina.pl/v1/subscriptions/one-click-unsubscribe?token={token}"
    )
    async with store.unit_of_work() as uow:  # the emailed link works
        assert (await service.unsubscribe(uow, token)).status is SubscriptionStatus.UNSUBSCRIBED
    stored = store.deliveries.rows[queued.id]
    assert stored.status is DeliveryStatus.SENT and stored.list_unsubscribe is None
    assert token not in stored.text_body + stored.html_body


def hooked_dispatcher(
    sender: SpendingSender, store: FakeStore, *hooks: PrepareHook, **tuning: int
) -> EmailDispatcher:
    return EmailDispatcher(
        sender,
        store.unit_of_work,
        RetryPolicy(max_attempts=3, base_backoff_seconds=30, max_backoff_seconds=60),
        poll_seconds=1,
        prepare=hooks,
        **tuning,
    )


async def test_a_failing_hook_sends_nothing(service: SubscriptionService, store: FakeStore) -> None:
    async with store.unit_of_work() as uow:
        await service.subscribe(uow, "jan@example.org", ALERTS)

    async def broken(uow: object, deliveries: list[Delivery]) -> list[Delivery]:
        raise RuntimeError("database gone")

    sender = SpendingSender(service, store)
    worker = hooked_dispatcher(sender, store, PrepareHook(CONFIRMATION, broken))
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(worker.dispatch_batch(), 5)
    assert sender.sent == []


async def test_a_hook_runs_only_for_a_batch_with_its_purposes(
    service: SubscriptionService, store: FakeStore
) -> None:
    """A batch holding none of a hook's purposes opens no unit of work for it: here a
    hook for alerts that would fail, and a batch with only a confirmation email."""
    async with store.unit_of_work() as uow:
        await service.subscribe(uow, "jan@example.org", ALERTS)

    async def broken(uow: object, deliveries: list[Delivery]) -> list[Delivery]:
        raise RuntimeError("must not run")

    sender = SpendingSender(service, store)
    worker = hooked_dispatcher(
        sender,
        store,
        PrepareHook(frozenset({Purpose.ALERT}), broken),
        PrepareHook(CONFIRMATION, service.issue_confirmation_links),
    )
    assert await asyncio.wait_for(worker.dispatch_batch(), 5) == 1
    [confirmation] = sender.sent
    assert confirmation.purpose is Purpose.SUBSCRIPTION_CONFIRMATION
