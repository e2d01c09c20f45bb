"""HTTP API of intake: thin translation between requests and the service layer."""
# No `from __future__ import annotations`: FastAPI must evaluate the route signatures,
# which refer to values local to build_router (page_size_max).

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from intake.domain.consultation import DEFAULT_THEMES, THEME_PATTERN, Consultation
from intake.domain.errors import DomainError, InvalidRequest, OutsideWindow
from intake.domain.submission import CLERK_CHANNELS, SubmissionDraft
from intake.service.handlers import IdempotencyMismatch, IntakeService, NotFound
from shared.contracts.intake import (
    Channel,
    ConsentData,
    ConsultationKind,
    Language,
    SubmitterData,
    SubmitterKind,
)
from shared.platform.http import ApiError, Role, TokenAuth

Theme = Annotated[str, Field(pattern=THEME_PATTERN)]


class ConsultationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    description: str = Field(min_length=1, max_length=20_000)
    kind: ConsultationKind
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    themes: tuple[Theme, ...] = DEFAULT_THEMES


class ConsultationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, min_length=1, max_length=20_000)
    opens_at: AwareDatetime | None = None
    closes_at: AwareDatetime | None = None


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


class SubmissionCreate(BaseModel):
    """Length, consent and theme rules are checked by the domain, for every channel alike."""

    model_config = ConfigDict(extra="forbid")

    submitter: SubmitterData
    theme: str | None = None
    title: str
    body: str
    consent: ConsentData
    channel: Channel = Channel.WEB
    language: Language = Language.PL
    received_on: date | None = Field(
        default=None, description="Paper forms: the day the form reached the office."
    )


class ReceiptView(BaseModel):
    number: str
    received_at: datetime
    digest: str


class SubmissionAccepted(BaseModel):
    id: uuid.UUID
    consultation_id: uuid.UUID
    receipt: ReceiptView


def _view(consultation: Consultation, now: datetime) -> ConsultationView:
    return ConsultationView(
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


def domain_error_to_api(error: DomainError) -> ApiError:
    problems = [{"field": p.field, "reason": p.reason} for p in error.problems]
    if isinstance(error, InvalidRequest):
        return ApiError(422, "validation_failed", error.message, problems=problems)
    if isinstance(error, OutsideWindow):
        return ApiError(409, "outside_window", error.message, problems=problems)
    return ApiError(409, "conflict", error.message, problems=problems)


def build_router(service: IntakeService, auth: TokenAuth, *, page_size_max: int) -> APIRouter:
    router = APIRouter(prefix="/v1")
    admin = Depends(auth.require(Role.ADMIN))

    @router.post(
        "/consultations",
        status_code=status.HTTP_201_CREATED,
        response_model=ConsultationView,
        dependencies=[admin],
    )
    async def create_consultation(request: ConsultationCreate) -> ConsultationView:
        try:
            consultation = await service.create_consultation(
                title=request.title.strip(),
                description=request.description.strip(),
                kind=request.kind,
                opens_at=request.opens_at,
                closes_at=request.closes_at,
                themes=request.themes,
            )
        except DomainError as error:
            raise domain_error_to_api(error) from None
        return _view(consultation, service.now())

    @router.get("/consultations", response_model=list[ConsultationView])
    async def list_consultations(
        limit: Annotated[int, Query(ge=1, le=page_size_max)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[ConsultationView]:
        now = service.now()
        found = await service.list_consultations(limit=limit, offset=offset)
        return [_view(consultation, now) for consultation in found]

    @router.get("/consultations/{consultation_id}", response_model=ConsultationView)
    async def get_consultation(consultation_id: uuid.UUID) -> ConsultationView:
        try:
            consultation = await service.get_consultation(consultation_id)
        except NotFound as error:
            raise ApiError(404, "not_found", str(error)) from None
        return _view(consultation, service.now())

    @router.patch(
        "/consultations/{consultation_id}",
        response_model=ConsultationView,
        dependencies=[admin],
    )
    async def patch_consultation(
        consultation_id: uuid.UUID, request: ConsultationPatch
    ) -> ConsultationView:
        try:
            consultation = await service.change_consultation(
                consultation_id,
                title=request.title,
                description=request.description,
                opens_at=request.opens_at,
                closes_at=request.closes_at,
            )
        except NotFound as error:
            raise ApiError(404, "not_found", str(error)) from None
        except DomainError as error:
            raise domain_error_to_api(error) from None
        return _view(consultation, service.now())

    @router.post(
        "/consultations/{consultation_id}/submissions",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=SubmissionAccepted,
        responses={409: {"description": "Outside the consultation window"}},
    )
    async def submit(
        consultation_id: uuid.UUID,
        submission: SubmissionCreate,
        http_request: Request,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
        ] = None,
    ) -> Any:
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
        draft = SubmissionDraft(
            consultation_id=consultation_id,
            submitter=submission.submitter,
            theme=submission.theme,
            title=submission.title,
            body=submission.body,
            consent=submission.consent,
            channel=submission.channel,
            language=submission.language,
            received_on=submission.received_on,
        )
        try:
            outcome = await service.submit(
                draft,
                entered_by=role.value if role else None,
                idempotency_key=idempotency_key,
            )
        except NotFound as error:
            raise ApiError(404, "not_found", str(error)) from None
        except IdempotencyMismatch as error:
            raise ApiError(
                422, "idempotency_key_reused", str(error), field="Idempotency-Key"
            ) from None
        except DomainError as error:
            raise domain_error_to_api(error) from None
        headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
        return JSONResponse(status_code=outcome.status_code, content=outcome.body, headers=headers)

    @router.get("/consultations/{consultation_id}/submissions", dependencies=[admin])
    async def list_submissions(
        consultation_id: uuid.UUID,
        theme: str | None = None,
        kind: SubmitterKind | None = None,
        channel: Channel | None = None,
        limit: Annotated[int, Query(ge=1, le=page_size_max)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        try:
            items, total = await service.list_submissions(
                consultation_id,
                theme=theme,
                kind=kind.value if kind else None,
                channel=channel,
                limit=limit,
                offset=offset,
            )
        except NotFound as error:
            raise ApiError(404, "not_found", str(error)) from None
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @router.get("/submissions/{submission_id}", dependencies=[admin])
    async def get_submission(submission_id: uuid.UUID) -> dict[str, Any]:
        try:
            return await service.get_submission(submission_id)
        except NotFound as error:
            raise ApiError(404, "not_found", str(error)) from None

    return router
