"""Subscriber emails (pure): alert, article and confirmation wording in Polish and
English, personal links filled in per delivery, and the bytes the relay receives."""

from __future__ import annotations

import base64
import dataclasses
import re
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from notifications.adapters.mime import render_email
from notifications.domain.deliveries import (
    ComposedEmail,
    Delivery,
    DeliveryPriority,
    Purpose,
    personalised,
)
from notifications.domain.subscriber_mail import (
    CONFIRMATION_MARKER,
    MANAGE_URL,
    UNSUBSCRIBE_URL,
    compose_alert,
    compose_article,
    compose_confirmation,
    topic_of_article,
)
from notifications.domain.subscriptions import Preferences, SubscriptionTopic
from shared.contracts.intake import Language
from shared.contracts.news import (
    AlertAreaCode,
    AlertAreaData,
    AlertIssued,
    AlertMessageType,
    AlertReference,
    AlertSourceKind,
    ArticleOrigin,
    ArticlePublished,
)
from shared.platform.gmina import GminaProfile, load_profile

SENT = datetime(2025, 7, 8, 9, 0, tzinfo=UTC)  # 11:00 in Warsaw (CEST)


@pytest.fixture(scope="module")
def profile() -> GminaProfile:
    return load_profile("konstancin-jeziorna")


def alert(**changes: object) -> AlertIssued:
    fields: dict[str, object] = {
        "alert_id": uuid.uuid4(),
        "message_type": AlertMessageType.ALERT,
        "source": AlertSourceKind.IMGW_METEO,
        "issuer": "Biuro Prognoz Meteorologicznych w Warszawie",
        "category": "Met",
        "level": 2,
        "probability": 80,
        "event": "Burze",
        "headline": "Ostrzeżenie meteorologiczne 2. stopnia (pomarańczowe): Burze",
        "description": "Prognozowane są burze z gradem <b>i</b> porywami wiatru.",
        "instruction": "Zabezpiecz rzeczy na balkonach.",
        "areas": (
            AlertAreaData(
                description="powiat piaseczyński",
                codes=(AlertAreaCode(kind="TERYT", value="1418"),),
            ),
        ),
        "onset": datetime(2025, 7, 8, 11, 0, tzinfo=UTC),
        "expires": datetime(2025, 7, 8, 20, 0, tzinfo=UTC),
        "sent": SENT,
        "event_en": "Thunderstorms",
        "headline_en": "Weather warning, level 2 (orange): Thunderstorms",
    }
    fields.update(changes)
    return AlertIssued.model_validate(fields)


def text_of(email: ComposedEmail) -> str:
    return " ".join(email.text_body.split())


def test_the_polish_alert_email_has_level_event_area_validity_instruction_and_source(
    profile: GminaProfile,
) -> None:
    email = compose_alert(alert(), profile, Language.PL, alert_url="https://gmina.pl/o/1")
    assert (
        email.subject
        == "[Ostrzeżenie] Ostrzeżenie meteorologiczne 2. stopnia (pomarańczowe): Burze"
    )
    text = text_of(email)
    assert "Stopień: 2 (pomarańczowy)" in text
    assert "Zjawisko: Burze" in text
    assert "Obszar: powiat piaseczyński" in text
    # 11:00 and 20:00 UTC in July are 13:00 and 22:00 in Warsaw.
    assert "od 08.07.2025, 13:00 do 08.07.2025, 22:00 (czasu warszawskiego)" in text
    assert "Zalecenia: Zabezpiecz rzeczy na balkonach." in text
    assert "Źródło: IMGW-PIB – Biuro Prognoz Meteorologicznych w Warszawie" in text
    assert "Prawdopodobieństwo: 80%" in text
    assert MANAGE_URL in email.text_body and UNSUBSCRIBE_URL in email.text_body
    assert MANAGE_URL in email.html_body and UNSUBSCRIBE_URL in email.html_body
    # What IMGW or an official wrote cannot inject markup into the HTML part.
    assert "<b>i</b>" not in email.html_body and "&lt;b&gt;i&lt;/b&gt;" in email.html_body


