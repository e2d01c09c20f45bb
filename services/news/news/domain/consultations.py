"""Consultation events (from intake) as articles, so residents learn about every
consultation from the same news feed.

Each event yields one published article with a deterministic id (UUIDv5 of the
consultation, the event and, for a window change, the new window), so a redelivered event
maps to the same article and the caller can insert idempotently. Texts are Polish with an
English variant; dates are shown in the gmina's zone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from news.domain.articles import (
    LEAD_MAX,
    TITLE_MAX,
    Article,
    ArticleDraft,
    ArticleEvent,
    ArticleOrigin,
    create_article,
)
from shared.contracts.intake import (
    ConsultationAnnounced,
    ConsultationClosed,
    ConsultationOpened,
    ConsultationWindowChanged,
)

CONSULTATION_NAMESPACE = uuid.UUID("3b8f5d0e-2c1a-5f47-8e6b-9d4c7a1e0f52")  # never change

MONTHS_PL = (
    "stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca", "lipca", "sierpnia",
    "września", "października", "listopada", "grudnia",
)  # fmt: skip
MONTHS_EN = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
THEMES = {
    "social": ("społeczne", "social"),
    "environmental": ("środowiskowe", "environmental"),
    "economic": ("gospodarcze", "economic"),
    "spatial": ("przestrzenne", "spatial"),
}
WHO_PL = (
    "Uwagi i propozycje może zgłosić każdy: mieszkańcy, rady sołeckie, przedsiębiorcy, "
    "aktywiści, firmy, stowarzyszenia i organizacje."
)
WHO_EN = (
    "Anyone may submit comments and proposals: residents, village councils, entrepreneurs, "
    "activists, companies, associations and organisations."
)


class NoticeKind(StrEnum):
    ANNOUNCED = "announced"
    OPENED = "opened"
    CLOSED = "closed"
    WINDOW_CHANGED = "window_changed"


@dataclass(frozen=True, slots=True)
class ConsultationNotice:
    """What the news domain needs from the four intake consultation events."""

    kind: NoticeKind
    consultation_id: uuid.UUID
    title: str
    opens_at: datetime | None  # ConsultationClosed does not carry it
    closes_at: datetime
    consultation_kind: str | None = None
    themes: tuple[str, ...] = ()
    previous_closes_at: datetime | None = None


ConsultationEvent = (
    ConsultationAnnounced | ConsultationOpened | ConsultationClosed | ConsultationWindowChanged
)


def notice_from_event(event: ConsultationEvent) -> ConsultationNotice:
    if isinstance(event, ConsultationAnnounced):
        return ConsultationNotice(
            NoticeKind.ANNOUNCED,
            event.consultation_id,
            event.title,
            event.opens_at,
            event.closes_at,
            consultation_kind=event.kind.value,
            themes=event.themes,
        )
    if isinstance(event, ConsultationOpened):
        return ConsultationNotice(
            NoticeKind.OPENED, event.consultation_id, event.title, event.opens_at, event.closes_at
        )
    if isinstance(event, ConsultationClosed):
        return ConsultationNotice(
            NoticeKind.CLOSED, event.consultation_id, event.title, None, event.closes_at
        )
    return ConsultationNotice(
        NoticeKind.WINDOW_CHANGED,
        event.consultation_id,
        event.title,
        event.opens_at,
        event.closes_at,
        previous_closes_at=event.previous_closes_at,
    )


def article_id_for(notice: ConsultationNotice) -> uuid.UUID:
    name = f"{notice.consultation_id}|{notice.kind}"
    if notice.kind is NoticeKind.WINDOW_CHANGED:
        opens = notice.opens_at.isoformat() if notice.opens_at else ""
        name = f"{name}|{opens}|{notice.closes_at.isoformat()}"
    return uuid.uuid5(CONSULTATION_NAMESPACE, name)


def consultation_article(
    notice: ConsultationNotice, *, now: datetime, zone: ZoneInfo
) -> tuple[Article, tuple[ArticleEvent, ...]]:
    """The published article telling residents about this consultation event."""
    texts = _texts(notice, now, zone)
    tags = (
        ("konsultacje", "strategia") if notice.consultation_kind == "strategy" else ("konsultacje",)
    )
    # A consultation title may be longer than an article title allows once the prefix is
    # added: clip rather than refuse, or the consultation would get no article at all.
    draft = ArticleDraft(
        title=_clip(texts.title_pl, TITLE_MAX),
        lead=_clip(texts.lead_pl, LEAD_MAX),
        body=texts.body_pl,
        tags=tags,
        title_en=_clip(texts.title_en, TITLE_MAX),
        lead_en=_clip(texts.lead_en, LEAD_MAX),
        body_en=texts.body_en,
    )
    return create_article(
        draft,
        article_id=article_id_for(notice),
        now=now,
        origin=ArticleOrigin.CONSULTATION,
        consultation_id=notice.consultation_id,
    )


@dataclass(frozen=True, slots=True)
class _Texts:
    title_pl: str
    lead_pl: str
    body_pl: str
    title_en: str
    lead_en: str
    body_en: str


def _texts(notice: ConsultationNotice, now: datetime, zone: ZoneInfo) -> _Texts:
    title = notice.title.strip()
    closes_pl, closes_en = end_pl(notice.closes_at, zone), end_en(notice.closes_at, zone)
    opens_pl = moment_pl(notice.opens_at, zone) if notice.opens_at else ""
    opens_en = moment_en(notice.opens_at, zone) if notice.opens_at else ""
    left = days_left(notice.closes_at, now, zone)
    facts_pl = [f"- Termin: od {opens_pl} do {closes_pl}"] if notice.opens_at else []
    facts_en = [f"- Window: from {opens_en} to {closes_en}"] if notice.opens_at else []
    if notice.themes:
        facts_pl.append("- Tematy: " + ", ".join(THEMES.get(t, (t, t))[0] for t in notice.themes))
        facts_en.append("- Themes: " + ", ".join(THEMES.get(t, (t, t))[1] for t in notice.themes))

    if notice.kind is NoticeKind.ANNOUNCED:
        until = days_until(notice.opens_at, now, zone) if notice.opens_at else 0
        return _Texts(
            title_pl=f"Zapowiedź konsultacji: {title}",
            lead_pl=f"Konsultacje „{title}” rozpoczną się {opens_pl} i potrwają do {closes_pl}"
            f" ({_starts_pl(until)}).",
            body_pl=_body(facts_pl, WHO_PL),
            title_en=f"Consultation announced: {title}",
            lead_en=f"The consultation “{title}” opens on {opens_en} and runs until "
            f"{closes_en} ({_starts_en(until)}).",
            body_en=_body(facts_en, WHO_EN),
        )
    if notice.kind is NoticeKind.OPENED:
        return _Texts(
            title_pl=f"Rozpoczęły się konsultacje: {title}",
            lead_pl=f"Do {closes_pl} można zgłaszać uwagi i propozycje — {_left_pl(left)}.",
            body_pl=_body(facts_pl, WHO_PL),
            title_en=f"Consultation open: {title}",
            lead_en=f"Comments and proposals are welcome until {closes_en} — {_left_en(left)}.",
            body_en=_body(facts_en, WHO_EN),
        )
    if notice.kind is NoticeKind.CLOSED:
        return _Texts(
            title_pl=f"Zakończyły się konsultacje: {title}",
            lead_pl=f"Konsultacje „{title}” zakończyły się {closes_pl}. Dziękujemy za "
            "wszystkie uwagi i propozycje.",
            body_pl="Zgłoszone uwagi i propozycje trafią do grup roboczych, które je "
            "uporządkują i ocenią.",
            title_en=f"Consultation closed: {title}",
            lead_en=f"The consultation “{title}” closed on {closes_en}. Thank you for every "
            "comment and proposal.",
            body_en="The working groups will now organise and assess the submissions.",
        )
    previous_pl = (
        f" (poprzednio do {end_pl(notice.previous_closes_at, zone)})"
        if notice.previous_closes_at
        else ""
    )
    previous_en = (
        f" (previously until {end_en(notice.previous_closes_at, zone)})"
        if notice.previous_closes_at
        else ""
    )
    return _Texts(
        title_pl=f"Zmiana terminu konsultacji: {title}",
        lead_pl=f"Nowy termin: od {opens_pl} do {closes_pl}{previous_pl} — {_left_pl(left)}.",
        body_pl=_body(facts_pl, WHO_PL),
        title_en=f"Consultation window changed: {title}",
        lead_en=f"New window: from {opens_en} to {closes_en}{previous_en} — {_left_en(left)}.",
        body_en=_body(facts_en, WHO_EN),
    )


# --- dates and numbers in words -----------------------------------------------------


def moment_pl(moment: datetime, zone: ZoneInfo) -> str:
    """`26 listopada 2026 r.` at midnight, else `5 stycznia 2027 r., godz. 23:59`."""
    local = moment.astimezone(zone)
    day = f"{local.day} {MONTHS_PL[local.month - 1]} {local.year} r."
    return day if _midnight(local) else f"{day}, godz. {local:%H:%M}"


def moment_en(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    day = f"{local.day} {MONTHS_EN[local.month - 1]} {local.year}"
    return day if _midnight(local) else f"{day}, {local:%H:%M}"


def end_pl(moment: datetime, zone: ZoneInfo) -> str:
    """An end at midnight is the end of the day before: `19 września 2025 r. (włącznie)`."""
    local = moment.astimezone(zone)
    if _midnight(local):
        day = _last_day(moment, zone)
        return f"{day.day} {MONTHS_PL[day.month - 1]} {day.year} r. (włącznie)"
    return moment_pl(moment, zone)


def end_en(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    if _midnight(local):
        day = _last_day(moment, zone)
        return f"{day.day} {MONTHS_EN[day.month - 1]} {day.year} (inclusive)"
    return moment_en(moment, zone)


def days_left(closes_at: datetime, now: datetime, zone: ZoneInfo) -> int:
    """Calendar days after today until the last day (0 = today is the last day)."""
    return (_last_day(closes_at, zone) - now.astimezone(zone).date()).days


def days_until(opens_at: datetime, now: datetime, zone: ZoneInfo) -> int:
    return (opens_at.astimezone(zone).date() - now.astimezone(zone).date()).days


def polish_plural(count: int, one: str, few: str, many: str) -> str:
    """Polish number agreement: 1 dzień, 2–4 (not 12–14) dni/zostały, else zostało."""
    if count == 1:
        return one
    if count % 10 in (2, 3, 4) and count % 100 not in (12, 13, 14):
        return few
    return many


def _left_pl(days: int) -> str:
    if days <= 0:
        return "to ostatni dzień"
    verb = polish_plural(days, "został", "zostały", "zostało")
    noun = polish_plural(days, "dzień", "dni", "dni")
    return f"{verb} {days} {noun}"


def _left_en(days: int) -> str:
    if days <= 0:
        return "today is the last day"
    return f"{days} day{'s' if days != 1 else ''} left"


def _starts_pl(days: int) -> str:
    if days <= 0:
        return "już dziś"
    return f"za {days} {polish_plural(days, 'dzień', 'dni', 'dni')}"


def _starts_en(days: int) -> str:
    if days <= 0:
        return "today"
    return f"in {days} day{'s' if days != 1 else ''}"


def _last_day(closes_at: datetime, zone: ZoneInfo) -> date:
    return (closes_at - timedelta(microseconds=1)).astimezone(zone).date()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _midnight(local: datetime) -> bool:
    return (local.hour, local.minute, local.second) == (0, 0, 0)


def _body(facts: list[str], who: str) -> str:
    return "\n".join(facts) + "\n\n" + who if facts else who
