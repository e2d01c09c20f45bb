"""HTTP pieces every service shares: errors, bearer-token roles, correlation ids."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import Conflict, DomainError, Forbidden, InvalidRequest, NotFound
from shared.platform.logging import correlation_id_var
from shared.platform.settings import ServiceSettings

CORRELATION_HEADER = "X-Correlation-ID"
HTTP_ERROR_CODES = {
    400: "bad_request",
    408: "request_timeout",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}

_ERROR_DESCRIPTIONS = {
    400: "The request could not be read",
    401: "No valid API token",
    403: "The token's role may not do this",
    404: "No such resource",
    408: "The request body arrived too slowly",
    409: "The request conflicts with the resource's state",
    413: "The request body is too large",
    422: "The request is invalid; `errors` names each field and why",
    429: "Too many requests; retry after the `Retry-After` seconds",
    500: "An unexpected error; nothing was changed",
    503: "A dependency is unavailable; retry after the `Retry-After` seconds",
}


class FieldError(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    """Every error answer of every service: a machine code, an English message, and per
    field what is wrong (validation errors)."""

    error: str
    message: str
    errors: list[FieldError] | None = None


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses a route can answer."""
    return {
        code: {"model": ErrorBody, "description": _ERROR_DESCRIPTIONS.get(code, "Error")}
        for code in codes
    }


class Role(StrEnum):
    ADMIN = "admin"
    COORDINATOR = "coordinator"
    CLERK = "clerk"


class ApiError(Exception):
    """An error the API reports as-is: status, machine code, English message."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        problems: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.field = field
        self.problems = problems or []


def _field_path(location: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in location]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "<root>"


def validation_error_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "error": "validation_failed",
        "message": "The request is invalid.",
        "errors": [
            {"field": _field_path(tuple(item["loc"])), "reason": item["msg"]} for item in errors
        ],
    }


def domain_error_status(error: DomainError) -> int:
    """The HTTP status of a domain rule violation, by its kind."""
    for kind, status_code in (
        (InvalidRequest, 422),
        (NotFound, 404),
        (Conflict, 409),
        (Forbidden, 403),
    ):
        if isinstance(error, kind):
            return status_code
    return 422


def install_error_handlers(app: FastAPI) -> None:
    async def on_validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content=validation_error_body(list(exc.errors())),
        )

    async def on_api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        body: dict[str, Any] = {"error": exc.code, "message": exc.message}
        if exc.problems:
            body["errors"] = exc.problems
        elif exc.field is not None:
            body["errors"] = [{"field": exc.field, "reason": exc.message}]
        return JSONResponse(status_code=exc.status_code, content=body)

    async def on_http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            status_code=exc.status_code,
            content={"error": code, "message": str(exc.detail)},
            headers=dict(exc.headers or {}),
        )

    async def on_domain_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        body: dict[str, Any] = {"error": exc.code, "message": exc.message}
        if exc.problems:
            body["errors"] = [{"field": p.field, "reason": p.reason} for p in exc.problems]
        return JSONResponse(status_code=domain_error_status(exc), content=body)

    async def on_unexpected_error(_: Request, exc: Exception) -> Response:
        # Starlette logs the exception after this answer; the client learns nothing internal.
        return JSONResponse(
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
            content={"error": "internal_error", "message": "An unexpected error occurred."},
        )

    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(Exception, on_unexpected_error)


class CorrelationMiddleware:
    """Every request runs with a correlation id (the caller's `X-Correlation-ID`, else a
    new one), which logs and events carry and the answer repeats.

    Plain ASGI rather than `@app.middleware("http")`: Starlette's `BaseHTTPMiddleware`
    runs each request through an extra task and a memory stream, which cost about a
    tenth of intake's time per submission under load.
    """

    _HEADER = CORRELATION_HEADER.lower().encode("latin-1")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == self._HEADER), b"")
        correlation_id = (given.decode("latin-1") or str(uuid.uuid4()))[:200]
        header = (self._HEADER, correlation_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = correlation_id_var.set(correlation_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id_var.reset(token)


def install_correlation_middleware(app: FastAPI) -> None:
    app.add_middleware(CorrelationMiddleware)


class TokenAuth:
    """Static bearer tokens per role; `admin` may do whatever the others may."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._tokens: dict[Role, SecretStr | None] = {
            Role.ADMIN: settings.admin_token,
            Role.COORDINATOR: settings.coordinator_token,
            Role.CLERK: settings.clerk_token,
        }
        self._scheme = HTTPBearer(auto_error=False)

    def role_of(self, token: str) -> Role | None:
        for role, expected in self._tokens.items():
            if expected is not None and secrets.compare_digest(
                token.encode(), expected.get_secret_value().encode()
            ):
                return role
        return None

    def peek_role(self, request: Request) -> Role | None:
        """The role of the request's bearer token, if it holds a valid one (never raises)."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return self.role_of(token.strip())

    async def optional_role(self, request: Request) -> Role | None:
        credentials: HTTPAuthorizationCredentials | None = await self._scheme(request)
        if credentials is None:
            return None
        role = self.role_of(credentials.credentials)
        if role is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="invalid API token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return role

    def require(self, *allowed: Role) -> Callable[[Request], Awaitable[Role]]:
        permitted = {Role.ADMIN, *allowed}

        async def dependency(request: Request) -> Role:
            role = await self.optional_role(request)
            if role is None:
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED,
                    detail="an API token is required",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if role not in permitted:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    detail=f"role {role.value} may not do this",
                )
            return role

        return dependency