def test_the_english_alert_email_uses_the_english_texts(profile: GminaProfile) -> None:
    email = compose_alert(alert(), profile, Language.EN, alert_url="https://gmina.pl/o/1")
    assert email.subject == "[Warning] Weather warning, level 2 (orange): Thunderstorms"
    text = text_of(email)
    assert "Level: 2 (orange)" in text and "Event: Thunderstorms" in text
    assert "from 8 July 2025, 13:00 to 8 July 2025, 22:00 (Warsaw time)" in text
    # Texts the event has only in Polish stay Polish rather than vanish.
    assert "Zabezpiecz rzeczy na balkonach." in text
    assert email.language == "en"


@pytest.mark.parametrize(
    ("message_type", "polish", "english"),
    [
        (AlertMessageType.UPDATE, "[Aktualizacja]", "[Update]"),
        (AlertMessageType.CANCEL, "[Odwołanie]", "[Cancelled]"),
    ],
)
def test_an_update_or_a_cancel_says_so_in_the_subject(
    profile: GminaProfile, message_type: AlertMessageType, polish: str, english: str
) -> None:
    reference = AlertReference(alert_id=uuid.uuid4(), sent=SENT - timedelta(hours=1))
    event = alert(message_type=message_type, references=(reference,))
    assert compose_alert(event, profile, Language.PL, alert_url="u").subject.startswith(polish)
    assert compose_alert(event, profile, Language.EN, alert_url="u").subject.startswith(english)


def test_an_open_ended_manual_alert(profile: GminaProfile) -> None:
    event = alert(source=AlertSourceKind.MANUAL, issuer=None, expires=None, probability=None)
    text = text_of(compose_alert(event, profile, Language.PL, alert_url="u"))
    assert "do odwołania" in text
    assert "Źródło: Gmina Konstancin-Jeziorna" in text
    assert "Prawdopodobieństwo" not in text


def test_articles_go_to_news_or_consultation_subscribers(profile: GminaProfile) -> None:
    article = ArticlePublished(
        article_id=uuid.uuid4(),
        slug="konferencja-lgd-1a2b3c4d",
        title="LGD Perły Mazowsza zaprasza na konferencję",
        lead="Konferencja 28 maja.",
        origin=ArticleOrigin.MANUAL,
        published_at=SENT,
    )
    email = compose_article(article, profile, Language.PL, article_url="https://g/a")
    assert email.subject == "[Aktualności] LGD Perły Mazowsza zaprasza na konferencję"
    assert "https://g/a" in email.text_body and "Konferencja 28 maja." in email.text_body
    assert topic_of_article(article) is SubscriptionTopic.NEWS
    consultation = article.model_copy(update={"origin": ArticleOrigin.CONSULTATION})
    assert topic_of_article(consultation) is SubscriptionTopic.CONSULTATIONS
    english = compose_article(consultation, profile, Language.EN, article_url="https://g/a")
    assert english.subject.startswith("[Consultations] ")


def test_the_confirmation_email_lists_what_was_asked_and_has_no_unsubscribe_link(
    profile: GminaProfile,
) -> None:
    preferences = Preferences.of([SubscriptionTopic.NEWS, SubscriptionTopic.ALERTS], 2, Language.PL)
    email = compose_confirmation(
        preferences, profile, confirm_page="https://g/subskrypcje/potwierdz?token=", valid_hours=72
    )
    text = text_of(email)
    assert "Tematy: ostrzeżenia, aktualności" in text
    assert "Ostrzeżenia od stopnia: 2 (pomarańczowy)" in text
    assert f"https://g/subskrypcje/potwierdz?token={CONFIRMATION_MARKER}" in email.text_body
    assert UNSUBSCRIBE_URL not in email.text_body


def test_personal_links_are_filled_in_and_escaped_in_html() -> None:
    values = {UNSUBSCRIBE_URL: "https://g/wypisz?token=a&b", MANAGE_URL: "https://g/m?token=c"}
    html = personalised(f'<a href="{UNSUBSCRIBE_URL}">x</a>', values, html=True)
    assert html == '<a href="https://g/wypisz?token=a&amp;b">x</a>'
    assert personalised(UNSUBSCRIBE_URL, values, html=False) == "https://g/wypisz?token=a&b"


