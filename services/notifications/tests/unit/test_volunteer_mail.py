"""The working groups' emails: links, withdrawal in every volunteer email, RODO notice,
decision wording; Polish and English."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifications.domain.volunteer_mail import Submitter, compose_decision, compose_volunteer_mail
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
from shared.platform.gmina import load_profile

PROFILE = load_profile()
BASE = "https://konsultacje.example.org"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WITHDRAW = "w" * 43


def common(locale: Language) -> dict[str, Any]:
    return {
        "volunteer_id": uuid.uuid4(),
        "consultation_id": uuid.uuid4(),
        "consultation_title": "Strategia 2040+",
        "email": "anna@example.org",
        "name": "Anna <b>Nowak</b>",
        "locale": locale,
        "withdraw_token": WITHDRAW,
        "withdraw_expires_at": NOW + timedelta(hours=48),
    }


def messages(locale: Language) -> list[VolunteerMessage]:
    group = {
        "group_id": uuid.uuid4(),
        "group_name_pl": "Grupa społeczna 1",
        "group_name_en": "Social group 1",
    }
    return [
        VolunteerConfirmationRequested(
            **common(locale),
            confirm_token="c" * 43,
            confirm_expires_at=NOW + timedelta(hours=48),
            themes=("social", "spatial"),
        ),
        VolunteerAssignmentNotice(**common(locale), **group, theme="social", lead_name="Jan"),
        VolunteerWaitlistNotice(**common(locale), themes=("economic",)),
        MemberSignInLinkRequested(
            **common(locale),
            sign_in_token="s" * 43,
            sign_in_expires_at=NOW + timedelta(hours=24),
            group_name_pl="Grupa społeczna 1",
            group_name_en="Social group 1",
        ),
    ]


@pytest.mark.parametrize("locale", list(Language))
def test_every_volunteer_email_carries_its_withdrawal_link(locale: Language) -> None:
    for message in messages(locale):
        email = compose_volunteer_mail(message, PROFILE, BASE)
        link = f"{BASE}/wolontariat/rezygnacja?token={WITHDRAW}"
        assert link in email.text_body and link in email.html_body
        assert "<b>Nowak</b>" not in email.html_body  # escaped in HTML
        assert email.language == locale.value and "\n" not in email.subject


def test_links_lead_to_the_pages_with_their_token() -> None:
    confirm, assignment, _, sign_in = (
        compose_volunteer_mail(m, PROFILE, BASE) for m in messages(Language.PL)
    )
    assert f"{BASE}/wolontariat/potwierdz?token={'c' * 43}" in confirm.text_body
    assert f"{BASE}/czlonkowie/logowanie?token={'s' * 43}" in sign_in.text_body
    assert f"{BASE}/czlonkowie/logowanie\n" in assignment.text_body  # the page, no secret
    assert "Grupa społeczna 1" in assignment.subject and "Jan" in assignment.text_body


def test_the_rodo_notice_is_part_of_the_confirmation_email() -> None:
    confirm, assignment, waitlist, _ = (
        compose_volunteer_mail(m, PROFILE, BASE) for m in messages(Language.PL)
    )
    assert "art. 13 RODO" in confirm.text_body
    assert PROFILE.controller.dpo_contact in confirm.text_body
    assert "art. 13 RODO" not in assignment.text_body + waitlist.text_body


@pytest.mark.parametrize(
    ("language", "outcome", "expected"),
    [
        (Language.PL, Outcome.REJECTED, "nieuwzględnione"),
        (Language.PL, Outcome.RECOMMENDED, "rekomendowane"),
        (Language.EN, Outcome.OUT_OF_SCOPE, "outside the scope"),
    ],
)
def test_the_decision_email_gives_the_outcome_and_the_public_reason(
    language: Language, outcome: Outcome, expected: str
) -> None:
    event = SubmissionDecided(
        submission_id=uuid.uuid4(),
        consultation_id=uuid.uuid4(),
        group_id=uuid.uuid4(),
        receipt_number="K1-00042",
        title="Żłobek",
        outcome=outcome,
        public_reason="Powód publiczny." if outcome is not Outcome.RECOMMENDED else None,
        decided_at=NOW,
    )
    submitter = Submitter(str(event.submission_id), "jan@example.org", language, "Strategia")
    email = compose_decision(event, submitter, PROFILE)
    assert expected in email.text_body and "K1-00042" in email.subject
    if event.public_reason:
        assert "Powód publiczny." in email.text_body and "Powód publiczny." in email.html_body
