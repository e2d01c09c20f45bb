"""`SmtpSender` against a real aiosmtpd server speaking STARTTLS, implicit TLS and AUTH.

A throw-away CA and server certificate are made with the `openssl` CLI per test module; the
sender trusts that CA only through `smtp_ca_file`, as a deployment with a private relay would.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import ssl
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from devtools.proc import free_port
from notifications.adapters.smtp import SmtpSender
from notifications.config import NotificationsSettings, SmtpTls
from notifications.domain.deliveries import ComposedEmail, Delivery, Purpose
from notifications.service.ports import SendFailed

HOST = "127.0.0.1"
USERNAME = "strategia-relay"
PASSWORD = "correct horse battery staple"
RECIPIENT = "jan.kowalski@example.org"
NOW = datetime(2026, 11, 26, 14, 4, 37, tzinfo=UTC)


# --- a throw-away PKI ------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_file: Path  # what the sender is told to trust
    cert_file: Path  # server certificate (for 127.0.0.1 and localhost), signed by the CA
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        # Never a silent skip: `make install` / .ci/run install openssl when it is missing.
        pytest.fail(
            "the openssl CLI is needed to make the test certificates (apt-get install openssl)"
        )
    directory = tmp_path_factory.mktemp("pki")
    ec_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec_key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        "-subj", "/CN=Strategia throw-away test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-new", *ec_key, "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost",
        cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text(
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-set_serial", str(secrets.randbits(63)), "-days", "1",
        "-extfile", "server.ext", "-out", "server.pem",
        cwd=directory,
    )  # fmt: skip
    return Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key")


# --- an aiosmtpd server that records what it saw ---------------------------------------------


def _over_tls(server: SMTP) -> bool:
    """True once the transport is TLS: implicit (from the first byte) or after STARTTLS."""
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


@dataclass(frozen=True)
class AuthAttempt:
    mechanism: str
    login: str
    over_tls: bool
    accepted: bool


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    over_tls: bool
    login: str | None


@dataclass
class RecordingServer:
    host: str
    port: int
    attempts: list[AuthAttempt] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def authenticator(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """Accepts exactly USERNAME/PASSWORD, and only over TLS (whatever the server flags say)."""
        assert isinstance(auth_data, LoginPassword)
        login = auth_data.login.decode()
        over_tls = _over_tls(server)
        accepted = (
            over_tls
            and secrets.compare_digest(auth_data.login, USERNAME.encode())
            and secrets.compare_digest(auth_data.password, PASSWORD.encode())
        )
        with self._lock:
            self.attempts.append(AuthAttempt(mechanism, login, over_tls, accepted))
        if accepted:
            return AuthResult(success=True, auth_data=auth_data)
        # handled=False: aiosmtpd answers `535 5.7.8 Authentication credentials invalid`.
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        login = session.login_data.decode() if session.authenticated else None
        with self._lock:
            self.received.append(
                Received(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=list(envelope.rcpt_tos),
                    message=parsed,
                    over_tls=_over_tls(server),
                    login=login,
                )
            )
        return "250 Message accepted for delivery"


StartServer = Callable[..., RecordingServer]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Starts an aiosmtpd server (own thread and loop) on a free port; stopped at teardown.

    Keyword arguments go to aiosmtpd's `SMTP` (e.g. `tls_context`, `require_starttls`), except
    `ssl_context`, which makes the listener implicit TLS.
    """
    controllers: list[Controller] = []

    def start(*, ssl_context: ssl.SSLContext | None = None, **smtp_kwargs: Any) -> RecordingServer:
        recording = RecordingServer(HOST, free_port(HOST))
        controller = Controller(
            recording,
            hostname=recording.host,
            port=recording.port,
            ssl_context=ssl_context,
            authenticator=recording.authenticator,
            **smtp_kwargs,
        )
        controller.start()
        controllers.append(controller)
        return recording

    yield start
    for controller in controllers:
        controller.stop()


