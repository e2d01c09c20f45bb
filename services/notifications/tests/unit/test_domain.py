"""Unit tests of the pure parts: receipt composition and the delivery life cycle."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import aiosmtplib
import pytest

from notifications.adapters.smtp import build_email_message, is_permanent_rejection
from notifications.config import NotificationsSettings, SmtpTls
from notifications.domain.deliveries import (
    ComposedEmail,
    Delivery,
    DeliveryStatus,
    InvalidTransition,
    Purpose,
    RetryPolicy,
    message_id_for,
)
from notifications.domain.receipts import compose_receipt, format_local_time
from shared.contracts.intake import Channel, Language, SubmissionReceived, SubmitterKind
from shared.platform.gmina import GminaProfile, load_profile

DIGEST = "3f" * 32
# 14:04 UTC on 26 November is 15:04 in Warsaw (CET, UTC+1).
RECEIVED_AT = datetime(2026, 11, 26, 14, 4, 37, tzinfo=UTC)


@pytest.fixture(scope="module")
def profile() -> GminaProfile:
    return load_profile("konstancin-jeziorna")


def submission(
    *,
    language: Language = Language.PL,
    consultation_title: str = "Strategia rozwoju gminy do 2035 r.",
    received_at: datetime = RECEIVED_AT,
) -> SubmissionReceived:
    return SubmissionReceived(
        submission_id=uuid.uuid4(),
        consultation_id=uuid.uuid4(),
        consultation_title=consultation_title,
        theme="transport",
        submitter_kind=SubmitterKind.RESIDENT,
        locality="Słomczyn",
        title="Ścieżka rowerowa do Warszawy",
        body="Proszę o ścieżkę rowerową wzdłuż ul. Warszawskiej.",
        channel=Channel.WEB,
        received_at=received_at,
        receipt_number="KJ/2026/000123",
        digest=DIGEST,
        language=language,
        submitter_email="jan.kowalski@example.org",
    )


def flat(text: str) -> str:
    return " ".join(text.split())


# --- composition ---------------------------------------------------------------------------


def test_polish_receipt_has_the_facts_and_the_rodo_notice(profile: GminaProfile) -> None:
    email = compose_receipt(submission(), profile)

    assert email.language == "pl"
    assert email.subject == (
        "Potwierdzenie złożenia uwag nr KJ/2026/000123 – Strategia rozwoju gminy do 2035 r."
    )
    # The text part is wrapped at 76 columns: compare with whitespace collapsed.
    for body in (flat(email.text_body), flat(email.html_body)):
        assert "KJ/2026/000123" in body
        assert "Strategia rozwoju gminy do 2035 r." in body
        assert "Ścieżka rowerowa do Warszawy" in body
        assert "26.11.2026, 15:04" in body
        assert DIGEST in body
        assert "odcisk palca" in body
        # RODO art. 13: controller, DPO, legal basis, retention, rights, automation.
        assert profile.controller.name in body
        assert profile.controller.address in body
        assert profile.controller.dpo_contact in body
        assert "art. 6 ust. 1 lit. c i e RODO" in body
        assert "o zasadach prowadzenia polityki rozwoju" in body
        assert profile.controller.retention in body
        assert "Prezesa Urzędu Ochrony Danych Osobowych" in body
        assert "sprostowania" in body
        assert "sprzeciwu" in body
        assert "dobrowolne" in body
        assert "zautomatyzowanego podejmowania decyzji" in body
    assert email.html_body.lstrip().startswith("<!DOCTYPE html>")
    assert '<html lang="pl">' in email.html_body
    assert "<p>" not in email.text_body


def test_english_receipt_when_the_submission_was_in_english(profile: GminaProfile) -> None:
    email = compose_receipt(submission(language=Language.EN), profile)

    assert email.language == "en"
    assert email.subject.startswith("Confirmation of your submission no. KJ/2026/000123 – ")
    for body in (flat(email.text_body), flat(email.html_body)):
        assert "26 November 2026, 15:04" in body
        assert DIGEST in body
        assert profile.controller.name in body
        assert profile.controller.dpo_contact in body
        assert profile.controller.retention_en in body
        assert "Article 6(1)(c) and (e) GDPR" in body
        assert "Personal Data Protection Office" in body
        assert "automated decision-making" in body
    assert "Dzień dobry" not in email.text_body
    assert '<html lang="en">' in email.html_body


def test_html_escapes_what_people_typed_and_text_keeps_it(profile: GminaProfile) -> None:
    title = 'Plan <script>alert("x")</script> & więcej'
    email = compose_receipt(submission(consultation_title=title), profile)

    assert "<script>" not in email.html_body
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; więcej" in email.html_body
    assert title in flat(email.text_body)
    assert title in email.subject


def test_subject_is_a_single_line_even_for_a_multiline_title(profile: GminaProfile) -> None:
    email = compose_receipt(submission(consultation_title="Strategia\r\n  2035\nBcc: x"), profile)
    assert "\n" not in email.subject and "\r" not in email.subject
    assert email.subject.endswith("– Strategia 2035 Bcc: x")


def test_local_time_follows_summer_time(profile: GminaProfile) -> None:
    summer = datetime(2026, 7, 1, 22, 30, tzinfo=UTC)  # 00:30 next day in Warsaw (UTC+2)
    assert format_local_time(summer, profile, Language.PL) == "02.07.2026, 00:30"
    assert format_local_time(summer, profile, Language.EN) == "2 July 2026, 00:30"


def test_composition_is_deterministic(profile: GminaProfile) -> None:
    event = submission()
    assert compose_receipt(event, profile) == compose_receipt(event, profile)


# --- the MIME message ----------------------------------------------------------------------


def queued(now: datetime, *, email: ComposedEmail | None = None) -> Delivery:
    return Delivery.queue(
        delivery_id=uuid.UUID("7d0f5a4e-8f5e-4c1e-9c55-2f1f6a1b2c3d"),
        source_event_id=uuid.uuid4(),
        correlation_id="corr-1",
        purpose=Purpose.RECEIPT,
        recipient="jan.kowalski@example.org",
        email=email or ComposedEmail("pl", "Temat", "tekst\n", "<p>html</p>\n"),
        gmina_teryt="1418023",
        now=now,
    )


def test_mime_message_is_multipart_alternative_with_a_fixed_message_id(
    profile: GminaProfile,
) -> None:
    delivery = queued(RECEIVED_AT, email=compose_receipt(submission(), profile))
    message = build_email_message(
        delivery, mail_from="Strategia <strategia@example.org>", reply_to=profile.strategy_email
    )
    # Round trip through bytes, as the relay sees it.
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)

    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Message-ID"] == "<7d0f5a4e-8f5e-4c1e-9c55-2f1f6a1b2c3d@strategia.1418023>"
    assert parsed["To"] == "jan.kowalski@example.org"
    assert parsed["Reply-To"] == profile.strategy_email
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Subject"] == delivery.subject
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and html is not None
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    assert "KJ/2026/000123" in text.get_content()
    assert DIGEST in html.get_content()


def test_message_id_is_derived_from_the_delivery_id() -> None:
    delivery_id = uuid.uuid4()
    assert message_id_for(delivery_id, "1418023") == message_id_for(delivery_id, "1418023")
    assert message_id_for(delivery_id, "1418023") != message_id_for(uuid.uuid4(), "1418023")


# --- life cycle and back-off ---------------------------------------------------------------

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_backoff_doubles_and_is_capped() -> None:
    policy_ = RetryPolicy(max_attempts=8, base_backoff_seconds=2, max_backoff_seconds=30)
    assert [delay.total_seconds() for delay in policy_.schedule()] == [2, 4, 8, 16, 30, 30, 30]
    assert policy_.backoff_after(10_000) == timedelta(seconds=30)


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0, base_backoff_seconds=1, max_backoff_seconds=1)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=1, base_backoff_seconds=0, max_backoff_seconds=1)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=3, base_backoff_seconds=1, max_backoff_seconds=1).backoff_after(0)


def test_new_delivery_is_pending_and_due_at_once() -> None:
    delivery = queued(NOW)
    assert delivery.status is DeliveryStatus.PENDING
    assert delivery.attempts == 0
    assert delivery.is_due(NOW)
    assert not delivery.is_due(NOW - timedelta(seconds=1))


def test_sent_delivery_counts_the_attempt_and_is_final() -> None:
    sent = queued(NOW).mark_sent(NOW)
    assert sent.status is DeliveryStatus.SENT
    assert sent.attempts == 1
    assert sent.sent_at == NOW
    assert not sent.is_due(NOW + timedelta(days=1))
    with pytest.raises(InvalidTransition):
        sent.mark_sent(NOW)
    with pytest.raises(InvalidTransition):
        sent.record_failure(
            "x", NOW, RetryPolicy(max_attempts=3, base_backoff_seconds=1, max_backoff_seconds=9)
        )


def test_failures_reschedule_with_backoff_until_the_last_attempt() -> None:
    policy_ = RetryPolicy(max_attempts=3, base_backoff_seconds=2, max_backoff_seconds=60)
    delivery = queued(NOW)

    first = delivery.record_failure("connection refused", NOW, policy_)
    assert first.status is DeliveryStatus.PENDING
    assert first.attempts == 1
    assert first.next_attempt_at == NOW + timedelta(seconds=2)
    assert first.last_error == "connection refused"

    second = first.record_failure("timeout", NOW, policy_)
    assert second.status is DeliveryStatus.PENDING
    assert second.next_attempt_at == NOW + timedelta(seconds=4)

    third = second.record_failure("timeout again", NOW, policy_)
    assert third.status is DeliveryStatus.FAILED
    assert third.attempts == 3
    assert third.failed_at == NOW
    assert third.last_error == "timeout again"
    with pytest.raises(InvalidTransition):
        third.mark_sent(NOW)


def test_a_permanent_rejection_fails_at_once_and_long_errors_are_cut() -> None:
    policy_ = RetryPolicy(max_attempts=8, base_backoff_seconds=2, max_backoff_seconds=60)
    failed = queued(NOW).record_failure("x" * 10_000, NOW, policy_, permanent=True)
    assert failed.status is DeliveryStatus.FAILED
    assert failed.attempts == 1
    assert failed.last_error is not None and len(failed.last_error) == 2000


def test_only_a_refused_bad_address_is_permanent() -> None:
    unknown_user = aiosmtplib.SMTPRecipientRefused(550, "5.1.1 User unknown", "a@example.org")
    relaying_denied = aiosmtplib.SMTPRecipientRefused(550, "5.7.1 Relaying denied", "a@b.org")
    mailbox_full = aiosmtplib.SMTPRecipientRefused(452, "4.2.2 Mailbox full", "a@example.org")
    assert is_permanent_rejection(unknown_user)
    assert is_permanent_rejection(aiosmtplib.SMTPRecipientsRefused([unknown_user]))
    assert not is_permanent_rejection(relaying_denied)
    assert not is_permanent_rejection(mailbox_full)
    assert not is_permanent_rejection(aiosmtplib.SMTPConnectError("refused"))
    assert not is_permanent_rejection(TimeoutError())


# --- settings ------------------------------------------------------------------------------


def test_settings_treat_empty_credentials_as_unset_and_check_the_sender() -> None:
    settings = NotificationsSettings(smtp_username="", smtp_password="  ", smtp_tls="starttls")
    assert settings.smtp_username is None
    assert settings.smtp_password is None
    assert settings.smtp_tls is SmtpTls.STARTTLS
    with pytest.raises(ValueError, match="mail_from"):
        NotificationsSettings(mail_from="not an address")


def test_credentials_without_tls_are_refused_unless_allowed() -> None:
    with pytest.raises(ValueError, match="SMTP credentials need smtp_tls"):
        NotificationsSettings(smtp_username="relay-user", smtp_password="secret")
    NotificationsSettings(smtp_username="relay-user", smtp_password="secret", smtp_tls="starttls")
    NotificationsSettings(
        smtp_username="relay-user", smtp_password="secret", smtp_allow_plaintext_auth=True
    )
    NotificationsSettings()  # no credentials: a local relay without TLS is fine
