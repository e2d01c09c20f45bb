"""Polling the IMGW warning feeds: fetch with retries, then ingest what the fetch means.

A fetch is retried with capped exponential back-off (with jitter) when the feed does not
answer, answers slowly (the client's timeout), or answers something unusable (`FeedError`:
a 5xx, a 404 without the "No products were found" body, bytes that are not a JSON array).
When every attempt failed, the outcome is a `FailedFetch`: the life cycle then confirms
and cancels nothing, so a feed that is down never withdraws an alert. A feed whose
individual records are broken is used as it is (new warnings still count) and logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from news.domain.imgw import (
    FailedFetch,
    FeedError,
    FeedKind,
    FetchOutcome,
    parse_hydro,
    parse_meteo,
)
from news.service.handlers import IngestReport, NewsService
from news.service.ports import FeedSource, FeedUnavailable, NewsUnitOfWork
from shared.platform.backoff import exponential_backoff

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    attempts: int
    backoff_seconds: float
    max_backoff_seconds: float


async def fetch_feed(
    source: FeedSource,
    kind: FeedKind,
    *,
    zone: ZoneInfo,
    policy: FetchPolicy,
    sleep: Sleep = asyncio.sleep,
) -> FetchOutcome:
    """One usable answer of the feed, or a `FailedFetch` after `policy.attempts` tries."""
    parse = parse_meteo if kind is FeedKind.METEO else parse_hydro
    reason = "no attempt made"
    for attempt in range(1, policy.attempts + 1):
        try:
            answer = await source.get(kind)
            feed = parse(answer.status, answer.body, zone)
        except (FeedUnavailable, FeedError) as error:
            reason = error.reason if isinstance(error, FeedError) else str(error)
            if attempt == policy.attempts:
                break
            delay = exponential_backoff(
                attempt,
                base=policy.backoff_seconds,
                cap=policy.max_backoff_seconds,
                jitter=True,
            )
            log.warning(
                "IMGW feed failed; retrying",
                extra={
                    "feed": kind.value,
                    "attempt": attempt,
                    "error": reason,
                    "retry_in_s": delay,
                },
            )
            await sleep(delay)
            continue
        if feed.problems:
            log.warning(
                "IMGW feed has unreadable records; nothing is cancelled on this fetch",
                extra={
                    "feed": kind.value,
                    "problems": [
                        f"#{problem.index} {problem.key or '?'}: {problem.reason}"
                        for problem in feed.problems[:20]
                    ],
                },
            )
        return feed
    log.error(
        "IMGW feed unusable; active alerts are left as they are",
        extra={"feed": kind.value, "attempts": policy.attempts, "error": reason},
    )
    return FailedFetch(kind, reason)


class ImgwPolling:
    """One poll cycle over both feeds: fetch (outside any transaction), then ingest."""

    def __init__(
        self,
        service: NewsService,
        unit_of_work: Callable[[], NewsUnitOfWork],
        source: FeedSource,
        *,
        zone: ZoneInfo,
        policy: FetchPolicy,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._service = service
        self._unit_of_work = unit_of_work
        self._source = source
        self._zone = zone
        self._policy = policy
        self._sleep = sleep

    async def poll_feed(self, kind: FeedKind) -> IngestReport:
        outcome = await fetch_feed(
            self._source, kind, zone=self._zone, policy=self._policy, sleep=self._sleep
        )
        async with self._unit_of_work() as uow:
            report = await self._service.ingest(uow, outcome)
        plan = report.plan
        log.info(
            "IMGW feed ingested",
            extra={
                "feed": kind.value,
                "reliable": plan.reliable,
                "issued": [f"{m.message_type.value} {m.id}" for m in report.issued],
                "unchanged": len(plan.unchanged),
                "unconfirmed": len(plan.unconfirmed),
                "expired": len(plan.expired),
                "duplicate_keys": list(plan.duplicates),
            },
        )
        return report

    async def poll_once(self) -> list[IngestReport]:
        return [await self.poll_feed(kind) for kind in FeedKind]
