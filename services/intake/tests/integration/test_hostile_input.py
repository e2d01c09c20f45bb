"""Input that once crashed the API with a 500 (found by fuzzing) now gets a clear 422.

Each case names the field at fault; none reaches the database or the outbox.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from devtools.pytest_plugin import DatabaseFactory
from devtools.testing import (
    ADMIN,
    RunningService,
    consultation_payload,
    settings_for_test,
    start_service,
    submission_payload,
    unique_prefix,
)
from intake.config import IntakeSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def intake(
    kafka_bootstrap_servers: str, new_database: DatabaseFactory
) -> AsyncIterator[RunningService]:
    service = await start_service(
        "intake",
        settings_for_test(
            IntakeSettings,
            database_url=await new_database.create("intake"),
            kafka=kafka_bootstrap_servers,
            prefix=unique_prefix("hostile"),
        ),
    )
    yield service
    await service.stop()


async def consultation_id(intake: RunningService) -> str:
    response = await intake.client.post(
        "/v1/consultations", json=consultation_payload(), headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": "NUL\u0000w tytule"}, "title"),
        ({"body": "NUL\u0000w treści"}, "body"),
        ({"title": "samotny \ud800 surogat"}, "title"),
        ({"body": "\udfff"}, "body"),
        ({"title": "\u200b\ufeff \u2060 "}, "title"),
        ({"consent": {"processing": "true"}}, "consent.processing"),
        ({"consent": {"processing": 1}}, "consent.processing"),
        ({"submitter": {"kind": "resident", "locality": "Gassy\u0000"}}, "submitter.locality"),
        ({"received_on": 20261128}, "received_on"),
    ],
)
async def test_submission_fields(
    intake: RunningService, changes: dict[str, Any], field: str
) -> None:
    url = f"/v1/consultations/{await consultation_id(intake)}/submissions"
    # Escaped JSON (`"\ud800"`) is how a lone surrogate travels: valid JSON text, but no
    # string PostgreSQL can store.
    response = await intake.client.post(
        url,
        content=json.dumps(submission_payload(**changes), ensure_ascii=True).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]
    assert await intake.count("submissions") == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": "   "}, "title"),
        ({"title": "\u200b"}, "title"),
        ({"opens_at": "0001-01-01T00:00:00+14:00"}, "opens_at"),
        ({"closes_at": "9999-12-31T23:59:59-14:00"}, "closes_at"),
        ({"opens_at": "2026-01-01T00:00:00"}, "opens_at"),
        ({"opens_at": 1767225600}, "opens_at"),
        ({"description": "a\u0000b"}, "description"),
    ],
)
async def test_consultation_fields(
    intake: RunningService, changes: dict[str, Any], field: str
) -> None:
    response = await intake.client.post(
        "/v1/consultations", json=consultation_payload(**changes), headers=ADMIN
    )
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]
    assert await intake.count("consultations") == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"offset": 2**63}, "offset"),
        ({"limit": 10**6}, "limit"),
        ({"theme": "soc\u0000ial"}, "theme"),
    ],
)
async def test_query_parameters(intake: RunningService, params: dict[str, Any], field: str) -> None:
    url = f"/v1/consultations/{await consultation_id(intake)}/submissions"
    response = await intake.client.get(url, params=params, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert field in [error["field"] for error in response.json()["errors"]]


async def test_a_body_that_is_not_utf8_json_is_a_clear_400(intake: RunningService) -> None:
    response = await intake.client.post(
        "/v1/consultations",
        content=b"\xff\xfe{not json",
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"] in ("bad_request", "validation_failed")
