"""The emails subscribers get: the confirmation link, alerts, news and consultations.

Pure: the same event, language and links always give the same message. Polish first,
English for subscribers who chose it (texts the event has only in Polish stay Polish).
One message is rendered per language and shared by every subscriber of a fan-out; what
differs per person — the manage and unsubscribe links — is left as markers
(`MANAGE_URL`, `UNSUBSCRIBE_URL`) that the dispatcher fills in when it sends the email
(`with_subscriber_links`, the token derived then, see `SubscriberLinkTokens`), and the
confirmation link's single-use token (`CONFIRMATION_MARKER`) is issued only then, so the
database never holds a usable link of either kind.

The wording lives here, the layout in `templates/subscriber.{txt,html}.j2` (the HTML one
autoescapes whatever the gmina's staff or IMGW wrote).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from notifications.domain.deliveries import ComposedEmail, Delivery, Purpose, personalised
from notifications.domain.receipts import format_local_time, single_line, template_environment
from notifications.domain.subscriptions import Preferences, SubscriberLinks, SubscriptionTopic
from shared.contracts.intake import Language
from shared.contracts.news import (
    AlertIssued,
    AlertMessageType,
    AlertSourceKind,
    ArticleOrigin,
    ArticlePublished,
)
from shared.platform.gmina import GminaProfile

UNSUBSCRIBE_URL = "%%UNSUBSCRIBE_URL%%"
MANAGE_URL = "%%MANAGE_URL%%"
CONFIRMATION_MARKER = "%%CONFIRMATION_MARKER%%"

# Emails to a confirmed subscriber (a fan-out): they carry the manage and unsubscribe
# links and the RFC 8058 headers.
SUBSCRIBER_PURPOSES = frozenset({Purpose.ALERT, Purpose.NEWS, Purpose.CONSULTATION})

TEXT_LAYOUT = "subscriber.txt.j2"
HTML_LAYOUT = "subscriber.html.j2"

_COLOURS = {
    Language.PL: {1: "żółty", 2: "pomarańczowy", 3: "czerwony"},
    Language.EN: {1: "yellow", 2: "orange", 3: "red"},
}
_TOPICS = {
    Language.PL: {
        SubscriptionTopic.ALERTS: "ostrzeżenia",
        SubscriptionTopic.NEWS: "aktualności",
        SubscriptionTopic.CONSULTATIONS: "konsultacje społeczne",
    },
    Language.EN: {
        SubscriptionTopic.ALERTS: "warnings",
        SubscriptionTopic.NEWS: "news",
        SubscriptionTopic.CONSULTATIONS: "public consultations",
    },
}
_LANGUAGE_NAMES = {
    Language.PL: {Language.PL: "polski", Language.EN: "angielski"},
    Language.EN: {Language.PL: "Polish", Language.EN: "English"},
}


@dataclass(frozen=True, slots=True)
class MailView:
    """What the layout shows, in order."""

    language: Language
    subject: str
    heading: str
    paragraphs: tuple[str, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()
    details: tuple[tuple[str | None, str], ...] = ()  # (optional title, long text)
    action: tuple[str, str] | None = None  # (label, URL)
    footer: tuple[str, ...] = ()
    # Subscriber mail carries the manage and unsubscribe links; the confirmation does not.
    subscriber_links: bool = True


def render(view: MailView, profile: GminaProfile) -> ComposedEmail:
    environment = template_environment()
    context: dict[str, Any] = {
        "view": view,
        "manage_url": MANAGE_URL,
        "unsubscribe_url": UNSUBSCRIBE_URL,
        "gmina": profile,
        "labels": _LAYOUT_LABELS[view.language],
    }
    return ComposedEmail(
        language=view.language.value,
        subject=single_line(view.subject),
        text_body=environment.get_template(TEXT_LAYOUT).render(context),
        html_body=environment.get_template(HTML_LAYOUT).render(context),
    )


_LAYOUT_LABELS = {
    Language.PL: {
        "why": "Otrzymujesz tę wiadomość, ponieważ zapisano ten adres na powiadomienia gminy.",
        "manage": "Zmień ustawienia powiadomień",
        "unsubscribe": "Wypisz się",
        "automatic": "Wiadomość wysłana automatycznie",
    },
    Language.EN: {
        "why": "You receive this message because this address subscribed to the "
        "municipality's notifications.",
        "manage": "Change your notification settings",
        "unsubscribe": "Unsubscribe",
        "automatic": "Sent automatically by",
    },
}


# --- alerts ---------------------------------------------------------------------------


def compose_alert(
    event: AlertIssued, profile: GminaProfile, language: Language, *, alert_url: str
) -> ComposedEmail:
    english = language is Language.EN
    headline = (event.headline_en or event.headline) if english else event.headline
    event_name = (event.event_en or event.event) if english else event.event
    description = (event.description_en or event.description) if english else event.description
    instruction = (event.instruction_en or event.instruction) if english else event.instruction
    colour = _COLOURS[language][event.level]
    areas = ", ".join(area.description for area in event.areas)
    if english:
        label = {
            AlertMessageType.ALERT: "Warning",
            AlertMessageType.UPDATE: "Update",
            AlertMessageType.CANCEL: "Cancelled",
        }[event.message_type]
        intro = {
            AlertMessageType.ALERT: f"A warning has been issued for: {areas}.",
            AlertMessageType.UPDATE: "This updates an earlier warning and replaces it; "
            "please take note of what has changed.",
            AlertMessageType.CANCEL: "The warning has been withdrawn before it expired.",
        }[event.message_type]
    else:
        label = {
            AlertMessageType.ALERT: "Ostrzeżenie",
            AlertMessageType.UPDATE: "Aktualizacja",
            AlertMessageType.CANCEL: "Odwołanie",
        }[event.message_type]
        intro = {
            AlertMessageType.ALERT: f"Wydano ostrzeżenie dla obszaru: {areas}.",
            AlertMessageType.UPDATE: "To aktualizacja wcześniejszego ostrzeżenia, która je "
            "zastępuje; prosimy zwrócić uwagę na zmiany.",
            AlertMessageType.CANCEL: "Ostrzeżenie zostało odwołane przed upływem jego ważności.",
        }[event.message_type]
    facts = [
        ("Level" if english else "Stopień", f"{event.level} ({colour})"),
        ("Event" if english else "Zjawisko", event_name),
        ("Area" if english else "Obszar", areas),
        ("Valid" if english else "Obowiązuje", _validity(event, profile, language)),
    ]
    if event.probability is not None:
        facts.append(("Probability" if english else "Prawdopodobieństwo", f"{event.probability}%"))
    facts.append(("Source" if english else "Źródło", _source(event, profile, language)))
    details: list[tuple[str | None, str]] = []
    if description:
        details.append((None, description))
    if instruction:
        details.append(("What to do" if english else "Zalecenia", instruction))
    view = MailView(
        language=language,
        subject=f"[{label}] {headline}",
        heading=headline,
        paragraphs=(intro,),
        facts=tuple(facts),
        details=tuple(details),
        action=("Warning details" if english else "Szczegóły ostrzeżenia", alert_url),
    )
    return render(view, profile)


def _validity(event: AlertIssued, profile: GminaProfile, language: Language) -> str:
    start = format_local_time(event.onset, profile, language)
    zone = "Warsaw time" if language is Language.EN else "czasu warszawskiego"
    if event.expires is None:
        until = "until further notice" if language is Language.EN else "do odwołania"
        return f"{'from' if language is Language.EN else 'od'} {start} {until} ({zone})"
    end = format_local_time(event.expires, profile, language)
    if language is Language.EN:
        return f"from {start} to {end} ({zone})"
    return f"od {start} do {end} ({zone})"


def _source(event: AlertIssued, profile: GminaProfile, language: Language) -> str:
    if event.source is AlertSourceKind.MANUAL:
        return profile.name_en if language is Language.EN else profile.name
    name = "IMGW-PIB"
    return f"{name} – {event.issuer}" if event.issuer else name


# --- articles -------------------------------------------------------------------------


def compose_article(
    event: ArticlePublished, profile: GminaProfile, language: Language, *, article_url: str
) -> ComposedEmail:
    english = language is Language.EN
    title = (event.title_en or event.title) if english else event.title
    lead = (event.lead_en or event.lead) if english else event.lead
    consultation = event.origin is ArticleOrigin.CONSULTATION
    if english:
        label = "Consultations" if consultation else "News"
    else:
        label = "Konsultacje" if consultation else "Aktualności"
    published = format_local_time(event.published_at, profile, language)
    view = MailView(
        language=language,
        subject=f"[{label}] {title}",
        heading=title,
        paragraphs=(lead,),
        facts=(("Published" if english else "Opublikowano", published),),
        action=("Read more" if english else "Czytaj dalej", article_url),
    )
    return render(view, profile)


def topic_of_article(event: ArticlePublished) -> SubscriptionTopic:
    """Consultation announcements go to consultation subscribers, the rest to news."""
    if event.origin is ArticleOrigin.CONSULTATION:
        return SubscriptionTopic.CONSULTATIONS
    return SubscriptionTopic.NEWS


# --- confirmation -----------------------------------------------------------------------


def compose_confirmation(
    preferences: Preferences,
    profile: GminaProfile,
    *,
    confirm_page: str,
    valid_hours: int,
) -> ComposedEmail:
    """The double opt-in email; `confirm_page` ends with `?token=` (the token is added
    when the email is sent)."""
    language = preferences.locale
    english = language is Language.EN
    topics = ", ".join(_TOPICS[language][topic] for topic in preferences.topics)
    facts = [("Topics" if english else "Tematy", topics)]
    if SubscriptionTopic.ALERTS in preferences.topics:
        facts.append(
            (
                "Warnings from level" if english else "Ostrzeżenia od stopnia",
                f"{preferences.min_level} ({_COLOURS[language][preferences.min_level]})",
            )
        )
    facts.append(("Language" if english else "Język", _LANGUAGE_NAMES[language][language]))
    if english:
        view = MailView(
            language=language,
            subject=f"Please confirm your subscription – {profile.name_en}",
            heading="Please confirm your subscription",
            paragraphs=(
                "We were asked to send the following to this address:",
                f"Nothing is sent until you confirm with the link below (valid for "
                f"{valid_hours} hours). If you did not ask for this, just ignore this message.",
            ),
            facts=tuple(facts),
            action=("Confirm the subscription", confirm_page + CONFIRMATION_MARKER),
            subscriber_links=False,
        )
    else:
        view = MailView(
            language=language,
            subject=f"Potwierdź subskrypcję powiadomień – {profile.name}",
            heading="Potwierdź subskrypcję powiadomień",
            paragraphs=(
                "Otrzymaliśmy prośbę o wysyłanie na ten adres:",
                f"Nic nie wyślemy, dopóki nie potwierdzisz subskrypcji linkiem poniżej (ważnym "
                f"przez {valid_hours} godz.). Jeśli to nie Ty, po prostu zignoruj tę wiadomość.",
            ),
            facts=tuple(facts),
            action=("Potwierdzam subskrypcję", confirm_page + CONFIRMATION_MARKER),
            subscriber_links=False,
        )
    return render(view, profile)


# --- personal links, at send time -------------------------------------------------------


def with_subscriber_links(delivery: Delivery, links: SubscriberLinks, token: str) -> Delivery:
    """A subscriber's email made theirs: the markers replaced by their manage and
    unsubscribe links (escaped in HTML), and the RFC 8058 one-click URL for the
    `List-Unsubscribe` header. Done in memory just before sending: never stored."""
    values = {UNSUBSCRIBE_URL: links.unsubscribe_url(token), MANAGE_URL: links.manage_url(token)}
    return dataclasses.replace(
        delivery,
        subject=personalised(delivery.subject, values, html=False),
        text_body=personalised(delivery.text_body, values, html=False),
        html_body=personalised(delivery.html_body, values, html=True),
        list_unsubscribe=links.one_click_url(token),
    )
