"""Settings of the groups service (environment variables `STRATEGIA_*`)."""

from __future__ import annotations

from shared.platform.settings import ServiceSettings


class GroupsSettings(ServiceSettings):
    database_url: str = "postgresql://groups@127.0.0.1:55432/groups"
    http_port: int = 8002
