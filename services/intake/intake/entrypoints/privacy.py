"""Data-subject requests (RODO art. 15, 17): the admin's HTTP API and the services' answers.

intake owns them (see README, "Personal data"): it publishes the request, every service
answers on its own replies topic, intake records the answers per service.
"""
# No `from __future__ import annotations`: FastAPI evaluates the route signatures.

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Self

from fastapi import APIRouter, Depends, params, status
from pydantic import BaseModel, ConfigDict, EmailStr, model_validator

from intake.domain.privacy import PrivacyRequest, RequestKind
from intake.service import privacy
from intake.service.ports import IntakeUnitOfWork
from shared.contracts.envelope import Envelope
from shared.contracts.fields import Text
from shared.contracts.privacy import PersonRef
from shared.contracts.topics import privacy_replies_topic
from shared.platform.http import Role, TokenAuth, error_responses
from shared.platform.privacy import subject_for_email, subject_for_phone


class PersonQuery(BaseModel):
    """Exactly one of the person's addresses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: EmailStr | None = None
    phone: Annotated[str, Text(40, multiline=False)] | None = None

    @model_validator(mode="after")
    def _one_address(self) -> Self:
        if (self.email is None) == (self.phone is None):
            raise ValueError("give exactly one of email and phone")
        return self

    def subject(self, region: str) -> PersonRef:
        if self.email is not None:
            return subject_for_email(self.email)
        assert self.phone is not None
        return subject_for_phone(self.phone, region=region)


class ServiceAnswer(BaseModel):
    done: bool
    records: int | None
    answered_at: datetime | None


class PrivacyRequestView(BaseModel):
    id: uuid.UUID
    kind: RequestKind
    requested_at: datetime
    complete: bool
    services: dict[str, ServiceAnswer]

    @classmethod
    def of(cls, request: PrivacyRequest) -> "PrivacyRequestView":
        return cls(
            id=request.id,
            kind=request.kind,
            requested_at=request.requested_at,
            complete=request.complete,
            services={
                name: ServiceAnswer(**answer) for name, answer in request.per_service().items()
            },
        )


class ExportDocument(BaseModel):
    request_id: uuid.UUID
    requested_at: datetime
    services: dict[str, dict[str, list[dict[str, Any]]]]


def privacy_router(
    unit_of_work: Callable[[], IntakeUnitOfWork],
    auth: TokenAuth,
    *,
    services: tuple[str, ...],
    phone_region: str,
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["personal data (RODO)"])
    admin = Depends(auth.require(Role.ADMIN))
    as_admin = error_responses(401, 403)

    # Erasure and export share their life cycle: the admin files the request, then
    # follows each service's answer under the request's own path.
    starters: dict[RequestKind, tuple[str, StartRequest]] = {
        RequestKind.ERASURE: ("/erasure-requests", privacy.request_erasure),
        RequestKind.EXPORT: ("/export-requests", privacy.request_export),
    }
    for kind, (path, start_request) in starters.items():
        _add_request_routes(
            router,
            unit_of_work,
            kind,
            path,
            start_request,
            services=services,
            phone_region=phone_region,
            admin=admin,
        )

    @router.get(
        "/export-requests/{request_id}/export",
        response_model=ExportDocument,
        dependencies=[admin],
        responses={**as_admin, **error_responses(404, 409)},
    )
    async def download_export(request_id: uuid.UUID) -> ExportDocument:
        async with unit_of_work() as uow:
            document = await privacy.assemble_export(uow, request_id)
        return ExportDocument.model_validate(document)

    return router


StartRequest = Callable[[IntakeUnitOfWork, PersonRef, tuple[str, ...]], Awaitable[PrivacyRequest]]


def _add_request_routes(
    router: APIRouter,
    unit_of_work: Callable[[], IntakeUnitOfWork],
    kind: RequestKind,
    path: str,
    start_request: StartRequest,
    *,
    services: tuple[str, ...],
    phone_region: str,
    admin: params.Depends,
) -> None:
    """`POST {path}` files a request of `kind`; `GET {path}/{request_id}` shows its answers."""
    as_admin = error_responses(401, 403)
    what = kind.value

    @router.post(
        path,
        status_code=status.HTTP_202_ACCEPTED,
        response_model=PrivacyRequestView,
        dependencies=[admin],
        responses=as_admin,
        name=f"request_{what}",
    )
    async def file_request(person: PersonQuery) -> PrivacyRequestView:
        subject = person.subject(phone_region)
        async with unit_of_work() as uow:
            request = await start_request(uow, subject, services)
        return PrivacyRequestView.of(request)

    @router.get(
        f"{path}/{{request_id}}",
        response_model=PrivacyRequestView,
        dependencies=[admin],
        responses={**as_admin, **error_responses(404)},
        name=f"{what}_status",
    )
    async def request_status(request_id: uuid.UUID) -> PrivacyRequestView:
        async with unit_of_work() as uow:
            request = await privacy.get_request(uow, request_id, kind)
        return PrivacyRequestView.of(request)


def subscribe_privacy_replies(runtime: Any, services: tuple[str, ...]) -> None:
    """Record every service's answer to a request intake made."""

    async def on_reply(uow: IntakeUnitOfWork, envelope: Envelope[Any]) -> None:
        await privacy.record_reply(uow, envelope.data)

    for service in services:
        runtime.consumer.subscribe(
            privacy_replies_topic(service),
            on_reply,
            description=f"Records {service}'s answer to a data-subject request.",
        )
