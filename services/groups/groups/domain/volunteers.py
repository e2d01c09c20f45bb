"""Volunteers who sign up for the thematic working groups.

Life cycle::

    awaiting_confirmation ──confirm_email──▶ confirmed ──placement──▶ placed | waitlisted
             (web only)                    (clerk channels start here)   waitlisted ─▶ placed
    any state except withdrawn ──withdraw──▶ withdrawn ──signs up again──▶ awaiting / confirmed

- A web sign-up counts only once its email address is confirmed (anyone can type an address);
  a sign-up a clerk enters (phone, paper, email) counts at once: the clerk spoke to the person.
- The same person is the same normalised email or the same E.164 phone. Signing up again
  updates the first sign-up (see `merge`) and keeps its place in the queue, its group and id.
- The queue (who is placed first) is ordered by the moment a volunteer started to count
  (`confirmed_at`), then by id, so it never depends on the order rows come back from storage.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from groups.domain.errors import (
    FieldProblem,
    IdentityConflict,
    InvalidInput,
    InvalidTransition,
)
from shared.contracts.intake import Language

DEFAULT_REGION = "PL"
NAME_MAX = 200
LOCALITY_MAX = 120
EXPERTISE_MAX = 2_000


class SignUpChannel(StrEnum):
    WEB = "web"
    PHONE = "phone"
    PAPER = "paper"
    EMAIL = "email"


CLERK_CHANNELS = frozenset({SignUpChannel.PHONE, SignUpChannel.PAPER, SignUpChannel.EMAIL})


class VolunteerStatus(StrEnum):
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    CONFIRMED = "confirmed"  # counts, not yet seen by the placement rule
    PLACED = "placed"
    WAITLISTED = "waitlisted"
    WITHDRAWN = "withdrawn"


COUNTING = frozenset(
    {VolunteerStatus.CONFIRMED, VolunteerStatus.PLACED, VolunteerStatus.WAITLISTED}
)


@dataclass(frozen=True, slots=True)
class SignUp:
    """A sign-up as received: `themes` are ranked, most wanted first."""

    name: str
    themes: tuple[str, ...]
    consent_processing: bool
    channel: SignUpChannel
    email: str | None = None
    phone: str | None = None
    locality: str | None = None
    expertise: str | None = None
    locale: Language = Language.PL


@dataclass(frozen=True, slots=True)
class Volunteer:
    id: uuid.UUID
    name: str
    email: str | None  # normalised (lower case)
    phone: str | None  # E.164
    locality: str | None
    themes: tuple[str, ...]
    expertise: str | None
    locale: Language
    channel: SignUpChannel  # of the first sign-up
    status: VolunteerStatus
    signed_up_at: datetime
    confirmed_at: datetime | None = None
    group_id: uuid.UUID | None = None
    consultation_id: uuid.UUID | None = None  # known once stored

    @property
    def counts(self) -> bool:
        """Confirmed (or placed, or waiting for a place): counts towards forming groups."""
        return self.status in COUNTING

    @property
    def must_be_called(self) -> bool:
        """Phone-only: nobody can email them, so the group's lead calls them."""
        return self.phone is not None and self.email is None

    def queue_key(self) -> tuple[datetime, uuid.UUID]:
        """Position in the placement queue; only meaningful once the volunteer counts."""
        if self.confirmed_at is None:
            raise InvalidTransition("status", f"volunteer {self.id} is not confirmed yet")
        return (self.confirmed_at, self.id)


@dataclass(frozen=True, slots=True)
class Registration:
    """What a sign-up did: the volunteer to store, whether new, whether to send a link."""

    volunteer: Volunteer
    created: bool
    needs_email_confirmation: bool


@dataclass(frozen=True, slots=True)
class CallEntry:
    """One phone-only member the lead should call (shown only to the lead and coordinators)."""

    volunteer_id: uuid.UUID
    name: str
    phone: str


def normalise_email(raw: str) -> str:
    """The identity form of an address: trimmed, checked for shape (no DNS), lower case.

    The whole address is lower-cased, local part included: in practice mailboxes ignore case,
    and two sign-ups with "Jan@X.pl" and "jan@x.pl" are one person.
    """
    try:
        checked = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidInput("email", f"not a valid email address: {error}") from None
    return checked.normalized.lower()


