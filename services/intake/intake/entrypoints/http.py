"""HTTP API of intake: thin translation between requests and the use cases.

Request models are strict (unknown fields are refused) and built from the shared field
types; responses are typed models. Domain errors become JSON errors in the shared
handlers (`shared.platform.http`).
"""
# No `from __future__ import annotations`: FastAPI must evaluate the route signatures,
# which refer to values local to build_router.

import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from intake.domain.commands import ChangeConsultation, CreateConsultation, Submit
from intake.domain.consultation import DEFAULT_THEMES, Consultation
from intake.domain.submission import CLERK_CHANNELS, Submission
from intake.service.group_commit import SubmissionBatcher
from intake.service.handlers import IntakeService
from intake.service.ports import IntakeUnitOfWork, SubmissionFilter
from shared.contracts.fields import PageLimit, PageOffset, SafeDatetime, Text
from shared.contracts.intake import (
    Channel,
    ConsentData,
    ConsultationKind,
    Language,
    SubmissionContent,
    SubmitterData,
    SubmitterKind,
    Theme,
    Title,
)
from shared.platform.http import ApiError, Role, TokenAuth, error_responses
from shared.platform.http_guards import body_limit

STRICT = ConfigDict(extra="forbid", frozen=True)
Description = Annotated[str, Text(20_000)]
IdempotencyKey = Annotated[str, Text(200, multiline=False)]


class ConsultationCreate(BaseModel):
    model_config = STRICT

    title: Title
    description: Description
    kind: ConsultationKind
    opens_at: SafeDatetime
    closes_at: SafeDatetime
    themes: tuple[Theme, ...] = Field(default=DEFAULT_THEMES, min_length=1, max_length=20)


class ConsultationPatch(BaseModel):
    model_config = STRICT

    title: Title | None = None
    description: Description | None = None
    opens_at: SafeDatetime | None = None
    closes_at: SafeDatetime | None = None


class ConsultationView(BaseModel):
    id: uuid.UUID
    number: int
    title: str
    description: str
    kind: ConsultationKind
    opens_at: datetime
    closes_at: datetime
    themes: tuple[str, ...]
    phase: str

    @classmethod
    def of(cls, consultation: Consultation, now: datetime) -> "ConsultationView":
        return cls(
            id=consultation.id,
            number=consultation.number,
            title=consultation.title,
            description=consultation.description,
            kind=consultation.kind,
            opens_at=consultation.opens_at,
            closes_at=consultation.closes_at,
            themes=consultation.themes,
            phase=consultation.phase(now).value,
        )


class SubmitterIn(SubmitterData):
    model_config = STRICT


class ConsentIn(ConsentData):
    model_config = STRICT


class SubmissionCreate(SubmissionContent):
    """The submission's content (the same contract a Kafka command carries) plus the
    channel. Consent and theme rules are checked by the domain, for every channel alike."""

    model_config = STRICT

    submitter: SubmitterIn
    consent: ConsentIn
    channel: Channel = Channel.WEB


class ReceiptView(BaseModel):
    number: str
    received_at: datetime
    digest: str


class SubmissionAccepted(BaseModel):
    id: uuid.UUID
    consultation_id: uuid.UUID
    receipt: ReceiptView

    @classmethod
    def of(cls, submission: Submission) -> "SubmissionAccepted":
        receipt = submission.receipt
        return cls(
            id=submission.id,
            consultation_id=submission.consultation_id,
            receipt=ReceiptView(
                number=receipt.number, received_at=receipt.received_at, digest=receipt.digest
            ),
        )


class SubmitterView(BaseModel):
    kind: SubmitterKind
    name: str | None
    organisation: str | None
    email: str | None
    phone: str | None
    locality: str | None


class ConsentView(BaseModel):
    processing: bool
    contact: bool


class SubmissionView(SubmissionAccepted):
    """Everything stored about a submission (administrators only: personal data)."""

    submitter: SubmitterView
    theme: str | None
    title: str
    body: str
    channel: Channel
    language: Language
    consent: ConsentView
    received_on: date | None
    entered_by: str | None

    @classmethod
    def of(cls, submission: Submission) -> "SubmissionView":
        content = submission.content
        return cls(
            **SubmissionAccepted.of(submission).model_dump(),
            submitter=SubmitterView.model_validate(content.submitter.model_dump()),
            theme=content.theme,
            title=content.title,
            body=content.body,
            channel=submission.channel,
            language=content.language,
            consent=ConsentView.model_validate(content.consent.model_dump()),
            received_on=content.received_on,
            entered_by=submission.entered_by,
        )


class SubmissionPageView(BaseModel):
    items: list[SubmissionView]
    total: int
    limit: int
    offset: int


# A submission's text is at most 10,000 + 300 characters; escaped as JSON (up to 6 bytes a
# character) and with the other fields, 80 KiB is room enough, and a bound.
SUBMISSION_MAX_BYTES = 80 * 1024
# A consultation's description is at most 20,000 characters.
CONSULTATION_MAX_BYTES = 160 * 1024


