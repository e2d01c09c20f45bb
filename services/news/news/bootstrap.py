"""Wiring of the news service: settings, runtime, subscriptions, workers, HTTP routes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from news.adapters.imgw_client import HttpFeedSource
from news.adapters.unit_of_work import PostgresNewsUnitOfWork
from news.config import NewsSettings
from news.domain.imgw import FeedKind
from news.domain.lifecycle import ImgwScope
from news.entrypoints.consultations import subscribe_consultations
from news.entrypoints.http import Publishing, build_router
from news.entrypoints.imgw_worker import run_imgw_poller
from news.entrypoints.scheduler import scheduled_articles
from news.service.handlers import NewsService
from news.service.imgw import FetchPolicy, ImgwPolling
from news.service.ports import FeedSource, NewsUnitOfWork
from shared.clock import Clock, utc_now
from shared.contracts.topics import Topic
from shared.platform.privacy import HoldsNothing, install_privacy
from shared.platform.runtime import (
    Service,
    ServiceDefinition,
    ServiceRuntime,
    create_http_app,
)
from shared.platform.schedule import due_work_worker

NAME = "news"
DESCRIPTION = (
    "News and alerts: the gmina's articles (also one for every consultation event), an "
    "Atom feed; manual alerts and IMGW-PIB meteo and hydro warnings for the gmina's area "
    "as CAP 1.2 messages (Alert, Update, Cancel) and an Atom feed of the current ones."
)
MIGRATIONS = Path(__file__).parent / "migrations"


def news_service(settings: NewsSettings, *, clock: Clock = utc_now) -> NewsService:
    profile = settings.gmina()
    return NewsService(
        scope=ImgwScope.of(profile.powiat_teryt, profile.powiat_label, profile.imgw_basins),
        zone=profile.zone,
        area_names={profile.powiat_teryt: profile.powiat_label, profile.teryt: profile.name},
        clock=clock,
    )


def imgw_source(settings: NewsSettings) -> HttpFeedSource:
    return HttpFeedSource(
        {FeedKind.METEO: settings.imgw_meteo_url, FeedKind.HYDRO: settings.imgw_hydro_url},
        timeout_seconds=settings.imgw_timeout_seconds,
    )


def imgw_polling(
    settings: NewsSettings,
    service: NewsService,
    unit_of_work: Callable[[], NewsUnitOfWork],
    source: FeedSource,
) -> ImgwPolling:
    return ImgwPolling(
        service,
        unit_of_work,
        source,
        zone=settings.gmina().zone,
        policy=FetchPolicy(
            attempts=settings.imgw_fetch_attempts,
            backoff_seconds=settings.imgw_backoff_seconds,
            max_backoff_seconds=settings.imgw_max_backoff_seconds,
        ),
    )


def build(settings: NewsSettings, *, clock: Clock = utc_now) -> Service:
    runtime = ServiceRuntime(
        name=NAME, settings=settings, migrations=MIGRATIONS, unit_of_work=PostgresNewsUnitOfWork
    )
    service = news_service(settings, clock=clock)
    subscribe_consultations(runtime.consumer, service)
    runtime.document_publication(
        Topic.NEWS_ARTICLES, "Articles published, updated and withdrawn, keyed by article id"
    )
    runtime.document_publication(
        Topic.NEWS_ALERTS,
        "Alert messages (CAP Alert, Update, Cancel), keyed by the id of the alert's first message",
    )

    runtime.add_worker(
        "article-scheduler",
        due_work_worker(
            scheduled_articles(service, runtime.unit_of_work),
            max_interval=settings.scheduler_interval_seconds,
        ),
    )

    if settings.imgw_enabled:

        async def imgw_poller() -> None:
            source = imgw_source(settings)
            polling = imgw_polling(settings, service, runtime.unit_of_work, source)
            try:
                async with runtime.pool.acquire() as lock_connection:
                    await run_imgw_poller(
                        polling, lock_connection, interval=settings.imgw_poll_interval_seconds
                    )
            finally:
                await source.aclose()

        runtime.add_worker("imgw-poller", imgw_poller)

    publishing = Publishing(
        public_base_url=settings.public_base_url,
        api_public_url=settings.api_public_url,
        profile=settings.gmina(),
    )
    # No personal data yet; subscriptions live in notifications.
    install_privacy(runtime, HoldsNothing())
    router = build_router(service, runtime.unit_of_work, runtime.auth, publishing)
    return Service(runtime=runtime, app=create_http_app(runtime, [router], description=DESCRIPTION))


SERVICE = ServiceDefinition(name=NAME, description=DESCRIPTION, settings=NewsSettings, build=build)
