"""Subscriptions and the dispatcher on a fake unit of work: the rules, fast."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from notifications.domain.deliveries import (
    ComposedEmail,
    Delivery,
    DeliveryPriority,
    DeliveryStatus,
    Purpose,
    RetryPolicy,
)
from notifications.domain.subscriber_mail import CONFIRMATION_MARKER
from notifications.domain.subscriptions import (
    CONFIRMATION_PURPOSE,
    Preferences,
    SubscriberLinkTokens,
    SubscriptionStatus,
    SubscriptionTopic,
)
from notifications.service.dispatcher import EmailDispatcher
from notifications.service.ports import SendFailed
from notifications.service.subscriptions import SubscriptionPolicy, SubscriptionService
from shared.contracts.intake import Language
from shared.platform.gmina import load_profile
from shared.platform.one_time_tokens import TokenRejected, token_hash

from .conftest import NOW, FakeStore

ALERTS = Preferences.of([SubscriptionTopic.ALERTS], 1, Language.PL)
POLICY = SubscriptionPolicy(
    confirmation_valid_for=timedelta(hours=72), confirmation_cooldown=timedelta(minutes=10)
)
LINK_TOKENS = SubscriberLinkTokens(b"k" * 32)


@pytest.fixture
def service() -> SubscriptionService:
    return SubscriptionService(
        load_profile("konstancin-jeziorna"),
        public_base_url="https://gmina.pl",
        policy=POLICY,
        link_tokens=LINK_TOKENS,
    )


async def subscribe(
    service: SubscriptionService, store: FakeStore, email: str, preferences: Preferences = ALERTS
) -> None:
    async with store.unit_of_work() as uow:
        await service.subscribe(uow, email, preferences)


def confirmations(store: FakeStore) -> list[Delivery]:
    return [
        d for d in store.deliveries.rows.values() if d.purpose is Purpose.SUBSCRIPTION_CONFIRMATION
    ]


async def token_of(service: SubscriptionService, store: FakeStore, delivery: Delivery) -> str:
    """What the dispatcher does before sending: issue the token into the email."""
    async with store.unit_of_work() as uow:
        [prepared] = await service.issue_confirmation_links(uow, [delivery])
    assert CONFIRMATION_MARKER not in prepared.text_body
    link = next(line for line in prepared.text_body.splitlines() if "?token=" in line)
    assert link.startswith("https://gmina.pl/subskrypcje/potwierdz?token=")
    return link.rsplit("=", 1)[1]


async def test_nothing_counts_until_the_link_is_followed_and_a_token_works_once(
    service: SubscriptionService, store: FakeStore
) -> None:
    await subscribe(service, store, "Jan@Example.org")
    [subscription] = store.subscriptions.rows.values()
    assert subscription.status is SubscriptionStatus.PENDING
    [delivery] = confirmations(store)
    assert delivery.subscription_id == subscription.id and CONFIRMATION_MARKER in delivery.text_body
    assert store.tokens.stored == {}  # no token before the email is sent

    token = await token_of(service, store, delivery)
    assert list(store.tokens.stored) == [token_hash(token)]  # only the hash is kept
    async with store.unit_of_work() as uow:
        confirmed = await service.confirm(uow, token)
    assert confirmed.status is SubscriptionStatus.CONFIRMED
    with pytest.raises(TokenRejected):
        async with store.unit_of_work() as uow:
            await service.confirm(uow, token)


async def test_an_expired_confirmation_link_is_refused(
    service: SubscriptionService, store: FakeStore
) -> None:
    await subscribe(service, store, "jan@example.org")
    token = await token_of(service, store, confirmations(store)[0])
    store.now = NOW + timedelta(hours=72)
    with pytest.raises(TokenRejected):
        async with store.unit_of_work() as uow:
            await service.confirm(uow, token)
    [subscription] = store.subscriptions.rows.values()
    assert subscription.status is SubscriptionStatus.PENDING


async def test_asking_again_reveals_nothing_changes_nothing_and_does_not_flood(
    service: SubscriptionService, store: FakeStore
) -> None:
    await subscribe(service, store, "jan@example.org")
    token = await token_of(service, store, confirmations(store)[0])
    async with store.unit_of_work() as uow:
        await service.confirm(uow, token)

    # Someone else asks for other topics for the same address, twice, within the cool-down.
    news = Preferences.of([SubscriptionTopic.NEWS], 3, Language.EN)
    store.now = NOW + timedelta(minutes=1)
    await subscribe(service, store, "JAN@example.org", news)
    await subscribe(service, store, "jan@example.org", news)
    [subscription] = store.subscriptions.rows.values()
    assert subscription.status is SubscriptionStatus.CONFIRMED
    assert subscription.preferences == ALERTS  # unchanged until the owner confirms
    assert subscription.requested == news
    assert len(confirmations(store)) == 1  # within the cool-down: no second email

    store.now = NOW + timedelta(minutes=11)
    await subscribe(service, store, "jan@example.org", news)
    second = confirmations(store)[-1]
    assert len(confirmations(store)) == 2 and second.language == "en"
    async with store.unit_of_work() as uow:
        changed = await service.confirm(uow, await token_of(service, store, second))
    assert changed.preferences == news and changed.requested is None


async def test_manage_and_unsubscribe_through_the_link_token(
    service: SubscriptionService, store: FakeStore
) -> None:
    await subscribe(service, store, "jan@example.org")
    [subscription] = store.subscriptions.rows.values()
    link_token = LINK_TOKENS.token_for(subscription.id, subscription.link_generation)
    news = Preferences.of([SubscriptionTopic.NEWS, SubscriptionTopic.ALERTS], 2, Language.EN)
    async with store.unit_of_work() as uow:
        changed = await service.change(uow, link_token, news)
    assert changed.preferences == news and changed.status is SubscriptionStatus.CONFIRMED
    for _ in range(2):  # one-click POST and the person's click: both fine
        async with store.unit_of_work() as uow:
            gone = await service.unsubscribe(uow, link_token)
        assert gone.status is SubscriptionStatus.UNSUBSCRIBED
    assert not any(
        not stored.spent and stored.purpose == CONFIRMATION_PURPOSE
        for stored in store.tokens.stored.values()
    )
    with pytest.raises(TokenRejected):
        async with store.unit_of_work() as uow:
            await service.show(uow, "not-a-link-token-at-all")


# --- the dispatcher -------------------------------------------------------------------


class RecordingSender:
    def __init__(self, *, fail_for: set[str] = frozenset(), hold: asyncio.Event | None = None):  # type: ignore[assignment]
        self.sent: list[Delivery] = []
        self.fail_for = fail_for
        self.hold = hold
        self.started = asyncio.Event()

    async def send(self, delivery: Delivery) -> None:
        self.started.set()
        if self.hold is not None:
            await self.hold.wait()
        if delivery.recipient in self.fail_for:
            raise SendFailed("450 try later")
        self.sent.append(delivery)


def queue(
    store: FakeStore, recipient: str, priority: DeliveryPriority, *, minutes: int
) -> Delivery:
    delivery = Delivery.queue(
        delivery_id=uuid.uuid4(),
        source_event_id=uuid.uuid4(),
        correlation_id="c",
        purpose=Purpose.NEWS if priority is DeliveryPriority.BULK else Purpose.ALERT,
        recipient=recipient,
        email=ComposedEmail("pl", "s", "t", "h"),
        gmina_teryt="1418023",
        now=NOW + timedelta(minutes=minutes),
        priority=priority,
    )
    store.deliveries.rows[delivery.id] = delivery
    return delivery


def dispatcher(store: FakeStore, sender: RecordingSender, **options: object) -> EmailDispatcher:
    return EmailDispatcher(
        sender,
        store.unit_of_work,
        RetryPolicy(max_attempts=3, base_backoff_seconds=30, max_backoff_seconds=60),
        poll_seconds=1,
        **options,  # type: ignore[arg-type]
    )


async def test_urgent_mail_goes_first_then_the_oldest(store: FakeStore) -> None:
    for index in range(3):
        queue(store, f"news{index}@example.org", DeliveryPriority.BULK, minutes=index)
    queue(store, "receipt@example.org", DeliveryPriority.NORMAL, minutes=5)
    queue(store, "alert@example.org", DeliveryPriority.URGENT, minutes=10)
    store.now = NOW + timedelta(minutes=20)
    sender = RecordingSender()
    worker = dispatcher(store, sender, batch_size=2)
    while await worker.dispatch_batch():
        pass
    assert [d.recipient for d in sender.sent] == [
        "alert@example.org",
        "receipt@example.org",
        "news0@example.org",
        "news1@example.org",
        "news2@example.org",
    ]
    assert all(d.status is DeliveryStatus.SENT for d in store.deliveries.rows.values())


async def test_a_batch_records_each_outcome_and_a_stop_sends_nothing_new(store: FakeStore) -> None:
    for index in range(4):
        queue(store, f"r{index}@example.org", DeliveryPriority.URGENT, minutes=index)
    store.now = NOW + timedelta(minutes=10)
    hold = asyncio.Event()
    sender = RecordingSender(fail_for={"r1@example.org"}, hold=hold)
    worker = dispatcher(store, sender, batch_size=10, concurrency=2)
    batch = asyncio.create_task(worker._dispatch_to_completion())
    await sender.started.wait()
    batch.cancel()  # a graceful stop while two messages are with the relay
    await asyncio.sleep(0)
    hold.set()
    with pytest.raises(asyncio.CancelledError):
        await batch
    statuses = {d.recipient: d.status for d in store.deliveries.rows.values()}
    attempts = {d.recipient: d.attempts for d in store.deliveries.rows.values()}
    # The two in flight finished and were recorded; the other two were never handed over.
    assert statuses["r0@example.org"] is DeliveryStatus.SENT
    assert statuses["r1@example.org"] is DeliveryStatus.PENDING and attempts["r1@example.org"] == 1
    assert attempts["r2@example.org"] == attempts["r3@example.org"] == 0
    assert [d.recipient for d in sender.sent] == ["r0@example.org"]


class UnreachableRelay(RecordingSender):
    """A relay nobody can connect to, until `back` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.back = False

    async def send(self, delivery: Delivery) -> None:
        if not self.back:
            raise SendFailed("ConnectionRefusedError", relay_unavailable=True)
        await super().send(delivery)


async def test_a_relay_outage_uses_up_no_attempts_and_mail_flows_when_it_returns(
    store: FakeStore,
) -> None:
    for index in range(3):
        queue(store, f"o{index}@example.org", DeliveryPriority.NORMAL, minutes=index)
    store.now = NOW + timedelta(minutes=10)
    relay = UnreachableRelay()
    worker = dispatcher(store, relay, batch_size=10, concurrency=2)
    backoffs = []
    for _ in range(6):  # longer than RetryPolicy's three attempts
        await worker.dispatch_batch()
        backoffs.append(worker.relay_outage_backoff)
    rows = list(store.deliveries.rows.values())
    assert all(d.status is DeliveryStatus.PENDING and d.attempts == 0 for d in rows)
    assert all(d.last_error == "ConnectionRefusedError" for d in rows)  # why it waits
    # Still due now, not after a retry delay: the next probe sends them.
    assert all(d.is_due(store.now) for d in rows)
    assert backoffs == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    relay.back = True
    assert await worker.dispatch_batch() == 3
    assert worker.relay_outage_backoff is None
    assert sorted(d.recipient for d in relay.sent) == [f"o{i}@example.org" for i in range(3)]
    assert all(d.attempts == 1 for d in store.deliveries.rows.values())
