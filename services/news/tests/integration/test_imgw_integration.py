"""IMGW ingest over real HTTP (a local server serving the fixtures), into the real database,
out onto the real broker: life cycle, bad feeds, hydro basins, replicas, the worker."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from devtools.testing import eventually
from news.domain.alerts import AlertSource
from news.entrypoints.imgw_worker import POLLER_LOCK_KEY
from shared.contracts.topics import Topic

from .conftest import CAP_SCHEMA, Factory, News
from .imgw_server import METEO_PATH, Reply

pytestmark = pytest.mark.integration


async def poll(news: News) -> list[str]:
    """One poll cycle; the message types it issued (meteo first, then hydro)."""
    polling = news.polling()
    reports = await polling.poll_once()
    return [message.message_type.value for report in reports for message in report.issued]


async def active(news: News) -> list[dict[str, Any]]:
    response = await news.client.get("/v1/alerts/active")
    assert response.status_code == 200
    alerts: list[dict[str, Any]] = response.json()
    return alerts


async def test_meteo_life_cycle_new_raised_lowered_withdrawn(start_news: Factory) -> None:
    news = await start_news()
    imgw = news.imgw

    imgw.meteo("meteo_new.json")
    assert await poll(news) == ["Alert"]
    [alert] = await active(news)
    assert alert["source"] == "imgw_meteo" and alert["level"] == 1
    assert alert["areas"][0]["description"] == "powiat piaseczyński"
    assert alert["issuer"] == "Biuro Prognoz Meteorologicznych w Warszawie"

    assert await poll(news) == []  # fetched twice: the same warning, one alert
    imgw.meteo("meteo_duplicated.json")
    assert await poll(news) == []  # listed twice in one answer: one alert

    news.clock.now = datetime(2025, 7, 8, 9, 5, tzinfo=UTC)
    imgw.meteo("meteo_raised.json")
    assert await poll(news) == ["Update"]
    [raised] = await active(news)
    assert raised["level"] == 2 and [r["alert_id"] for r in raised["references"]] == [alert["id"]]

    news.clock.now = datetime(2025, 7, 8, 13, 5, tzinfo=UTC)
    imgw.meteo("meteo_lowered.json")
    assert await poll(news) == ["Update"]
    [lowered] = await active(news)
    assert lowered["level"] == 1

    imgw.meteo("meteo_other_powiats.json")  # our warning disappeared before it expired
    assert await poll(news) == ["Cancel"]
    assert await active(news) == []

    events = await news.all_events(Topic.NEWS_ALERTS, "news.AlertIssued")
    assert [e["data"]["message_type"] for e in events] == ["Alert", "Update", "Update", "Cancel"]
    assert {e["key"] for e in events} == {alert["id"]}
    assert events[3]["data"]["references"][-1]["alert_id"] == lowered["id"]
    for message in (alert, raised, lowered):
        response = await news.client.get(f"/v1/alerts/{message['id']}.cap")
        CAP_SCHEMA.assertValid(etree.fromstring(response.content))


async def test_an_expired_warning_drops_out_and_is_not_cancelled(start_news: Factory) -> None:
    news = await start_news()
    news.imgw.meteo("meteo_new.json")
    assert await poll(news) == ["Alert"]
    news.clock.now = datetime(2025, 7, 8, 20, 1, tzinfo=UTC)  # 22:01 in Warsaw
    assert await active(news) == []
    news.imgw.meteo("meteo_other_powiats.json")
    assert await poll(news) == []  # no Cancel for a warning whose time ran out
    assert await news.count("alerts WHERE status = 'expired'") == 1


@pytest.mark.parametrize(
    "bad",
    [
        Reply(200, b'[{"id": "Sk1", "nazwa_zdarzenia": '),  # malformed JSON
        Reply(200, b'{"status": true, "data": []}'),  # not an array
        Reply(500, b"Internal Server Error"),
        Reply(404, b"<html>Not Found</html>"),  # a 404 that is not "No products"
        Reply(200, b"[]", delay_seconds=3.0),  # slower than the 2 s timeout
    ],
    ids=["malformed", "not-array", "http-500", "other-404", "timeout"],
)
async def test_a_feed_that_is_down_slow_or_garbage_never_cancels(
    start_news: Factory, bad: Reply
) -> None:
    news = await start_news()
    news.imgw.meteo("meteo_new.json")
    assert await poll(news) == ["Alert"]
    before = news.imgw.requests.get(METEO_PATH, 0)

    news.imgw.set(METEO_PATH, bad)
    assert await poll(news) == []
    assert news.imgw.requests[METEO_PATH] - before == 2  # retried (imgw_fetch_attempts)
    assert len(await active(news)) == 1


async def test_wrong_types_keep_the_good_records_and_cancel_nothing(start_news: Factory) -> None:
    news = await start_news()
    news.imgw.meteo("meteo_new.json")
    assert await poll(news) == ["Alert"]
    news.imgw.meteo("meteo_wrong_types.json")  # our warning may be the unreadable record
    assert await poll(news) == []
    assert len(await active(news)) == 1


async def test_no_products_means_no_warnings(start_news: Factory) -> None:
    news = await start_news()
    news.imgw.meteo("meteo_no_products.json", status=404)
    assert await poll(news) == []
    news.imgw.meteo("meteo_new.json")
    assert await poll(news) == ["Alert"]
    news.imgw.meteo("meteo_no_products.json", status=404)
    assert await poll(news) == ["Cancel"]  # a complete, empty answer: the warning is gone


async def test_other_powiats_only_issue_nothing(start_news: Factory) -> None:
    news = await start_news()
    news.imgw.meteo("meteo_other_powiats.json")
    assert await poll(news) == []
    assert await news.count("alerts") == 0


async def test_hydro_warnings_for_the_gminas_basins_only(
    start_news: Factory, tmp_path: Path
) -> None:
    news = await start_news()
    news.imgw.hydro("hydro_other_basins.json")
    assert await poll(news) == []
    news.imgw.hydro("hydro_ours.json")
    assert await poll(news) == ["Alert"]
    [alert] = await active(news)
    assert alert["source"] == "imgw_hydro"
    codes = [code["value"] for area in alert["areas"] for code in area["codes"]]
    assert codes == ["Z_O_MA_2594"]  # the Pilica basin of the same record is not ours

    # The same gmina without basins configured ingests no hydro warning at all.
    bundled = (resources.files("shared.gminas") / "konstancin-jeziorna.toml").read_text("utf-8")
    without_basins = re.sub(r"(?m)^imgw_basins = .*$", "imgw_basins = []", bundled)
    assert without_basins != bundled
    path = tmp_path / "no-basins.toml"
    path.write_text(without_basins, encoding="utf-8")
    other = await start_news(gmina_profile=str(path))
    other.imgw.hydro("hydro_ours.json")
    assert await poll(other) == []


async def test_replicas_never_ingest_the_same_warning_twice(start_news: Factory) -> None:
    """Two instances on one database poll the same feed at the same moment, over and over:
    every warning is one alert message and one event."""
    first = await start_news()
    second = await start_news(
        database_url=first.settings.database_url,
        prefix=first.settings.kafka_topic_prefix,
        clock=first.clock,
    )
    first.imgw.meteo("meteo_new.json")
    first.imgw.hydro("hydro_ours.json")
    for _ in range(3):
        results = await asyncio.gather(poll(first), poll(second), poll(first), poll(second))
        assert sum(len(issued) for issued in results) <= 2
    assert await first.count("alerts") == 2
    first.clock.now = datetime(2025, 7, 8, 9, 5, tzinfo=UTC)
    first.imgw.meteo("meteo_raised.json")
    results = await asyncio.gather(poll(first), poll(second), poll(first), poll(second))
    assert sorted(t for issued in results for t in issued) == ["Update"]

    events = await first.all_events(Topic.NEWS_ALERTS, "news.AlertIssued")
    assert sorted(e["data"]["message_type"] for e in events) == ["Alert", "Alert", "Update"]
    assert len({e["data"]["alert_id"] for e in events}) == 3
    assert await first.count("alerts WHERE status = 'active'") == 2


async def test_the_poller_worker_ingests_on_its_own_and_one_replica_leads(
    start_news: Factory,
) -> None:
    first = await start_news(imgw_enabled=True, imgw_poll_interval_seconds=0.3)
    first.imgw.meteo("meteo_new.json")
    second = await start_news(
        database_url=first.settings.database_url,
        prefix=first.settings.kafka_topic_prefix,
        clock=first.clock,
        imgw_enabled=True,
        imgw_poll_interval_seconds=0.3,
    )

    async def alert_issued() -> list[dict[str, Any]] | None:
        return await active(second) or None

    [alert] = await eventually(alert_issued, "the worker to ingest the warning")
    assert alert["source"] == AlertSource.IMGW_METEO.value
    polls_then = first.imgw.requests[METEO_PATH]
    await eventually(
        lambda: _more_polls(first, polls_then + 3), "three more poll cycles of the leader"
    )
    assert await first.count("alerts") == 1
    # pg_locks shows a bigint advisory key as its high and low 32 bits.
    leaders = await first.runtime.pool.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
        " AND classid::bigint = $1 AND objid::bigint = $2",
        POLLER_LOCK_KEY >> 32,
        POLLER_LOCK_KEY & 0xFFFF_FFFF,
    )
    assert leaders == 1


async def _more_polls(news: News, wanted: int) -> bool:
    return news.imgw.requests.get(METEO_PATH, 0) >= wanted
