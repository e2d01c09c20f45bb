"""HTTP API of groups: thin translation between requests and the use cases.

Request models are strict (unknown fields are refused) and built from the shared field
types; responses are typed models; domain errors become JSON errors in the shared handlers.
Who acts is resolved once per request (`Actor`): a role token (coordinator, clerk, admin),
a member's session token, or nobody.
"""
# No `from __future__ import annotations`: FastAPI must evaluate the route signatures.

import csv
import io
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StrictInt,
)

from groups.domain.actor import Actor
from groups.domain.assessment import (
    CombinedScore,
    CostBand,
    Horizon,
    QueueFilter,
    QueueFlag,
    ReviewState,
)
from groups.domain.duplicates import DuplicateLink, LinkState
from groups.domain.group import Group
from groups.domain.trends import TrendReport
from groups.domain.volunteers import SignUp, VolunteerStatus
from groups.domain.volunteers import SignUpChannel as DomainChannel
from groups.service.outcomes import (
    Outcomes,
    PublicRecommendation,
    ReportRow,
    TrendStatus,
    TrendView,
)
from groups.service.ports import GroupsUnitOfWork, Recommendation
from groups.service.review import AssessmentInput, QueueEntry, SubmissionReview
from groups.service.volunteering import Volunteering
from shared.clock import utc_now
from shared.contracts.fields import INT32_MAX, Consent, PageLimit, PageOffset, Text
from shared.contracts.groups import SignUpChannel, ThemeSource
from shared.contracts.intake import Body, Language, Locality, SubmitterKind, Theme, Title
from shared.platform.http import Role, TokenAuth, error_responses
from shared.platform.http_guards import body_limit

STRICT = ConfigDict(extra="forbid", frozen=True)
Name = Annotated[str, Text(200, multiline=False)]
Phone = Annotated[str, Text(40, multiline=False)]
Expertise = Annotated[str, Text(2_000)]
Reason = Annotated[str, Text(2_000)]
Note = Annotated[str, Text(2_000)]
Tag = Annotated[str, Text(40, multiline=False)]
LinkToken = Annotated[str, Text(200, multiline=False)]
# A recommendation holds a submission-sized text and up to 500 cited ids (as intake).
RECOMMENDATION_MAX_BYTES = 112 * 1024
SnapshotNumber = Annotated[int, Field(ge=1, le=INT32_MAX)]
Score = Annotated[StrictInt, Field(ge=0, le=2)]


def _query_bool(value: object) -> object:
    """A query flag is the word `true` or `false`: not `1`, `yes` or `on`."""
    if isinstance(value, str) and value not in ("true", "false"):
        raise ValueError("must be true or false")
    return value


QueryBool = Annotated[bool, BeforeValidator(_query_bool)]

UnitOfWorkFactory = Callable[[], GroupsUnitOfWork]


# --- requests --------------------------------------------------------------------------


class ConsentIn(BaseModel):
    model_config = STRICT

    processing: Consent


class VolunteerSignUpIn(BaseModel):
    """`themes` ranked, most wanted first. A web sign-up needs an email address (it counts
    once the emailed link is confirmed); a clerk's `phone`, `paper` or `email` sign-up
    counts at once and needs an email address or a phone number."""

    model_config = STRICT

    name: Name
    email: EmailStr | None = None
    phone: Phone | None = None
    locality: Locality | None = None
    themes: tuple[Theme, ...] = Field(min_length=1, max_length=20)
    expertise: Expertise | None = None
    consent: ConsentIn
    locale: Language = Language.PL
    channel: SignUpChannel = SignUpChannel.WEB


class TokenIn(BaseModel):
    model_config = STRICT

    token: LinkToken


class LeadIn(BaseModel):
    model_config = STRICT

    volunteer_id: uuid.UUID


class AccessLinkIn(BaseModel):
    model_config = STRICT

    email: EmailStr


class AssessmentIn(BaseModel):
    model_config = STRICT

    submission_id: uuid.UUID
    need: Score
    reach: Score
    strategy_fit: Score
    competence: Score
    cost_band: CostBand
    horizon: Horizon
    tags: tuple[Tag, ...] = Field(default=(), max_length=10)
    note: Note | None = None


