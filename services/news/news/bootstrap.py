"""Wiring of the news service: settings, runtime, subscriptions, HTTP routes."""

from __future__ import annotations

from pathlib import Path

from news.config import NewsSettings
from shared.platform.privacy import HoldsNothing, install_privacy
from shared.platform.runtime import (
    Service,
    ServiceDefinition,
    ServiceRuntime,
    create_http_app,
)
from shared.platform.unit_of_work import PostgresUnitOfWork

NAME = "news"
DESCRIPTION = (
    "News and alerts (e.g. IMGW warnings) pushed to subscribed residents. (Skeleton: "
    "health, database and Kafka wiring; the domain arrives with its issue.)"
)
MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: NewsSettings) -> Service:
    runtime = ServiceRuntime(
        name=NAME, settings=settings, migrations=MIGRATIONS, unit_of_work=PostgresUnitOfWork
    )
    # No personal data yet; subscriptions plug in their adapter here.
    install_privacy(runtime, HoldsNothing())
    return Service(runtime=runtime, app=create_http_app(runtime, [], description=DESCRIPTION))


SERVICE = ServiceDefinition(name=NAME, description=DESCRIPTION, settings=NewsSettings, build=build)