def starttls_server(start: StartServer, pki: Pki, **smtp_kwargs: Any) -> RecordingServer:
    """Submission-style relay (port 587): plain connect, must STARTTLS, AUTH only after it."""
    return start(
        tls_context=pki.server_context(),
        require_starttls=True,
        auth_require_tls=True,
        **smtp_kwargs,
    )


def implicit_tls_server(start: StartServer, pki: Pki, **smtp_kwargs: Any) -> RecordingServer:
    """SMTPS-style relay (port 465): TLS from the first byte.

    aiosmtpd 1.4 counts only a STARTTLS upgrade as TLS for `auth_require_tls`, so with
    implicit TLS it would never offer AUTH. The listener accepts nothing but TLS here, and the
    authenticator still refuses any non-TLS attempt, so the flag is off for this server only.
    """
    return start(ssl_context=pki.server_context(), auth_require_tls=False, **smtp_kwargs)


# --- the sender under test -------------------------------------------------------------------


def delivery() -> Delivery:
    return Delivery.queue(
        delivery_id=uuid.uuid4(),
        source_event_id=uuid.uuid4(),
        correlation_id="corr-tls",
        purpose=Purpose.RECEIPT,
        recipient=RECIPIENT,
        email=ComposedEmail("pl", "Potwierdzenie złożenia uwag", "tekst\n", "<p>html</p>\n"),
        gmina_teryt="1418023",
        now=NOW,
    )


def sender(
    server: RecordingServer,
    tls: SmtpTls,
    *,
    ca_file: Path | None,
    username: str | None = USERNAME,
    password: str | None = PASSWORD,
) -> SmtpSender:
    settings = NotificationsSettings(
        smtp_host=server.host,
        smtp_port=server.port,
        smtp_tls=tls,
        smtp_username=username,
        smtp_password=password,
        smtp_ca_file=ca_file,
        smtp_timeout_seconds=10.0,
        mail_from="Strategia Test <strategia@example.org>",
        # Here on purpose: what the relay does when a client would send credentials in clear.
        smtp_allow_plaintext_auth=tls is SmtpTls.NONE,
    )
    return SmtpSender(settings, reply_to="strategia@example.org")


def assert_delivered(server: RecordingServer, sent: Delivery, *, mechanism: str) -> None:
    assert server.attempts == [AuthAttempt(mechanism, USERNAME, over_tls=True, accepted=True)]
    assert len(server.received) == 1
    received = server.received[0]
    assert received.over_tls
    assert received.login == USERNAME
    assert received.mail_from == "strategia@example.org"
    assert received.rcpt_tos == [RECIPIENT]
    assert received.message["Message-ID"] == sent.message_id
    assert received.message["Subject"] == "Potwierdzenie złożenia uwag"


# --- success paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_starttls_with_auth_delivers_the_message(
    start_server: StartServer, pki: Pki, mechanism: str
) -> None:
    # Offer only the mechanism under test (aiosmtplib would otherwise pick PLAIN).
    others = [m for m in ("PLAIN", "LOGIN") if m != mechanism]
    server = starttls_server(start_server, pki, auth_exclude_mechanism=others)
    sent = delivery()

    await sender(server, SmtpTls.STARTTLS, ca_file=pki.ca_file).send(sent)

    assert_delivered(server, sent, mechanism=mechanism)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_implicit_tls_with_auth_delivers_the_message(
    start_server: StartServer, pki: Pki, mechanism: str
) -> None:
    others = [m for m in ("PLAIN", "LOGIN") if m != mechanism]
    server = implicit_tls_server(start_server, pki, auth_exclude_mechanism=others)
    sent = delivery()

    await sender(server, SmtpTls.TLS, ca_file=pki.ca_file).send(sent)

    assert_delivered(server, sent, mechanism=mechanism)


