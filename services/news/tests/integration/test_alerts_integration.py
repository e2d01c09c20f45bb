"""Manual alerts on the real broker and server: HTTP API, CAP 1.2 documents validated
against the OASIS schema, the Atom feed of current alerts, and the events."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import feedparser
import pytest
from lxml import etree

from devtools.testing import ADMIN, CLERK
from news.domain.cap import CAP_NAMESPACE
from shared.contracts.topics import Topic

from .conftest import CAP_SCHEMA, Factory, News

pytestmark = pytest.mark.integration

NS = {"cap": CAP_NAMESPACE, "a": "http://www.w3.org/2005/Atom"}


def manual_alert(news: News, **changes: Any) -> dict[str, Any]:
    now = news.clock.now
    payload: dict[str, Any] = {
        "event": "Burze",
        "level": 2,
        "headline": "Silne burze z gradem",
        "description": "Prognozowane są burze z gradem & porywami <90 km/h>.",
        "instruction": "Zabezpiecz rzeczy na balkonach.",
        "areas": ["1418023"],
        "onset": (now + timedelta(hours=1)).isoformat(),
        "expires": (now + timedelta(hours=9)).isoformat(),
        "probability": 80,
    }
    payload.update(changes)
    return payload


async def cap_of(news: News, alert_id: str) -> etree._Element:
    response = await news.client.get(f"/v1/alerts/{alert_id}.cap")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/cap+xml"
    document = etree.fromstring(response.content)
    CAP_SCHEMA.assertValid(document)
    return document


async def test_manual_alert_update_cancel_as_api_cap_and_events(start_news: Factory) -> None:
    news = await start_news()
    client = news.client
    assert (await client.post("/v1/alerts", json=manual_alert(news))).status_code == 401
    assert (
        await client.post("/v1/alerts", json=manual_alert(news), headers=CLERK)
    ).status_code == 403
    for bad, field in (
        (manual_alert(news, level=4), "level"),
        (manual_alert(news, level="2"), "level"),
        (manual_alert(news, areas=["14180"]), "areas.0"),
        (manual_alert(news, areas=[]), "areas"),
        (manual_alert(news, headline="a\nb"), "headline"),
        (manual_alert(news, expires=news.clock.now.isoformat()), "expires"),
    ):
        response = await client.post("/v1/alerts", json=bad, headers=ADMIN)
        assert response.status_code == 422, bad
        assert field in {error["field"] for error in response.json()["errors"]}, response.json()
    assert await news.count("alerts") == 0

    created = await client.post("/v1/alerts", json=manual_alert(news), headers=ADMIN)
    assert created.status_code == 201, created.text
    alert = created.json()
    assert alert["message_type"] == "Alert" and alert["severity"] == "Severe"
    assert alert["status"] == "active" and alert["in_force"] is False  # onset in an hour
    assert alert["areas"] == [
        {
            "description": "Gmina Konstancin-Jeziorna",
            "codes": [{"kind": "TERYT", "value": "1418023"}],
        }
    ]

    active = (await client.get("/v1/alerts/active")).json()
    assert [item["id"] for item in active] == [alert["id"]]

    cap = await cap_of(news, alert["id"])
    assert cap.findtext("cap:msgType", namespaces=NS) == "Alert"
    assert cap.findtext("cap:info/cap:severity", namespaces=NS) == "Severe"
    assert cap.findtext("cap:info/cap:certainty", namespaces=NS) == "Likely"
    assert cap.findtext("cap:info/cap:area/cap:geocode/cap:value", namespaces=NS) == "1418023"
    assert cap.findtext("cap:info/cap:onset", namespaces=NS).endswith("+02:00")  # Warsaw, July

    patched = await client.patch(f"/v1/alerts/{alert['id']}", json={"level": 3}, headers=ADMIN)
    assert patched.status_code == 200, patched.text
    update = patched.json()
    assert update["id"] != alert["id"] and update["message_type"] == "Update"
    assert update["level"] == 3 and update["headline"] == alert["headline"]
    assert [ref["alert_id"] for ref in update["references"]] == [alert["id"]]
    replaced = (await client.get(f"/v1/alerts/{alert['id']}")).json()
    assert replaced["status"] == "superseded"
    update_cap = await cap_of(news, update["id"])
    references = update_cap.findtext("cap:references", namespaces=NS)
    assert references.startswith(
        f"strategia@konstancinjeziorna.pl,strategia@konstancinjeziorna.pl.{alert['id']},"
    )
    again = await client.patch(f"/v1/alerts/{alert['id']}", json={"level": 1}, headers=ADMIN)
    assert again.status_code == 409

    cancelled = await client.post(
        f"/v1/alerts/{update['id']}/cancel", json={"note": "Front przeszedł."}, headers=ADMIN
    )
    assert cancelled.status_code == 200, cancelled.text
    cancel = cancelled.json()
    assert cancel["message_type"] == "Cancel" and cancel["headline"].startswith("Odwołane:")
    assert [ref["alert_id"] for ref in cancel["references"]] == [alert["id"], update["id"]]
    cancel_cap = await cap_of(news, cancel["id"])
    assert cancel_cap.findtext("cap:info/cap:urgency", namespaces=NS) == "Past"
    assert (await client.get("/v1/alerts/active")).json() == []
    twice = await client.post(f"/v1/alerts/{update['id']}/cancel", headers=ADMIN)
    assert twice.status_code == 409
    assert (await client.get(f"/v1/alerts/{uuid.uuid4()}.cap")).status_code == 404
    assert (await client.get(f"/v1/alerts/{uuid.uuid4()}")).status_code == 404

    events = await news.all_events(Topic.NEWS_ALERTS, "news.AlertIssued")
    assert [event["data"]["message_type"] for event in events] == ["Alert", "Update", "Cancel"]
    assert {event["key"] for event in events} == {alert["id"]}  # one partition, in order
    assert events[0]["data"]["instruction"] == "Zabezpiecz rzeczy na balkonach."
    assert events[1]["data"]["level"] == 3


async def test_an_expired_alert_drops_out_by_itself(start_news: Factory) -> None:
    news = await start_news()
    created = await news.client.post(
        "/v1/alerts", json=manual_alert(news, onset=news.clock.now.isoformat()), headers=ADMIN
    )
    alert = created.json()
    assert alert["in_force"] is True
    news.clock.now += timedelta(hours=10)
    assert (await news.client.get("/v1/alerts/active")).json() == []
    assert (await news.client.get(f"/v1/alerts/{alert['id']}")).json()["status"] == "expired"
    refused = await news.client.patch(f"/v1/alerts/{alert['id']}", json={"level": 1}, headers=ADMIN)
    assert refused.status_code == 409


async def test_the_alerts_feed_is_atom_with_a_valid_cap_message_per_entry(
    start_news: Factory,
) -> None:
    news = await start_news()
    ids = []
    for level in (1, 3):
        news.clock.now += timedelta(minutes=1)
        response = await news.client.post(
            "/v1/alerts", json=manual_alert(news, level=level), headers=ADMIN
        )
        ids.append(response.json()["id"])
    await news.client.post(f"/v1/alerts/{ids[0]}/cancel", headers=ADMIN)

    response = await news.client.get("/feeds/alerts.atom")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    feed = etree.fromstring(response.content)
    entries = feed.findall("a:entry", NS)
    assert [entry.findtext("a:id", namespaces=NS) for entry in entries] == [f"urn:uuid:{ids[1]}"]
    content = entries[0].find("a:content", NS)
    assert content.get("type") == "application/cap+xml"
    [message] = content.findall("cap:alert", NS)
    CAP_SCHEMA.assertValid(etree.ElementTree(message))
    assert message.findtext("cap:info/cap:severity", namespaces=NS) == "Extreme"
    cap_link = entries[0].find("a:link[@type='application/cap+xml']", NS)
    assert cap_link.get("href") == f"https://api.example.gmina.pl/news/v1/alerts/{ids[1]}.cap"
