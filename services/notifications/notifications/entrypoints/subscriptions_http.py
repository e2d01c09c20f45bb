"""HTTP API of subscriptions: request, confirm, manage, unsubscribe (also RFC 8058).

Emailed links lead to pages of the web front (`shared.contracts.links`), never to a
state-changing GET: mail scanners open links before people do. The pages POST the link's
token here. The one exception is the `List-Unsubscribe` URL, which mailbox providers POST
to directly (RFC 8058 one-click); a GET of it changes nothing either.
"""
# No `from __future__ import annotations`: FastAPI must evaluate the route signatures.

from collections.abc import Awaitable, Callable
from email import message_from_bytes, policy
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StrictInt

from notifications.domain.subscriptions import (
    Preferences,
    Subscription,
    SubscriptionStatus,
    SubscriptionTopic,
)
from notifications.service.ports import NotificationsUnitOfWork
from notifications.service.subscriptions import SubscriptionService
from shared.contracts.intake import Language
from shared.platform.http import ApiError, error_responses

STRICT = ConfigDict(extra="forbid", frozen=True)
# Confirmation tokens are URL-safe base64 (secrets.token_urlsafe); manage and unsubscribe
# link tokens are dot-separated URL-safe parts (`SubscriberLinkTokens`).
Token = Annotated[
    str, Field(min_length=16, max_length=200, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
]
Level = Annotated[StrictInt, Field(ge=1, le=3)]


def _no_duplicates(topics: list[SubscriptionTopic]) -> list[SubscriptionTopic]:
    if len(set(topics)) != len(topics):
        raise ValueError("each topic at most once")
    return topics


Topics = Annotated[
    list[SubscriptionTopic],
    Field(min_length=1, max_length=3, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_no_duplicates),
]


class SubscriptionCreate(BaseModel):
    model_config = STRICT

    email: EmailStr
    topics: Topics
    min_level: Level = Field(default=1, description="Alerts of at least this level (1–3)")
    locale: Language = Language.PL


class TokenIn(BaseModel):
    model_config = STRICT

    token: Token


class PreferencesIn(TokenIn):
    topics: Topics
    min_level: Level = 1
    locale: Language = Language.PL


class SubscriptionRequested(BaseModel):
    status: str = "confirmation_requested"
    message: str = (
        "If this address can receive email, a confirmation link is on its way; nothing is "
        "sent before it is confirmed."
    )


class PreferencesView(BaseModel):
    topics: list[SubscriptionTopic]
    min_level: int
    locale: Language


class SubscriptionView(BaseModel):
    email: str
    status: SubscriptionStatus
    topics: list[SubscriptionTopic]
    min_level: int
    locale: Language
    requested: PreferencesView | None = Field(
        description="A change asked for by email and not confirmed yet"
    )

    @classmethod
    def of(cls, subscription: Subscription) -> "SubscriptionView":
        current, requested = subscription.preferences, subscription.requested
        return cls(
            email=subscription.email,
            status=subscription.status,
            topics=list(current.topics),
            min_level=current.min_level,
            locale=current.locale,
            requested=PreferencesView(
                topics=list(requested.topics),
                min_level=requested.min_level,
                locale=requested.locale,
            )
            if requested is not None and subscription.status is SubscriptionStatus.CONFIRMED
            else None,
        )


class Unsubscribed(BaseModel):
    status: SubscriptionStatus


ONE_CLICK_BODY: dict[str, Any] = {
    "required": True,
    "description": "RFC 8058: the mailbox provider's POST, `List-Unsubscribe=One-Click`.",
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "required": ["List-Unsubscribe"],
                "properties": {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}},
            }
        },
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["List-Unsubscribe"],
                "properties": {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}},
            }
        },
    },
}


