"""Guards every service's HTTP app wears: body limits, rate limits, security headers, and
honest answers while a dependency is down.

* `BodyLimit` (ASGI): a body larger than its route allows is refused with 413 from the
  `Content-Length` before a byte is read, and counted while streaming when there is none;
  an upload that stalls is cut off with 408. The body is read here, up to the limit, and
  handed on — so a 20 MB body costs nothing but the refusal. Routes declare their limit
  with `openapi_extra=body_limit(n)`; others get the service default.
* `SecurityHeaders` (ASGI): `X-Content-Type-Options`, a restrictive CSP for the API (the
  docs page gets one that allows its own local assets), `Referrer-Policy`, and HSTS on
  requests that arrived over TLS.
* `RateLimiter`: fixed one-minute windows per client and route group, counted in the
  service's own database, so every replica sees the same count; 429 with `Retry-After`.
  Clerks and administrators (a valid role token) are not limited. The client is the TCP
  peer, or the address a trusted proxy put in `X-Forwarded-For` (uvicorn's
  `ProxyHeadersMiddleware` with the configured `trusted_proxies`).
* `dependency_unavailable`: a database that cannot be reached is 503 with `Retry-After`
  and the usual JSON error body, never a bare 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException, Request, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.platform.availability import UNAVAILABLE_ERRORS
from shared.platform.http import Role, TokenAuth

log = logging.getLogger(__name__)

MAX_BODY_EXTRA = "x-max-body-bytes"
RETRY_AFTER_UNAVAILABLE_SECONDS = 5


def body_limit(max_bytes: int) -> dict[str, Any]:
    """`openapi_extra` of a route accepting bodies of up to `max_bytes` (documented too)."""
    return {MAX_BODY_EXTRA: max_bytes}


def _error(
    status_code: int, code: str, message: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    body = json.dumps({"error": code, "message": message}).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in (headers or {}).items()),
    ]
    return status_code, body, raw_headers


async def _answer(send: Send, answer: tuple[int, bytes, list[tuple[bytes, bytes]]]) -> None:
    status_code, body, headers = answer
    await send({"type": "http.response.start", "status": status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(
        self, app: ASGIApp, *, default_max_bytes: int, read_timeout_seconds: float
    ) -> None:
        self.app = app
        self._default = default_max_bytes
        self._timeout = read_timeout_seconds
        # (method, path pattern, limit) of every route declaring its own limit, read once
        # from the app's OpenAPI document: FastAPI (≥ 0.16x) keeps included routers as
        # lazily resolved branches, so its route list no longer names each operation.
        self._limits: list[tuple[str, re.Pattern[str], int]] | None = None

    def _declared_limits(self, application: Any) -> list[tuple[str, re.Pattern[str], int]]:
        if self._limits is None:
            limits = []
            openapi = getattr(application, "openapi", None)
            paths = openapi().get("paths", {}) if callable(openapi) else {}
            for template, operations in paths.items():
                pattern = re.compile(
                    "^"
                    + "".join(
                        "[^/]+" if part.startswith("{") else re.escape(part)
                        for part in re.split(r"(\{[^}]+\})", template)
                        if part
                    )
                    + "$"
                )
                for method, operation in operations.items():
                    if isinstance(operation, dict) and MAX_BODY_EXTRA in operation:
                        limits.append((method.upper(), pattern, int(operation[MAX_BODY_EXTRA])))
            self._limits = limits
        return self._limits

    def _limit_for(self, scope: Scope) -> int:
        application = scope.get("app")
        if application is None:
            return self._default
        method, path = scope.get("method", ""), scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        for wanted, pattern, limit in self._declared_limits(application):
            if wanted == method and pattern.match(path):
                return limit
        return self._default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope)
        too_large = _error(
            status.HTTP_413_CONTENT_TOO_LARGE,
            "payload_too_large",
            f"the request body may hold at most {limit} bytes",
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    await _answer(send, too_large)
                    return
            except ValueError:
                await _answer(send, _error(400, "bad_request", "invalid Content-Length"))
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            try:
                message = await asyncio.wait_for(receive(), timeout=self._timeout)
            except TimeoutError:
                await _answer(
                    send,
                    _error(408, "request_timeout", "the request body arrived too slowly"),
                )
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(send, too_large)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect

        await self.app(scope, replay, send)


API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, docs_prefix: str = "/docs") -> None:
        self.app = app
        self._docs_prefix = docs_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = str(scope.get("path", "")).startswith(self._docs_prefix)
        over_tls = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = {
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"no-referrer",
                    b"content-security-policy": (DOCS_CSP if docs else API_CSP).encode(),
                    b"cross-origin-resource-policy": b"same-origin",
                }
                if over_tls:
                    extra[b"strict-transport-security"] = HSTS.encode()
                headers.extend(
                    (name, value) for name, value in extra.items() if name not in present
                )
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class RateLimiter:
    """`limiter.limit("submissions", per_minute)` is a FastAPI dependency for a route."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], auth: TokenAuth) -> None:
        self._pool = pool
        self._auth = auth

    def limit(self, group: str, per_minute: int) -> Callable[[Request], Awaitable[None]]:
        async def dependency(request: Request) -> None:
            if per_minute <= 0:
                return  # switched off
            role = self._auth.peek_role(request)
            if role in {Role.CLERK, Role.ADMIN}:
                return  # staff typing in forms are not the abuse this guards against
            client = request.client.host if request.client else "unknown"
            # Only a pseudonym of the address is stored (it is personal data).
            bucket = f"{group}:{hashlib.sha256(client.encode()).hexdigest()[:32]}"
            hits, window_ends = await self._count(bucket)
            if hits > per_minute:
                retry_after = max(
                    1, int((window_ends - datetime.now(window_ends.tzinfo)).total_seconds()) + 1
                )
                raise HTTPException(
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    detail=f"at most {per_minute} requests a minute; try again later",
                    headers={"Retry-After": str(retry_after)},
                )

        return dependency

    async def _count(self, bucket: str) -> tuple[int, datetime]:
        async with self._pool().acquire() as conn:
            row = await conn.fetchrow(
                "INSERT INTO rate_limits (bucket, window_start, hits)"
                " VALUES ($1, date_trunc('minute', now()), 1)"
                " ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + 1"
                " RETURNING hits, window_start",
                bucket,
            )
            if random.random() < 0.01:  # noqa: S311 - housekeeping, not security
                await conn.execute(
                    "DELETE FROM rate_limits WHERE window_start < now() - interval '1 hour'"
                )
        assert row is not None
        window_start: datetime = row["window_start"]
        return int(row["hits"]), window_start + timedelta(minutes=1)


def install_unavailable_handler(app: FastAPI) -> None:
    from fastapi.responses import JSONResponse

    async def dependency_unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("a dependency is unavailable", extra={"error": repr(exc)})
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            content={
                "error": "unavailable",
                "message": "The service cannot reach a dependency; try again shortly.",
            },
            headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_SECONDS)},
        )

    for error in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, dependency_unavailable)
