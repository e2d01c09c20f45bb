"""The services' public HTTP APIs as the web front sees them.

Every call returns the decoded JSON or raises one of three errors the pages translate:
`ServiceDown` (no answer, or 5xx/503: the page says which service and what still works),
`ApiError` (4xx with the service's JSON error body: shown next to the fields, or as a
helpful page) — never a stack trace.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx

# The resident's address, as the web front received the request: sent on as
# X-Forwarded-For, so the services' per-client rate limits count residents, not the web
# front (the services believe it only from addresses in their STRATEGIA_TRUSTED_PROXIES).
CLIENT_ADDRESS: ContextVar[str | None] = ContextVar("client_address", default=None)


class ServiceDown(Exception):
    def __init__(self, service: str) -> None:
        super().__init__(service)
        self.service = service


@dataclass
class ApiError(Exception):
    service: str
    status: int
    code: str = ""
    message: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.service} {self.status} {self.code}: {self.message}"

    def fields(self) -> dict[str, str]:
        """Field path (``submitter.email``) -> the service's reason, first one per field."""
        found: dict[str, str] = {}
        for error in self.errors:
            name = str(error.get("field", ""))
            found.setdefault(name, str(error.get("reason", "")))
        return found


class ServiceClient:
    """One service's API (base URL, timeouts); `request` maps failures to the errors above."""

    def __init__(
        self,
        name: str,
        base_url: str,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> Any:
        sent = dict(headers or {})
        address = CLIENT_ADDRESS.get()
        if address:
            sent.setdefault("X-Forwarded-For", address)
        if token:
            sent["Authorization"] = f"Bearer {token}"
        try:
            response = await self.http.request(method, path, json=json, params=params, headers=sent)
        except httpx.HTTPError as exc:
            raise ServiceDown(self.name) from exc
        if response.status_code >= 500:
            raise ServiceDown(self.name)
        if response.status_code >= 400:
            try:
                data = response.json()
            except ValueError:
                data = {}
            if not isinstance(data, dict):
                data = {}
            errors = data.get("errors")
            raise ApiError(
                self.name,
                response.status_code,
                str(data.get("error", "")),
                str(data.get("message", "")),
                errors if isinstance(errors, list) else [],
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ServiceDown(self.name) from exc

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Any:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Any:
        return await self.request("PUT", path, **kwargs)

    async def aclose(self) -> None:
        await self.http.aclose()


@dataclass
class Services:
    intake: ServiceClient
    groups: ServiceClient
    notifications: ServiceClient
    news: ServiceClient

    async def aclose(self) -> None:
        for client in (self.intake, self.groups, self.notifications, self.news):
            await client.aclose()
