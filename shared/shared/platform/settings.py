"""Service settings from `STRATEGIA_*` environment variables, with safe local defaults.

No secret has a default: API tokens left unset mean the protected endpoints refuse
everyone, which is the safe failure.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    # Empty variables count as unset: compose passes optional secrets as "".
    model_config = SettingsConfigDict(
        env_prefix="STRATEGIA_", extra="ignore", frozen=True, env_ignore_empty=True
    )

    database_url: str = Field(description="PostgreSQL DSN of the service's own database")
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True

    admin_token: SecretStr | None = None
    coordinator_token: SecretStr | None = None
    clerk_token: SecretStr | None = None

    kafka_topic_partitions: int = Field(default=3, ge=1)
    kafka_topic_replication: int = Field(default=1, ge=1)

    database_pool_size: int = Field(default=10, ge=1)
    outbox_batch_size: int = Field(default=100, ge=1)
    outbox_poll_interval_seconds: float = Field(default=2.0, gt=0)
    outbox_max_backoff_seconds: float = Field(default=30.0, gt=0)
    consumer_max_attempts: int = Field(default=5, ge=1)
    consumer_retry_backoff_seconds: float = Field(default=0.5, ge=0)
    consumer_max_backoff_seconds: float = Field(default=30.0, ge=0)
