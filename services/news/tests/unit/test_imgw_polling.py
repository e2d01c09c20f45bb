"""Fetching an IMGW feed: retries with back-off, and what a feed that fails means."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from news.domain.imgw import FailedFetch, FeedKind, ParsedFeed
from news.domain.lifecycle import ImgwScope
from news.service.handlers import NewsService
from news.service.imgw import FetchPolicy, ImgwPolling, fetch_feed
from news.service.ports import FeedAnswer, FeedUnavailable

from .conftest import NOW, FakeStore

WARSAW = ZoneInfo("Europe/Warsaw")
IMGW = Path(__file__).parent.parent / "data" / "imgw"
POLICY = FetchPolicy(attempts=4, backoff_seconds=1.0, max_backoff_seconds=3.0)


class ScriptedSource:
    """Answers (or fails) as scripted, one step per request; the last step repeats."""

    def __init__(self, *steps: FeedAnswer | Exception) -> None:
        self.steps = list(steps)
        self.requests: list[FeedKind] = []

    async def get(self, kind: FeedKind) -> FeedAnswer:
        self.requests.append(kind)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step


class Sleeps:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def answer(name: str, status: int = 200) -> FeedAnswer:
    return FeedAnswer(status=status, body=(IMGW / name).read_bytes())


async def test_a_failing_feed_is_retried_with_backoff_until_it_answers() -> None:
    source = ScriptedSource(
        FeedUnavailable("connection refused"),
        FeedUnavailable("no answer in time"),
        answer("meteo_new.json"),
    )
    sleeps = Sleeps()
    outcome = await fetch_feed(source, FeedKind.METEO, zone=WARSAW, policy=POLICY, sleep=sleeps)
    assert isinstance(outcome, ParsedFeed) and len(outcome.warnings) == 2
    assert len(source.requests) == 3
    # Jittered exponential back-off: attempt n waits within [base·2ⁿ⁻¹ / 2, base·2ⁿ⁻¹].
    assert 0.5 <= sleeps.seconds[0] <= 1.0 and 1.0 <= sleeps.seconds[1] <= 2.0


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (FeedUnavailable("timed out"), "timed out"),
        (answer("meteo_malformed.json"), "malformed JSON"),
        (answer("meteo_not_array.json"), "expected a JSON array"),
        (FeedAnswer(status=503, body=b"<html>busy</html>"), "HTTP status 503"),
        (FeedAnswer(status=404, body=b"Not Found"), "404 without"),
    ],
)
async def test_a_feed_that_never_gives_a_usable_answer_is_a_failed_fetch(
    step: FeedAnswer | Exception, reason: str
) -> None:
    source = ScriptedSource(step)
    sleeps = Sleeps()
    outcome = await fetch_feed(source, FeedKind.METEO, zone=WARSAW, policy=POLICY, sleep=sleeps)
    assert isinstance(outcome, FailedFetch) and reason in outcome.reason
    assert len(source.requests) == POLICY.attempts
    assert len(sleeps.seconds) == POLICY.attempts - 1
    assert max(sleeps.seconds) <= POLICY.max_backoff_seconds


async def test_no_products_is_an_empty_feed_not_a_failure() -> None:
    source = ScriptedSource(answer("meteo_no_products.json", status=404))
    outcome = await fetch_feed(source, FeedKind.METEO, zone=WARSAW, policy=POLICY, sleep=Sleeps())
    assert isinstance(outcome, ParsedFeed) and outcome.warnings == () and outcome.complete
    assert len(source.requests) == 1


async def test_a_poll_cycle_fetches_both_feeds_and_a_dead_feed_cancels_nothing(
    store: FakeStore,
) -> None:
    service = NewsService(
        scope=ImgwScope.of("1418", "powiat piaseczyński", ["Z_O_MA_2594"]),
        zone=WARSAW,
        area_names={},
        clock=lambda: NOW,
    )

    def polling(source: ScriptedSource) -> ImgwPolling:
        return ImgwPolling(
            service, store.unit_of_work, source, zone=WARSAW, policy=POLICY, sleep=Sleeps()
        )

    first = await polling(ScriptedSource(answer("meteo_new.json"))).poll_once()
    assert [len(report.issued) for report in first] == [1, 0]  # meteo, then hydro
    dead = await polling(ScriptedSource(FeedUnavailable("down"))).poll_once()
    assert all(not report.plan.reliable and report.issued == () for report in dead)
    assert len(await store.alerts.current(NOW)) == 1
