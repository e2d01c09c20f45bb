"""Polish and English words the pages share: labels of API values, and the Polish messages
shown next to a field when a service refused it (the services answer in English)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

Pair = tuple[str, str]

SUBMITTER_KINDS: dict[str, Pair] = {
    "resident": ("Mieszkaniec / mieszkanka", "Resident"),
    "village_council": ("Rada sołecka", "Village council"),
    "entrepreneur": ("Przedsiębiorca", "Entrepreneur"),
    "activist": ("Społecznik / aktywistka", "Activist"),
    "company": ("Firma", "Company"),
    "association": ("Stowarzyszenie", "Association"),
    "organisation": ("Inna organizacja", "Other organisation"),
}

THEMES: dict[str, Pair] = {
    "social": ("Społeczny", "Social"),
    "environmental": ("Środowiskowy", "Environmental"),
    "economic": ("Gospodarczy", "Economic"),
    "spatial": ("Przestrzenny", "Spatial"),
}

PHASES: dict[str, Pair] = {
    "open": ("trwają", "open"),
    "upcoming": ("wkrótce", "upcoming"),
    "closed": ("zakończone", "closed"),
}

STATES: dict[str, Pair] = {
    "new": ("nowe", "new"),
    "in_review": ("w ocenie", "in review"),
    "needs_clarification": ("do wyjaśnienia", "needs clarification"),
    "assessed": ("ocenione", "assessed"),
    "recommended": ("rekomendowane", "recommended"),
    "merged": ("połączone", "merged"),
    "out_of_scope": ("poza zakresem", "out of scope"),
    "rejected": ("odrzucone", "rejected"),
}

LEVELS: dict[int, Pair] = {
    1: ("1. stopień (żółty)", "level 1 (yellow)"),
    2: ("2. stopień (pomarańczowy)", "level 2 (orange)"),
    3: ("3. stopień (czerwony)", "level 3 (red)"),
}

CHANNELS: dict[str, Pair] = {
    "phone": ("telefon", "phone"),
    "paper": ("formularz papierowy", "paper form"),
    "email": ("e-mail", "email"),
}

SCORES: dict[str, Pair] = {
    "need": ("Potrzeba", "Need"),
    "reach": ("Zasięg", "Reach"),
    "strategy_fit": ("Zgodność ze strategią", "Strategy fit"),
    "competence": ("Kompetencje gminy", "Municipal competence"),
}
COST_BANDS: dict[str, Pair] = {
    "low": ("niski", "low"),
    "medium": ("średni", "medium"),
    "high": ("wysoki", "high"),
}
HORIZONS: dict[str, Pair] = {
    "short": ("krótki", "short"),
    "medium": ("średni", "medium"),
    "long": ("długi", "long"),
}

# The message next to a field the service refused (by the API's field path).
FIELD_MESSAGES: dict[str, Pair] = {
    "submitter.kind": ("Wybierz, kto składa uwagę.", "Choose who is submitting."),
    "submitter.name": ("Imię i nazwisko: najwyżej 200 znaków.", "Name: at most 200 characters."),
    "submitter.organisation": (
        "Nazwa organizacji: najwyżej 300 znaków.",
        "Organisation: at most 300 characters.",
    ),
    "submitter.email": (
        "Podaj poprawny adres e-mail, np. jan.kowalski@example.com, albo zostaw pole puste.",
        "Enter a valid email address, e.g. jan@example.com, or leave it empty.",
    ),
    "submitter.phone": ("Numer telefonu: najwyżej 40 znaków.", "Phone: at most 40 characters."),
    "submitter.locality": ("Wybierz miejscowość z listy.", "Choose a locality from the list."),
    "theme": ("Wybierz obszar strategii z listy.", "Choose a strategy area from the list."),
    "title": (
        "Wpisz tytuł: od 1 do 300 znaków.",
        "Enter a title: 1 to 300 characters.",
    ),
    "body": (
        "Opisz potrzebę lub propozycję: od 1 do 10 000 znaków.",
        "Describe the need or proposal: 1 to 10,000 characters.",
    ),
    "consent.processing": (
        "Zaznacz zgodę na przetwarzanie danych — bez niej nie możemy przyjąć uwagi.",
        "Tick the consent to processing — without it we cannot accept the submission.",
    ),
    "received_on": (
        "Podaj dzień wpływu formularza (najwyżej 14 dni wstecz, nie w przyszłości).",
        "Enter the day the form arrived (at most 14 days ago, not in the future).",
    ),
    "name": ("Wpisz imię i nazwisko (do 200 znaków).", "Enter your name (up to 200 characters)."),
    "email": (
        "Podaj poprawny adres e-mail, np. jan.kowalski@example.com.",
        "Enter a valid email address, e.g. jan@example.com.",
    ),
    "phone": ("Podaj poprawny numer telefonu.", "Enter a valid phone number."),
    "locality": ("Wybierz miejscowość z listy.", "Choose a locality from the list."),
    "themes": (
        "Wybierz co najmniej jeden obszar i nie powtarzaj obszarów.",
        "Choose at least one area, each once.",
    ),
    "expertise": ("Doświadczenie: najwyżej 2000 znaków.", "Expertise: at most 2,000 characters."),
    "reason": (
        "Podaj publiczne uzasadnienie (do 2000 znaków).",
        "Give a public reason (up to 2,000 characters).",
    ),
    "note": ("Notatka: najwyżej 2000 znaków.", "Note: at most 2,000 characters."),
    "tags": ("Tagi: najwyżej 10, każdy do 40 znaków.", "Tags: at most 10, each up to 40 chars."),
    "submission_ids": ("Wybierz co najmniej jedną uwagę.", "Choose at least one submission."),
    "topics": ("Wybierz co najmniej jeden temat.", "Choose at least one topic."),
    "token": ("Link jest nieważny.", "The link is not valid."),
}


def field_message(field: str, lang: str) -> str:
    pair = FIELD_MESSAGES.get(field)
    if pair is None:
        # consent.processing -> consent.processing; unknown: a generic message
        for known, value in FIELD_MESSAGES.items():
            if field.endswith(known):
                pair = value
                break
    if pair is None:
        pair = ("Sprawdź wartość tego pola.", "Check this field's value.")
    return pair[1] if lang == "en" else pair[0]


def label(table: dict[str, Pair] | dict[int, Pair], key: object, lang: str) -> str:
    pair = table.get(key)  # type: ignore[call-overload]
    if pair is None:
        return str(key)
    return str(pair[1] if lang == "en" else pair[0])


def parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def local_time(value: str | datetime, zone: ZoneInfo) -> str:
    """`28.11.2026, 15:04` in the gmina's time zone."""
    return parse_time(value).astimezone(zone).strftime("%d.%m.%Y, %H:%M")


def local_day(value: str | datetime | date, zone: ZoneInfo) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.strftime("%d.%m.%Y")
    return parse_time(value).astimezone(zone).strftime("%d.%m.%Y")


def days_word(n: int, lang: str) -> str:
    if lang == "en":
        return f"{n} day" if n == 1 else f"{n} days"
    if n == 1:
        return "1 dzień"
    return f"{n} dni"


def remaining(closes_at: str | datetime, now: datetime, zone: ZoneInfo, lang: str) -> str:
    """'zostało 12 dni' — calendar days in the gmina's zone until the closing day."""
    closes = parse_time(closes_at).astimezone(zone).date()
    today = now.astimezone(zone).date()
    days = (closes - today).days
    if lang == "en":
        return "closes today" if days <= 0 else f"{days_word(days, lang)} left"
    if days <= 0:
        return "kończą się dziś"
    if days == 1:
        verb = "został"
    elif days % 10 in (2, 3, 4) and days % 100 not in (12, 13, 14):
        verb = "zostały"
    else:
        verb = "zostało"
    return f"{verb} {days_word(days, lang)}"
