"""Composing the emails of the working groups: to volunteers, and decisions to submitters.

Pure: the same event, profile and public base URL always give the same message. Wording
lives in Jinja2 templates (`templates/volunteer_mail.*`, `templates/decision.*`), Polish
first, English when the person chose it. Every email to a volunteer carries the
withdrawal link; the confirmation request carries the RODO art. 13 notice. Links lead to
the web front's pages (`shared.contracts.links`), which spend the token with a POST.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from notifications.domain.deliveries import ComposedEmail, Purpose
from notifications.domain.receipts import format_local_time, render_with_strings
from shared.contracts.groups import (
    MemberSignInLinkRequested,
    Outcome,
    SubmissionDecided,
    VolunteerAssignmentNotice,
    VolunteerConfirmationRequested,
    VolunteerMessage,
    VolunteerWaitlistNotice,
)
from shared.contracts.intake import Language
from shared.contracts.links import Page, page_link
from shared.platform.gmina import GminaProfile

# How a theme reads in an email ("obszar społeczny" / "social").
THEME_LABELS: Mapping[str, tuple[str, str]] = {
    "social": ("społeczny", "social"),
    "environmental": ("środowiskowy", "environmental"),
    "economic": ("gospodarczy", "economic"),
    "spatial": ("przestrzenny", "spatial"),
}

PURPOSES: Mapping[type[VolunteerMessage], Purpose] = {
    VolunteerConfirmationRequested: Purpose.VOLUNTEER_CONFIRMATION,
    VolunteerAssignmentNotice: Purpose.VOLUNTEER_ASSIGNMENT,
    VolunteerWaitlistNotice: Purpose.VOLUNTEER_WAITLIST,
    MemberSignInLinkRequested: Purpose.MEMBER_SIGN_IN,
}


@dataclass(frozen=True, slots=True)
class Submitter:
    """What notifications keeps of a submitter who consented to be contacted."""

    submission_id: str
    email: str
    language: Language
    consultation_title: str


def theme_label(theme: str, language: Language) -> str:
    pl, en = THEME_LABELS.get(theme, (theme, theme))
    return en if language is Language.EN else pl


def _themes(themes: Sequence[str], language: Language) -> str:
    return ", ".join(theme_label(theme, language) for theme in themes)


def volunteer_context(
    message: VolunteerMessage, profile: GminaProfile, public_base_url: str
) -> dict[str, Any]:
    language = Language(message.locale)
    context: dict[str, Any] = {
        "language": language.value,
        "name": message.name,
        "consultation_title": message.consultation_title,
        "withdraw_url": page_link(
            public_base_url, Page.VOLUNTEER_WITHDRAW, token=message.withdraw_token
        ),
        "withdraw_until": format_local_time(message.withdraw_expires_at, profile, language),
        "gmina": profile,
        "controller": profile.controller,
    }
    if isinstance(message, VolunteerConfirmationRequested):
        context |= {
            "kind": "confirmation",
            "action_url": page_link(
                public_base_url, Page.VOLUNTEER_CONFIRM, token=message.confirm_token
            ),
            "action_until": format_local_time(message.confirm_expires_at, profile, language),
            "themes": _themes(message.themes, language),
        }
    elif isinstance(message, VolunteerAssignmentNotice):
        context |= {
            "kind": "assignment",
            "group_name": message.group_name_en
            if language is Language.EN
            else message.group_name_pl,
            "theme": theme_label(message.theme, language),
            "lead_name": message.lead_name,
            "action_url": page_link(public_base_url, Page.MEMBER_SIGN_IN),
        }
    elif isinstance(message, VolunteerWaitlistNotice):
        context |= {"kind": "waitlist", "themes": _themes(message.themes, language)}
    elif isinstance(message, MemberSignInLinkRequested):
        context |= {
            "kind": "sign_in",
            "group_name": message.group_name_en
            if language is Language.EN
            else message.group_name_pl,
            "action_url": page_link(
                public_base_url, Page.MEMBER_SIGN_IN, token=message.sign_in_token
            ),
            "action_until": format_local_time(message.sign_in_expires_at, profile, language),
        }
    else:  # pragma: no cover - every message type of the topic is handled above
        raise TypeError(f"no email for {type(message).__name__}")
    return context


def compose_volunteer_mail(
    message: VolunteerMessage, profile: GminaProfile, public_base_url: str
) -> ComposedEmail:
    return render_with_strings(
        "volunteer_mail", volunteer_context(message, profile, public_base_url)
    )


def compose_decision(
    event: SubmissionDecided, submitter: Submitter, profile: GminaProfile
) -> ComposedEmail:
    """The outcome of a submission and its public reason, to a submitter who consented."""
    language = submitter.language
    context = {
        "language": language.value,
        "outcome": event.outcome.value,
        "receipt_number": event.receipt_number,
        "submission_title": event.title,
        "consultation_title": submitter.consultation_title,
        "public_reason": event.public_reason,
        "merged_into": event.merged_into_receipt_number,
        "decided_at": format_local_time(event.decided_at, profile, language),
        "gmina": profile,
        "controller": profile.controller,
    }
    return render_with_strings("decision", context)


__all__ = ["PURPOSES", "Outcome", "Submitter", "compose_decision", "compose_volunteer_mail"]
