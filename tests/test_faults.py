"""Faults survived: the `make chaos` engine (`benchmarks/chaos.py`) on a shorter plan, with
what must hold asserted. Its own Kafka, PostgreSQL and SMTP sink processes (the session's
shared ones must not be crashed), intake, notifications and groups as `python -m` processes, and
residents submitting steadily throughout, retrying with their Idempotency-Key.

For each fault — `kill -9` of notifications, `kill -9` of the broker, a PostgreSQL crash
(`immediate` shutdown), the SMTP relay down — every accepted submission gets exactly one
receipt (a second copy would have to carry the same Message-ID: the documented window
between the SMTP server's acceptance and our commit), clients only ever get a JSON 503 with
`Retry-After` while something is down, readiness of the services that stayed up turns 503
and back to 200 by itself, and nobody restarts them."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.chaos import run_chaos

pytestmark = pytest.mark.integration


async def test_faults_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    run = await run_chaos(
        ["notifications", "kafka", "postgres", "smtp"],
        services=("intake", "notifications", "groups"),
        rate=5,
        smtp_outage=15,
        settle_timeout=600,
        calm_seconds=3,
        scratch=tmp_path,
        report=False,
    )
    for outcome in run.outcomes:
        assert outcome.accepted > 0, outcome
        assert outcome.lost == 0, outcome
        assert outcome.duplicated_other == 0, outcome
        defects = {kind: n for kind, n in outcome.answers.items() if kind.startswith("DEFECT")}
        assert defects == {}, outcome
        assert outcome.recovered_seconds is not None
    by_fault = {outcome.fault: outcome for outcome in run.outcomes}
    # A dependency down is reported by the services that depend on it, and they come back
    # by themselves (the tool never restarts a service that stayed up).
    everyone = {"intake": True, "notifications": True, "groups": True}
    assert by_fault["kafka"].saw_not_ready == everyone
    assert by_fault["postgres"].saw_not_ready == everyone
    totals = run.totals
    assert totals.gave_up == 0
    assert totals.stored == totals.accepted  # retried requests took effect once
    assert totals.emailed == totals.accepted
    assert totals.projected_by_groups == totals.stored  # no backlog dead-lettered by an outage