class StateChangeIn(BaseModel):
    """Final states (`recommended`, `merged`, `out_of_scope`, `rejected`) need the lead or
    a coordinator; `out_of_scope` and `rejected` need a public `reason`, `merged` names
    the submission in `merged_into`."""

    model_config = STRICT

    state: ReviewState
    reason: Reason | None = None
    merged_into: uuid.UUID | None = None


class ThemeIn(BaseModel):
    model_config = STRICT

    theme: Theme


class DuplicateDecisionIn(BaseModel):
    model_config = STRICT

    original_id: uuid.UUID
    duplicate_id: uuid.UUID
    confirmed: StrictBool


class RecommendationIn(BaseModel):
    model_config = STRICT

    title: Title
    body: Body
    submission_ids: tuple[uuid.UUID, ...] = Field(min_length=1, max_length=500)
    trend_snapshot: SnapshotNumber | None = None


# --- responses -------------------------------------------------------------------------


class GroupView(BaseModel):
    """Public: no personal data."""

    id: uuid.UUID
    name: str
    name_en: str
    theme: str
    ordinal: int
    member_count: int

    @classmethod
    def of(cls, group: Group) -> "GroupView":
        return cls(
            id=group.id,
            name=group.name_pl,
            name_en=group.name_en,
            theme=group.theme,
            ordinal=group.ordinal,
            member_count=group.size,
        )


class SignUpView(BaseModel):
    """What happened and what the person must do next. A web sign-up answers the same
    whether the address was new or known (it names no volunteer)."""

    status: VolunteerStatus
    volunteer_id: uuid.UUID | None
    group: GroupView | None
    next_step: str
    next_step_en: str


class VolunteerView(BaseModel):
    volunteer_id: uuid.UUID
    status: VolunteerStatus
    group: GroupView | None


class MemberView(BaseModel):
    volunteer_id: uuid.UUID
    name: str
    email: str | None
    phone: str | None
    locality: str | None
    expertise: str | None
    is_lead: bool
    must_be_called: bool


class CallView(BaseModel):
    volunteer_id: uuid.UUID
    name: str
    phone: str


class MembersView(BaseModel):
    group: GroupView
    lead_id: uuid.UUID | None
    members: list[MemberView]
    to_call: list[CallView]


class LeadView(BaseModel):
    group: GroupView
    lead_id: uuid.UUID


class AcceptedView(BaseModel):
    message: str
    message_en: str


class SessionView(BaseModel):
    token: str
    expires_at: datetime
    volunteer_id: uuid.UUID
    group: GroupView


class ScoreView(BaseModel):
    assessments: int
    need: float
    reach: float
    strategy_fit: float
    competence: float
    overall: float
    cost_band: CostBand
    horizon: Horizon
    disputed: list[str]
    to_discuss: bool

    @classmethod
    def of(cls, score: CombinedScore) -> "ScoreView":
        return cls(
            assessments=score.assessments,
            need=score.need,
            reach=score.reach,
            strategy_fit=score.strategy_fit,
            competence=score.competence,
            overall=score.overall,
            cost_band=score.cost_band,
            horizon=score.horizon,
            disputed=list(score.disputed),
            to_discuss=score.to_discuss,
        )


class QueueItemView(BaseModel):
    submission_id: uuid.UUID
    receipt_number: str
    title: str
    body: str
    theme: str | None
    theme_source: ThemeSource | None
    submitter_kind: SubmitterKind
    locality: str | None
    received_at: datetime
    state: ReviewState
    public_reason: str | None
    assessors: list[uuid.UUID]
    assessed_by: list[uuid.UUID]
    tags: list[str]
    flags: list[QueueFlag]
    support: int
    score: ScoreView | None

    @classmethod
    def of(cls, entry: QueueEntry) -> "QueueItemView":
        s, item = entry.submission, entry.item
        return cls(
            submission_id=s.id,
            receipt_number=s.receipt_number,
            title=s.title,
            body=s.body,
            theme=s.theme,
            theme_source=s.theme_source,
            submitter_kind=s.submitter_kind,
            locality=s.locality,
            received_at=s.received_at,
            state=item.state,
            public_reason=s.review.public_reason,
            assessors=list(entry.assessors),
            assessed_by=sorted(item.assessed_by),
            tags=sorted(item.tags),
            flags=sorted(item.flags),
            support=entry.support,
            score=ScoreView.of(item.score) if item.score else None,
        )


