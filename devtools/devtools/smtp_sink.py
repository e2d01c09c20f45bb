"""An SMTP server that accepts every message and stores it as an ``.eml`` file.

Used by the local stack (``python -m devtools.smtp_sink``) and in-process by tests, which can
stop and restart it to simulate a mail server outage.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import signal
import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from types import FrameType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

PROCESS_MARKER = "devtools.smtp_sink"
TEMPORARY_FAILURE_PREFIX = "tempfail"


class MaildirHandler:
    """aiosmtpd handler: one file per message, written atomically (temp file + rename).

    Two headers are prepended: ``X-Sink-Mail-From`` and ``X-Sink-Rcpt-To`` (the SMTP envelope,
    which is what really decides who gets the mail, e.g. for Bcc).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        # A recipient whose address starts with `tempfail` is refused for now, as a busy
        # mailbox would be: the tests' way to make one message fail while the relay works.
        if address.lower().startswith(TEMPORARY_FAILURE_PREFIX):
            return "450 4.2.1 Mailbox busy, try again later (sink)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd hook name)
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        header = (
            f"X-Sink-Mail-From: {envelope.mail_from}\r\n"
            f"X-Sink-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        # Time-ordered, unique names: listing sorted by name gives arrival order.
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(header + content)
        os.replace(tmp, self.directory / name)
        return "250 Message accepted for delivery"


def read_messages(directory: Path) -> list[EmailMessage]:
    """Every stored message in arrival order, parsed with the modern email API."""
    messages = []
    for path in sorted(directory.glob("*.eml")):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        messages.append(parsed)
    return messages


class SmtpSink:
    """An in-process sink on ``host:port`` (own thread and event loop) storing into ``directory``.

    ``stop()`` closes the listening socket, so clients get "connection refused" until
    ``start()`` is called again on the same port.
    """

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 1025) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        if self._controller is not None:
            return
        # A fresh controller each time: aiosmtpd closes the loop of a stopped one.
        controller = Controller(
            MaildirHandler(self.directory),
            hostname=self.host,
            port=self.port,
            enable_SMTPUTF8=True,
            data_size_limit=50 * 1024 * 1024,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def messages(self) -> list[EmailMessage]:
        return read_messages(self.directory)

    def clear(self) -> None:
        for path in self.directory.glob("*.eml"):
            path.unlink(missing_ok=True)

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Poll until at least ``count`` messages arrived; returns them (raises on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages()
            if len(found) >= count or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if len(found) < count:
            raise TimeoutError(f"expected {count} message(s) within {timeout}s, got {len(found)}")
        return found

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="SMTP sink storing messages as .eml files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path(".run/mail"))
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sink = SmtpSink(args.dir.resolve(), args.host, args.port)
    sink.start()
    print(
        f"SMTP sink listening on {args.host}:{args.port}, storing to {sink.directory}", flush=True
    )
    try:
        while not stop.wait(1.0):
            pass
    finally:
        sink.stop()
        print("SMTP sink stopped", flush=True)


if __name__ == "__main__":
    main()
