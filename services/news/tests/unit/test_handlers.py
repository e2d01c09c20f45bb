"""News use cases on a fake unit of work: the rules, fast (no broker, no server)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from news.domain.alerts import AlertSource, AlertStatus, Category, ManualAlertDraft, MessageType
from news.domain.articles import ArticleChanges, ArticleDraft, ArticleState
from news.domain.errors import InvalidRequest, NotFound, StateConflict
from news.domain.imgw import FailedFetch, FeedKind, parse_hydro, parse_meteo
from news.domain.lifecycle import ImgwScope
from news.service.handlers import AlertChanges, NewsService
from shared.contracts.intake import (
    ConsultationAnnounced,
    ConsultationKind,
    ConsultationOpened,
)
from shared.contracts.news import (
    AlertIssued,
    AlertMessageType,
    ArticlePublished,
    ArticleUpdated,
    ArticleWithdrawn,
)
from shared.errors import Conflict
from shared.errors import NotFound as SharedNotFound
from shared.platform.http import domain_error_status

from .conftest import NOW, Clock, FakeStore

WARSAW = ZoneInfo("Europe/Warsaw")
IMGW = Path(__file__).parent.parent / "data" / "imgw"
SCOPE = ImgwScope.of("1418", "powiat piaseczyński", ["Z_O_MA_2594", "Z_O_MA_259"])


@pytest.fixture
def service(clock: Clock) -> NewsService:
    return NewsService(
        scope=SCOPE,
        zone=WARSAW,
        area_names={"1418": "powiat piaseczyński", "1418023": "Gmina Konstancin-Jeziorna"},
        clock=clock,
    )


def draft(**changes: Any) -> ArticleDraft:
    fields: dict[str, Any] = {
        "title": "LGD Perły Mazowsza zaprasza na konferencję",
        "lead": "Konferencja otwierająca strategię na lata 2023–2027.",
        "body": "Zapraszamy **28 maja**.",
        "tags": ("lgd", "strategia"),
    }
    fields.update(changes)
    return ArticleDraft(**fields)


def alert_draft(**changes: Any) -> ManualAlertDraft:
    fields: dict[str, Any] = {
        "event": "Burze",
        "level": 2,
        "headline": "Silne burze z gradem",
        "description": "Zabezpiecz rzeczy na balkonach.",
        "areas": ("1418023",),
        "onset": NOW,
        "expires": NOW + timedelta(hours=8),
        "instruction": "Nie parkuj pod drzewami.",
    }
    fields.update(changes)
    return ManualAlertDraft(**fields)


def meteo(name: str, status: int = 200) -> Any:
    return parse_meteo(status, (IMGW / name).read_bytes(), WARSAW)


def hydro(name: str, status: int = 200) -> Any:
    return parse_hydro(status, (IMGW / name).read_bytes(), WARSAW)


# --- errors -----------------------------------------------------------------------------


def test_news_domain_errors_are_the_shared_kinds() -> None:
    assert domain_error_status(StateConflict("x")) == 409
    assert issubclass(StateConflict, Conflict)
    assert domain_error_status(NotFound("x")) == 404
    assert NotFound is SharedNotFound


# --- articles ---------------------------------------------------------------------------


async def test_an_article_without_publish_at_is_published_at_once(
    service: NewsService, store: FakeStore
) -> None:
    async with store.unit_of_work() as uow:
        article = await service.create_article(uow, draft())
    assert article.state is ArticleState.PUBLISHED
    [event] = store.committed
    assert isinstance(event[0], ArticlePublished)
    assert event[0].lead == article.lead and event[1] == str(article.id)


async def test_a_scheduled_article_is_published_by_the_scheduler_when_due(
    service: NewsService, store: FakeStore, clock: Clock
) -> None:
    async with store.unit_of_work() as uow:
        article = await service.create_article(uow, draft(publish_at=NOW + timedelta(hours=1)))
    assert article.state is ArticleState.SCHEDULED and store.committed == []
    async with store.unit_of_work() as uow:
        assert await service.publish_due_articles(uow) == 0
    async with store.unit_of_work() as uow:
        assert await service.next_publication(uow) == NOW + timedelta(hours=1)
    with pytest.raises(NotFound):
        async with store.unit_of_work() as uow:
            await service.article(uow, article.id, include_unpublished=False)

    clock.now = NOW + timedelta(hours=2)  # the service was down when it came due
    async with store.unit_of_work() as uow:
        assert await service.publish_due_articles(uow) == 1
    async with store.unit_of_work() as uow:
        assert await service.publish_due_articles(uow) == 0  # once only
    [published] = store.events(ArticlePublished)
    assert published.published_at == NOW + timedelta(hours=1)  # when it was due
    assert store.articles.rows[article.id].state is ArticleState.PUBLISHED


async def test_editing_and_withdrawing_publish_their_events(
    service: NewsService, store: FakeStore
) -> None:
    async with store.unit_of_work() as uow:
        article = await service.create_article(uow, draft())
    async with store.unit_of_work() as uow:
        await service.change_article(uow, article.id, ArticleChanges(title="Nowy tytuł"))
    async with store.unit_of_work() as uow:
        await service.change_article(uow, article.id, ArticleChanges())  # nothing changes
    async with store.unit_of_work() as uow:
        withdrawn = await service.unpublish_article(uow, article.id)
    async with store.unit_of_work() as uow:
        await service.unpublish_article(uow, article.id)  # again: harmless
    assert withdrawn.state is ArticleState.WITHDRAWN
    assert [type(event) for event in store.events()] == [
        ArticlePublished,
        ArticleUpdated,
        ArticleWithdrawn,
    ]
    assert store.events(ArticleUpdated)[0].title == "Nowy tytuł"
    with pytest.raises(StateConflict):
        async with store.unit_of_work() as uow:
            await service.change_article(uow, article.id, ArticleChanges(title="x"))
    with pytest.raises(NotFound):
        async with store.unit_of_work() as uow:
            await service.change_article(uow, uuid.uuid4(), ArticleChanges(title="x"))


async def test_the_public_list_is_newest_first_by_tag_and_paginated(
    service: NewsService, store: FakeStore, clock: Clock
) -> None:
    created = []
    for index in range(5):
        clock.now = NOW + timedelta(minutes=index)
        tags = ("lgd",) if index % 2 == 0 else ("gmina",)
        async with store.unit_of_work() as uow:
            created.append(await service.create_article(uow, draft(title=f"A{index}", tags=tags)))
    async with store.unit_of_work() as uow:
        await service.create_article(uow, draft(title="Szkic", draft=True))
    async with store.unit_of_work() as uow:
        await service.unpublish_article(uow, created[4].id)

    async with store.unit_of_work() as uow:
        page = await service.public_articles(uow, tag=None, limit=2, offset=1)
    assert [a.title for a in page.items] == ["A2", "A1"] and page.total == 4
    async with store.unit_of_work() as uow:
        lgd = await service.public_articles(uow, tag="lgd", limit=10, offset=0)
    assert [a.title for a in lgd.items] == ["A2", "A0"]


# --- consultations ----------------------------------------------------------------------


def opened(consultation_id: uuid.UUID, title: str = "Strategia 2040+") -> ConsultationOpened:
    return ConsultationOpened(
        consultation_id=consultation_id,
        title=title,
        opens_at=NOW - timedelta(hours=1),
        closes_at=NOW + timedelta(days=40),
    )


async def test_a_consultation_event_becomes_one_article(
    service: NewsService, store: FakeStore
) -> None:
    consultation_id = uuid.uuid4()
    async with store.unit_of_work() as uow:
        article = await service.on_consultation_event(uow, opened(consultation_id))
    async with store.unit_of_work() as uow:
        again = await service.on_consultation_event(uow, opened(consultation_id))
    assert article is not None and again is None
    [published] = store.events(ArticlePublished)
    assert published.origin.value == "consultation"
    assert published.consultation_id == consultation_id
    assert published.title.startswith("Rozpoczęły się konsultacje")


async def test_an_announcement_of_an_open_consultation_waits_for_its_opening(
    service: NewsService, store: FakeStore
) -> None:
    def announced(opens_at: datetime) -> ConsultationAnnounced:
        return ConsultationAnnounced(
            consultation_id=uuid.uuid4(),
            title="Strategia 2040+",
            kind=ConsultationKind.STRATEGY,
            opens_at=opens_at,
            closes_at=opens_at + timedelta(days=40),
            themes=("social",),
        )

    async with store.unit_of_work() as uow:
        assert await service.on_consultation_event(uow, announced(NOW - timedelta(hours=1))) is None
    async with store.unit_of_work() as uow:
        upcoming = await service.on_consultation_event(uow, announced(NOW + timedelta(days=2)))
    assert upcoming is not None and upcoming.title.startswith("Zapowiedź konsultacji")
    assert upcoming.tags == ("konsultacje", "strategia")


async def test_a_long_consultation_title_is_clipped_not_refused(
    service: NewsService, store: FakeStore
) -> None:
    async with store.unit_of_work() as uow:
        article = await service.on_consultation_event(uow, opened(uuid.uuid4(), "S" * 300))
    assert article is not None and len(article.title) == 200
    assert store.events(ArticlePublished)[0].title == article.title


# --- manual alerts ----------------------------------------------------------------------


async def test_manual_alert_update_and_cancel_form_one_chain(
    service: NewsService, store: FakeStore
) -> None:
    async with store.unit_of_work() as uow:
        alert = await service.issue_alert(uow, alert_draft())
    async with store.unit_of_work() as uow:
        update = await service.update_alert(uow, alert.id, AlertChanges(level=3))
    async with store.unit_of_work() as uow:
        cancel = await service.cancel_alert(uow, update.id, note="Burze minęły.")

    assert update.level == 3 and update.headline == alert.headline  # the rest carried over
    assert update.instruction == "Nie parkuj pod drzewami."
    assert [ref.alert_id for ref in cancel.references] == [alert.id, update.id]
    assert store.alerts.rows[alert.id].status is AlertStatus.SUPERSEDED
    assert store.alerts.rows[update.id].status is AlertStatus.CANCELLED
    events: list[AlertIssued] = store.events(AlertIssued)
    assert [e.message_type for e in events] == [
        AlertMessageType.ALERT,
        AlertMessageType.UPDATE,
        AlertMessageType.CANCEL,
    ]
    assert {key for _, key in store.committed} == {str(alert.id)}  # one partition, in order
    assert events[2].references[0].alert_id == alert.id
    assert "Burze minęły." in (events[2].description or "")
    async with store.unit_of_work() as uow:
        assert await service.current_alerts(uow) == []

    with pytest.raises(StateConflict):
        async with store.unit_of_work() as uow:
            await service.cancel_alert(uow, update.id, note=None)
    with pytest.raises(NotFound):
        async with store.unit_of_work() as uow:
            await service.update_alert(uow, uuid.uuid4(), AlertChanges(level=1))


async def test_an_invalid_update_changes_nothing(service: NewsService, store: FakeStore) -> None:
    async with store.unit_of_work() as uow:
        alert = await service.issue_alert(uow, alert_draft())
    before = dict(store.alerts.rows)
    past = NOW - timedelta(hours=1)
    with pytest.raises(InvalidRequest, match="expires"):
        async with store.unit_of_work() as uow:
            await service.update_alert(uow, alert.id, AlertChanges(expires=past))
    assert store.alerts.rows == before
    assert len(store.committed) == 1


# --- IMGW -------------------------------------------------------------------------------


async def ingest(service: NewsService, store: FakeStore, outcome: Any) -> list[Any]:
    async with store.unit_of_work() as uow:
        report = await service.ingest(uow, outcome)
    return list(report.issued)


async def test_imgw_life_cycle_new_raised_lowered_withdrawn(
    service: NewsService, store: FakeStore, clock: Clock
) -> None:
    [alert] = await ingest(service, store, meteo("meteo_new.json"))
    assert alert.message_type is MessageType.ALERT and alert.source is AlertSource.IMGW_METEO
    assert await ingest(service, store, meteo("meteo_new.json")) == []  # fetched twice: one
    assert await ingest(service, store, meteo("meteo_duplicated.json")) == []

    clock.now = datetime(2025, 7, 8, 9, 5, tzinfo=UTC)
    [raised] = await ingest(service, store, meteo("meteo_raised.json"))
    assert raised.message_type is MessageType.UPDATE and raised.level == 2
    assert [ref.alert_id for ref in raised.references] == [alert.id]

    clock.now = datetime(2025, 7, 8, 13, 5, tzinfo=UTC)
    [lowered] = await ingest(service, store, meteo("meteo_lowered.json"))
    assert lowered.level == 1
    assert [ref.alert_id for ref in lowered.references] == [alert.id, raised.id]

    [cancel] = await ingest(service, store, meteo("meteo_other_powiats.json"))
    assert cancel.message_type is MessageType.CANCEL
    assert store.alerts.rows[lowered.id].status is AlertStatus.CANCELLED
    assert [type(e) for e in store.events()] == [AlertIssued] * 4
    assert {key for _, key in store.committed} == {str(alert.id)}
    assert store.alerts.locked == [FeedKind.METEO] * 6


async def test_a_feed_that_failed_or_is_incomplete_cancels_nothing(
    service: NewsService, store: FakeStore
) -> None:
    [alert] = await ingest(service, store, meteo("meteo_new.json"))
    assert await ingest(service, store, FailedFetch(FeedKind.METEO, "timeout")) == []
    # One record about our powiat is unreadable: the warning might be that record.
    assert await ingest(service, store, meteo("meteo_wrong_types.json")) == []
    assert store.alerts.rows[alert.id].status is AlertStatus.ACTIVE
    # A 404 "No products were found" is a complete, empty answer: the warning is gone.
    [cancel] = await ingest(service, store, meteo("meteo_no_products.json", status=404))
    assert cancel.message_type is MessageType.CANCEL


async def test_an_expired_warning_drops_out_without_a_cancel(
    service: NewsService, store: FakeStore, clock: Clock
) -> None:
    [alert] = await ingest(service, store, meteo("meteo_new.json"))
    clock.now = datetime(2025, 7, 8, 20, 1, tzinfo=UTC)  # 22:01 in Warsaw
    async with store.unit_of_work() as uow:
        assert await service.current_alerts(uow) == []
    assert await ingest(service, store, meteo("meteo_other_powiats.json")) == []
    assert store.alerts.rows[alert.id].status is AlertStatus.EXPIRED
    assert len(store.events()) == 1


async def test_hydro_warnings_count_only_for_the_gminas_basins(
    service: NewsService, store: FakeStore
) -> None:
    assert await ingest(service, store, hydro("hydro_other_basins.json")) == []
    [alert] = await ingest(service, store, hydro("hydro_ours.json"))
    assert alert.source is AlertSource.IMGW_HYDRO
    assert {code.value for code in alert.area_codes} == {"Z_O_MA_2594"}
    assert store.alerts.locked == [FeedKind.HYDRO, FeedKind.HYDRO]
    elsewhere = NewsService(
        scope=ImgwScope.of("1418", "powiat piaseczyński", []),
        zone=WARSAW,
        area_names={},
        clock=lambda: NOW,
    )
    other_store = FakeStore()
    assert await ingest(elsewhere, other_store, hydro("hydro_ours.json")) == []


async def test_a_warning_edited_and_edited_back_is_a_new_message_each_time(
    service: NewsService, store: FakeStore, clock: Clock
) -> None:
    """A record changed in place is an Update; changed back it must not reuse the id of
    its first message (which the store already has) or the warning would vanish."""
    original = (IMGW / "meteo_new.json").read_bytes()
    edited = original.replace(b'"stopien": "1"', b'"stopien": "2"', 1)
    [first] = await ingest(service, store, parse_meteo(200, original, WARSAW))
    [second] = await ingest(service, store, parse_meteo(200, edited, WARSAW))
    [third] = await ingest(service, store, parse_meteo(200, original, WARSAW))
    assert len({first.id, second.id, third.id}) == 3
    async with store.unit_of_work() as uow:
        assert [a.id for a in await service.current_alerts(uow)] == [third.id]


async def test_alert_events_satisfy_the_contract_for_hostile_feed_text(
    service: NewsService, store: FakeStore
) -> None:
    body = (IMGW / "meteo_new.json").read_text(encoding="utf-8")
    hostile = body.replace('"Burze"', '"Bu\\u0000rze\\n' + "x" * 300 + '"', 1).replace(
        '"komentarz": ""', '"komentarz": "\\ud800"', 1
    )
    [alert] = await ingest(service, store, parse_meteo(200, hostile.encode(), WARSAW))
    [event] = store.events(AlertIssued)
    assert "\x00" not in event.event and "\n" not in event.headline
    assert len(event.event) <= 100 and len(event.headline) <= 160
    assert event.category == Category.MET.value
    assert alert.id == event.alert_id
