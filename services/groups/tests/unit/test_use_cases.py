"""The groups use cases on the fake unit of work: every rule, in milliseconds.

Each test names the rule it guards; breaking the rule in the service makes it fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag

from groups.domain.actor import Actor
from groups.domain.assessment import CostBand, Horizon, QueueFilter, ReviewState
from groups.domain.consultation import Consultation
from groups.domain.errors import InvalidInput, InvalidTransition, NotPermitted, Unknown
from groups.domain.formation import GroupPolicy
from groups.domain.volunteers import SignUp, SignUpChannel, VolunteerStatus
from groups.service.outcomes import Outcomes, TrendStatus
from groups.service.review import AssessmentInput, SubmissionReview
from groups.service.volunteering import Volunteering
from shared.contracts.groups import (
    GroupFormed,
    SubmissionDecided,
    SubmissionRouted,
    ThemeSource,
    VolunteerAssigned,
    VolunteerAssignmentNoticeV2,
    VolunteerConfirmationRequestedV2,
    VolunteerLeft,
    VolunteerMessageV2,
    VolunteerWaitlisted,
    VolunteerWaitlistNoticeV2,
    volunteer_message_associated_data,
)
from shared.contracts.intake import Channel, Language, SubmissionReceived, SubmitterKind
from shared.contracts.sealed import SealedValue
from shared.platform.one_time_tokens import TokenRejected
from shared.platform.shredding import open_value

from .conftest import Clock, FakeStore

COORDINATOR = Actor(coordinator=True)
CLERK = Actor(clerk=True)
THEMES = ("social", "environmental", "economic", "spatial")


def stub_classifier(title: str, body: str, themes: Sequence[str]) -> tuple[str, float] | None:
    return ("environmental", 0.9) if "drzew" in body else None


class World:
    """The three use-case services over one fake store and one hand-moved clock."""

    def __init__(self, store: FakeStore, clock: Clock, policy: GroupPolicy) -> None:
        self.store = store
        self.clock = clock
        self.volunteering = Volunteering(policy=policy, clock=clock)
        self.review = SubmissionReview(classifier=stub_classifier, clock=clock)
        self.outcomes = Outcomes(clock=clock)
        self.consultation_id = uuid.uuid4()
        store.consultations[self.consultation_id] = Consultation(
            id=self.consultation_id,
            title="Strategia 2040+",
            kind="strategy",
            opens_at=clock.now - timedelta(days=1),
            closes_at=clock.now + timedelta(days=40),
            themes=THEMES,
        )

    async def sign_up(
        self, *themes: str, channel: SignUpChannel = SignUpChannel.PHONE, **changes: Any
    ) -> Any:
        n = uuid.uuid4().int % 10**9
        fields: dict[str, Any] = {
            "name": f"Osoba {n}",
            "themes": themes,
            "consent_processing": True,
            "channel": channel,
            "email": f"osoba{n}@example.org",
            **changes,
        }
        async with self.store.unit_of_work() as uow:
            return await self.volunteering.sign_up(uow, self.consultation_id, SignUp(**fields))

    async def receive(
        self, theme: str | None = "social", body: str = "Brakuje żłobka.", title: str = "Żłobek"
    ) -> uuid.UUID:
        submission_id = uuid.uuid4()
        event = SubmissionReceived(
            submission_id=submission_id,
            consultation_id=self.consultation_id,
            consultation_title="Strategia 2040+",
            theme=theme,
            submitter_kind=SubmitterKind.RESIDENT,
            locality="Gassy",
            title=title,
            body=body,
            channel=Channel.WEB,
            received_at=self.clock.now,
            receipt_number=f"K1-{len(self.store.submissions) + 1:05d}",
            digest="0" * 64,
            language=Language.PL,
        )
        self.clock.advance(seconds=1)
        async with self.store.unit_of_work() as uow:
            await self.review.receive(uow, event)
        return submission_id

    def group_ids(self) -> list[uuid.UUID]:
        return [g.id for g in self.store.groups.values()]

    def members(self, group_id: uuid.UUID) -> list[uuid.UUID]:
        return [v.id for v in self.store.volunteers.values() if v.group_id == group_id]


@pytest.fixture
def world(store: FakeStore, clock: Clock) -> World:
    return World(store, clock, GroupPolicy(min_size=3, max_size=3))


# --- sign-up, confirmation, merging ------------------------------------------------------


async def test_volunteer_messages_carry_the_address_and_names_only_sealed(world: World) -> None:
    await world.sign_up("social", channel=SignUpChannel.WEB, email="Jan@Example.org", name="Jan")
    (request,) = world.store.events(VolunteerConfirmationRequestedV2)
    assert "jan@example.org" not in request.model_dump_json().lower()
    key_id, key = world.store.person_keys.keys["jan@example.org"]
    assert request.email_sealed.key_id == key_id

    def opened(message: VolunteerMessageV2, field: str, sealed: SealedValue) -> str:
        bound = volunteer_message_associated_data(
            type(message), field, message.volunteer_id, message.withdraw_token
        )
        keys_by_id = dict(world.store.person_keys.keys.values())
        return open_value(keys_by_id[sealed.key_id], sealed, associated_data=bound)

    assert opened(request, "email", request.email_sealed) == "jan@example.org"
    assert opened(request, "name", request.name_sealed) == "Jan"
    # Bound to its message and field: the name's value does not open as the address.
    with pytest.raises(InvalidTag):
        open_value(
            key,
            request.name_sealed,
            associated_data=volunteer_message_associated_data(
                type(request), "email", request.volunteer_id, request.withdraw_token
            ),
        )
    # A lead is appointed, a member leaves, and the newcomer's notice names the lead.
    group_id = await formed_group(world)
    lead_id, leaving, _ = world.members(group_id)
    async with world.store.unit_of_work() as uow:
        await world.volunteering.appoint_lead(uow, COORDINATOR, group_id, lead_id)
    async with world.store.unit_of_work() as uow:
        await world.volunteering.withdraw_by_clerk(uow, CLERK, leaving)
    await world.sign_up("social")
    notices = world.store.events(VolunteerAssignmentNoticeV2)
    assert {n.group_id for n in notices} == {group_id} and len(notices) == 4
    emails = {v.id: v.email for v in world.store.volunteers.values()}
    [newcomer] = [n for n in notices if n.lead_name_sealed is not None]
    assert opened(newcomer, "email", newcomer.email_sealed) == emails[newcomer.volunteer_id]
    lead_name_sealed = newcomer.lead_name_sealed
    assert lead_name_sealed is not None
    lead = world.store.volunteers[lead_id]
    assert opened(newcomer, "lead_name", lead_name_sealed) == lead.name
    # The lead's name is sealed under the lead's key, not the recipient's.
    assert lead_name_sealed.key_id == world.store.person_keys.keys[lead.email or ""][0]
    assert newcomer.email_sealed.key_id != lead_name_sealed.key_id


async def test_web_sign_up_counts_only_after_its_link_is_confirmed(world: World) -> None:
    for _ in range(3):
        outcome = await world.sign_up("social", channel=SignUpChannel.WEB)
        assert outcome.awaiting_confirmation
    assert world.store.groups == {}
    requests = world.store.events(VolunteerConfirmationRequestedV2)
    assert len(requests) == 3
    for request in requests:
        async with world.store.unit_of_work() as uow:
            await world.volunteering.confirm(uow, request.confirm_token)
    assert len(world.store.events(GroupFormed)) == 1
    assert {v.status for v in world.store.volunteers.values()} == {VolunteerStatus.PLACED}


async def test_a_confirmation_link_works_once(world: World) -> None:
    await world.sign_up("social", channel=SignUpChannel.WEB)
    token = world.store.events(VolunteerConfirmationRequestedV2)[0].confirm_token
    async with world.store.unit_of_work() as uow:
        await world.volunteering.confirm(uow, token)
    with pytest.raises(TokenRejected):
        async with world.store.unit_of_work() as uow:
            await world.volunteering.confirm(uow, token)


async def test_a_confirmation_link_expires_after_48_hours(world: World) -> None:
    await world.sign_up("social", channel=SignUpChannel.WEB)
    token = world.store.events(VolunteerConfirmationRequestedV2)[0].confirm_token
    world.clock.advance(hours=48, seconds=1)
    with pytest.raises(TokenRejected):
        async with world.store.unit_of_work() as uow:
            await world.volunteering.confirm(uow, token)
    (volunteer,) = world.store.volunteers.values()
    assert volunteer.status is VolunteerStatus.AWAITING_CONFIRMATION


async def test_clerk_sign_ups_count_at_once_and_overflow_waits(world: World) -> None:
    outcomes = [await world.sign_up("social") for _ in range(4)]
    # The first two wait until the third makes the minimum; the fourth finds it full.
    assert [o.volunteer.status for o in outcomes] == [
        VolunteerStatus.WAITLISTED,
        VolunteerStatus.WAITLISTED,
        VolunteerStatus.PLACED,
        VolunteerStatus.WAITLISTED,
    ]
    assert len(world.store.events(VolunteerAssigned)) == 3
    assert [e.volunteer_id for e in world.store.events(VolunteerWaitlisted)] == [
        o.volunteer.id for o in (outcomes[0], outcomes[1], outcomes[3])
    ]
    assert len(world.store.events(VolunteerWaitlistNoticeV2)) == 3


async def test_phone_only_volunteers_get_no_email_event(world: World) -> None:
    for n in range(3):
        await world.sign_up("social", email=None, phone=f"+48 600 100 20{n}")
    assert len(world.store.events(VolunteerAssigned)) == 3
    assert world.store.events(VolunteerAssignmentNoticeV2) == []
    group_id = world.group_ids()[0]
    async with world.store.unit_of_work() as uow:
        members = await world.volunteering.members(uow, COORDINATOR, group_id)
    # Nobody can email them: the lead and coordinators see the numbers to call (E.164).
    assert {entry.phone for entry in members.to_call} == {f"+4860010020{n}" for n in range(3)}


async def test_the_same_person_signing_up_again_updates_the_first_sign_up(world: World) -> None:
    first = await world.sign_up("social", email="Jan@Example.org", name="Jan")
    again = await world.sign_up("economic", email="jan@example.org", name="Jan Kowalski")
    assert first.volunteer.id == again.volunteer.id
    (volunteer,) = world.store.volunteers.values()
    assert volunteer.name == "Jan Kowalski" and volunteer.themes == ("economic",)


async def test_a_web_sign_up_of_a_known_person_changes_nothing_until_confirmed(
    world: World,
) -> None:
    await world.sign_up("social", email="anna@example.org", name="Anna")
    await world.sign_up(
        "spatial", email="anna@example.org", name="Ktoś Inny", channel=SignUpChannel.WEB
    )
    (volunteer,) = world.store.volunteers.values()
    assert volunteer.name == "Anna"
    token = world.store.events(VolunteerConfirmationRequestedV2)[-1].confirm_token
    async with world.store.unit_of_work() as uow:
        await world.volunteering.confirm(uow, token)
    (volunteer,) = world.store.volunteers.values()
    assert volunteer.name == "Ktoś Inny"


async def test_a_rejected_sign_up_leaves_no_row_and_no_event(world: World) -> None:
    with pytest.raises(InvalidInput):
        await world.sign_up("culture")
    assert world.store.volunteers == {} and world.store.committed_events == []


async def test_a_closed_or_unknown_consultation_refuses_sign_ups(world: World) -> None:
    world.clock.advance(days=41)
    with pytest.raises(InvalidTransition):
        await world.sign_up("social")
    world.consultation_id = uuid.uuid4()
    with pytest.raises(Unknown):
        await world.sign_up("social")


# --- withdrawal ----------------------------------------------------------------------------


async def test_withdrawal_reassigns_open_work_and_seats_the_waiting(world: World) -> None:
    for _ in range(4):
        await world.sign_up("social")
    (group_id,) = world.group_ids()
    submission_id = await world.receive()
    assessors = [a.member_id for a in world.store.assignments]
    assert len(assessors) == 2
    leaver = assessors[0]
    async with world.store.unit_of_work() as uow:
        await world.volunteering.withdraw_by_clerk(uow, CLERK, leaver)
    now_assessing = {
        a.member_id for a in world.store.assignments if a.submission_id == submission_id
    }
    assert leaver not in now_assessing and len(now_assessing) == 2
    assert len(world.members(group_id)) == 3  # the waiting volunteer took the place
    assert len(world.store.events(VolunteerLeft)) == 1


async def test_only_a_clerk_withdraws_someone_else(world: World) -> None:
    outcome = await world.sign_up("social")
    with pytest.raises(NotPermitted):
        async with world.store.unit_of_work() as uow:
            await world.volunteering.withdraw_by_clerk(uow, Actor(), outcome.volunteer.id)


# --- routing -------------------------------------------------------------------------------


async def test_a_submission_waits_for_its_theme_group_then_is_routed(world: World) -> None:
    submission_id = await world.receive("social")
    assert world.store.submissions[submission_id].group_id is None
    for _ in range(3):
        await world.sign_up("social")
    routed = world.store.events(SubmissionRouted)
    assert [event.submission_id for event in routed] == [submission_id]
    assert routed[0].theme_source is ThemeSource.SUBMITTED
    assert len([a for a in world.store.assignments if a.submission_id == submission_id]) == 2


async def test_a_submission_without_theme_is_classified(world: World) -> None:
    submission_id = await world.receive(None, body="Posadźmy drzewa wzdłuż Jeziorki.")
    stored = world.store.submissions[submission_id]
    assert (stored.theme, stored.theme_source) == ("environmental", ThemeSource.CLASSIFIER)


async def test_only_a_coordinator_overrides_the_theme_and_it_reroutes(world: World) -> None:
    for _ in range(3):
        await world.sign_up("social")
    for _ in range(3):
        await world.sign_up("economic")
    submission_id = await world.receive("social")
    with pytest.raises(NotPermitted):
        async with world.store.unit_of_work() as uow:
            await world.review.override_theme(uow, Actor(), submission_id, "economic")
    async with world.store.unit_of_work() as uow:
        moved = await world.review.override_theme(uow, COORDINATOR, submission_id, "economic")
    economic = next(g for g in world.store.groups.values() if g.theme == "economic")
    assert moved.group_id == economic.id and moved.theme_source is ThemeSource.COORDINATOR
    assessors = {a.member_id for a in world.store.assignments if a.submission_id == submission_id}
    assert assessors <= set(world.members(economic.id)) and len(assessors) == 2


# --- assessment and decisions --------------------------------------------------------------


def scores(submission_id: uuid.UUID, need: int, **changes: Any) -> AssessmentInput:
    values: dict[str, Any] = {
        "submission_id": submission_id,
        "need": need,
        "reach": 1,
        "strategy_fit": 1,
        "competence": 1,
        "cost_band": CostBand.LOW,
        "horizon": Horizon.SHORT,
        **changes,
    }
    return AssessmentInput(**values)


async def formed_group(world: World, theme: str = "social") -> uuid.UUID:
    for _ in range(3):
        await world.sign_up(theme)
    return next(g.id for g in world.store.groups.values() if g.theme == theme)


async def test_the_combined_score_is_the_median_and_a_spread_of_two_is_to_discuss(
    world: World,
) -> None:
    group_id = await formed_group(world)
    submission_id = await world.receive()
    a, b, c = world.members(group_id)
    for member, need in ((a, 0), (b, 2), (c, 2)):
        async with world.store.unit_of_work() as uow:
            result = await world.review.assess(
                uow, Actor(volunteer_id=member), group_id, scores(submission_id, need)
            )
    assert result.score.need == 2.0 and result.score.to_discuss
    async with world.store.unit_of_work() as uow:
        page = await world.review.queue(
            uow, Actor(volunteer_id=a), group_id, QueueFilter(flag=None), limit=10, offset=0
        )
    assert page.entries[0].item.state is ReviewState.IN_REVIEW


async def test_a_second_assessment_by_the_same_member_replaces_the_first(world: World) -> None:
    group_id = await formed_group(world)
    submission_id = await world.receive()
    member = Actor(volunteer_id=world.members(group_id)[0])
    for need in (0, 2):
        async with world.store.unit_of_work() as uow:
            result = await world.review.assess(uow, member, group_id, scores(submission_id, need))
    assert result.score.assessments == 1 and result.score.need == 2.0


async def test_a_member_of_one_group_is_forbidden_in_another(world: World) -> None:
    social = await formed_group(world, "social")
    economic = await formed_group(world, "economic")
    submission_id = await world.receive("economic")
    outsider = Actor(volunteer_id=world.members(social)[0])
    with pytest.raises(NotPermitted):
        async with world.store.unit_of_work() as uow:
            await world.review.assess(uow, outsider, economic, scores(submission_id, 1))
    with pytest.raises(NotPermitted):
        async with world.store.unit_of_work() as uow:
            await world.review.queue(uow, outsider, economic, QueueFilter(), limit=5, offset=0)


async def test_final_states_need_the_lead_and_a_public_reason(world: World) -> None:
    group_id = await formed_group(world)
    submission_id = await world.receive()
    lead, member, _ = world.members(group_id)
    async with world.store.unit_of_work() as uow:
        await world.volunteering.appoint_lead(uow, COORDINATOR, group_id, lead)
    with pytest.raises(NotPermitted):
        async with world.store.unit_of_work() as uow:
            await world.review.move(
                uow,
                Actor(volunteer_id=member),
                submission_id,
                ReviewState.OUT_OF_SCOPE,
                reason="Poza zakresem.",
            )
    with pytest.raises(InvalidInput):
        async with world.store.unit_of_work() as uow:
            await world.review.move(
                uow, Actor(volunteer_id=lead), submission_id, ReviewState.OUT_OF_SCOPE
            )
    assert world.store.events(SubmissionDecided) == []
    async with world.store.unit_of_work() as uow:
        await world.review.move(
            uow,
            Actor(volunteer_id=lead),
            submission_id,
            ReviewState.OUT_OF_SCOPE,
            reason="Sprawa powiatu, nie gminy.",
        )
    (decided,) = world.store.events(SubmissionDecided)
    assert decided.public_reason == "Sprawa powiatu, nie gminy."


# --- trends, recommendations, report -------------------------------------------------------


async def test_trends_are_numbered_snapshots_recomputed_when_a_theme_changes(
    world: World,
) -> None:
    for n in range(10):
        await world.receive("social", body=f"Brakuje żłobka i przedszkola numer {n}.")
    async with world.store.unit_of_work() as uow:
        view = await world.outcomes.theme_trends(uow, world.consultation_id, "social")
    assert view.status is TrendStatus.PENDING
    assert await world.outcomes.recompute_next(world.store.unit_of_work)
    assert not await world.outcomes.recompute_next(world.store.unit_of_work)
    await world.receive("social", body="Jeszcze jeden żłobek.")
    assert await world.outcomes.recompute_next(world.store.unit_of_work)
    async with world.store.unit_of_work() as uow:
        view = await world.outcomes.theme_trends(uow, world.consultation_id, "social")
    assert view.status is TrendStatus.READY and view.snapshot is not None
    assert view.snapshot.number == 2 and view.submissions == 11


async def test_the_report_lists_waiting_submissions_and_what_cites_them(world: World) -> None:
    group_id = await formed_group(world)
    routed = await world.receive("social")
    waiting = await world.receive("spatial")
    async with world.store.unit_of_work() as uow:
        drafted = await world.outcomes.draft_recommendation(
            uow,
            Actor(volunteer_id=world.members(group_id)[0]),
            group_id,
            title="Żłobki",
            body="Budować żłobki.",
            submission_ids=[routed],
            trend_snapshot=None,
        )
    with pytest.raises(NotPermitted):
        async with world.store.unit_of_work() as uow:
            await world.outcomes.publish_recommendation(
                uow, Actor(volunteer_id=world.members(group_id)[1]), drafted.id
            )
    async with world.store.unit_of_work() as uow:
        await world.outcomes.publish_recommendation(uow, COORDINATOR, drafted.id)
    with pytest.raises(NotPermitted):
        async with world.store.unit_of_work() as uow:
            await world.outcomes.report(
                uow, Actor(volunteer_id=world.members(group_id)[0]), world.consultation_id
            )
    async with world.store.unit_of_work() as uow:
        rows = await world.outcomes.report(uow, COORDINATOR, world.consultation_id)
    by_id = {row.submission.id: row for row in rows}
    assert by_id[waiting].group_name is None
    assert [r.id for r in by_id[routed].recommendations] == [drafted.id]


async def test_sign_in_links_only_for_placed_members_and_sessions_expire(
    world: World, clock: Clock
) -> None:
    from shared.contracts.groups import MemberSignInLinkRequestedV2

    await formed_group(world)
    member = next(iter(world.store.volunteers.values()))
    async with world.store.unit_of_work() as uow:
        await world.volunteering.request_access_link(uow, member.email or "")
    async with world.store.unit_of_work() as uow:
        await world.volunteering.request_access_link(uow, "nobody@example.org")
    (link,) = world.store.events(MemberSignInLinkRequestedV2)
    async with world.store.unit_of_work() as uow:
        session = await world.volunteering.open_session(uow, link.sign_in_token)
    async with world.store.unit_of_work() as uow:
        assert await world.volunteering.member_of_session(uow, session.token) == member.id
    clock.advance(hours=12, seconds=1)
    async with world.store.unit_of_work() as uow:
        assert await world.volunteering.member_of_session(uow, session.token) is None


async def test_expired_sessions_and_links_are_forgotten_a_day_later(
    world: World, clock: Clock
) -> None:
    await world.sign_up("social", channel=SignUpChannel.WEB)
    assert len(world.store.tokens.stored) == 2  # confirmation and withdrawal links
    clock.advance(hours=48 + 23)
    async with world.store.unit_of_work() as uow:
        assert await world.volunteering.forget_expired(uow) == 0
    clock.advance(hours=2)
    async with world.store.unit_of_work() as uow:
        assert await world.volunteering.forget_expired(uow) == 2
    assert world.store.tokens.stored == {}