class QueuePageView(BaseModel):
    items: list[QueueItemView]
    total: int
    limit: int
    offset: int


class AssessmentView(BaseModel):
    submission_id: uuid.UUID
    state: ReviewState
    score: ScoreView


class SubmissionStateView(BaseModel):
    submission_id: uuid.UUID
    receipt_number: str
    theme: str | None
    theme_source: ThemeSource | None
    group_id: uuid.UUID | None
    state: ReviewState
    public_reason: str | None
    merged_into: uuid.UUID | None


class DuplicateView(BaseModel):
    original_id: uuid.UUID
    duplicate_id: uuid.UUID
    similarity: float
    state: LinkState

    @classmethod
    def of(cls, link: DuplicateLink) -> "DuplicateView":
        return cls(
            original_id=link.original,
            duplicate_id=link.duplicate,
            similarity=link.similarity,
            state=link.state,
        )


class TrendsView(BaseModel):
    """`status`: `ready` (the report), `not_enough` (below the minimum: nothing computed),
    `pending` (enough submissions; the first snapshot is being computed)."""

    consultation_id: uuid.UUID
    theme: str
    status: TrendStatus
    submissions: int
    minimum: int
    snapshot: int | None
    computed_at: datetime | None
    report: TrendReport | None

    @classmethod
    def of(cls, view: TrendView) -> "TrendsView":
        snapshot = view.snapshot
        return cls.model_validate(
            {
                "consultation_id": view.consultation_id,
                "theme": view.theme,
                "status": view.status,
                "submissions": view.submissions,
                "minimum": view.minimum,
                "snapshot": snapshot.number if snapshot else None,
                "computed_at": snapshot.computed_at if snapshot else None,
                # The stored JSON of a `TrendReport`, validated back into one.
                "report": snapshot.report if snapshot else None,
            }
        )


class RecommendationView(BaseModel):
    id: uuid.UUID
    group_id: uuid.UUID
    theme: str
    title: str
    body: str
    submission_ids: list[uuid.UUID]
    trend_snapshot: int | None
    created_at: datetime
    published_at: datetime | None

    @classmethod
    def of(cls, r: Recommendation) -> "RecommendationView":
        return cls(
            id=r.id,
            group_id=r.group_id,
            theme=r.theme,
            title=r.title,
            body=r.body,
            submission_ids=list(r.submission_ids),
            trend_snapshot=r.trend_snapshot,
            created_at=r.created_at,
            published_at=r.published_at,
        )


class CitedView(BaseModel):
    submission_id: uuid.UUID
    receipt_number: str
    title: str
    state: str


class EvidenceView(BaseModel):
    snapshot: int
    computed_at: datetime
    sentences: list[str]
    sentences_en: list[str]


class PublicRecommendationView(RecommendationView):
    group_name: str
    cited: list[CitedView]
    evidence: EvidenceView | None

    @classmethod
    def public(cls, found: PublicRecommendation) -> "PublicRecommendationView":
        evidence = found.evidence
        return cls(
            **RecommendationView.of(found.recommendation).model_dump(),
            group_name=found.group.name_pl,
            cited=[
                CitedView(
                    submission_id=c.id,
                    receipt_number=c.receipt_number,
                    title=c.title,
                    state=c.state,
                )
                for c in found.cited
            ],
            evidence=(
                EvidenceView(
                    snapshot=evidence.number,
                    computed_at=evidence.computed_at,
                    sentences=list(evidence.report.get("sentences_pl", [])),
                    sentences_en=list(evidence.report.get("sentences_en", [])),
                )
                if evidence
                else None
            ),
        )


class CitingView(BaseModel):
    id: uuid.UUID
    title: str


