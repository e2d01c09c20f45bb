"""Use cases of the data-subject requests intake owns: open one, record each service's
answer, assemble the export once every service has answered."""

from __future__ import annotations

import json
import uuid
from typing import Any

from intake.domain.privacy import PrivacyRequest, Reply, RequestKind
from intake.service.ports import IntakeUnitOfWork
from shared.clock import utc_now
from shared.contracts.privacy import (
    ErasureCompleted,
    ErasureRequested,
    ExportAnswered,
    ExportRequested,
    PersonRef,
)
from shared.errors import Conflict, NotFound
from shared.platform.privacy import export_associated_data, new_key_pair, open_sealed


async def request_erasure(
    uow: IntakeUnitOfWork, subject: PersonRef, services: tuple[str, ...]
) -> PrivacyRequest:
    request = PrivacyRequest(
        id=uuid.uuid4(),
        kind=RequestKind.ERASURE,
        subject_kind=subject.kind,
        services=services,
        requested_at=utc_now(),
    )
    await uow.privacy_requests.add(request)
    uow.stage_event(
        ErasureRequested(request_id=request.id, subject=subject, requested_at=request.requested_at),
        key=request.id,
    )
    await uow.commit()
    return request


async def request_export(
    uow: IntakeUnitOfWork, subject: PersonRef, services: tuple[str, ...]
) -> PrivacyRequest:
    private_key, public_key = new_key_pair()
    request = PrivacyRequest(
        id=uuid.uuid4(),
        kind=RequestKind.EXPORT,
        subject_kind=subject.kind,
        services=services,
        requested_at=utc_now(),
        private_key=private_key,
    )
    await uow.privacy_requests.add(request)
    uow.stage_event(
        ExportRequested(
            request_id=request.id,
            subject=subject,
            requested_at=request.requested_at,
            public_key=public_key,
        ),
        key=request.id,
    )
    await uow.commit()
    return request


async def record_reply(uow: IntakeUnitOfWork, reply: ErasureCompleted | ExportAnswered) -> None:
    """Remember a service's answer (a request intake does not know is ignored)."""
    sealed = reply.sealed if isinstance(reply, ExportAnswered) else None
    answered_at = reply.answered_at if isinstance(reply, ExportAnswered) else reply.completed_at
    await uow.privacy_requests.add_reply(
        reply.request_id,
        Reply(service=reply.service, records=reply.records, answered_at=answered_at, sealed=sealed),
    )
    await uow.commit()


async def get_request(
    uow: IntakeUnitOfWork, request_id: uuid.UUID, kind: RequestKind
) -> PrivacyRequest:
    request = await uow.privacy_requests.get(request_id)
    if request is None or request.kind is not kind:
        raise NotFound(f"no {kind} request {request_id}")
    return request


async def assemble_export(uow: IntakeUnitOfWork, request_id: uuid.UUID) -> dict[str, Any]:
    """Every service's records, opened with the request's private key."""
    request = await get_request(uow, request_id, RequestKind.EXPORT)
    if not request.complete:
        waiting = [s for s in request.services if s not in request.replies]
        raise Conflict(f"still waiting for: {', '.join(waiting)}")
    if request.private_key is None:
        raise Conflict("this export has expired (its key was deleted)")
    services: dict[str, Any] = {}
    for service in request.services:
        reply = request.replies[service]
        if reply.sealed is None:
            services[service] = {}
            continue
        plaintext = open_sealed(
            request.private_key,
            reply.sealed,
            associated_data=export_associated_data(request.id, service),
        )
        services[service] = json.loads(plaintext)
    return {
        "request_id": str(request.id),
        "requested_at": request.requested_at.isoformat(),
        "services": services,
    }
