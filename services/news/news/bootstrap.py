"""Wiring of the news service: settings, runtime, subscriptions, HTTP routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from news.config import NewsSettings
from shared.platform.runtime import ServiceRuntime, create_http_app

DESCRIPTION = (
    "News and alerts (e.g. IMGW warnings) pushed to subscribed residents. (Skeleton: "
    "health, database and Kafka wiring; the domain arrives with its issue.)"
)
MIGRATIONS = Path(__file__).parent / "migrations"


def default_settings() -> NewsSettings:
    return NewsSettings()


def build_runtime(settings: NewsSettings) -> ServiceRuntime:
    return ServiceRuntime(name="news", settings=settings, migrations=MIGRATIONS)


def build_app(settings: NewsSettings) -> FastAPI:
    runtime = build_runtime(settings)
    return create_http_app(runtime, [], description=DESCRIPTION)