class ReportRowView(BaseModel):
    submission_id: uuid.UUID
    receipt_number: str
    received_at: datetime
    theme: str | None
    group: str | None
    state: ReviewState
    public_reason: str | None
    recommendations: list[CitingView]

    @classmethod
    def of(cls, row: ReportRow) -> "ReportRowView":
        s = row.submission
        return cls(
            submission_id=s.id,
            receipt_number=s.receipt_number,
            received_at=s.received_at,
            theme=s.theme,
            group=row.group_name,
            state=s.review.state,
            public_reason=s.review.public_reason,
            recommendations=[CitingView(id=r.id, title=r.title) for r in row.recommendations],
        )


class ReportView(BaseModel):
    consultation_id: uuid.UUID
    generated_at: datetime
    submissions: list[ReportRowView]


CSV_COLUMNS = (
    "receipt_number",
    "received_at",
    "theme",
    "group",
    "state",
    "public_reason",
    "recommendations",
)


def _csv_cell(value: str) -> str:
    # A spreadsheet runs a cell that starts with = + - @ as a formula: neutralise it.
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def report_csv(report: ReportView) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.submissions:
        writer.writerow(
            [
                _csv_cell(row.receipt_number),
                row.received_at.isoformat(),
                row.theme or "",
                _csv_cell(row.group or ""),
                row.state.value,
                _csv_cell(row.public_reason or ""),
                _csv_cell("; ".join(r.title for r in row.recommendations)),
            ]
        )
    return out.getvalue()


NEXT_STEPS = {
    VolunteerStatus.AWAITING_CONFIRMATION: (
        "Sprawdź skrzynkę e-mail i potwierdź zgłoszenie linkiem z wiadomości (ważny 48 godzin).",
        "Check your inbox and confirm the sign-up with the link in the email (valid 48 hours).",
    ),
    VolunteerStatus.PLACED: (
        "Jesteś w grupie roboczej. Szczegóły i sposób logowania wyślemy e-mailem lub "
        "przekaże je lider grupy.",
        "You are in a working group. The details and how to sign in come by email or from "
        "the group's lead.",
    ),
    VolunteerStatus.WAITLISTED: (
        "Jesteś na liście oczekujących: dołączysz do grupy, gdy tylko zwolni się miejsce lub "
        "zbierze się nowa grupa.",
        "You are on the waiting list: you join a group as soon as a place frees up or a new "
        "group forms.",
    ),
    VolunteerStatus.CONFIRMED: (
        "Zgłoszenie przyjęte; przydział do grupy nastąpi wkrótce.",
        "Sign-up accepted; placement follows shortly.",
    ),
    VolunteerStatus.WITHDRAWN: ("Zgłoszenie wycofane.", "Sign-up withdrawn."),
}


