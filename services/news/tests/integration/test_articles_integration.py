"""Articles on the real broker and server: HTTP API, events, the scheduler across a
restart, consultation events becoming articles, and the Atom feed."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import feedparser
import pytest
from aiokafka import AIOKafkaProducer
from lxml import etree

from devtools.testing import ADMIN, CLERK, eventually, wait_until_consumed
from shared.contracts.envelope import new_envelope
from shared.contracts.intake import ConsultationClosed, ConsultationOpened
from shared.contracts.topics import Topic

from .conftest import Factory, News, publish

pytestmark = pytest.mark.integration

ATOM = "{http://www.w3.org/2005/Atom}"


def article(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "title": "LGD Perły Mazowsza zaprasza na konferencję",
        "lead": "Konferencja otwierająca realizację strategii na lata 2023–2027.",
        "body": "Zapraszamy **28 maja**.\n\n<script>alert(1)</script>",
        "tags": ["LGD", "strategia"],
    }
    payload.update(changes)
    return payload


async def create(news: News, **changes: Any) -> dict[str, Any]:
    response = await news.client.post("/v1/articles", json=article(**changes), headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_article_api_and_its_events(start_news: Factory) -> None:
    news = await start_news()
    assert (await news.client.post("/v1/articles", json=article())).status_code == 401
    assert (
        await news.client.post("/v1/articles", json=article(), headers=CLERK)
    ).status_code == 403
    bad = await news.client.post("/v1/articles", json=article(title=" ", extra=1), headers=ADMIN)
    assert bad.status_code == 422
    assert {error["field"] for error in bad.json()["errors"]} == {"title", "extra"}
    assert await news.count("articles") == 0

    first = await create(news)
    assert first["tags"] == ["lgd", "strategia"]
    assert "<script>" not in first["body_html"] and "<strong>28 maja</strong>" in first["body_html"]
    assert first["url"] == f"https://www.example.gmina.pl/aktualnosci/{first['slug']}"
    news.clock.now += timedelta(minutes=1)
    second = await create(news, title="Nabór wniosków", tags=["gmina"])
    draft = await create(news, title="Szkic", draft=True)
    assert draft["state"] == "draft"

    listed = (await news.client.get("/v1/articles")).json()
    assert [item["id"] for item in listed["items"]] == [second["id"], first["id"]]
    assert listed["total"] == 2
    tagged = (await news.client.get("/v1/articles", params={"tag": "LGD"})).json()
    assert [item["id"] for item in tagged["items"]] == [first["id"]]
    paged = (await news.client.get("/v1/articles", params={"limit": 1, "offset": 1})).json()
    assert [item["id"] for item in paged["items"]] == [first["id"]]

    assert (await news.client.get(f"/v1/articles/{draft['id']}")).status_code == 404
    as_admin = await news.client.get(f"/v1/articles/{draft['id']}", headers=ADMIN)
    assert as_admin.status_code == 200
    assert (await news.client.get(f"/v1/articles/{uuid.uuid4()}")).status_code == 404

    patched = await news.client.patch(
        f"/v1/articles/{first['id']}", json={"title": "Konferencja LGD"}, headers=ADMIN
    )
    assert patched.status_code == 200 and patched.json()["slug"] == first["slug"]
    withdrawn = await news.client.post(f"/v1/articles/{first['id']}/unpublish", headers=ADMIN)
    assert withdrawn.json()["state"] == "withdrawn"
    closed = await news.client.patch(
        f"/v1/articles/{first['id']}", json={"title": "x"}, headers=ADMIN
    )
    assert closed.status_code == 409
    assert (await news.client.get(f"/v1/articles/{first['id']}")).status_code == 404

    published = await news.all_events(Topic.NEWS_ARTICLES, "news.ArticlePublished")
    assert [(e["key"], e["data"]["title"]) for e in published] == [
        (first["id"], first["title"]),
        (second["id"], "Nabór wniosków"),
    ]
    assert published[0]["data"]["lead"] == first["lead"]
    [updated] = await news.all_events(Topic.NEWS_ARTICLES, "news.ArticleUpdated")
    assert updated["data"]["title"] == "Konferencja LGD" and updated["key"] == first["id"]
    [gone] = await news.all_events(Topic.NEWS_ARTICLES, "news.ArticleWithdrawn")
    assert gone["data"]["article_id"] == first["id"]


async def test_a_scheduled_article_is_published_on_time_even_across_a_restart(
    start_news: Factory,
) -> None:
    news = await start_news()
    due = news.clock.now + timedelta(hours=1)
    scheduled = await create(news, publish_at=due.isoformat())
    assert scheduled["state"] == "scheduled"
    assert (await news.client.get(f"/v1/articles/{scheduled['id']}")).status_code == 404
    database_url, prefix = news.settings.database_url, news.settings.kafka_topic_prefix
    clock = news.clock
    await news.stop()

    clock.now = due + timedelta(hours=2)  # it came due while the service was down
    restarted = await start_news(database_url=database_url, prefix=prefix, clock=clock)

    async def published() -> dict[str, Any] | None:
        found = await restarted.client.get(f"/v1/articles/{scheduled['id']}", headers=ADMIN)
        state = found.json()
        return state if state["state"] == "published" else None

    state = await eventually(published, "the scheduler to publish the article")
    assert datetime.fromisoformat(state["published_at"]) == due  # when it was due
    [event] = await restarted.all_events(Topic.NEWS_ARTICLES, "news.ArticlePublished")
    assert event["data"]["article_id"] == scheduled["id"]


async def test_consultation_openings_and_closings_become_articles(
    start_news: Factory, kafka_producer: AIOKafkaProducer
) -> None:
    news = await start_news()
    consultation_id = uuid.uuid4()
    now = news.clock.now
    opened = new_envelope(
        ConsultationOpened(
            consultation_id=consultation_id,
            title="Strategia Rozwoju Gminy 2040+",
            opens_at=now - timedelta(hours=1),
            closes_at=now + timedelta(days=40),
        ),
        producer="intake",
    )
    closed = new_envelope(
        ConsultationClosed(
            consultation_id=consultation_id,
            title="Strategia Rozwoju Gminy 2040+",
            closes_at=now + timedelta(days=40),
        ),
        producer="intake",
    )
    topic = news.topic(Topic.INTAKE_CONSULTATIONS)
    for envelope in (opened, opened, closed):  # the opening delivered twice
        await publish(kafka_producer, topic, envelope)

    async def two_articles() -> list[dict[str, Any]] | None:
        page = (await news.client.get("/v1/articles", params={"tag": "konsultacje"})).json()
        return page["items"] if page["total"] >= 2 else None

    items = await eventually(two_articles, "articles for the opening and the closing")
    titles = sorted(item["title"] for item in items)
    assert titles == [
        "Rozpoczęły się konsultacje: Strategia Rozwoju Gminy 2040+",
        "Zakończyły się konsultacje: Strategia Rozwoju Gminy 2040+",
    ]
    assert all(item["origin"] == "consultation" for item in items)
    await news.all_events(Topic.NEWS_ARTICLES, "news.ArticlePublished")  # outbox drained
    await wait_until_consumed(
        news.settings.kafka_bootstrap_servers, news.runtime.consumer.group_id, topic
    )
    assert await news.count("articles") == 2
    published = await news.all_events(Topic.NEWS_ARTICLES, "news.ArticlePublished")
    assert len(published) == 2
    assert {e["data"]["consultation_id"] for e in published} == {str(consultation_id)}


async def test_the_articles_feed_is_valid_atom(start_news: Factory) -> None:
    news = await start_news()
    first = await create(news)
    news.clock.now += timedelta(minutes=5)
    await create(news, title="Nabór & <wnioski>", tags=["gmina"])
    await create(news, title="Szkic", draft=True)

    response = await news.client.get("/feeds/articles.atom")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert [entry.title for entry in parsed.entries] == ["Nabór & <wnioski>", first["title"]]
    root = etree.fromstring(response.content)
    assert root.find(f"{ATOM}link[@rel='self']").get("href") == (
        "https://api.example.gmina.pl/news/feeds/articles.atom"
    )
    entry_links = [link.get("href") for link in root.iter(f"{ATOM}link")]
    assert first["url"] in entry_links


async def test_a_long_article_fits_and_an_oversized_body_is_refused(start_news: Factory) -> None:
    news = await start_news()
    # 50,000 characters of Polish text in each language: far above the platform's 16 KiB
    # default body limit, within the articles' own.
    body = ("Zażółć gęślą jaźń. " * 2700)[:50_000]
    long = await create(news, body=body, body_en=body)
    assert len(long["body_html"]) > 50_000
    huge = {**article(), "body": "ż" * 300_000}  # ~600 KB of JSON: over the route's limit
    refused = await news.client.post("/v1/articles", json=huge, headers=ADMIN)
    assert refused.status_code == 413
    assert await news.count("articles") == 1
