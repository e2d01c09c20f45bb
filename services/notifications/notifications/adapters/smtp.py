"""Sending deliveries through an SMTP relay with aiosmtplib, on reused connections."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr

import aiosmtplib

from notifications.adapters.mime import render_email
from notifications.config import NotificationsSettings, SmtpTls
from notifications.domain.deliveries import Delivery
from notifications.service.ports import SendFailed

log = logging.getLogger(__name__)

# RFC 3463 enhanced status 5.1.x: the address itself is bad (no such user or domain).
_BAD_ADDRESS_STATUS = re.compile(r"^\s*5\.1\.\d{1,3}\b")


def build_email_message(delivery: Delivery, *, mail_from: str, reply_to: str) -> EmailMessage:
    """The message as the email package reads it: what the relay receives, parsed."""
    rendered = render_email(delivery, mail_from=mail_from, reply_to=reply_to)
    parsed = message_from_bytes(rendered.data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def is_permanent_rejection(error: BaseException) -> bool:
    """Only a refused recipient with a 5.1.x status is hopeless.

    Other 5xx answers (e.g. `5.7.1 relaying denied`) usually come from the relay's
    configuration, which an operator can fix while the delivery keeps retrying.
    """
    refusals: list[aiosmtplib.SMTPRecipientRefused]
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        refusals = list(error.recipients)
    elif isinstance(error, aiosmtplib.SMTPRecipientRefused):
        refusals = [error]
    else:
        return False
    return bool(refusals) and all(
        500 <= refusal.code < 600 and _BAD_ADDRESS_STATUS.match(refusal.message) is not None
        for refusal in refusals
    )


@dataclass(slots=True)
class _Connection:
    client: aiosmtplib.SMTP
    last_used: float


class SmtpSender:
    """`EmailSender` over a small pool of SMTP connections, kept open and reused.

    At most `connections` messages are handed over at once, each on a connection of its
    own (a relay takes one transaction at a time per connection). A connection that failed
    in any way is closed, never reused in an unknown state: the next message opens a fresh
    one. One idle for longer than `max_idle_seconds` is replaced before use, because relays
    drop idle clients and the first message would otherwise fail.
    """

    def __init__(
        self,
        settings: NotificationsSettings,
        *,
        reply_to: str,
        connections: int = 1,
        max_idle_seconds: float = 30.0,
    ) -> None:
        if connections < 1:
            raise ValueError("at least one SMTP connection")
        self._settings = settings
        self._reply_to = reply_to
        self._envelope_sender = parseaddr(settings.mail_from)[1]
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[_Connection] = []
        self._max_idle_seconds = max_idle_seconds
        if settings.smtp_password is not None and settings.smtp_username is None:
            log.warning("SMTP password set without a username: sending without authentication")
        if settings.smtp_ca_file is not None and settings.smtp_tls is SmtpTls.NONE:
            log.warning("SMTP CA file set but smtp_tls is none: the connection is not encrypted")

    async def send(self, delivery: Delivery) -> None:
        rendered = render_email(
            delivery, mail_from=self._settings.mail_from, reply_to=self._reply_to
        )
        options = ["SMTPUTF8"] if rendered.needs_smtputf8 else []
        async with self._slots:
            connection: _Connection | None = None
            try:
                connection = await self._checkout_or_unavailable()
                await connection.client.sendmail(
                    self._envelope_sender, [delivery.recipient], rendered.data, mail_options=options
                )
            except (aiosmtplib.SMTPException, OSError) as error:
                # aiosmtplib's timeouts and connection errors are OSErrors too.
                if connection is not None:
                    connection.client.close()
                self._drop_idle_after_connection_failure(error)
                raise SendFailed(
                    f"{type(error).__name__}: {error}", permanent=is_permanent_rejection(error)
                ) from error
            except BaseException:
                # Cancelled mid-conversation: the connection's state is unknown.
                if connection is not None:
                    connection.client.close()
                raise
            connection.last_used = time.monotonic()
            self._idle.append(connection)

    async def _checkout_or_unavailable(self) -> _Connection:
        try:
            return await self._checkout()
        except (aiosmtplib.SMTPException, OSError) as error:
            # No conversation about this message took place: the relay is unreachable (or
            # refused us as a client), whatever the message.
            self._drop_idle_after_connection_failure(error)
            raise SendFailed(
                f"SMTP relay unavailable: {type(error).__name__}: {error}",
                relay_unavailable=True,
            ) from error

    async def _checkout(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if (
                now - connection.last_used <= self._max_idle_seconds
                and connection.client.is_connected
            ):
                return connection
            await self._close(connection.client)
        return _Connection(client=await self._connect(), last_used=now)

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self._settings
        username = settings.smtp_username
        password = settings.smtp_password
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=username.get_secret_value() if username else None,
            password=password.get_secret_value() if username and password else None,
            use_tls=settings.smtp_tls is SmtpTls.TLS,
            # Explicit False: aiosmtplib would otherwise upgrade whenever offered.
            start_tls=settings.smtp_tls is SmtpTls.STARTTLS,
            # Loaded on top of the system store by aiosmtplib's default TLS context.
            cert_bundle=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
            timeout=settings.smtp_timeout_seconds,
        )
        await client.connect()  # greeting, STARTTLS and AUTH as configured
        return client

    def _drop_idle_after_connection_failure(self, error: BaseException) -> None:
        """A refused message says nothing about the other connections; a connection-level
        failure (refused, reset, dropped) means the idle ones are likely dead too."""
        if isinstance(error, OSError | aiosmtplib.SMTPServerDisconnected):
            idle, self._idle = self._idle, []
            for connection in idle:
                connection.client.close()

    @staticmethod
    async def _close(client: aiosmtplib.SMTP) -> None:
        with contextlib.suppress(Exception):
            if client.is_connected:
                await asyncio.wait_for(client.quit(), timeout=2.0)
        client.close()

    async def aclose(self) -> None:
        """Say goodbye on every idle connection (a graceful stop)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await self._close(connection.client)