def delivery(**changes: object) -> Delivery:
    queued = Delivery.queue(
        delivery_id=uuid.UUID("7d0f5a4e-8f5e-4c1e-9c55-2f1f6a1b2c3d"),
        source_event_id=uuid.uuid4(),
        correlation_id="c",
        purpose=Purpose.ALERT,
        recipient="jan.kowalski@example.org",
        email=ComposedEmail(
            "pl",
            "[Ostrzeżenie] Burze – bardzo długi temat, który musi zostać złożony w kilku "
            "liniach nagłówka zgodnie z RFC 5322",
            "Zażółć gęślą jaźń.\nDruga linia.\n",
            "<p>Zażółć <b>gęślą</b> jaźń.</p>\n",
        ),
        gmina_teryt="1418023",
        now=SENT,
        priority=DeliveryPriority.URGENT,
    )
    return dataclasses.replace(queued, **changes)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_the_rendered_bytes_parse_to_the_intended_message_with_rfc_8058_headers() -> None:
    sent = delivery(list_unsubscribe="https://api.gmina.pl/v1/subscriptions/one-click?token=abc")
    rendered = render_email(sent, mail_from="Strategia Gminy <s@gmina.pl>", reply_to="r@gmina.pl")
    assert not rendered.needs_smtputf8
    assert all(len(line) <= 998 for line in rendered.data.split(b"\r\n"))
    message = parse(rendered.data)
    assert message["Subject"] == sent.subject
    assert message["From"] == "Strategia Gminy <s@gmina.pl>"
    assert message["To"] == "jan.kowalski@example.org"
    assert message["Reply-To"] == "r@gmina.pl"
    assert message["Message-ID"] == "<7d0f5a4e-8f5e-4c1e-9c55-2f1f6a1b2c3d@strategia.1418023>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"] == (
        "<https://api.gmina.pl/v1/subscriptions/one-click?token=abc>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    assert text.get_content().splitlines() == ["Zażółć gęślą jaźń.", "Druga linia."]
    assert html.get_content().strip() == "<p>Zażółć <b>gęślą</b> jaźń.</p>"


def test_receipts_carry_no_unsubscribe_headers_and_unicode_addresses_need_smtputf8() -> None:
    rendered = render_email(
        delivery(recipient="józef@example.org"), mail_from="s@g.pl", reply_to="r@g.pl"
    )
    assert rendered.needs_smtputf8
    message = message_from_bytes(rendered.data, policy=policy.SMTPUTF8)
    assert message["To"] == "józef@example.org"
    assert message["List-Unsubscribe"] is None


def test_a_line_break_cannot_smuggle_a_header() -> None:
    with pytest.raises(ValueError, match="one line"):
        render_email(
            delivery(list_unsubscribe="https://x\r\nBcc: victim@example.org"),
            mail_from="s@g.pl",
            reply_to="r@g.pl",
        )


@pytest.mark.parametrize(
    "subject",
    [
        "Receipt K12-00042",
        "Potwierdzenie złożenia uwagi K12-00042 — Strategia Rozwoju Gminy Konstancin-Jeziorna",
        "Zażółć gęślą jaźń " * 12,  # many encoded words, two-byte characters at their edges
        "€" * 40 + "😀" * 15,  # three- and four-byte characters
        "A plain ASCII subject, long enough that it has to be encoded rather than folded",
        "Looks like =?utf-8?b?WA==?= an encoded word",
        "A tab\there",
        "",
    ],
)
def test_every_subject_parses_back_to_itself_within_the_line_limit(subject: str) -> None:
    rendered = render_email(delivery(subject=subject), mail_from="s@g.pl", reply_to="r@g.pl")
    lines = rendered.data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    first = next(n for n, line in enumerate(lines) if line.startswith(b"Subject: "))
    last = first + 1
    while last < len(lines) and lines[last].startswith(b" "):
        last += 1
    assert all(len(line) <= 78 for line in lines[first:last])
    # RFC 2047: each encoded word holds whole characters (some readers decode them apart).
    for word in re.findall(rb"=\?utf-8\?b\?([A-Za-z0-9+/=]*)\?=", b"".join(lines[first:last])):
        base64.b64decode(word).decode("utf-8")
    assert parse(rendered.data)["Subject"] == subject
