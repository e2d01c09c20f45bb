"""Wiring of the groups service: settings, runtime, subscriptions, HTTP routes."""

from __future__ import annotations

from pathlib import Path

from groups.config import GroupsSettings
from shared.platform.runtime import (
    Service,
    ServiceDefinition,
    ServiceRuntime,
    create_http_app,
)
from shared.platform.unit_of_work import PostgresUnitOfWork

NAME = "groups"
DESCRIPTION = (
    "Thematic working groups: volunteers sign up, groups review submissions and publish "
    "recommendations. (Skeleton: health, database and Kafka wiring; the domain arrives "
    "with its issue.)"
)
MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: GroupsSettings) -> Service:
    runtime = ServiceRuntime(
        name=NAME, settings=settings, migrations=MIGRATIONS, unit_of_work=PostgresUnitOfWork
    )
    return Service(runtime=runtime, app=create_http_app(runtime, [], description=DESCRIPTION))


SERVICE = ServiceDefinition(
    name=NAME, description=DESCRIPTION, settings=GroupsSettings, build=build
)
