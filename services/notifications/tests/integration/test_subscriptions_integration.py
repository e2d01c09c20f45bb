"""Subscriptions end to end on the real broker, server and SMTP sink: double opt-in with
the token taken from the email (usable the moment the email arrives), unsubscribe by link
and by RFC 8058 POST, no link secret stored anywhere, level filters, Update and Cancel
reaching the same people, priority, and exactly-once across a restart.

Barriers instead of sleeps: a control subscriber (level 1, all topics) is in every
audience; once its copy of the last event's email has arrived, the dispatcher has sent or
recorded everything queued before it (same priority: oldest first), so counting then
proves nobody got an extra or missing email.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from devtools.kafka_auth import admin_options
from devtools.pytest_plugin import DatabaseFactory, SmtpSink
from devtools.testing import (
    RunningService,
    eventually,
    settings_for_test,
    start_service,
    unique_prefix,
    wait_for,
)
from notifications.adapters.personal_data import NotificationsPersonalData
from notifications.adapters.unit_of_work import PostgresNotificationsUnitOfWork
from notifications.config import NotificationsSettings
from notifications.domain.deliveries import ComposedEmail, DeliveryPriority, Purpose
from notifications.domain.subscriptions import SubscriptionTopic
from notifications.service.ports import Audience, FanOut
from shared.contracts.envelope import Envelope, new_envelope
from shared.contracts.intake import Language
from shared.contracts.news import (
    AlertAreaData,
    AlertIssued,
    AlertMessageType,
    AlertReference,
    AlertSourceKind,
    ArticleOrigin,
    ArticlePublished,
)
from shared.contracts.topics import Topic, TopicNames
from shared.platform.database import create_pool
from shared.platform.outbox import OutboxWriter, envelope_headers
from shared.platform.privacy import subject_for_email

pytestmark = pytest.mark.integration

PUBLIC = "https://www.gmina.example"
API = "https://api.gmina.example/notifications"
NOW = datetime.now(UTC).replace(microsecond=0)


def address(label: str = "m") -> str:
    return f"{label}.{uuid.uuid4().hex[:10]}@example.org"


def alert_event(
    level: int,
    message_type: AlertMessageType = AlertMessageType.ALERT,
    references: tuple[AlertReference, ...] = (),
) -> Envelope[AlertIssued]:
    return new_envelope(
        AlertIssued(
            alert_id=uuid.uuid4(),
            message_type=message_type,
            references=references,
            source=AlertSourceKind.IMGW_METEO,
            issuer="Biuro Prognoz Meteorologicznych w Warszawie",
            category="Met",
            level=level,
            probability=80,
            event="Burze",
            headline=f"Ostrzeżenie meteorologiczne {level}. stopnia: Burze",
            description="Prognozowane są burze z gradem.",
            instruction="Zabezpiecz rzeczy na balkonach.",
            areas=(AlertAreaData(description="powiat piaseczyński"),),
            onset=NOW,
            expires=NOW + timedelta(hours=8),
            sent=NOW,
            event_en="Thunderstorms",
            headline_en=f"Weather warning, level {level}: Thunderstorms",
        ),
        producer="news",
    )


def follow_up(
    previous: list[Envelope[AlertIssued]], level: int, message_type: AlertMessageType
) -> Envelope[AlertIssued]:
    refs = tuple(AlertReference(alert_id=e.data.alert_id, sent=e.data.sent) for e in previous)
    return alert_event(level, message_type, refs)


class Harness:
    def __init__(self, settings: NotificationsSettings, producer: AIOKafkaProducer, sink: SmtpSink):
        self.settings = settings
        self.producer = producer
        self.sink = sink
        self.running: RunningService | None = None
        self.control = address("control")

    @property
    def client(self) -> Any:
        assert self.running is not None
        return self.running.client

    async def start(self) -> RunningService:
        self.running = await start_service("notifications", self.settings)
        return self.running

    async def stop(self) -> None:
        if self.running is not None:
            running, self.running = self.running, None
            await running.stop()

    async def publish(self, topic: Topic, envelope: Envelope[Any], key: str) -> None:
        await self.producer.send_and_wait(
            self.settings.kafka_topic_prefix + topic,
            value=envelope.to_bytes(),
            key=key.encode(),
            headers=[(name, value.encode()) for name, value in envelope_headers(envelope).items()],
        )

    async def alert(self, envelope: Envelope[AlertIssued]) -> None:
        data = envelope.data
        key = str(data.references[0].alert_id if data.references else data.alert_id)
        await self.publish(Topic.NEWS_ALERTS, envelope, key)

    async def mail_to(self, recipient: str) -> list[EmailMessage]:
        messages = await asyncio.to_thread(self.sink.messages)
        return [message for message in messages if message["To"] == recipient]

    async def wait_for_mail(self, recipient: str, count: int = 1) -> list[EmailMessage]:
        async def probe() -> list[EmailMessage] | None:
            found = await self.mail_to(recipient)
            return found if len(found) >= count else None

        return await eventually(probe, f"{count} email(s) to {recipient}")

    async def settle(self, control_emails: int) -> None:
        """Barrier: the control subscriber has `control_emails` emails (so every event
        published so far was consumed: one partition, in order) and nothing is pending
        (so every queued email was handed to the sink)."""
        await self.wait_for_mail(self.control, control_emails)

        async def nothing_pending() -> bool:
            rows = await self.sql("SELECT count(*) AS n FROM deliveries WHERE status = 'pending'")
            return bool(rows[0]["n"] == 0)

        await wait_for(nothing_pending, "every queued email to be sent")

    async def wait_until_sent(self, recipient: str) -> None:
        async def recorded() -> bool:
            rows = await self.sql(
                "SELECT count(*) AS n FROM deliveries WHERE recipient = $1 AND status = 'sent'",
                recipient,
            )
            return bool(rows[0]["n"] >= 1)

        await wait_for(recorded, f"the email to {recipient} to be recorded as sent")

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.settings.database_url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    async def subscribe_by_email(
        self, email: str, topics: list[str], min_level: int = 1, locale: str = "pl"
    ) -> EmailMessage:
        """The whole double opt-in: request, the token from the email, confirm."""
        response = await self.client.post(
            "/v1/subscriptions",
            json={"email": email, "topics": topics, "min_level": min_level, "locale": locale},
        )
        assert response.status_code == 202, response.text
        [confirmation] = await self.wait_for_mail(email)
        token = token_in(confirmation, "/subskrypcje/potwierdz")
        # Valid as soon as the email exists: the token was committed before it was sent.
        confirmed = await self.client.post("/v1/subscriptions/confirm", json={"token": token})
        assert confirmed.status_code == 200, confirmed.text
        return confirmation

    async def add_confirmed(
        self, count: int, *, min_level: int = 1, topics: tuple[str, ...] = ("alerts",)
    ) -> list[str]:
        """Many confirmed subscribers at once (as if each had confirmed)."""
        emails = [address("bulk") for _ in range(count)]
        await self.sql(
            "INSERT INTO subscriptions (id, email, status, topics, min_level, locale,"
            " created_at, updated_at, confirmed_at)"
            " SELECT gen_random_uuid(), e, 'confirmed', $2, $3, 'pl',"
            " now(), now(), now() FROM unnest($1::text[]) AS e",
            emails,
            list(topics),
            min_level,
        )
        return emails

    async def tables_holding(self, secret: str, *, regex: bool = False) -> list[str]:
        """Every table of the service's database with a row whose text holds `secret`
        (each row as a whole, every column; `regex`: a POSIX regular expression)."""
        condition = "t::text ~ $1" if regex else "strpos(t::text, $1) > 0"
        tables = await self.sql(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS name"
            " FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            " AND table_type = 'BASE TABLE'"
        )
        holding = []
        for table in tables:
            name = table["name"]
            rows = await self.sql(f"SELECT count(*) AS n FROM {name} t WHERE {condition}", secret)
            if rows[0]["n"]:
                holding.append(name)
        return holding


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    content: str = part.get_content()
    return content


def token_in(message: EmailMessage, path: str) -> str:
    match = re.search(re.escape(path) + r"\?token=([A-Za-z0-9_.-]+)", text_of(message))
    assert match, f"no {path} link in:\n{text_of(message)}"
    return match.group(1)


@pytest.fixture(scope="module")
async def kafka_producer(kafka_bootstrap_servers: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(**admin_options(kafka_bootstrap_servers), acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@pytest.fixture
async def harness(
    new_database: DatabaseFactory,
    kafka_bootstrap_servers: str,
    kafka_producer: AIOKafkaProducer,
    smtp_sink: SmtpSink,
) -> AsyncIterator[Harness]:
    settings = settings_for_test(
        NotificationsSettings,
        database_url=await new_database.create("notifications"),
        kafka=kafka_bootstrap_servers,
        prefix=unique_prefix("subscriptions"),
        smtp_host=smtp_sink.host,
        smtp_port=smtp_sink.port,
        mail_from="Strategia Test <strategia@example.org>",
        public_base_url=PUBLIC,
        api_public_url=API,
        dispatcher_poll_seconds=0.5,
        delivery_backoff_seconds=0.2,
        delivery_max_backoff_seconds=1.0,
        subscription_confirmation_cooldown_seconds=0,
        dispatcher_batch_size=20,
        smtp_connections=4,
    )
    harness = Harness(settings, kafka_producer, smtp_sink)
    await harness.start()
    await harness.subscribe_by_email(harness.control, ["alerts", "news", "consultations"])
    try:
        yield harness
    finally:
        await harness.stop()


# --- double opt-in ------------------------------------------------------------------


async def test_double_opt_in_with_the_token_from_the_email(harness: Harness) -> None:
    email = address("jan")
    unknown = await harness.client.post(
        "/v1/subscriptions", json={"email": email, "topics": ["alerts"], "min_level": 2}
    )
    assert unknown.status_code == 202
    [confirmation] = await harness.wait_for_mail(email)
    assert confirmation["Subject"].startswith("Potwierdź subskrypcję")
    assert confirmation["List-Unsubscribe"] is None  # not a subscriber yet
    token = token_in(confirmation, "/subskrypcje/potwierdz")
    assert f"{PUBLIC}/subskrypcje/potwierdz?token={token}" in text_of(confirmation)
    await harness.wait_until_sent(email)

    # Only the hash is stored, nowhere the token itself (not even in the delivery log).
    stored = await harness.sql("SELECT token_hash FROM one_time_tokens")
    assert token not in {row["token_hash"] for row in stored} and len(stored) == 2
    bodies = await harness.sql("SELECT text_body, html_body FROM deliveries")
    assert not any(token in (row["text_body"] or "") + (row["html_body"] or "") for row in bodies)

    # A GET of the link — what a mail scanner does — changes nothing.
    for url in (
        f"/subskrypcje/potwierdz?token={token}",
        f"/v1/subscriptions/confirm?token={token}",
    ):
        assert (await harness.client.get(url)).status_code in {404, 405}
    [row] = await harness.sql("SELECT status FROM subscriptions WHERE email = $1", email)
    assert row["status"] == "pending"

    # The same address again gets the same answer as an unknown one.
    known = await harness.client.post(
        "/v1/subscriptions", json={"email": email.upper(), "topics": ["alerts"], "min_level": 2}
    )
    assert known.status_code == 202 and known.json() == unknown.json()

    confirmed = await harness.client.post("/v1/subscriptions/confirm", json={"token": token})
    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "confirmed" and confirmed.json()["min_level"] == 2
    again = await harness.client.post("/v1/subscriptions/confirm", json={"token": token})
    assert again.status_code == 422 and again.json()["error"] == "invalid_token"


async def test_an_expired_confirmation_link_does_not_confirm(harness: Harness) -> None:
    email = address("late")
    await harness.client.post("/v1/subscriptions", json={"email": email, "topics": ["news"]})
    [confirmation] = await harness.wait_for_mail(email)
    token = token_in(confirmation, "/subskrypcje/potwierdz")
    await harness.wait_until_sent(email)
    await harness.sql(
        "UPDATE one_time_tokens SET expires_at = now() - interval '1 second'"
        " WHERE spent_at IS NULL"
        " AND subject = (SELECT id::text FROM subscriptions WHERE email = $1)",
        email,
    )
    refused = await harness.client.post("/v1/subscriptions/confirm", json={"token": token})
    assert refused.status_code == 422
    [row] = await harness.sql("SELECT status FROM subscriptions WHERE email = $1", email)
    assert row["status"] == "pending"


async def test_a_confirmation_link_works_the_moment_its_email_arrives(harness: Harness) -> None:
    """No wait for the dispatcher to record anything: the token is committed before the
    email goes to the relay. Several rounds of many requests at once, so each batch holds
    emails accepted well before the batch is recorded; every link is spent as soon as its
    email is in the sink."""
    directory = harness.sink.directory
    for round_ in range(4):
        emails = {address(f"quick{round_}") for _ in range(12)}
        seen = {path.name for path in directory.glob("*.eml")}
        answers = await asyncio.gather(
            *(
                harness.client.post("/v1/subscriptions", json={"email": e, "topics": ["news"]})
                for e in emails
            )
        )
        assert {answer.status_code for answer in answers} == {202}
        confirmed: set[str] = set()
        async with asyncio.timeout(60):
            while confirmed != emails:
                for path in sorted(directory.glob("*.eml")):
                    if path.name in seen:
                        continue
                    seen.add(path.name)
                    message = message_from_bytes(path.read_bytes(), policy=email_policy.default)
                    assert isinstance(message, EmailMessage)
                    if message["To"] not in emails:
                        continue
                    token = token_in(message, "/subskrypcje/potwierdz")
                    spent = await harness.client.post(
                        "/v1/subscriptions/confirm", json={"token": token}
                    )
                    assert spent.status_code == 200, (round_, message["To"], spent.text)
                    confirmed.add(str(message["To"]))
                await asyncio.sleep(0.002)
        rows = await harness.sql(
            "SELECT count(*) AS n FROM subscriptions WHERE status = 'confirmed'"
            " AND email = ANY ($1::text[])",
            list(emails),
        )
        assert rows[0]["n"] == len(emails)


async def test_a_subscriber_is_exported_and_erased(harness: Harness) -> None:
    """RODO: the subscription is part of the export (without any link secret), and
    erasure removes it with the emails sent to it, also the ones sharing a message."""
    person, other = address("rodo"), address("other")
    await harness.subscribe_by_email(person, ["alerts"])
    await harness.subscribe_by_email(other, ["alerts"])
    await harness.alert(alert_event(2))
    await harness.settle(2)
    assert len(await harness.mail_to(person)) == 2
    running = harness.running
    assert running is not None
    personal = NotificationsPersonalData()
    async with running.runtime.pool.acquire() as conn:
        exported = await personal.export(conn, subject_for_email(person.upper()))
    [subscription] = exported["subscriptions"]
    assert subscription["email"] == person and subscription["status"] == "confirmed"
    assert {row["purpose"] for row in exported["deliveries"]} == {
        "subscription_confirmation",
        "alert",
    }
    async with running.runtime.unit_of_work() as uow:
        erased = await personal.erase(uow, subject_for_email(person))
        await uow.commit()
    assert erased == 3  # the subscription and its two emails
    assert await harness.tables_holding(person) == []
    rows = await harness.sql("SELECT status FROM subscriptions WHERE email = $1", other)
    assert [row["status"] for row in rows] == ["confirmed"]  # nobody else's
    await harness.alert(alert_event(3))
    await harness.settle(3)
    assert len(await harness.mail_to(other)) == 3


# --- alerts to subscribers -------------------------------------------------------------


async def test_level_filters_and_an_update_and_cancel_reach_the_same_people(
    harness: Harness,
) -> None:
    level_one = address("one")
    level_three = address("three")
    english = address("english")
    news_only = address("news")
    await harness.subscribe_by_email(level_one, ["alerts"], 1)
    await harness.subscribe_by_email(level_three, ["alerts"], 3)
    await harness.subscribe_by_email(english, ["alerts"], 2, "en")
    await harness.subscribe_by_email(news_only, ["news"], 1)

    orange = alert_event(2)
    await harness.alert(orange)
    await harness.settle(2)  # the control's confirmation and the alert
    assert len(await harness.mail_to(level_one)) == 2
    assert len(await harness.mail_to(level_three)) == 1  # its confirmation only
    assert len(await harness.mail_to(news_only)) == 1
    [_, english_alert] = await harness.wait_for_mail(english, 2)
    assert english_alert["Subject"] == "[Warning] Weather warning, level 2: Thunderstorms"
    assert english_alert["Content-Language"] == "en"

    # Lowered to level 1: everyone warned hears about it, the level-2 subscriber too.
    lowered = follow_up([orange], 1, AlertMessageType.UPDATE)
    await harness.alert(lowered)
    await harness.settle(3)
    cancel = follow_up([orange, lowered], 1, AlertMessageType.CANCEL)
    await harness.alert(cancel)
    await harness.settle(4)

    [_, alert, update, cancelled] = await harness.mail_to(level_one)
    assert alert["Subject"].startswith("[Ostrzeżenie] ")
    assert update["Subject"].startswith("[Aktualizacja] ")
    assert cancelled["Subject"].startswith("[Odwołanie] ")
    text = " ".join(text_of(alert).split())
    for fact in (
        "Stopień: 2 (pomarańczowy)",
        "Zjawisko: Burze",
        "Obszar: powiat piaseczyński",
        "czasu warszawskiego",
        "Zalecenia: Zabezpiecz rzeczy na balkonach.",
        "Źródło: IMGW-PIB – Biuro Prognoz Meteorologicznych w Warszawie",
    ):
        assert fact in text
    english_mail = await harness.mail_to(english)
    assert [m["Subject"].split("]")[0] for m in english_mail[1:]] == [
        "[Warning",
        "[Update",
        "[Cancelled",
    ]
    assert len(await harness.mail_to(level_three)) == 1

    # Redelivered events add nothing: once per subscriber per alert message.
    for envelope in (orange, lowered):
        await harness.alert(envelope)
    await harness.alert(alert_event(1))
    await harness.settle(5)
    assert len(await harness.mail_to(level_one)) == 5
    rows = await harness.sql(
        "SELECT count(*) AS n FROM deliveries WHERE purpose = 'alert' AND recipient = $1", level_one
    )
    assert rows[0]["n"] == 4


async def test_unsubscribe_by_the_link_and_by_the_rfc_8058_post(harness: Harness) -> None:
    by_link, by_post, stays = address("link"), address("post"), address("stays")
    for email in (by_link, by_post, stays):
        await harness.subscribe_by_email(email, ["alerts"])
    await harness.alert(alert_event(1))
    [_, to_link] = await harness.wait_for_mail(by_link, 2)
    [_, to_post] = await harness.wait_for_mail(by_post, 2)

    # Both carry the one-click headers and the links in the body.
    assert to_post["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    one_click = str(to_post["List-Unsubscribe"]).strip("<>")
    assert one_click.startswith(f"{API}/v1/subscriptions/one-click-unsubscribe?token=")
    manage_token = token_in(to_link, "/subskrypcje/zarzadzaj")
    shown = await harness.client.post("/v1/subscriptions/manage", json={"token": manage_token})
    assert shown.status_code == 200 and shown.json()["email"] == by_link

    # The database holds no usable link: neither the secret of a link in any table
    # (subscriptions, deliveries, shared contents, tokens...) nor a finished link.
    await harness.settle(2)
    post_token = one_click.rsplit("token=", 1)[1]
    assert token_in(to_post, "/subskrypcje/wypisz") == post_token
    for secret in (manage_token, post_token, manage_token.rsplit(".", 1)[1]):
        assert await harness.tables_holding(secret) == []
    # No stored link with a token in it (only markers filled in when sending).
    assert await harness.tables_holding(r"\?token=[A-Za-z0-9_.-]", regex=True) == []
    # A tampered token, or one made with another secret, gets the one answer for all.
    id_part, generation, mac = manage_token.split(".")
    for forged in (
        f"{id_part}.{generation}.{mac[::-1]}",
        f"{id_part}.{int(generation) + 1}.{mac}",
        f"{token_in(to_post, '/subskrypcje/zarzadzaj').split('.')[0]}.{generation}.{mac}",
    ):
        refused = await harness.client.post("/v1/subscriptions/manage", json={"token": forged})
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_token"

    # The page behind the body's link POSTs its token.
    link_token = token_in(to_link, "/subskrypcje/wypisz")
    assert (await harness.client.get(f"/subskrypcje/wypisz?token={link_token}")).status_code == 404
    gone = await harness.client.post("/v1/subscriptions/unsubscribe", json={"token": link_token})
    assert gone.status_code == 200 and gone.json() == {"status": "unsubscribed"}

    # The mailbox provider POSTs to the header's URL (a GET of it changes nothing).
    path = one_click.removeprefix(API)
    assert (await harness.client.get(path)).status_code == 405
    refused = await harness.client.post(
        path,
        content=b"List-Unsubscribe=Yes",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert refused.status_code == 422
    posted = await harness.client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 200 and posted.json() == {"status": "unsubscribed"}
    twice = await harness.client.post(
        path,
        files={"List-Unsubscribe": (None, "One-Click")},  # multipart/form-data is allowed too
    )
    assert twice.status_code == 200

    await harness.alert(alert_event(3))
    await harness.settle(3)
    assert len(await harness.mail_to(stays)) == 3
    assert len(await harness.mail_to(by_link)) == 2
    assert len(await harness.mail_to(by_post)) == 2

    # The manage link subscribes again.
    back = await harness.client.put(
        "/v1/subscriptions/manage",
        json={"token": link_token, "topics": ["alerts"], "min_level": 1, "locale": "pl"},
    )
    assert back.status_code == 200 and back.json()["status"] == "confirmed"


async def test_articles_go_to_news_and_consultation_subscribers(harness: Harness) -> None:
    news, consultations = address("news"), address("consultations")
    await harness.subscribe_by_email(news, ["news"])
    await harness.subscribe_by_email(consultations, ["consultations"])
    for origin in (ArticleOrigin.MANUAL, ArticleOrigin.CONSULTATION):
        article = new_envelope(
            ArticlePublished(
                article_id=uuid.uuid4(),
                slug=f"artykul-{uuid.uuid4().hex[:8]}",
                title=f"Artykuł {origin.value}",
                lead="Zapraszamy.",
                origin=origin,
                published_at=NOW,
            ),
            producer="news",
        )
        await harness.publish(Topic.NEWS_ARTICLES, article, str(article.data.article_id))
    await harness.settle(3)
    [_, news_mail] = await harness.mail_to(news)
    [_, consultation_mail] = await harness.mail_to(consultations)
    assert news_mail["Subject"] == "[Aktualności] Artykuł manual"
    assert consultation_mail["Subject"] == "[Konsultacje] Artykuł consultation"
    assert f"{PUBLIC}/aktualnosci/artykul-" in text_of(news_mail)


# --- the dispatcher -----------------------------------------------------------------------


async def test_alerts_are_picked_before_older_bulk_mail(harness: Harness) -> None:
    """On the real database: queue news for many, then an alert; the next batch the
    dispatcher locks holds the alert first."""
    await harness.stop()  # no dispatcher running: only this test locks deliveries
    await harness.add_confirmed(30, topics=("alerts", "news"))
    settings = harness.settings
    pool = await create_pool(settings.database_url)
    try:

        async def fan_out(
            purpose: Purpose, priority: DeliveryPriority, topic: SubscriptionTopic
        ) -> int:
            async with PostgresNotificationsUnitOfWork(
                pool, OutboxWriter("t", TopicNames())
            ) as uow:
                content = await uow.deliveries.add_content(ComposedEmail("pl", "s", "t", "h"))
                queued = await uow.deliveries.fan_out(
                    FanOut(
                        source_event_id=uuid.uuid4(),
                        correlation_id="c",
                        purpose=purpose,
                        priority=priority,
                        subject_key=str(uuid.uuid4()),
                        contents={Language.PL: content},
                        audience=Audience(
                            topic=topic, level=1 if topic is SubscriptionTopic.ALERTS else None
                        ),
                        gmina_teryt="1418023",
                    )
                )
                await uow.commit()
                return queued

        # 30 subscribers and the control, who takes every topic.
        assert await fan_out(Purpose.NEWS, DeliveryPriority.BULK, SubscriptionTopic.NEWS) == 31
        assert await fan_out(Purpose.ALERT, DeliveryPriority.URGENT, SubscriptionTopic.ALERTS) == 31
        async with PostgresNotificationsUnitOfWork(pool, OutboxWriter("t", TopicNames())) as uow:
            batch = await uow.deliveries.lock_due(40)
        assert [d.purpose for d in batch] == [Purpose.ALERT] * 31 + [Purpose.NEWS] * 9
        # Queued without personal links: the dispatcher derives them when it sends.
        assert all(d.subscription_id is not None and d.list_unsubscribe is None for d in batch)
    finally:
        await pool.close()


async def test_a_restart_during_a_fan_out_sends_each_subscriber_exactly_one_email(
    harness: Harness,
) -> None:
    emails = await harness.add_confirmed(300)
    event = alert_event(2)
    await harness.alert(event)

    async def some_sent() -> bool:
        rows = await harness.sql(
            "SELECT count(*) AS n FROM deliveries WHERE purpose = 'alert' AND status = 'sent'"
        )
        return bool(rows[0]["n"] >= 40)

    await wait_for(some_sent, "part of the fan-out to be sent")
    await harness.stop()  # in the middle of the fan-out
    rows = await harness.sql(
        "SELECT count(*) FILTER (WHERE status = 'sent') AS sent, count(*) AS queued"
        " FROM deliveries WHERE purpose = 'alert'"
    )
    assert rows[0]["queued"] == 301 and rows[0]["sent"] < 301  # it really was mid-way
    await harness.start()
    await harness.wait_for_mail(harness.control, 2)

    async def all_sent() -> bool:
        rows = await harness.sql(
            "SELECT count(*) AS n FROM deliveries WHERE purpose = 'alert' AND status = 'sent'"
        )
        return bool(rows[0]["n"] == 301)

    await wait_for(all_sent, "every alert delivery to be sent")
    messages = await asyncio.to_thread(harness.sink.messages)
    alert_mail = [m for m in messages if str(m["Subject"]).startswith("[Ostrzeżenie]")]
    recipients = [str(m["To"]) for m in alert_mail]
    assert len(recipients) == len(set(recipients)) == 301  # 300 and the control, once each
    assert set(emails) <= set(recipients)
    assert len({m["Message-ID"] for m in alert_mail}) == 301


async def test_public_subscription_writes_are_rate_limited_per_client(
    new_database: DatabaseFactory, kafka_bootstrap_servers: str, smtp_sink: SmtpSink
) -> None:
    settings = settings_for_test(
        NotificationsSettings,
        database_url=await new_database.create("notifications"),
        kafka=kafka_bootstrap_servers,
        prefix=unique_prefix("subscriptions-limit"),
        smtp_host=smtp_sink.host,
        smtp_port=smtp_sink.port,
        rate_limit_per_minute=2,
        one_click_rate_limit_per_minute=1,
    )
    running = await start_service("notifications", settings)
    try:
        client = running.client
        request = {"email": address("limit"), "topics": ["alerts"]}
        answers = [
            (await client.post("/v1/subscriptions", json=request)).status_code,
            (await client.post("/v1/subscriptions/confirm", json={"token": "x" * 43})).status_code,
        ]
        assert answers == [202, 422]
        # Requests, confirmations and unsubscribes share the client's budget.
        limited = await client.post("/v1/subscriptions/unsubscribe", json={"token": "y" * 43})
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert (await client.post("/v1/subscriptions", json=request)).status_code == 429
        # The one-click route has a budget of its own.
        one_click = "/v1/subscriptions/one-click-unsubscribe?token=" + "z" * 43
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        first = await client.post(one_click, content=b"List-Unsubscribe=One-Click", headers=form)
        assert first.status_code == 422  # unknown token, but counted
        second = await client.post(one_click, content=b"List-Unsubscribe=One-Click", headers=form)
        assert second.status_code == 429
    finally:
        await running.stop()
