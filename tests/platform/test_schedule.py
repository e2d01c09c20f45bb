"""The due-work loop: how long it sleeps, and that it keeps doing due work each round."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared.platform.schedule import MIN_DELAY_SECONDS, DueWork, delay_until, run_due_work

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_nothing_planned_waits_the_longest_interval() -> None:
    assert delay_until(None, NOW, max_interval=30) == 30


def test_a_due_moment_soon_is_waited_for_exactly() -> None:
    assert delay_until(NOW + timedelta(seconds=2.5), NOW, max_interval=30) == 2.5


def test_a_far_due_moment_is_looked_at_again_after_the_interval() -> None:
    assert delay_until(NOW + timedelta(hours=1), NOW, max_interval=30) == 30


def test_a_due_moment_in_the_past_never_makes_the_loop_spin() -> None:
    assert delay_until(NOW - timedelta(minutes=5), NOW, max_interval=30) == MIN_DELAY_SECONDS


async def test_the_loop_runs_due_work_round_after_round() -> None:
    rounds: list[str] = []
    third_round = asyncio.Event()

    async def run_due() -> int:
        rounds.append("run")
        if rounds.count("run") == 3:
            third_round.set()
        return 1

    async def next_due() -> datetime | None:
        rounds.append("next")
        return NOW  # already due: the loop looks again after the minimum delay

    work = DueWork("test", run_due, next_due, lambda: NOW)
    task = asyncio.create_task(run_due_work(work, max_interval=30))
    await asyncio.wait_for(third_round.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rounds[:6] == ["run", "next"] * 3
