"""Settings of the news service (environment variables `STRATEGIA_*`)."""

from __future__ import annotations

from pydantic import Field

from shared.platform.settings import ServiceSettings

IMGW_METEO_URL = "https://danepubliczne.imgw.pl/api/data/warningsmeteo"
IMGW_HYDRO_URL = "https://danepubliczne.imgw.pl/api/data/warningshydro"


class NewsSettings(ServiceSettings):
    database_url: str = "postgresql://news@127.0.0.1:55432/news"
    http_port: int = 8004
    # Where this API is reached from outside: the `self` links of the Atom feeds and the
    # CAP links in them are built on it.
    api_public_url: str = Field(default="http://127.0.0.1:8004", pattern=r"^https?://\S+$")

    # IMGW-PIB warning feeds (public, no key); see shared/reference/imgw-warnings.md.
    imgw_meteo_url: str = Field(default=IMGW_METEO_URL, pattern=r"^https?://\S+$")
    imgw_hydro_url: str = Field(default=IMGW_HYDRO_URL, pattern=r"^https?://\S+$")
    # Off: no polling at all (a deployment that takes its alerts from elsewhere).
    imgw_enabled: bool = True
    # Time between poll cycles (both feeds); IMGW issues warnings hours ahead.
    imgw_poll_interval_seconds: float = Field(default=120.0, gt=0)
    # The whole exchange with a feed (connect, request, every byte of the answer).
    imgw_timeout_seconds: float = Field(default=10.0, gt=0)
    # Tries per feed and cycle; retry n waits backoff * 2**(n-1) (with jitter), capped.
    imgw_fetch_attempts: int = Field(default=3, ge=1, le=20)
    imgw_backoff_seconds: float = Field(default=2.0, gt=0)
    imgw_max_backoff_seconds: float = Field(default=60.0, gt=0)

    # Upper bound between checks for scheduled articles (it also sleeps exactly until the
    # next one is due when that comes sooner).
    scheduler_interval_seconds: float = Field(default=30.0, gt=0)
