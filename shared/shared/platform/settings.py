"""Service settings from `STRATEGIA_*` environment variables, with safe local defaults.

No secret has a default: API tokens left unset mean the protected endpoints refuse
everyone, which is the safe failure. Every service reads its configuration here and
nowhere else (no `os.environ` in service code).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.contracts.topics import PERSON_KEYS_COMPACTION_SECONDS
from shared.platform.gmina import DEFAULT_PROFILE, GminaProfile, load_profile
from shared.platform.kafka_security import KafkaConnection, SecurityProtocol, principal_name


class ServiceSettings(BaseSettings):
    # Empty variables count as unset: compose passes optional secrets as "".
    model_config = SettingsConfigDict(
        env_prefix="STRATEGIA_", extra="ignore", frozen=True, env_ignore_empty=True
    )

    database_url: str = Field(description="PostgreSQL DSN of the service's own database")
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Namespace of every topic and consumer group: several gminas (or test runs) can share
    # one Kafka cluster without seeing each other's events.
    kafka_topic_prefix: str = Field(default="", pattern=r"^([a-z0-9][a-z0-9_-]{0,60}\.)?$")
    # Who the service is to the broker (see shared/platform/kafka_access.py): SASL
    # SCRAM-SHA-512, over TLS with SASL_SSL. The username defaults to the service's
    # principal, `<kafka_topic_prefix><service>`; the password has no default.
    kafka_security_protocol: SecurityProtocol = "SASL_PLAINTEXT"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # PEM CA bundle trusted for the broker's certificate (SASL_SSL), besides the system store.
    kafka_ssl_ca_file: Path | None = None
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    # Request bodies: the limit of routes that declare none (bytes), and how long a body may
    # take to arrive before the request is cut off.
    http_max_body_bytes: int = Field(default=16 * 1024, ge=1024)
    http_body_timeout_seconds: float = Field(default=10.0, gt=0)
    # Addresses (or networks) of reverse proxies whose X-Forwarded-For/-Proto are believed.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Requests a minute one client may make to a public write endpoint (0: no limit).
    rate_limit_per_minute: int = Field(default=30, ge=0)
    # The interactive API documentation at /docs (assets served locally); off in production.
    http_docs: bool = True
    # Processes serving the one port (each the whole service; see runtime.serve_workers).
    http_workers: int = Field(default=1, ge=1, le=64)
    log_level: str = "INFO"
    log_json: bool = True

    # Bundled profile name or path of a TOML file (see shared/gminas).
    gmina_profile: str = DEFAULT_PROFILE
    # Where residents reach the web front: emailed links lead to its pages
    # (shared/contracts/links.py).
    public_base_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://\S+$")

    admin_token: SecretStr | None = None
    coordinator_token: SecretStr | None = None
    clerk_token: SecretStr | None = None

    kafka_topic_partitions: int = Field(default=3, ge=1)
    kafka_topic_replication: int = Field(default=1, ge=1)

    database_pool_size: int = Field(default=10, ge=1)
    outbox_batch_size: int = Field(default=500, ge=1)
    outbox_poll_interval_seconds: float = Field(default=2.0, gt=0)
    outbox_max_backoff_seconds: float = Field(default=30.0, gt=0)
    consumer_max_attempts: int = Field(default=5, ge=1)
    consumer_retry_backoff_seconds: float = Field(default=0.5, ge=0)
    consumer_max_backoff_seconds: float = Field(default=30.0, ge=0)
    # Subscriptions that consume in batches (`subscribe(..., batch=True)`): at most this
    # many events per transaction and offset commit, and how long an idle one waits for
    # the broker before it polls again (milliseconds; a busy one never waits).
    consumer_batch_max_records: int = Field(default=500, ge=1, le=10_000)
    consumer_batch_wait_ms: int = Field(default=20, ge=1, le=1000)
    # How long an event may wait for a prerequisite on another topic (a person's key)
    # before its attempts start to count; a lagging key consumer after a restart, or a
    # long outbox backlog, must not dead-letter what only has to wait.
    consumer_prerequisite_wait_seconds: float = Field(default=120.0, ge=0)
    # A dead-letter copy keeps at most this many bytes of the original value (the broker's
    # default message limit is 1 MiB, and headers and the reason need room too).
    dead_letter_max_bytes: int = Field(default=512 * 1024, ge=1024, le=900 * 1024)
    # A compacted key topic the service creates (intake's and groups' person keys): its
    # segments roll and are compacted within this many seconds, which bounds how long an
    # erased person's key stays in the broker's log. Applied when the topic is created.
    person_keys_compaction_seconds: float = Field(
        default=PERSON_KEYS_COMPACTION_SECONDS, ge=1, le=7 * 24 * 3600
    )

    # How often a retention job (shared/platform/retention.py) may run; the periods
    # themselves are the gmina profile's `[personal_data]`.
    retention_interval_seconds: float = Field(default=3600.0, gt=0)

    def kafka_connection(self, service: str) -> KafkaConnection:
        """How `service` reaches the broker: as its own principal."""
        password = self.kafka_sasl_password
        return KafkaConnection(
            bootstrap_servers=self.kafka_bootstrap_servers,
            security_protocol=self.kafka_security_protocol,
            username=self.kafka_sasl_username or principal_name(self.kafka_topic_prefix, service),
            password=password.get_secret_value() if password is not None else None,
            ca_file=self.kafka_ssl_ca_file,
        )

    def gmina(self) -> GminaProfile:
        return load_profile(self.gmina_profile)
