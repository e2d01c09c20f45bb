"""Settings of the web front (pydantic-settings, `STRATEGIA_*` like every service).

The web front has no database and no Kafka: it talks to the services' public HTTP APIs.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.platform.gmina import DEFAULT_PROFILE, GminaProfile, load_profile


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STRATEGIA_", extra="ignore", env_ignore_empty=True
    )

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    http_workers: int = Field(default=1, ge=1, le=64)
    intake_url: str = "http://127.0.0.1:8001"
    groups_url: str = "http://127.0.0.1:8002"
    notifications_url: str = "http://127.0.0.1:8003"
    news_url: str = "http://127.0.0.1:8004"
    # Public address of the news service's feeds and CAP documents (links in pages).
    news_public_url: str | None = None
    api_timeout_seconds: float = Field(default=10.0, gt=0)
    # Signs the session cookie; several workers or replicas must share it.
    web_secret_key: SecretStr | None = None
    # Secure cookies: on behind TLS (set true in production).
    web_secure_cookies: bool = False
    # The clerk desk: the clerk signs in with this role token once.
    clerk_token: SecretStr | None = None
    trusted_proxies: list[str] = Field(default_factory=list)
    gmina_profile: str = DEFAULT_PROFILE
    log_level: str = "INFO"

    def gmina(self) -> GminaProfile:
        return load_profile(self.gmina_profile)

    @property
    def public_news_url(self) -> str:
        return (self.news_public_url or self.news_url).rstrip("/")