# --- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [SmtpTls.STARTTLS, SmtpTls.TLS])
async def test_wrong_password_fails_and_is_retried(
    start_server: StartServer, pki: Pki, tls: SmtpTls
) -> None:
    start = starttls_server if tls is SmtpTls.STARTTLS else implicit_tls_server
    server = start(start_server, pki)

    with pytest.raises(SendFailed) as failure:
        await sender(server, tls, ca_file=pki.ca_file, password="wrong").send(delivery())

    assert "SMTPAuthenticationError" in failure.value.reason
    assert "535" in failure.value.reason
    # Only a refused recipient (5.1.x) is permanent; bad credentials are relay configuration,
    # which an operator can fix while the delivery keeps retrying (see is_permanent_rejection).
    assert failure.value.permanent is False
    assert server.attempts  # aiosmtplib tries every offered mechanism before giving up
    assert all(a.over_tls and not a.accepted for a in server.attempts)
    assert server.received == []


@pytest.mark.parametrize("with_credentials", [False, True], ids=["anonymous", "credentials"])
async def test_plain_connection_to_a_relay_requiring_starttls_fails(
    start_server: StartServer, pki: Pki, with_credentials: bool
) -> None:
    server = starttls_server(start_server, pki)
    credentials = {} if with_credentials else {"username": None, "password": None}

    with pytest.raises(SendFailed) as failure:
        await sender(server, SmtpTls.NONE, ca_file=None, **credentials).send(delivery())

    if with_credentials:
        # AUTH is not even offered before STARTTLS: the password never crosses in clear text.
        assert "AUTH extension is not supported" in failure.value.reason
    else:
        assert "530" in failure.value.reason  # "Must issue a STARTTLS command first"
    assert failure.value.permanent is False
    assert server.attempts == []
    assert server.received == []


@pytest.mark.parametrize("tls", [SmtpTls.STARTTLS, SmtpTls.TLS])
async def test_certificate_from_an_untrusted_ca_is_refused(
    start_server: StartServer, pki: Pki, tls: SmtpTls
) -> None:
    start = starttls_server if tls is SmtpTls.STARTTLS else implicit_tls_server
    server = start(start_server, pki)

    # No smtp_ca_file: only the system store, which does not know the throw-away CA.
    with pytest.raises(SendFailed) as failure:
        await sender(server, tls, ca_file=None).send(delivery())

    assert "CERTIFICATE_VERIFY_FAILED" in failure.value.reason
    assert failure.value.permanent is False
    assert server.attempts == []  # credentials are never offered to an unverified server
    assert server.received == []


def test_ca_file_setting_must_name_an_existing_file(tmp_path: Path) -> None:
    assert NotificationsSettings(smtp_ca_file="").smtp_ca_file is None
    with pytest.raises(ValueError, match="smtp_ca_file"):
        NotificationsSettings(smtp_ca_file=tmp_path / "missing.pem")


# --- connections kept open -------------------------------------------------------------------


async def test_a_pooled_sender_reuses_its_authenticated_tls_connections(
    start_server: StartServer, pki: Pki
) -> None:
    server = starttls_server(start_server, pki, auth_exclude_mechanism=["LOGIN"])
    pooled = SmtpSender(
        NotificationsSettings(
            smtp_host=server.host,
            smtp_port=server.port,
            smtp_tls=SmtpTls.STARTTLS,
            smtp_username=USERNAME,
            smtp_password=PASSWORD,
            smtp_ca_file=pki.ca_file,
            smtp_timeout_seconds=10.0,
            mail_from="Strategia Test <strategia@example.org>",
        ),
        reply_to="strategia@example.org",
        connections=2,
    )
    try:
        sent = [delivery() for _ in range(6)]
        await asyncio.gather(*(pooled.send(item) for item in sent))
    finally:
        await pooled.aclose()

    assert len(server.received) == 6
    assert all(received.over_tls and received.login == USERNAME for received in server.received)
    assert {r.message["Message-ID"] for r in server.received} == {d.message_id for d in sent}
    # Two connections, each authenticated once, carried all six messages.
    assert len(server.attempts) == 2 and all(attempt.accepted for attempt in server.attempts)
