"""Wiring of the groups service: settings, runtime, subscriptions, HTTP routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from groups.config import GroupsSettings
from shared.platform.runtime import ServiceRuntime, create_http_app

DESCRIPTION = (
    "Thematic working groups: volunteers sign up, groups review submissions and publish "
    "recommendations. (Skeleton: health, database and Kafka wiring; the domain arrives "
    "with its issue.)"
)
MIGRATIONS = Path(__file__).parent / "migrations"


def default_settings() -> GroupsSettings:
    return GroupsSettings()


def build_runtime(settings: GroupsSettings) -> ServiceRuntime:
    return ServiceRuntime(name="groups", settings=settings, migrations=MIGRATIONS)


def build_app(settings: GroupsSettings) -> FastAPI:
    runtime = build_runtime(settings)
    return create_http_app(runtime, [], description=DESCRIPTION)
