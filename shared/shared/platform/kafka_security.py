"""How every Kafka client of the platform authenticates: one `KafkaConnection` for all.

The broker accepts only authenticated clients (SASL SCRAM-SHA-512; over TLS in the compose
deployment) and authorises them with ACLs derived from the code (`kafka_access`). Each
service connects as its own principal; the FastStream broker (consumers, the outbox relay's
producer, the dead-letter producer), the topic admin and any test or tool client all take
their options from a `KafkaConnection`, so none can be made without credentials.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLScram512

SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"]
SASL_MECHANISM = "SCRAM-SHA-512"


class KafkaCredentialsMissing(ValueError):
    """SASL is configured but the username or password is not."""


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """Where the broker is and who we are to it."""

    bootstrap_servers: str
    security_protocol: SecurityProtocol = "SASL_PLAINTEXT"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol != "PLAINTEXT"

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol == "SASL_SSL"

    def check(self) -> None:
        """Refuse to connect with SASL but without credentials (the broker would anyway)."""
        if self.uses_sasl and (not self.username or not self.password):
            raise KafkaCredentialsMissing(
                f"Kafka security protocol {self.security_protocol} needs "
                "STRATEGIA_KAFKA_SASL_USERNAME and STRATEGIA_KAFKA_SASL_PASSWORD"
            )
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"Kafka CA file {self.ca_file} does not exist")

    def as_user(self, username: str, password: str) -> KafkaConnection:
        """The same broker, another principal."""
        return KafkaConnection(
            self.bootstrap_servers, self.security_protocol, username, password, self.ca_file
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.uses_tls:
            return None
        # Verifies the broker's certificate and host name against the CA (else the system
        # store): a SASL password never goes to an impostor.
        context: ssl.SSLContext = create_ssl_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        self.check()
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.uses_sasl:
            options.update(
                sasl_mechanism=SASL_MECHANISM,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        return options

    def faststream_security(self) -> BaseSecurity | None:
        """`security=` of a FastStream `KafkaBroker` (None: plaintext, no authentication)."""
        if not self.uses_sasl:
            return None
        self.check()
        assert self.username is not None and self.password is not None  # check() holds
        return SASLScram512(
            username=self.username,
            password=self.password,
            ssl_context=self.ssl_context(),
            use_ssl=self.uses_tls,
        )


def principal_name(prefix: str, name: str) -> str:
    """The SCRAM user (and ACL principal `User:<it>`) of a service or client role in a
    topic namespace: several gminas sharing a cluster get separate principals."""
    return f"{prefix}{name}"