def build_router(
    volunteering: Volunteering,
    review: SubmissionReview,
    outcomes: Outcomes,
    unit_of_work: UnitOfWorkFactory,
    auth: TokenAuth,
    *,
    public_write_limit: Callable[[Request], Awaitable[None]],
) -> APIRouter:
    router = APIRouter(prefix="/v1")
    # Public writes (and token spending, which a guesser would hammer) are rate limited
    # per client; clerks are exempt.
    limited = [Depends(public_write_limit)]
    actor = Depends(actor_dependency(auth, volunteering, unit_of_work))
    Who = Annotated[Actor, actor]  # noqa: N806 - a type alias, read by FastAPI
    signed_in = error_responses(401, 403, 404)

    # --- volunteers --------------------------------------------------------------------

    @router.post(
        "/consultations/{consultation_id}/volunteers",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=SignUpView,
        tags=["volunteers"],
        responses=error_responses(401, 403, 404, 409, 429),
        dependencies=limited,
    )
    async def sign_up(
        consultation_id: uuid.UUID, request: VolunteerSignUpIn, who: Who
    ) -> SignUpView:
        """Public on channel `web` (counts once the emailed link is confirmed); a clerk
        enters `phone`, `paper` and `email` sign-ups, which count at once. The same email
        or phone signing up again updates the first sign-up."""
        if request.channel is not SignUpChannel.WEB:
            who.require_clerk("channel")
        command = SignUp(
            name=request.name,
            themes=request.themes,
            consent_processing=request.consent.processing,
            channel=DomainChannel(request.channel.value),
            email=request.email,
            phone=request.phone,
            locality=request.locality,
            expertise=request.expertise,
            locale=request.locale,
        )
        async with unit_of_work() as uow:
            outcome = await volunteering.sign_up(uow, consultation_id, command)
        volunteer = outcome.volunteer
        shown = (
            VolunteerStatus.AWAITING_CONFIRMATION
            if outcome.awaiting_confirmation
            else volunteer.status
        )
        pl, en = NEXT_STEPS[shown]
        return SignUpView(
            status=shown,
            volunteer_id=None if outcome.awaiting_confirmation else volunteer.id,
            group=GroupView.of(outcome.group) if outcome.group else None,
            next_step=pl,
            next_step_en=en,
        )

    @router.post(
        "/volunteers/confirm",
        response_model=VolunteerView,
        tags=["volunteers"],
        responses=error_responses(409, 429),
        dependencies=limited,
    )
    async def confirm(request: TokenIn) -> VolunteerView:
        """Spend the token of the confirmation link (a page POSTs it; a GET of the link
        changes nothing). Single use, expires after 48 hours."""
        async with unit_of_work() as uow:
            state = await volunteering.confirm(uow, request.token)
        return VolunteerView(
            volunteer_id=state.volunteer.id,
            status=state.volunteer.status,
            group=GroupView.of(state.group) if state.group else None,
        )

    @router.post(
        "/volunteers/withdraw",
        response_model=VolunteerView,
        tags=["volunteers"],
        responses=error_responses(409, 429),
        dependencies=limited,
    )
    async def withdraw_by_link(request: TokenIn) -> VolunteerView:
        """The person withdraws with the link every email to them carries."""
        async with unit_of_work() as uow:
            left = await volunteering.withdraw_by_token(uow, request.token)
        return VolunteerView(volunteer_id=left.id, status=left.status, group=None)

    @router.post(
        "/volunteers/{volunteer_id}/withdrawal",
        response_model=VolunteerView,
        tags=["volunteers"],
        responses=error_responses(401, 403, 404, 409),
    )
    async def withdraw_by_clerk(volunteer_id: uuid.UUID, who: Who) -> VolunteerView:
        """A clerk withdraws a volunteer (asked by phone or in person)."""
        async with unit_of_work() as uow:
            left = await volunteering.withdraw_by_clerk(uow, who, volunteer_id)
        return VolunteerView(volunteer_id=left.id, status=left.status, group=None)

    # --- groups and members --------------------------------------------------------------

    @router.get(
        "/consultations/{consultation_id}/groups",
        response_model=list[GroupView],
        tags=["groups"],
        responses=error_responses(404),
    )
    async def list_groups(consultation_id: uuid.UUID) -> list[GroupView]:
        """Public: the working groups, without personal data."""
        async with unit_of_work() as uow:
            found = await volunteering.groups(uow, consultation_id)
        return [GroupView.of(group) for group in found]

    @router.get(
        "/groups/{group_id}/members",
        response_model=MembersView,
        tags=["groups"],
        responses=signed_in,
    )
    async def members(group_id: uuid.UUID, who: Who) -> MembersView:
        """The group's lead and coordinators: members with their contact; phone-only
        members are listed to be called."""
        async with unit_of_work() as uow:
            found = await volunteering.members(uow, who, group_id)
        return MembersView(
            group=GroupView.of(found.group),
            lead_id=found.group.lead_id,
            members=[
                MemberView(
                    volunteer_id=m.volunteer.id,
                    name=m.volunteer.name,
                    email=m.volunteer.email,
                    phone=m.volunteer.phone,
                    locality=m.volunteer.locality,
                    expertise=m.volunteer.expertise,
                    is_lead=m.is_lead,
                    must_be_called=m.volunteer.must_be_called,
                )
                for m in found.members
            ],
            to_call=[
                CallView(volunteer_id=c.volunteer_id, name=c.name, phone=c.phone)
                for c in found.to_call
            ],
        )

    @router.put(
        "/groups/{group_id}/lead",
        response_model=LeadView,
        tags=["groups"],
        responses=signed_in,
    )
    async def appoint_lead(group_id: uuid.UUID, request: LeadIn, who: Who) -> LeadView:
        """A coordinator appoints one of the group's members as its lead."""
        async with unit_of_work() as uow:
            group = await volunteering.appoint_lead(uow, who, group_id, request.volunteer_id)
        assert group.lead_id is not None
        return LeadView(group=GroupView.of(group), lead_id=group.lead_id)

    # --- member access -------------------------------------------------------------------

    @router.post(
        "/access-links",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=AcceptedView,
        tags=["access"],
        responses=error_responses(429),
        dependencies=limited,
    )
    async def request_access_link(request: AccessLinkIn) -> AcceptedView:
        """Email a single-use sign-in link (24 hours) to a group member. The answer is the
        same whether or not the address belongs to a member."""
        async with unit_of_work() as uow:
            await volunteering.request_access_link(uow, str(request.email))
        return AcceptedView(
            message="Jeśli ten adres należy do członka grupy roboczej, wysłaliśmy na niego "
            "link do logowania.",
            message_en="If this address belongs to a working-group member, a sign-in link "
            "is on its way.",
        )

    @router.post(
        "/sessions",
        status_code=status.HTTP_201_CREATED,
        response_model=SessionView,
        tags=["access"],
        responses=error_responses(409, 429),
        dependencies=limited,
    )
    async def open_session(request: TokenIn) -> SessionView:
        """Spend a sign-in link's token: the answer's `token` is a bearer token scoped to
        that member, valid until `expires_at`."""
        async with unit_of_work() as uow:
            session = await volunteering.open_session(uow, request.token)
        return SessionView(
            token=session.token,
            expires_at=session.expires_at,
            volunteer_id=session.volunteer.id,
            group=GroupView.of(session.group),
        )

    # --- submissions in the group --------------------------------------------------------

    @router.get(
        "/groups/{group_id}/submissions",
        response_model=QueuePageView,
        tags=["review"],
        responses=signed_in,
    )
    async def queue(
        group_id: uuid.UUID,
        who: Who,
        state: ReviewState | None = None,
        assessed_by_me: Annotated[QueryBool | None, Query()] = None,
        tag: Annotated[Tag | None, Query()] = None,
        flag: QueueFlag | None = None,
        limit: Annotated[PageLimit, Query()] = 50,
        offset: Annotated[PageOffset, Query()] = 0,
    ) -> QueuePageView:
        """The group's review queue, in receipt order, filtered by state, by "assessed by
        me" (yes / not yet), by tag and by flag (`to_discuss`, `possible_duplicate`)."""
        query = QueueFilter(state=state, assessed_by_me=assessed_by_me, tag=tag, flag=flag)
        async with unit_of_work() as uow:
            page = await review.queue(uow, who, group_id, query, limit=limit, offset=offset)
        return QueuePageView(
            items=[QueueItemView.of(entry) for entry in page.entries],
            total=page.total,
            limit=limit,
            offset=offset,
        )

    @router.post(
        "/groups/{group_id}/assessments",
        status_code=status.HTTP_201_CREATED,
        response_model=AssessmentView,
        tags=["review"],
        responses=error_responses(401, 403, 404, 409),
    )
    async def assess(group_id: uuid.UUID, request: AssessmentIn, who: Who) -> AssessmentView:
        """A member's assessment (0–2 per criterion); a second one replaces the first.
        The combined score is the median; a spread of 2 flags the submission "to discuss"."""
        scores = AssessmentInput(**dict(request))
        async with unit_of_work() as uow:
            result = await review.assess(uow, who, group_id, scores)
        return AssessmentView(
            submission_id=result.submission.id,
            state=result.submission.review.state,
            score=ScoreView.of(result.score),
        )

    @router.post(
        "/submissions/{submission_id}/state",
        response_model=SubmissionStateView,
        tags=["review"],
        responses=error_responses(401, 403, 404, 409),
    )
    async def change_state(
        submission_id: uuid.UUID, request: StateChangeIn, who: Who
    ) -> SubmissionStateView:
        """Move a submission through its review; final states are for the lead (or a
        coordinator) and are announced to the submitter when they consented to contact."""
        async with unit_of_work() as uow:
            moved = await review.move(
                uow,
                who,
                submission_id,
                request.state,
                reason=request.reason,
                merged_into=request.merged_into,
            )
        return _state_view(moved)

    @router.put(
        "/submissions/{submission_id}/theme",
        response_model=SubmissionStateView,
        tags=["review"],
        responses=signed_in,
    )
    async def override_theme(
        submission_id: uuid.UUID, request: ThemeIn, who: Who
    ) -> SubmissionStateView:
        """A coordinator changes the theme; the submission is routed anew."""
        async with unit_of_work() as uow:
            moved = await review.override_theme(uow, who, submission_id, request.theme)
        return _state_view(moved)

    @router.get(
        "/groups/{group_id}/duplicates",
        response_model=list[DuplicateView],
        tags=["review"],
        responses=signed_in,
    )
    async def duplicates(group_id: uuid.UUID, who: Who) -> list[DuplicateView]:
        """Possible (and decided) duplicates touching the group's submissions."""
        async with unit_of_work() as uow:
            links = await review.duplicates(uow, who, group_id)
        return [DuplicateView.of(link) for link in links]

    @router.post(
        "/groups/{group_id}/duplicates",
        response_model=DuplicateView,
        tags=["review"],
        responses=error_responses(401, 403, 404, 409),
    )
    async def decide_duplicate(
        group_id: uuid.UUID, request: DuplicateDecisionIn, who: Who
    ) -> DuplicateView:
        """Confirm or dismiss a possible duplicate. A confirmed one counts as support for
        the original; nothing is deleted."""
        async with unit_of_work() as uow:
            link = await review.decide_duplicate(
                uow,
                who,
                group_id,
                request.original_id,
                request.duplicate_id,
                confirmed=request.confirmed,
            )
        return DuplicateView.of(link)

    # --- trends ------------------------------------------------------------------------

    @router.get(
        "/groups/{group_id}/trends",
        response_model=TrendsView,
        tags=["trends"],
        responses=error_responses(404),
    )
    async def group_trends(
        group_id: uuid.UUID, snapshot: Annotated[SnapshotNumber | None, Query()] = None
    ) -> TrendsView:
        """Public: the key trends of the group's theme (latest snapshot, or `snapshot`)."""
        async with unit_of_work() as uow:
            view = await outcomes.group_trends(uow, group_id, snapshot)
        return TrendsView.of(view)

    @router.get(
        "/consultations/{consultation_id}/trends",
        response_model=TrendsView,
        tags=["trends"],
        responses=error_responses(404),
    )
    async def theme_trends(
        consultation_id: uuid.UUID,
        theme: Annotated[Theme, Query()],
        snapshot: Annotated[SnapshotNumber | None, Query()] = None,
    ) -> TrendsView:
        """Public: the key trends of one theme; nothing is computed below the minimum."""
        async with unit_of_work() as uow:
            view = await outcomes.theme_trends(uow, consultation_id, theme, snapshot)
        return TrendsView.of(view)

    # --- recommendations and the report --------------------------------------------------

    @router.post(
        "/groups/{group_id}/recommendations",
        status_code=status.HTTP_201_CREATED,
        response_model=RecommendationView,
        tags=["recommendations"],
        responses=signed_in,
        openapi_extra=body_limit(RECOMMENDATION_MAX_BYTES),
    )
    async def draft_recommendation(
        group_id: uuid.UUID, request: RecommendationIn, who: Who
    ) -> RecommendationView:
        """A member drafts a recommendation citing submissions (and a trend snapshot)."""
        async with unit_of_work() as uow:
            drafted = await outcomes.draft_recommendation(
                uow,
                who,
                group_id,
                title=request.title,
                body=request.body,
                submission_ids=request.submission_ids,
                trend_snapshot=request.trend_snapshot,
            )
        return RecommendationView.of(drafted)

    @router.get(
        "/groups/{group_id}/recommendations",
        response_model=list[RecommendationView],
        tags=["recommendations"],
        responses=signed_in,
    )
    async def group_recommendations(group_id: uuid.UUID, who: Who) -> list[RecommendationView]:
        """The group's drafts and published recommendations (members and coordinators)."""
        async with unit_of_work() as uow:
            found = await outcomes.group_recommendations(uow, who, group_id)
        return [RecommendationView.of(r) for r in found]

    @router.post(
        "/recommendations/{recommendation_id}/publish",
        response_model=RecommendationView,
        tags=["recommendations"],
        responses=error_responses(401, 403, 404, 409),
    )
    async def publish(recommendation_id: uuid.UUID, who: Who) -> RecommendationView:
        """The group's lead (or a coordinator) publishes a draft."""
        async with unit_of_work() as uow:
            published = await outcomes.publish_recommendation(uow, who, recommendation_id)
        return RecommendationView.of(published)

    @router.get(
        "/consultations/{consultation_id}/recommendations",
        response_model=list[PublicRecommendationView],
        tags=["recommendations"],
        responses=error_responses(404),
    )
    async def public_recommendations(consultation_id: uuid.UUID) -> list[PublicRecommendationView]:
        """Public: published recommendations, each with the submissions it cites and the
        trend snapshot it rests on."""
        async with unit_of_work() as uow:
            found = await outcomes.public_recommendations(uow, consultation_id)
        return [PublicRecommendationView.public(item) for item in found]

    @router.get(
        "/consultations/{consultation_id}/report",
        response_model=ReportView,
        tags=["recommendations"],
        responses={
            200: {
                "description": "JSON, or CSV when the request accepts `text/csv`",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            },
            **signed_in,
        },
    )
    async def report(consultation_id: uuid.UUID, who: Who, http_request: Request) -> Any:
        """Coordinators: every submission with its receipt number, theme, state, public
        reason and the recommendations citing it — the material of the consultation
        report the law requires."""
        async with unit_of_work() as uow:
            rows = await outcomes.report(uow, who, consultation_id)
        view = ReportView(
            consultation_id=consultation_id,
            generated_at=utc_now(),
            submissions=[ReportRowView.of(row) for row in rows],
        )
        if _wants_csv(http_request.headers.get("accept", "")):
            return Response(
                content=report_csv(view),
                media_type="text/csv; charset=utf-8",
                headers={
                    "Content-Disposition": f'attachment; filename="report-{consultation_id}.csv"'
                },
            )
        return view

    return router