def build_router(
    service: IntakeService,
    unit_of_work: Callable[[], IntakeUnitOfWork],
    auth: TokenAuth,
    submissions: SubmissionBatcher,
    *,
    public_write_limit: Callable[[Request], Awaitable[None]],
) -> APIRouter:
    router = APIRouter(prefix="/v1")
    admin = Depends(auth.require(Role.ADMIN))
    as_admin = error_responses(401, 403)

    @router.post(
        "/consultations",
        status_code=status.HTTP_201_CREATED,
        response_model=ConsultationView,
        dependencies=[admin],
        openapi_extra=body_limit(CONSULTATION_MAX_BYTES),
        responses=as_admin,
    )
    async def create_consultation(request: ConsultationCreate) -> ConsultationView:
        async with unit_of_work() as uow:
            consultation = await service.create_consultation(
                uow, CreateConsultation(**dict(request))
            )
        return ConsultationView.of(consultation, service.now())

    @router.get("/consultations", response_model=list[ConsultationView])
    async def list_consultations(
        limit: Annotated[PageLimit, Query()] = 50, offset: Annotated[PageOffset, Query()] = 0
    ) -> list[ConsultationView]:
        async with unit_of_work() as uow:
            found = await service.consultations(uow, limit=limit, offset=offset)
        now = service.now()
        return [ConsultationView.of(consultation, now) for consultation in found]

    @router.get(
        "/consultations/{consultation_id}",
        response_model=ConsultationView,
        responses=error_responses(404),
    )
    async def get_consultation(consultation_id: uuid.UUID) -> ConsultationView:
        async with unit_of_work() as uow:
            consultation = await service.consultation(uow, consultation_id)
        return ConsultationView.of(consultation, service.now())

    @router.patch(
        "/consultations/{consultation_id}",
        response_model=ConsultationView,
        dependencies=[admin],
        openapi_extra=body_limit(CONSULTATION_MAX_BYTES),
        responses={**as_admin, **error_responses(404, 409)},
    )
    async def patch_consultation(
        consultation_id: uuid.UUID, request: ConsultationPatch
    ) -> ConsultationView:
        async with unit_of_work() as uow:
            consultation = await service.change_consultation(
                uow, ChangeConsultation(consultation_id=consultation_id, **dict(request))
            )
        return ConsultationView.of(consultation, service.now())

    @router.post(
        "/consultations/{consultation_id}/submissions",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=SubmissionAccepted,
        dependencies=[Depends(public_write_limit)],
        openapi_extra=body_limit(SUBMISSION_MAX_BYTES),
        responses={
            **error_responses(401, 403, 404, 429),
            409: {**error_responses(409)[409], "description": "Outside the consultation window"},
        },
    )
    async def submit(
        consultation_id: uuid.UUID,
        submission: SubmissionCreate,
        http_request: Request,
        response: Response,
        idempotency_key: Annotated[IdempotencyKey | None, Header(alias="Idempotency-Key")] = None,
    ) -> SubmissionAccepted:
        role = await auth.optional_role(http_request)
        if submission.channel is not Channel.WEB:
            if role not in {Role.CLERK, Role.ADMIN}:
                raise ApiError(
                    403,
                    "forbidden",
                    f"only a clerk may enter a submission on channel {submission.channel.value}",
                    field="channel",
                )
            if submission.channel not in CLERK_CHANNELS:
                raise ApiError(
                    422,
                    "validation_failed",
                    "a clerk enters phone, paper or email submissions",
                    field="channel",
                )
        command = Submit(
            consultation_id=consultation_id,
            content=submission,
            channel=submission.channel,
            entered_by=role.value if role else None,
            idempotency_key=idempotency_key,
        )
        # Concurrent submissions to the consultation share one transaction (group commit).
        result = await submissions.submit(command)
        if result.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return SubmissionAccepted.of(result.submission)

    @router.get(
        "/consultations/{consultation_id}/submissions",
        response_model=SubmissionPageView,
        dependencies=[admin],
        responses={**as_admin, **error_responses(404)},
    )
    async def list_submissions(
        consultation_id: uuid.UUID,
        theme: Annotated[Theme | None, Query()] = None,
        kind: SubmitterKind | None = None,
        channel: Channel | None = None,
        limit: Annotated[PageLimit, Query()] = 50,
        offset: Annotated[PageOffset, Query()] = 0,
    ) -> SubmissionPageView:
        filters = SubmissionFilter(theme=theme, kind=kind, channel=channel)
        async with unit_of_work() as uow:
            page = await service.submissions(
                uow, consultation_id, filters, limit=limit, offset=offset
            )
        return SubmissionPageView(
            items=[SubmissionView.of(item) for item in page.items],
            total=page.total,
            limit=limit,
            offset=offset,
        )

    @router.get(
        "/submissions/{submission_id}",
        response_model=SubmissionView,
        dependencies=[admin],
        responses={**as_admin, **error_responses(404)},
    )
    async def get_submission(submission_id: uuid.UUID) -> SubmissionView:
        async with unit_of_work() as uow:
            return SubmissionView.of(await service.submission(uow, submission_id))

    return router


__all__ = ["ConsentIn", "SubmitterIn", "build_router"]
