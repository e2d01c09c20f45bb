"""Volunteer sign-up rules: validation, contacts, same person, life cycle, call list."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from groups.domain.errors import IdentityConflict, InvalidInput, InvalidTransition
from groups.domain.volunteers import (
    SignUp,
    SignUpChannel,
    Volunteer,
    VolunteerStatus,
    call_list,
    check_sign_up,
    confirm_email,
    mark_placed,
    mark_waitlisted,
    normalise_email,
    normalise_phone,
    register,
    withdraw,
)
from shared.contracts.intake import Language

THEMES = ("social", "environmental", "economic", "spatial")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def sign_up(**changes: object) -> SignUp:
    fields: dict[str, object] = {
        "name": "Anna Nowak",
        "themes": ("social", "spatial"),
        "consent_processing": True,
        "channel": SignUpChannel.WEB,
        "email": "anna@example.com",
    }
    fields.update(changes)
    return SignUp(**fields)  # type: ignore[arg-type]


def reg(s: SignUp, existing: list[Volunteer] | None = None, n: int = 1, at: datetime = T0):
    return register(s, existing or [], consultation_themes=THEMES, new_id=uuid.UUID(int=n), now=at)


# --- contacts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("22 484 23 90", "+48224842390"),
        ("(22) 484 23 92", "+48224842392"),
        ("+48 601 234 567", "+48601234567"),
        ("0048601234567", "+48601234567"),
        ("601-234-567", "+48601234567"),
        ("+49 30 901820", "+4930901820"),
    ],
)
def test_phone_numbers_become_e164(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12", "abc", "601 234", "+48 000 000 000"])
def test_invalid_phone_numbers_are_refused_with_the_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as error:
        normalise_phone(raw)
    assert error.value.field == "phone"


def test_email_is_trimmed_and_lower_cased_for_identity() -> None:
    assert normalise_email("  Anna.Nowak@Example.COM ") == "anna.nowak@example.com"
    with pytest.raises(InvalidInput) as error:
        normalise_email("anna@")
    assert error.value.field == "email"


# --- validation ----------------------------------------------------------------------------


def test_sign_up_is_normalised() -> None:
    checked = check_sign_up(
        sign_up(name="  Anna ", email="ANNA@example.com", phone="601 234 567", locality=" Gassy "),
        THEMES,
    )
    assert (checked.name, checked.email, checked.phone, checked.locality) == (
        "Anna",
        "anna@example.com",
        "+48601234567",
        "Gassy",
    )


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as error:
        check_sign_up(
            sign_up(
                name=" ",
                consent_processing=False,
                email=None,
                channel=SignUpChannel.PAPER,
                themes=(),
            ),
            THEMES,
        )
    fields = {p.field for p in error.value.problems}
    assert fields == {"name", "consent.processing", "email", "themes"}


@pytest.mark.parametrize(
    ("themes", "reason"),
    [
        ((), "at least one"),
        (("social", "social"), "once"),
        (("culture",), "unknown theme"),
    ],
)
def test_themes_are_ranked_consultation_themes(themes: tuple[str, ...], reason: str) -> None:
    with pytest.raises(InvalidInput) as error:
        check_sign_up(sign_up(themes=themes), THEMES)
    assert error.value.field == "themes"
    assert reason in error.value.reason


def test_a_web_sign_up_needs_an_email_but_a_clerk_may_enter_phone_only() -> None:
    with pytest.raises(InvalidInput) as error:
        check_sign_up(sign_up(email=None, phone="601234567"), THEMES)
    assert "web sign-up needs an email" in error.value.reason
    ok = check_sign_up(sign_up(email=None, phone="601234567", channel=SignUpChannel.PHONE), THEMES)
    assert ok.phone == "+48601234567"


# --- registration, same person ---------------------------------------------------------------


def test_web_sign_up_counts_only_after_confirmation() -> None:
    result = reg(sign_up())
    assert result.created and result.needs_email_confirmation
    assert result.volunteer.status is VolunteerStatus.AWAITING_CONFIRMATION
    assert not result.volunteer.counts
    later = T0 + timedelta(hours=2)
    confirmed = confirm_email(result.volunteer, later)
    assert confirmed.status is VolunteerStatus.CONFIRMED and confirmed.counts
    assert confirmed.confirmed_at == later
    assert confirm_email(confirmed, later + timedelta(days=1)) == confirmed  # idempotent


@pytest.mark.parametrize("channel", [SignUpChannel.PHONE, SignUpChannel.PAPER, SignUpChannel.EMAIL])
def test_clerk_sign_up_counts_at_once(channel: SignUpChannel) -> None:
    result = reg(sign_up(channel=channel))
    assert not result.needs_email_confirmation
    assert result.volunteer.status is VolunteerStatus.CONFIRMED
    assert result.volunteer.confirmed_at == T0


def test_same_email_updates_the_first_sign_up() -> None:
    first = confirm_email(reg(sign_up(locality="Gassy", expertise="urbanistka")).volunteer, T0)
    placed = mark_placed(first, uuid.UUID(int=99))
    later = T0 + timedelta(days=3)
    update = sign_up(
        name="Anna Nowak-Kowalska",
        email=" ANNA@example.com",
        themes=("economic",),
        channel=SignUpChannel.PHONE,
        phone="601 234 567",
        locale=Language.EN,
    )
    result = reg(update, [placed], n=2, at=later)
    merged = result.volunteer
    assert not result.created
    assert merged.id == first.id and merged.signed_up_at == T0
    assert merged.name == "Anna Nowak-Kowalska"
    assert merged.themes == ("economic",)
    assert merged.phone == "+48601234567"
    assert merged.locality == "Gassy" and merged.expertise == "urbanistka"  # kept
    assert merged.locale is Language.EN
    # Placed members are never moved, even when their new ranking prefers another theme.
    assert merged.status is VolunteerStatus.PLACED and merged.group_id == uuid.UUID(int=99)
    assert merged.confirmed_at == first.confirmed_at


def test_same_phone_is_the_same_person() -> None:
    first = reg(sign_up(channel=SignUpChannel.PHONE, email=None, phone="601234567")).volunteer
    result = reg(
        sign_up(channel=SignUpChannel.PAPER, email=None, phone="+48 601 234 567"), [first], n=2
    )
    assert not result.created and result.volunteer.id == first.id


def test_email_and_phone_of_two_people_conflict() -> None:
    a = reg(sign_up(channel=SignUpChannel.PHONE, email="a@example.com"), n=1).volunteer
    b = reg(sign_up(channel=SignUpChannel.PHONE, email=None, phone="601234567"), [a], n=2).volunteer
    with pytest.raises(IdentityConflict) as error:
        reg(sign_up(channel=SignUpChannel.PHONE, email="a@example.com", phone="601234567"), [a, b])
    assert error.value.field == "phone"


def test_withdrawn_volunteer_signing_up_again_counts_from_now() -> None:
    first = reg(sign_up(channel=SignUpChannel.PHONE)).volunteer
    gone, _ = withdraw(first)
    later = T0 + timedelta(days=5)
    back = reg(sign_up(channel=SignUpChannel.PAPER), [gone], at=later).volunteer
    assert back.id == first.id and back.status is VolunteerStatus.CONFIRMED
    assert back.confirmed_at == later  # the back of the queue
    again_web = reg(sign_up(), [gone], at=later).volunteer
    assert again_web.status is VolunteerStatus.AWAITING_CONFIRMATION


# --- life cycle ---------------------------------------------------------------------------------


def test_placement_decisions_apply_only_to_counting_volunteers() -> None:
    waiting = reg(sign_up()).volunteer
    with pytest.raises(InvalidTransition):
        mark_placed(waiting, uuid.UUID(int=5))
    confirmed = confirm_email(waiting, T0)
    listed = mark_waitlisted(confirmed)
    assert listed.status is VolunteerStatus.WAITLISTED
    placed = mark_placed(listed, uuid.UUID(int=5))
    assert placed.group_id == uuid.UUID(int=5)


def test_withdrawal_frees_the_place_and_is_final() -> None:
    placed = mark_placed(reg(sign_up(channel=SignUpChannel.PHONE)).volunteer, uuid.UUID(int=5))
    gone, freed = withdraw(placed)
    assert freed == uuid.UUID(int=5)
    assert gone.status is VolunteerStatus.WITHDRAWN and gone.group_id is None
    with pytest.raises(InvalidTransition):
        withdraw(gone)
    with pytest.raises(InvalidTransition):
        confirm_email(gone, T0)


def test_queue_key_needs_confirmation() -> None:
    with pytest.raises(InvalidTransition):
        reg(sign_up()).volunteer.queue_key()


def test_phone_only_members_are_on_the_leads_call_list() -> None:
    def member(n: int, name: str, email: str | None, phone: str | None) -> Volunteer:
        v = reg(
            sign_up(name=name, email=email, phone=phone, channel=SignUpChannel.PHONE), n=n
        ).volunteer
        return mark_placed(v, uuid.UUID(int=5))

    members = [
        member(1, "Zofia", None, "601234567"),
        member(2, "Adam", "adam@example.com", "601234568"),
        member(3, "Barbara", None, "22 484 23 90"),
    ]
    not_placed = reg(sign_up(email=None, phone="601234569", channel=SignUpChannel.PHONE), n=4)
    entries = call_list([*members, not_placed.volunteer])
    assert [(e.name, e.phone) for e in entries] == [
        ("Barbara", "+48224842390"),
        ("Zofia", "+48601234567"),
    ]
    assert members[0].must_be_called and not members[1].must_be_called
    assert replace(members[0], email="z@example.com").must_be_called is False
