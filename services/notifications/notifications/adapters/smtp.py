"""Sending a delivery through an SMTP relay with aiosmtplib."""

from __future__ import annotations

import logging
import re
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import aiosmtplib

from notifications.config import NotificationsSettings, SmtpTls
from notifications.domain.deliveries import Delivery
from notifications.service.ports import SendFailed

log = logging.getLogger(__name__)

# RFC 3463 enhanced status 5.1.x: the address itself is bad (no such user or domain).
_BAD_ADDRESS_STATUS = re.compile(r"^\s*5\.1\.\d{1,3}\b")


def build_email_message(delivery: Delivery, *, mail_from: str, reply_to: str) -> EmailMessage:
    """multipart/alternative with text first: clients show the last part they support."""
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = delivery.recipient
    message["Reply-To"] = reply_to
    message["Subject"] = delivery.subject
    # Fixed per delivery (not per attempt), so a resent message carries the same identity.
    message["Message-ID"] = delivery.message_id
    message["Date"] = format_datetime(delivery.created_at)
    message["Content-Language"] = delivery.language
    # RFC 3834: out-of-office replies and other robots must not answer a receipt.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(delivery.text_body, subtype="plain", charset="utf-8")
    message.add_alternative(delivery.html_body, subtype="html", charset="utf-8")
    return message


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


class SmtpSender:
    """`EmailSender` over one SMTP connection per message (receipts are few and far between)."""

    def __init__(self, settings: NotificationsSettings, *, reply_to: str) -> None:
        self._settings = settings
        self._reply_to = reply_to
        self._envelope_sender = parseaddr(settings.mail_from)[1]
        if settings.smtp_password is not None and settings.smtp_username is None:
            log.warning("SMTP password set without a username: sending without authentication")
        if settings.smtp_ca_file is not None and settings.smtp_tls is SmtpTls.NONE:
            log.warning("SMTP CA file set but smtp_tls is none: the connection is not encrypted")

    async def send(self, delivery: Delivery) -> None:
        settings = self._settings
        message = build_email_message(
            delivery, mail_from=settings.mail_from, reply_to=self._reply_to
        )
        username = settings.smtp_username
        password = settings.smtp_password
        try:
            await aiosmtplib.send(
                message,
                sender=self._envelope_sender,
                recipients=[delivery.recipient],
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
        except (aiosmtplib.SMTPException, OSError) as error:
            # aiosmtplib's timeouts and connection errors are OSErrors too.
            raise SendFailed(
                f"{type(error).__name__}: {error}", permanent=is_permanent_rejection(error)
            ) from error