def one_click_values(content_type: str, body: bytes) -> list[str]:
    """The `List-Unsubscribe` values of a form body (urlencoded or multipart)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            return []
        return fields.get("List-Unsubscribe", [])
    if media_type == "multipart/form-data":
        parsed = message_from_bytes(
            f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace") + body,
            policy=policy.HTTP,
        )
        if not parsed.is_multipart():
            return []
        values = []
        for part in parsed.iter_parts():
            if part.get_param("name", header="content-disposition") == "List-Unsubscribe":
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    values.append(payload.decode("utf-8", "replace").strip())
        return values
    return []


def subscriptions_router(
    service: SubscriptionService,
    unit_of_work: Callable[[], NotificationsUnitOfWork],
    *,
    public_write_limit: Callable[[Request], Awaitable[None]],
    one_click_limit: Callable[[Request], Awaitable[None]],
) -> APIRouter:
    router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])
    # Every route is public and writes or spends a token (which a guesser would hammer):
    # each is rate limited per client. Mailbox providers' one-click POSTs come from a few
    # addresses on behalf of many people, so they have their own, larger budget.
    limited = [Depends(public_write_limit)]
    one_click_limited = [Depends(one_click_limit)]

    @router.post(
        "",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=SubscriptionRequested,
        responses=error_responses(429),
        dependencies=limited,
        summary="Ask for email about alerts, news or consultations (double opt-in)",
    )
    async def subscribe(request: SubscriptionCreate) -> SubscriptionRequested:
        """The same answer whether the address was known or not; the address's owner
        confirms with the emailed link (see `/confirm`)."""
        preferences = Preferences.of(request.topics, request.min_level, request.locale)
        async with unit_of_work() as uow:
            await service.subscribe(uow, str(request.email), preferences)
        return SubscriptionRequested()

    @router.post(
        "/confirm",
        response_model=SubscriptionView,
        responses=error_responses(422, 429),
        dependencies=limited,
        summary="Spend the token of a confirmation link",
    )
    async def confirm(request: TokenIn) -> SubscriptionView:
        async with unit_of_work() as uow:
            return SubscriptionView.of(await service.confirm(uow, request.token))

    @router.post(
        "/manage",
        response_model=SubscriptionView,
        responses=error_responses(422, 429),
        dependencies=limited,
        summary="The subscription of a manage link",
    )
    async def show(request: TokenIn) -> SubscriptionView:
        async with unit_of_work() as uow:
            return SubscriptionView.of(await service.show(uow, request.token))

    @router.put(
        "/manage",
        response_model=SubscriptionView,
        responses=error_responses(422, 429),
        dependencies=limited,
        summary="Change topics, level or language through a manage link",
    )
    async def change(request: PreferencesIn) -> SubscriptionView:
        preferences = Preferences.of(request.topics, request.min_level, request.locale)
        async with unit_of_work() as uow:
            return SubscriptionView.of(await service.change(uow, request.token, preferences))

    @router.post(
        "/unsubscribe",
        response_model=Unsubscribed,
        responses=error_responses(422, 429),
        dependencies=limited,
        summary="Unsubscribe through the link in an email",
    )
    async def unsubscribe(request: TokenIn) -> Unsubscribed:
        async with unit_of_work() as uow:
            gone = await service.unsubscribe(uow, request.token)
        return Unsubscribed(status=gone.status)

    @router.post(
        "/one-click-unsubscribe",
        response_model=Unsubscribed,
        responses=error_responses(422, 429),
        dependencies=one_click_limited,
        openapi_extra={"requestBody": ONE_CLICK_BODY},
        summary="RFC 8058 one-click unsubscribe (the List-Unsubscribe URL)",
    )
    async def one_click(
        request: Request, token: Annotated[Token, Query(description="The link token")]
    ) -> Unsubscribed:
        values = one_click_values(request.headers.get("content-type", ""), await request.body())
        if values != ["One-Click"]:
            raise ApiError(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "validation_failed",
                "the body must be the form field List-Unsubscribe=One-Click (RFC 8058)",
                field="List-Unsubscribe",
            )
        async with unit_of_work() as uow:
            gone = await service.unsubscribe(uow, token)
        return Unsubscribed(status=gone.status)

    return router
