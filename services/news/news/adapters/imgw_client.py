"""The IMGW feeds over HTTP (httpx): one GET, a bounded wait, a bounded body.

Whatever the server answers is handed on with its status (the parser decides what a 404
or a 500 means); only the absence of an answer — refused, reset, TLS failure, no answer
within the timeout, a body beyond the size limit — is `FeedUnavailable`.
"""

from __future__ import annotations

import asyncio

import httpx

from news.domain.imgw import FeedKind
from news.service.ports import FeedAnswer, FeedUnavailable

# The real feeds are tens of kilobytes; anything near this is not a warnings list.
MAX_BODY_BYTES = 5 * 1024 * 1024
USER_AGENT = "Strategia-news/0.1 (gmina alerts)"


class HttpFeedSource:
    def __init__(self, urls: dict[FeedKind, str], *, timeout_seconds: float) -> None:
        self._urls = dict(urls)
        # httpx bounds each step (connect, every read); the whole exchange is bounded by
        # the same figure on top, so a server trickling bytes is cut off too.
        self._timeout = timeout_seconds
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            follow_redirects=True,
        )

    async def get(self, kind: FeedKind) -> FeedAnswer:
        url = self._urls[kind]
        try:
            async with asyncio.timeout(self._timeout), self._client.stream("GET", url) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_BODY_BYTES:
                        raise FeedUnavailable(f"{url}: body larger than {MAX_BODY_BYTES} bytes")
                return FeedAnswer(status=response.status_code, body=bytes(body))
        except (httpx.TimeoutException, TimeoutError) as error:
            raise FeedUnavailable(f"{url}: no answer in time ({type(error).__name__})") from error
        except httpx.HTTPError as error:
            raise FeedUnavailable(f"{url}: {type(error).__name__}: {error}") from error

    async def aclose(self) -> None:
        await self._client.aclose()
