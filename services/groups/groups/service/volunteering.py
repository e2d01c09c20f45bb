"""Volunteer use cases: sign-up, confirmation, withdrawal, placement, leads, member access.

Each takes an open unit of work and commits it once: the state change, its events and the
outbox rows of the emails notifications will send, together or not at all. Everything
that changes who sits where takes the consultation's lock first, so concurrent sign-ups,
confirmations and withdrawals of one consultation run the placement rule one after the
other, each on the state the previous one committed.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from groups.domain.actor import Actor
from groups.domain.consultation import Consultation
from groups.domain.errors import InvalidInput, InvalidTransition, Unknown
from groups.domain.formation import GroupPolicy, candidates_from, place
from groups.domain.group import Group, appoint_lead, remove_member
from groups.domain.routing import Assignment, reassign_open_assignments
from groups.domain.volunteers import (
    CallEntry,
    SignUp,
    Volunteer,
    VolunteerStatus,
    call_list,
    confirm_email,
    mark_placed,
    mark_waitlisted,
    merge,
    normalise_email,
    normalise_phone,
    register,
    withdraw,
)
from groups.service.ports import GroupsUnitOfWork
from groups.service.routing import member_loads, route_waiting_submissions, top_up_group
from shared.clock import Clock, utc_now
from shared.contracts.groups import (
    GroupFormed,
    LeadAppointed,
    MemberSignInLinkRequestedV2,
    VolunteerAssigned,
    VolunteerAssignmentNoticeV2,
    VolunteerConfirmationRequestedV2,
    VolunteerConfirmed,
    VolunteerLeft,
    VolunteerMessageV2,
    VolunteerSignedUp,
    VolunteerWaitlisted,
    VolunteerWaitlistNoticeV2,
    volunteer_message_associated_data,
)
from shared.contracts.groups import SignUpChannel as ContractChannel
from shared.contracts.intake import Language
from shared.contracts.sealed import SealedValue
from shared.platform.one_time_tokens import TOKEN_BYTES, TokenRejected, token_hash

CONFIRM = "volunteer-confirm"
WITHDRAW = "volunteer-withdraw"
SIGN_IN = "member-sign-in"


@dataclass(frozen=True, slots=True)
class Lifetimes:
    confirmation: timedelta = timedelta(hours=48)
    withdrawal: timedelta = timedelta(hours=48)
    sign_in: timedelta = timedelta(hours=24)
    session: timedelta = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class SignUpOutcome:
    """What a sign-up did. A web sign-up reveals nothing about earlier sign-ups: its answer
    is "check your inbox" whether the address was new or known."""

    volunteer: Volunteer
    awaiting_confirmation: bool
    group: Group | None


@dataclass(frozen=True, slots=True)
class VolunteerState:
    volunteer: Volunteer
    group: Group | None


@dataclass(frozen=True, slots=True)
class MemberEntry:
    volunteer: Volunteer
    is_lead: bool


@dataclass(frozen=True, slots=True)
class Members:
    group: Group
    members: tuple[MemberEntry, ...]
    to_call: tuple[CallEntry, ...]


@dataclass(frozen=True, slots=True)
class MemberSession:
    token: str
    expires_at: datetime
    volunteer: Volunteer
    group: Group


class Volunteering:
    def __init__(
        self,
        *,
        policy: GroupPolicy,
        lifetimes: Lifetimes = Lifetimes(),
        phone_region: str = "PL",
        clock: Clock = utc_now,
        new_id: Callable[[], uuid.UUID] = uuid.uuid4,
    ) -> None:
        self._policy = policy
        self._lifetimes = lifetimes
        self._region = phone_region
        self._clock = clock
        self._new_id = new_id

    def now(self) -> datetime:
        return self._clock()

    # --- sign-up and confirmation --------------------------------------------------

    async def sign_up(
        self, uow: GroupsUnitOfWork, consultation_id: uuid.UUID, sign_up: SignUp
    ) -> SignUpOutcome:
        now = self.now()
        consultation = await consultation_of(uow, consultation_id)
        consultation.check_accepts_volunteers(now)
        await uow.consultations.lock(consultation.id)
        probe = _identity(sign_up, self._region)
        existing = await uow.volunteers.same_person(consultation.id, *probe)
        registration = register(
            sign_up,
            existing,
            consultation_themes=consultation.themes,
            new_id=self._new_id(),
            now=now,
            region=self._region,
            consultation_id=consultation.id,
        )
        volunteer = registration.volunteer
        if registration.needs_email_confirmation:
            if registration.created:
                await uow.volunteers.save(volunteer)
                self._signed_up(uow, volunteer, consultation)
            else:
                # The known person's row stays as it is until the link is confirmed.
                volunteer = next(v for v in existing if v.id == volunteer.id)
                await uow.volunteers.set_pending_update(
                    volunteer.id, _normalised(sign_up, self._region)
                )
            await self._request_confirmation(uow, volunteer, sign_up, consultation, now)
            await uow.commit()
            return SignUpOutcome(volunteer, awaiting_confirmation=True, group=None)
        await uow.volunteers.save(volunteer)
        if registration.created:
            self._signed_up(uow, volunteer, consultation)
        await self._place_everyone(uow, consultation, now)
        outcome = await self._state_after(uow, volunteer.id)
        await uow.commit()
        return outcome

    def _signed_up(self, uow: GroupsUnitOfWork, volunteer: Volunteer, c: Consultation) -> None:
        uow.stage_event(
            VolunteerSignedUp(
                volunteer_id=volunteer.id,
                consultation_id=c.id,
                channel=ContractChannel(volunteer.channel.value),
                themes=volunteer.themes,
                counts=volunteer.counts,
            ),
            key=volunteer.id,
        )

    async def _request_confirmation(
        self,
        uow: GroupsUnitOfWork,
        volunteer: Volunteer,
        sign_up: SignUp,
        consultation: Consultation,
        now: datetime,
    ) -> None:
        email = normalise_email(sign_up.email or "")
        confirm = await uow.tokens.issue(
            purpose=CONFIRM, subject=str(volunteer.id), ttl=self._lifetimes.confirmation, now=now
        )
        withdraw_link = await self._withdraw_token(uow, volunteer, now)
        # The address just typed: the link goes where the sign-up says, and only that
        # mailbox can confirm it. Its key is found by that address and the phone typed
        # with it, so an erasure by either reaches it.
        recipient = Recipient(
            volunteer.id, email, _normalised(sign_up, self._region).phone, sign_up.name.strip()
        )
        uow.stage_event(
            VolunteerConfirmationRequestedV2(
                **await _message_fields(
                    uow,
                    VolunteerConfirmationRequestedV2,
                    recipient,
                    consultation,
                    sign_up.locale,
                    withdraw_link,
                ),
                themes=sign_up.themes,
                confirm_token=confirm.token,
                confirm_expires_at=confirm.expires_at,
            ),
            key=volunteer.id,
        )

    async def _withdraw_token(
        self, uow: GroupsUnitOfWork, volunteer: Volunteer, now: datetime
    ) -> tuple[str, datetime]:
        issued = await uow.tokens.issue(
            purpose=WITHDRAW, subject=str(volunteer.id), ttl=self._lifetimes.withdrawal, now=now
        )
        return issued.token, issued.expires_at

    async def confirm(self, uow: GroupsUnitOfWork, token: str) -> VolunteerState:
        """The person opened the emailed link and its page POSTed the token."""
        now = self.now()
        volunteer_id = uuid.UUID(await uow.tokens.spend(token, purpose=CONFIRM, now=now))
        volunteer = await volunteer_of(uow, volunteer_id)
        consultation = await consultation_of(uow, consultation_id_of(volunteer))
        await uow.consultations.lock(consultation.id)
        volunteer = await volunteer_of(uow, volunteer_id)  # as of the lock
        pending = await uow.volunteers.pending_update(volunteer.id)
        if volunteer.status is VolunteerStatus.WITHDRAWN and pending is None:
            raise TokenRejected()  # withdrew after the link was sent
        if pending is not None:
            volunteer = merge(volunteer, pending, now)
            await uow.volunteers.set_pending_update(volunteer.id, None)
        confirmed = confirm_email(volunteer, now)
        await uow.volunteers.save(confirmed)
        if confirmed.status is not volunteer.status or pending is not None:
            uow.stage_event(
                VolunteerConfirmed(volunteer_id=confirmed.id, consultation_id=consultation.id),
                key=confirmed.id,
            )
        await self._place_everyone(uow, consultation, now)
        outcome = await self._state_after(uow, confirmed.id)
        await uow.commit()
        return VolunteerState(outcome.volunteer, outcome.group)

    async def _state_after(self, uow: GroupsUnitOfWork, volunteer_id: uuid.UUID) -> SignUpOutcome:
        """The volunteer and their group as this unit of work leaves them."""
        volunteer = await volunteer_of(uow, volunteer_id)
        group = None if volunteer.group_id is None else await uow.groups.get(volunteer.group_id)
        return SignUpOutcome(volunteer, awaiting_confirmation=False, group=group)

    # --- withdrawal ----------------------------------------------------------------

    async def withdraw_by_token(self, uow: GroupsUnitOfWork, token: str) -> Volunteer:
        volunteer_id = uuid.UUID(await uow.tokens.spend(token, purpose=WITHDRAW, now=self.now()))
        return await self._withdraw(uow, volunteer_id)

    async def withdraw_by_clerk(
        self, uow: GroupsUnitOfWork, actor: Actor, volunteer_id: uuid.UUID
    ) -> Volunteer:
        actor.require_clerk()
        return await self._withdraw(uow, volunteer_id)

    async def _withdraw(self, uow: GroupsUnitOfWork, volunteer_id: uuid.UUID) -> Volunteer:
        left = await self.leave(uow, volunteer_id)
        await uow.commit()
        return left

    async def leave(self, uow: GroupsUnitOfWork, volunteer_id: uuid.UUID) -> Volunteer:
        """The volunteer leaves (withdrawal, or erasure of their data): their place and
        lead seat are freed, their open assessments go to the others, a waiting volunteer
        may take the place. The caller commits."""
        now = self.now()
        volunteer = await volunteer_of(uow, volunteer_id)
        await uow.consultations.lock(consultation_id_of(volunteer))
        volunteer = await volunteer_of(uow, volunteer_id)
        left, freed = withdraw(volunteer)
        await uow.volunteers.set_pending_update(left.id, None)
        await uow.volunteers.save(left)
        await uow.sessions.end_all(left.id)
        for purpose in (CONFIRM, SIGN_IN, WITHDRAW):
            await uow.tokens.revoke(purpose=purpose, subject=str(left.id))
        consultation_id = consultation_id_of(volunteer)
        if freed is not None:
            group = await group_of(uow, freed)
            if group.lead_id == left.id:
                await uow.groups.set_lead(group.id, None)
            # Their open assessments go to the others, least loaded first.
            open_work = await uow.assignments.open_of_group(group.id)
            remaining = remove_member(group, left.id) if left.id in group.member_ids else group
            loads = await member_loads(uow, remaining)
            for handover in reassign_open_assignments(left.id, open_work, loads):
                await uow.assignments.remove(handover.submission_id, left.id)
                if handover.to_member is not None:
                    await uow.assignments.add(
                        [Assignment(handover.submission_id, handover.to_member)]
                    )
        uow.stage_event(
            VolunteerLeft(volunteer_id=left.id, consultation_id=consultation_id, group_id=freed),
            key=left.id,
        )
        consultation = await consultation_of(uow, consultation_id)
        await self._place_everyone(uow, consultation, now, shrunk=freed)
        return left

    # --- placement -----------------------------------------------------------------

    async def _place_everyone(
        self,
        uow: GroupsUnitOfWork,
        consultation: Consultation,
        now: datetime,
        *,
        shrunk: uuid.UUID | None = None,
    ) -> None:
        """Run the placement rule over everyone waiting; apply and announce its decisions.

        The caller holds the consultation's lock. `shrunk` is a group someone just left:
        its open submissions get their assessors back to two along with the groups that
        gained members."""
        groups = await uow.groups.of_consultation(consultation.id)
        volunteers = {v.id: v for v in await uow.volunteers.of_consultation(consultation.id)}
        plan = place(
            groups,
            candidates_from(volunteers.values()),
            themes=_themes_with_groups(consultation, groups),
            new_group_id=self._new_id,
            policy=self._policy,
        )
        for group in plan.formed:
            await uow.groups.add(replace(group, member_ids=(), consultation_id=consultation.id))
            uow.stage_event(
                GroupFormed(
                    group_id=group.id,
                    consultation_id=consultation.id,
                    theme=group.theme,
                    ordinal=group.ordinal,
                    name_pl=group.name_pl,
                    name_en=group.name_en,
                ),
                key=group.id,
            )
        after = {g.id: g for g in plan.groups}
        for seat in plan.seats:
            placed = mark_placed(volunteers[seat.volunteer_id], seat.group_id)
            await uow.volunteers.save(placed)
            group = after[seat.group_id]
            uow.stage_event(
                VolunteerAssigned(
                    volunteer_id=placed.id,
                    consultation_id=consultation.id,
                    group_id=group.id,
                    theme=group.theme,
                ),
                key=placed.id,
            )
            if placed.email is not None:
                lead = volunteers.get(group.lead_id) if group.lead_id else None
                withdraw_link = await self._withdraw_token(uow, placed, now)
                fields = await _volunteer_message_fields(
                    uow, VolunteerAssignmentNoticeV2, placed, consultation, withdraw_link
                )
                uow.stage_event(
                    VolunteerAssignmentNoticeV2(
                        **fields,
                        group_id=group.id,
                        group_name_pl=group.name_pl,
                        group_name_en=group.name_en,
                        theme=group.theme,
                        lead_name_sealed=await _sealed_lead_name(
                            uow, lead, placed.id, withdraw_link[0]
                        ),
                    ),
                    key=placed.id,
                )
        for volunteer_id in plan.waitlisted:
            volunteer = volunteers[volunteer_id]
            if volunteer.status is VolunteerStatus.WAITLISTED:
                continue  # already told; they wait on
            waiting = mark_waitlisted(volunteer)
            await uow.volunteers.save(waiting)
            uow.stage_event(
                VolunteerWaitlisted(
                    volunteer_id=waiting.id,
                    consultation_id=consultation.id,
                    themes=waiting.themes,
                ),
                key=waiting.id,
            )
            if waiting.email is not None:
                withdraw_link = await self._withdraw_token(uow, waiting, now)
                fields = await _volunteer_message_fields(
                    uow, VolunteerWaitlistNoticeV2, waiting, consultation, withdraw_link
                )
                uow.stage_event(
                    VolunteerWaitlistNoticeV2(**fields, themes=waiting.themes), key=waiting.id
                )
        if plan.formed:
            await route_waiting_submissions(uow, consultation.id, plan.groups, now)
        changed = {seat.group_id for seat in plan.seats} | ({shrunk} if shrunk else set())
        for group in plan.groups:
            if group.id in changed:
                await top_up_group(uow, group)

    # --- groups, members, leads -----------------------------------------------------

    async def groups(self, uow: GroupsUnitOfWork, consultation_id: uuid.UUID) -> list[Group]:
        await consultation_of(uow, consultation_id)
        return await uow.groups.of_consultation(consultation_id)

    async def members(self, uow: GroupsUnitOfWork, actor: Actor, group_id: uuid.UUID) -> Members:
        group = await group_of(uow, group_id)
        actor.require_lead_of(group)
        volunteers = [await volunteer_of(uow, member) for member in group.member_ids]
        return Members(
            group=group,
            members=tuple(MemberEntry(v, v.id == group.lead_id) for v in volunteers),
            to_call=call_list(volunteers),
        )

    async def appoint_lead(
        self, uow: GroupsUnitOfWork, actor: Actor, group_id: uuid.UUID, volunteer_id: uuid.UUID
    ) -> Group:
        group = await group_of(uow, group_id)
        appointed = appoint_lead(group, volunteer_id, actor=actor.role_in(group))
        await uow.groups.set_lead(group.id, volunteer_id)
        consultation_id = consultation_id_of(group)
        uow.stage_event(
            LeadAppointed(
                group_id=group.id,
                consultation_id=consultation_id,
                lead_volunteer_id=volunteer_id,
            ),
            key=group.id,
        )
        await uow.commit()
        return appointed

    # --- member access -------------------------------------------------------------

    async def request_access_link(self, uow: GroupsUnitOfWork, email: str) -> int:
        """Email a sign-in link to every group seat of this address; the caller answers
        the same whatever this finds. Returns how many links were sent (for logs only)."""
        now = self.now()
        address = normalise_email(email)
        found = await uow.volunteers.placed_with_email(address)
        for volunteer in found:
            assert volunteer.group_id is not None
            group = await group_of(uow, volunteer.group_id)
            consultation = await consultation_of(uow, consultation_id_of(volunteer))
            link = await uow.tokens.issue(
                purpose=SIGN_IN, subject=str(volunteer.id), ttl=self._lifetimes.sign_in, now=now
            )
            withdraw_link = await self._withdraw_token(uow, volunteer, now)
            fields = await _volunteer_message_fields(
                uow, MemberSignInLinkRequestedV2, volunteer, consultation, withdraw_link
            )
            uow.stage_event(
                MemberSignInLinkRequestedV2(
                    **fields,
                    sign_in_token=link.token,
                    sign_in_expires_at=link.expires_at,
                    group_name_pl=group.name_pl,
                    group_name_en=group.name_en,
                ),
                key=volunteer.id,
            )
        await uow.commit()
        return len(found)

    async def open_session(self, uow: GroupsUnitOfWork, token: str) -> MemberSession:
        now = self.now()
        volunteer_id = uuid.UUID(await uow.tokens.spend(token, purpose=SIGN_IN, now=now))
        volunteer = await volunteer_of(uow, volunteer_id)
        if volunteer.status is not VolunteerStatus.PLACED or volunteer.group_id is None:
            raise TokenRejected()
        group = await group_of(uow, volunteer.group_id)
        session = secrets.token_urlsafe(TOKEN_BYTES)
        expires_at = now + self._lifetimes.session
        await uow.sessions.add(token_hash(session), volunteer.id, expires_at)
        await uow.commit()
        return MemberSession(session, expires_at, volunteer, group)

    async def member_of_session(self, uow: GroupsUnitOfWork, token: str) -> uuid.UUID | None:
        return await uow.sessions.volunteer_of(token_hash(token), self.now())

    async def forget_expired(self, uow: GroupsUnitOfWork) -> int:
        """Drop sessions and link tokens expired over a day ago (a day of grace keeps an
        "expired" answer meaningful to whoever just tried one)."""
        forgotten = await uow.housekeeping.forget_expired(self.now() - timedelta(days=1))
        await uow.commit()
        return forgotten


# --- helpers shared by the use cases -------------------------------------------------------


def consultation_id_of(item: Volunteer | Group) -> uuid.UUID:
    if item.consultation_id is None:
        raise RuntimeError(f"{item.id} was not read from storage: no consultation id")
    return item.consultation_id


async def consultation_of(uow: GroupsUnitOfWork, consultation_id: uuid.UUID) -> Consultation:
    found = await uow.consultations.get(consultation_id)
    if found is None:
        raise Unknown("consultation_id", f"no consultation {consultation_id} is known to groups")
    return found


async def volunteer_of(uow: GroupsUnitOfWork, volunteer_id: uuid.UUID) -> Volunteer:
    found = await uow.volunteers.get(volunteer_id)
    if found is None:
        raise Unknown("volunteer_id", f"no volunteer {volunteer_id}")
    return found


async def group_of(uow: GroupsUnitOfWork, group_id: uuid.UUID) -> Group:
    found = await uow.groups.get(group_id)
    if found is None:
        raise Unknown("group_id", f"no group {group_id}")
    return found


def _themes_with_groups(consultation: Consultation, groups: list[Group]) -> tuple[str, ...]:
    """The consultation's themes, plus any theme a group still has (themes never shrink in
    practice, but a group must never make the placement rule fail)."""
    extra = tuple(dict.fromkeys(g.theme for g in groups if g.theme not in consultation.themes))
    return (*consultation.themes, *extra)


def _identity(sign_up: SignUp, region: str) -> tuple[str | None, str | None]:
    """The normalised email and phone to look the person up by (validation comes later,
    in `register`, which reports every problem at once)."""
    normalised = _normalised(sign_up, region, strict=False)
    return normalised.email, normalised.phone


def _normalised(sign_up: SignUp, region: str, *, strict: bool = True) -> SignUp:
    email, phone = sign_up.email, sign_up.phone
    try:
        email = normalise_email(email) if email and email.strip() else None
    except InvalidInput:
        if strict:
            raise
        email = None
    try:
        phone = normalise_phone(phone, region) if phone and phone.strip() else None
    except InvalidInput:
        if strict:
            raise
        phone = None
    return replace(sign_up, email=email, phone=phone, name=sign_up.name.strip())


@dataclass(frozen=True, slots=True)
class Recipient:
    """Whom a volunteer message goes to, and what finds their key (email, else phone)."""

    volunteer_id: uuid.UUID
    email: str
    phone: str | None
    name: str


async def _message_fields(
    uow: GroupsUnitOfWork,
    model: type[VolunteerMessageV2],
    recipient: Recipient,
    consultation: Consultation,
    locale: Language,
    withdraw_link: tuple[str, datetime],
) -> dict[str, object]:
    """The fields every volunteer message has, the address and name sealed under the
    recipient's key and bound to this message (its fresh withdrawal token)."""
    withdraw_token, withdraw_expires_at = withdraw_link

    async def sealed(field: str, plaintext: str) -> SealedValue:
        return await uow.person_keys.seal(
            email=recipient.email,
            phone=recipient.phone,
            plaintext=plaintext,
            associated_data=volunteer_message_associated_data(
                model, field, recipient.volunteer_id, withdraw_token
            ),
        )

    return {
        "volunteer_id": recipient.volunteer_id,
        "consultation_id": consultation.id,
        "consultation_title": consultation.title,
        "email_sealed": await sealed("email", recipient.email),
        "name_sealed": await sealed("name", recipient.name),
        "locale": locale,
        "withdraw_token": withdraw_token,
        "withdraw_expires_at": withdraw_expires_at,
    }


async def _volunteer_message_fields(
    uow: GroupsUnitOfWork,
    model: type[VolunteerMessageV2],
    volunteer: Volunteer,
    consultation: Consultation,
    withdraw_link: tuple[str, datetime],
) -> dict[str, object]:
    if volunteer.email is None:
        raise InvalidTransition("email", "this volunteer has no email address")
    recipient = Recipient(volunteer.id, volunteer.email, volunteer.phone, volunteer.name)
    locale = Language(volunteer.locale)
    return await _message_fields(uow, model, recipient, consultation, locale, withdraw_link)


async def _sealed_lead_name(
    uow: GroupsUnitOfWork, lead: Volunteer | None, volunteer_id: uuid.UUID, withdraw_token: str
) -> SealedValue | None:
    """The lead's name, sealed under the lead's own key: it is the lead's personal data,
    shredded when the lead is erased. None without a lead (or one without any contact)."""
    if lead is None or (lead.email is None and lead.phone is None):
        return None
    return await uow.person_keys.seal(
        email=lead.email,
        phone=lead.phone,
        plaintext=lead.name,
        associated_data=volunteer_message_associated_data(
            VolunteerAssignmentNoticeV2, "lead_name", volunteer_id, withdraw_token
        ),
    )