def _wants_csv(accept: str) -> bool:
    kinds = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    return "text/csv" in kinds and "application/json" not in kinds[: kinds.index("text/csv")]


def _state_view(moved: Any) -> SubmissionStateView:
    return SubmissionStateView(
        submission_id=moved.id,
        receipt_number=moved.receipt_number,
        theme=moved.theme,
        theme_source=moved.theme_source,
        group_id=moved.group_id,
        state=moved.review.state,
        public_reason=moved.review.public_reason,
        merged_into=moved.review.merged_into,
    )


def actor_dependency(
    auth: TokenAuth, volunteering: Volunteering, unit_of_work: UnitOfWorkFactory
) -> Callable[[Request], Awaitable[Actor]]:
    """A role token, a member's session token, or nobody; any other token is a 401."""
    scheme = HTTPBearer(auto_error=False)

    async def actor(request: Request) -> Actor:
        credentials: HTTPAuthorizationCredentials | None = await scheme(request)
        if credentials is None:
            return Actor()
        token = credentials.credentials
        role = auth.role_of(token)
        if role is not None:
            return Actor(
                coordinator=role in (Role.ADMIN, Role.COORDINATOR),
                clerk=role in (Role.ADMIN, Role.CLERK),
            )
        async with unit_of_work() as uow:
            member = await volunteering.member_of_session(uow, token)
        if member is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="invalid or expired token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Actor(volunteer_id=member)

    return actor
