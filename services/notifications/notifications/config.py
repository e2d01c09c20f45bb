"""Settings of the notifications service (environment variables `STRATEGIA_*`)."""

from __future__ import annotations

from email.utils import parseaddr
from enum import StrEnum

from pydantic import Field, FilePath, SecretStr, field_validator, model_validator

from notifications.domain.subscriptions import MIN_LINK_SECRET_BYTES
from shared.platform.settings import ServiceSettings


class SmtpTls(StrEnum):
    """How the connection to the SMTP relay is secured."""

    NONE = "none"  # plain SMTP, e.g. the local Mailpit or a relay on a private network
    STARTTLS = "starttls"  # plain connect, then upgrade (submission port 587)
    TLS = "tls"  # TLS from the first byte (implicit TLS, port 465)


class NotificationsSettings(ServiceSettings):
    database_url: str = "postgresql://notifications@127.0.0.1:55432/notifications"
    http_port: int = 8003

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: SecretStr | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: SmtpTls = SmtpTls.NONE
    # Credentials over an unencrypted connection leak the relay's password to the network;
    # refused unless an operator says so (e.g. a relay on the same host).
    smtp_allow_plaintext_auth: bool = False
    # PEM bundle of CAs trusted for the relay's certificate in addition to the system store
    # (a private relay with an internal CA). Must exist: a typo fails at startup, not per send.
    smtp_ca_file: FilePath | None = None
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    mail_from: str = "Strategia <strategia@localhost>"

    # Retry n waits base * 2**(n-1) seconds, never more than the cap: with these defaults a
    # relay may be down for about 75 minutes before a receipt is given up.
    delivery_max_attempts: int = Field(default=10, ge=1)
    delivery_backoff_seconds: float = Field(default=30.0, gt=0)
    delivery_max_backoff_seconds: float = Field(default=900.0, gt=0)
    # Fallback when a NOTIFY was missed (listener connection lost, another replica's insert).
    dispatcher_poll_seconds: float = Field(default=2.0, gt=0)
    # Deliveries locked and sent per transaction: also the most a crash can send twice.
    dispatcher_batch_size: int = Field(default=100, ge=1, le=1000)
    # SMTP connections kept open and used at once (relays limit connections per client).
    # 16: receipts for 200 submissions/s on the 2-core benchmark machine (8 fell behind).
    smtp_connections: int = Field(default=16, ge=1, le=64)
    # An idle connection older than this is replaced before use (relays drop idle ones).
    smtp_max_idle_seconds: float = Field(default=30.0, gt=0)

    # Where this API is reached from outside: the RFC 8058 one-click unsubscribe URL of the
    # `List-Unsubscribe` header points here (mailbox providers require https).
    api_public_url: str = Field(default="http://127.0.0.1:8003", pattern=r"^https?://\S+$")
    # RFC 8058 one-click unsubscribes per client and minute: mailbox providers POST them
    # from a few addresses for many people, so more than `rate_limit_per_minute` (0: off).
    one_click_rate_limit_per_minute: int = Field(default=600, ge=0)
    # How long the link in a subscription's confirmation email works.
    subscription_confirmation_hours: int = Field(default=72, ge=1, le=24 * 30)
    # A new confirmation email for the same address at most this often, however often
    # someone asks (nobody can flood an address with confirmation requests).
    subscription_confirmation_cooldown_seconds: float = Field(default=600.0, ge=0)
    # The server secret subscribers' manage and unsubscribe links are derived from
    # (HMAC-SHA256; at least 32 characters, e.g. `openssl rand -hex 32`). No default: the
    # service refuses to start without it. Changing it invalidates every link sent.
    subscription_link_secret: SecretStr | None = None

    @field_validator("subscription_link_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_LINK_SECRET_BYTES:
            raise ValueError(f"needs at least {MIN_LINK_SECRET_BYTES} characters")
        return value

    @field_validator("smtp_username", "smtp_password", "smtp_ca_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # docker compose passes `${VAR:-}` as an empty string: that means unset.
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return value

    @model_validator(mode="after")
    def _credentials_need_tls(self) -> NotificationsSettings:
        if (
            self.smtp_username is not None
            and self.smtp_tls is SmtpTls.NONE
            and not self.smtp_allow_plaintext_auth
        ):
            raise ValueError(
                "SMTP credentials need smtp_tls=starttls or tls "
                "(or smtp_allow_plaintext_auth=true for a relay on a trusted network)"
            )
        return self

    @field_validator("mail_from")
    @classmethod
    def _valid_sender(cls, value: str) -> str:
        _, address = parseaddr(value)
        if "@" not in address:
            raise ValueError("mail_from must be an address like 'Name <user@example.org>'")
        return value
