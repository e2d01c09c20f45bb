"""Addresses of the public pages that emailed links lead to (served by the web front).

A link carries its secret as the `token` query parameter and opens a page; the page spends
the token with a POST to the owning service's API. Notifications builds the links from
`ServiceSettings.public_base_url` and these paths; the web front serves them. Polish
paths, as residents see them.
"""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import quote, urlencode


class Page(StrEnum):
    VOLUNTEER_CONFIRM = "/wolontariat/potwierdz"
    VOLUNTEER_WITHDRAW = "/wolontariat/rezygnacja"
    MEMBER_SIGN_IN = "/czlonkowie/logowanie"
    SUBSCRIPTION_CONFIRM = "/subskrypcje/potwierdz"
    SUBSCRIPTION_MANAGE = "/subskrypcje/zarzadzaj"
    UNSUBSCRIBE = "/subskrypcje/wypisz"
    # Public pages linked from emails and feeds: `item_link` adds the item's slug or id.
    NEWS = "/aktualnosci"
    ALERTS = "/ostrzezenia"


def page_link(base_url: str, page: Page, *, token: str | None = None, **params: str) -> str:
    query = {**params, **({"token": token} if token is not None else {})}
    suffix = f"?{urlencode(query)}" if query else ""
    return f"{base_url.rstrip('/')}{page.value}{suffix}"


def item_link(base_url: str, page: Page, item: str) -> str:
    """The page of one item of a list page, e.g. one article: `/aktualnosci/<slug>`."""
    return f"{base_url.rstrip('/')}{page.value}/{quote(item, safe='')}"
