"""Settings of the news service (environment variables `STRATEGIA_*`)."""

from __future__ import annotations

from shared.platform.settings import ServiceSettings


class NewsSettings(ServiceSettings):
    database_url: str = "postgresql://news@127.0.0.1:55432/news"
    http_port: int = 8004
