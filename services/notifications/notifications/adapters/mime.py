"""A delivery as the bytes the relay receives: multipart/alternative, text then HTML.

The email package builds correct messages but spends about 4 ms on each, mostly parsing
and re-folding headers; a fan-out of 10,000 alert emails would spend 40 s on that alone.
So the headers that repeat across messages (From, Reply-To) are folded once by the email
package (RFC 2047, line length) and cached; the Subject, which differs per receipt, is
written here as RFC 2047 encoded words; what differs per message (To, Message-ID, Date,
List-Unsubscribe) is plain ASCII written as is, checked for line breaks; the bodies are
base64 of their canonical (CRLF) form, encoded in C. The unit tests parse the result with
the email package and compare it with what was meant.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from email import policy
from email.utils import format_datetime

from notifications.domain.deliveries import Delivery

_ASCII_POLICY = policy.SMTP  # RFC 2047 encoded words, CRLF
_UTF8_POLICY = policy.SMTPUTF8  # raw UTF-8 headers (internationalised addresses)
ONE_CLICK = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    data: bytes
    # The relay must be asked for SMTPUTF8 (RFC 6531): an address is not ASCII.
    needs_smtputf8: bool


@functools.lru_cache(maxsize=2048)
def _folded(name: str, value: str, utf8: bool) -> bytes:
    chosen = _UTF8_POLICY if utf8 else _ASCII_POLICY
    # Parsed into a header object first: only those are folded and encoded (RFC 2047).
    header = chosen.header_store_parse(name, value)[1]
    return chosen.fold_binary(name, header)


# base64 of 39 bytes is 52 characters: "Subject: =?utf-8?b?<52>?=" is 73, within 78.
_WORD_BYTES = 39


def _subject(value: str, utf8: bool) -> bytes:
    """The Subject. A receipt's differs per message (its number), so the cache above
    misses; a one-line subject is written here: as is when it is short plain ASCII, else
    as RFC 2047 base64 encoded words of whole characters, one per line (a decoder joins
    adjacent words without the folding between them). Anything else — a line break,
    raw UTF-8 for SMTPUTF8 — goes to the email package."""
    if utf8 or "\r" in value or "\n" in value:
        return _folded("Subject", value, utf8)
    if value.isascii() and value.isprintable() and len(value) <= 69 and "=?" not in value:
        return f"Subject: {value}\r\n".encode("ascii")
    words: list[bytes] = []
    word = b""
    for character in value:
        encoded = character.encode("utf-8")
        if len(word) + len(encoded) > _WORD_BYTES:
            words.append(word)
            word = b""
        word += encoded
    words.append(word)
    return (
        b"Subject: "
        + b"\r\n ".join(b"=?utf-8?b?" + base64.b64encode(word) + b"?=" for word in words)
        + b"\r\n"
    )


def _plain(name: str, value: str) -> bytes:
    """An ASCII header whose value is generated here (ids, dates, URLs)."""
    if not value.isascii() or "\r" in value or "\n" in value:
        raise ValueError(f"{name} must be one line of ASCII")
    return f"{name}: {value}\r\n".encode("ascii")


def _base64_part(content_type: str, text: str) -> bytes:
    canonical = "\r\n".join(text.splitlines()) + "\r\n"
    encoded = base64.encodebytes(canonical.encode("utf-8")).replace(b"\n", b"\r\n")
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii") + encoded


def render_email(delivery: Delivery, *, mail_from: str, reply_to: str) -> RenderedEmail:
    smtputf8 = not (delivery.recipient.isascii() and mail_from.isascii())
    if delivery.recipient.isascii():
        to = _plain("To", delivery.recipient)
    else:
        to = _folded("To", delivery.recipient, True)
    boundary = f"=_strategia_{delivery.id.hex}"
    headers = [
        _folded("From", mail_from, smtputf8),
        to,
        _folded("Reply-To", reply_to, smtputf8),
        _subject(delivery.subject, smtputf8),
        # Fixed per delivery (not per attempt), so a resent message carries the same identity.
        _plain("Message-ID", delivery.message_id),
        _plain("Date", format_datetime(delivery.created_at)),
        _plain("Content-Language", delivery.language),
        # RFC 3834: out-of-office replies and other robots must not answer.
        b"Auto-Submitted: auto-generated\r\n",
    ]
    if delivery.list_unsubscribe is not None:
        # RFC 8058 one-click unsubscribe: the receiver POSTs to the URL (RFC 2369 syntax).
        headers.append(_plain("List-Unsubscribe", f"<{delivery.list_unsubscribe}>"))
        headers.append(ONE_CLICK)
    headers.append(b"MIME-Version: 1.0\r\n")
    headers.append(_plain("Content-Type", f'multipart/alternative; boundary="{boundary}"'))
    separator = f"--{boundary}\r\n".encode("ascii")
    data = b"".join(
        (
            *headers,
            b"\r\n",
            separator,
            _base64_part("text/plain", delivery.text_body),
            separator,
            _base64_part("text/html", delivery.html_body),
            f"--{boundary}--\r\n".encode("ascii"),
        )
    )
    return RenderedEmail(data=data, needs_smtputf8=smtputf8)