def normalise_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """E.164 ("+48224842390") from what a person or clerk typed; national numbers use `region`."""
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException as error:
        raise InvalidInput("phone", f"not a phone number: {error}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput("phone", f"not a valid phone number (default region {region})")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _optional_text(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    return stripped or None


def check_sign_up(
    sign_up: SignUp, consultation_themes: Sequence[str], region: str = DEFAULT_REGION
) -> SignUp:
    """Validate a sign-up and return it normalised; every problem is reported at once."""
    problems: list[FieldProblem] = []
    name = sign_up.name.strip()
    if not name:
        problems.append(FieldProblem("name", "must not be empty"))
    elif len(name) > NAME_MAX:
        problems.append(FieldProblem("name", f"at most {NAME_MAX} characters"))
    if sign_up.consent_processing is not True:
        problems.append(FieldProblem("consent.processing", "consent to processing is required"))
    email = _optional_text(sign_up.email)
    phone = _optional_text(sign_up.phone)
    if email is None and phone is None:
        problems.append(FieldProblem("email", "give an email address or a phone number"))
    if sign_up.channel is SignUpChannel.WEB and email is None:
        problems.append(FieldProblem("email", "a web sign-up needs an email address to confirm it"))
    if email is not None:
        try:
            email = normalise_email(email)
        except InvalidInput as error:
            problems.extend(error.problems)
    if phone is not None:
        try:
            phone = normalise_phone(phone, region)
        except InvalidInput as error:
            problems.extend(error.problems)
    problems.extend(_theme_problems(sign_up.themes, consultation_themes))
    locality = _optional_text(sign_up.locality)
    if locality is not None and len(locality) > LOCALITY_MAX:
        problems.append(FieldProblem("locality", f"at most {LOCALITY_MAX} characters"))
    expertise = _optional_text(sign_up.expertise)
    if expertise is not None and len(expertise) > EXPERTISE_MAX:
        problems.append(FieldProblem("expertise", f"at most {EXPERTISE_MAX} characters"))
    if problems:
        raise InvalidInput.of(problems)
    return replace(
        sign_up, name=name, email=email, phone=phone, locality=locality, expertise=expertise
    )


def _theme_problems(themes: tuple[str, ...], allowed: Sequence[str]) -> list[FieldProblem]:
    if not themes:
        return [FieldProblem("themes", "choose at least one theme")]
    if len(set(themes)) != len(themes):
        return [FieldProblem("themes", "each theme may appear once in the ranking")]
    unknown = [theme for theme in themes if theme not in allowed]
    if unknown:
        return [
            FieldProblem(
                "themes",
                f"unknown theme(s) {', '.join(unknown)}; the consultation's themes are "
                f"{', '.join(allowed)}",
            )
        ]
    return []


def find_same_person(
    volunteers: Iterable[Volunteer], email: str | None, phone: str | None
) -> Volunteer | None:
    """The earlier sign-up with the same email or phone (both already normalised).

    When the email points at one volunteer and the phone at another, nothing is merged: that
    would hand one person's sign-up to another, so a coordinator has to sort it out.
    """
    matches = {
        volunteer.id: volunteer
        for volunteer in volunteers
        if (email is not None and volunteer.email == email)
        or (phone is not None and volunteer.phone == phone)
    }
    if len(matches) > 1:
        raise IdentityConflict(
            "phone", "the email address and the phone number belong to two different sign-ups"
        )
    return next(iter(matches.values()), None)


def register(
    sign_up: SignUp,
    existing: Iterable[Volunteer],
    *,
    consultation_themes: Sequence[str],
    new_id: uuid.UUID,
    now: datetime,
    region: str = DEFAULT_REGION,
    consultation_id: uuid.UUID | None = None,
) -> Registration:
    """Validate a sign-up and either create a volunteer or update the same person's one.

    A web sign-up (new or an update) answers `needs_email_confirmation=True`: the caller keeps
    the returned volunteer pending and stores it only after `confirm_email`, so typing someone
    else's address never rewrites their sign-up.
    """
    checked = check_sign_up(sign_up, consultation_themes, region)
    same = find_same_person(existing, checked.email, checked.phone)
    web = checked.channel is SignUpChannel.WEB
    if same is None:
        volunteer = Volunteer(
            id=new_id,
            name=checked.name,
            email=checked.email,
            phone=checked.phone,
            locality=checked.locality,
            themes=checked.themes,
            expertise=checked.expertise,
            locale=checked.locale,
            channel=checked.channel,
            status=VolunteerStatus.AWAITING_CONFIRMATION if web else VolunteerStatus.CONFIRMED,
            signed_up_at=now,
            confirmed_at=None if web else now,
            consultation_id=consultation_id,
        )
        return Registration(volunteer, created=True, needs_email_confirmation=web)
    return Registration(merge(same, checked, now), created=False, needs_email_confirmation=web)


def merge(first: Volunteer, update: SignUp, now: datetime) -> Volunteer:
    """The first sign-up updated by a later one of the same person.

    Name, ranked themes and locale are replaced; email, phone, locality and expertise are
    replaced when the update gives them and kept otherwise. Id, first channel, sign-up time,
    queue position and group are kept: a placed member is never moved, even when their new
    ranking would prefer another theme. A withdrawn or unconfirmed person who signs up again
    through a clerk counts from `now` (the back of the queue); through the web they await
    confirmation again.
    """
    merged = replace(
        first,
        name=update.name,
        themes=update.themes,
        locale=update.locale,
        email=update.email or first.email,
        phone=update.phone or first.phone,
        locality=update.locality or first.locality,
        expertise=update.expertise or first.expertise,
    )
    if first.status in (VolunteerStatus.AWAITING_CONFIRMATION, VolunteerStatus.WITHDRAWN):
        if update.channel is SignUpChannel.WEB:
            return replace(
                merged,
                status=VolunteerStatus.AWAITING_CONFIRMATION,
                confirmed_at=None,
                group_id=None,
            )
        return replace(merged, status=VolunteerStatus.CONFIRMED, confirmed_at=now, group_id=None)
    return merged


def confirm_email(volunteer: Volunteer, now: datetime) -> Volunteer:
    """The person clicked the link: a web volunteer starts to count (idempotent)."""
    if volunteer.status is VolunteerStatus.WITHDRAWN:
        raise InvalidTransition("status", "a withdrawn volunteer cannot be confirmed")
    if volunteer.status is VolunteerStatus.AWAITING_CONFIRMATION:
        return replace(volunteer, status=VolunteerStatus.CONFIRMED, confirmed_at=now)
    return volunteer


def mark_placed(volunteer: Volunteer, group_id: uuid.UUID) -> Volunteer:
    """Apply a placement decision (only to a confirmed or waitlisted volunteer)."""
    if volunteer.status not in (VolunteerStatus.CONFIRMED, VolunteerStatus.WAITLISTED):
        raise InvalidTransition(
            "status",
            f"only a confirmed or waitlisted volunteer can be placed, not {volunteer.status}",
        )
    return replace(volunteer, status=VolunteerStatus.PLACED, group_id=group_id)


def mark_waitlisted(volunteer: Volunteer) -> Volunteer:
    """Apply a waiting-list decision (only to a confirmed or waitlisted volunteer)."""
    if volunteer.status not in (VolunteerStatus.CONFIRMED, VolunteerStatus.WAITLISTED):
        raise InvalidTransition(
            "status",
            "only a confirmed or waitlisted volunteer can wait for a place, "
            f"not {volunteer.status}",
        )
    return replace(volunteer, status=VolunteerStatus.WAITLISTED)


def withdraw(volunteer: Volunteer) -> tuple[Volunteer, uuid.UUID | None]:
    """The volunteer leaves; returns them withdrawn and the group whose place they freed.

    The caller then reassigns their open assessments (`routing.reassign_open_assignments`) and
    runs the placement rule again so a waitlisted volunteer can take the place.
    """
    if volunteer.status is VolunteerStatus.WITHDRAWN:
        raise InvalidTransition("status", "the volunteer has already withdrawn")
    freed = volunteer.group_id
    return replace(volunteer, status=VolunteerStatus.WITHDRAWN, group_id=None), freed


def call_list(members: Iterable[Volunteer]) -> tuple[CallEntry, ...]:
    """Phone-only members to call, for the group's lead; by name, then id."""
    entries = [
        CallEntry(member.id, member.name, member.phone)
        for member in members
        if member.must_be_called
        and member.phone is not None
        and member.status is VolunteerStatus.PLACED
    ]
    return tuple(sorted(entries, key=lambda entry: (entry.name.casefold(), entry.volunteer_id)))
