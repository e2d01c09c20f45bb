"""Groups form by themselves, through the real service (HTTP, PostgreSQL, Kafka events)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from devtools.testing import body, read_topic
from shared.contracts.topics import Topic

from .conftest import Groups, StartGroups

pytestmark = pytest.mark.integration


async def statuses(groups: Groups, consultation_id: uuid.UUID) -> dict[str, int]:
    rows = await groups.runtime.pool.fetch(
        "SELECT status, count(*) AS n FROM volunteers WHERE consultation_id = $1 GROUP BY status",
        consultation_id,
    )
    return {row["status"]: row["n"] for row in rows}


@pytest.mark.parametrize(
    ("count", "sizes", "waiting"),
    [
        (0, [], 0),
        (2, [], 2),
        (3, [3], 0),
        (12, [12], 0),
        (13, [12], 1),
        (30, [12, 12, 6], 0),
        (100, [12] * 8 + [4], 0),
    ],
)
async def test_volunteers_of_one_theme_form_groups_of_three_to_twelve(
    groups: Groups, count: int, sizes: list[int], waiting: int
) -> None:
    consultation_id = await groups.consultation()
    for _ in range(count):
        await groups.clerk_sign_up(consultation_id, ["social"])
    found = await groups.groups(consultation_id)
    assert [g["member_count"] for g in found] == sizes
    assert [g["name"] for g in found] == [f"Grupa społeczna {n + 1}" for n in range(len(sizes))]
    assert (await statuses(groups, consultation_id)).get("waitlisted", 0) == waiting


async def test_a_hundred_mixed_volunteers(groups: Groups) -> None:
    """The domain's mixed scenario, arriving one by one through HTTP."""
    consultation_id = await groups.consultation()
    rankings = (
        [["social", "environmental"]] * 40
        + [["environmental"]] * 30
        + [["economic", "spatial"]] * 20
        + [["spatial"]] * 10
    )
    for themes in rankings:
        await groups.clerk_sign_up(consultation_id, themes)
    found = [
        (g["theme"], g["ordinal"], g["member_count"]) for g in await groups.groups(consultation_id)
    ]
    assert sorted(found) == sorted(
        [
            ("social", 1, 12), ("social", 2, 12), ("social", 3, 12), ("social", 4, 4),
            ("environmental", 1, 12), ("environmental", 2, 12), ("environmental", 3, 6),
            ("economic", 1, 12), ("economic", 2, 8),
            ("spatial", 1, 10),
        ]
    )  # fmt: skip
    assert await statuses(groups, consultation_id) == {"placed": 100}


async def test_concurrent_sign_ups_are_placed_as_if_one_by_one(groups: Groups) -> None:
    """Placement is serialised per consultation: racing sign-ups never overfill a group,
    never seat anyone twice and never form two groups where one had room."""
    consultation_id = await groups.consultation()
    await asyncio.gather(*(groups.clerk_sign_up(consultation_id, ["social"]) for _ in range(30)))
    found = await groups.groups(consultation_id)
    assert sorted(g["member_count"] for g in found) == [6, 12, 12]
    assert await statuses(groups, consultation_id) == {"placed": 30}
    seats = await groups.runtime.pool.fetchval(
        "SELECT count(DISTINCT seat) FROM volunteers WHERE consultation_id = $1", consultation_id
    )
    assert seats == 30


async def test_formation_is_published_without_contact_data(groups: Groups) -> None:
    consultation_id = await groups.consultation()
    for n in range(3):
        await groups.clerk_sign_up(consultation_id, ["spatial"], phone=f"+48 600 700 80{n}")
    formed = await read_topic(
        groups.settings.kafka_bootstrap_servers,
        groups.topic(Topic.GROUPS_GROUPS),
        until=lambda records: len(records) >= 1,
    )
    assert body(formed[0])["data"]["theme"] == "spatial"
    volunteers = await read_topic(
        groups.settings.kafka_bootstrap_servers,
        groups.topic(Topic.GROUPS_VOLUNTEERS),
        until=lambda records: (
            sum(body(r)["event_type"] == "groups.VolunteerAssigned" for r in records) >= 3
        ),
    )
    raw = b"".join(record.value or b"" for record in volunteers)
    assert b"@example.org" not in raw and b"+48" not in raw


async def test_a_sign_up_for_an_unknown_or_closed_consultation_is_refused(
    start_groups: StartGroups,
) -> None:
    groups = await start_groups()
    payload = {"name": "Jan", "email": "jan@example.org", "themes": ["social"],
               "consent": {"processing": True}}  # fmt: skip
    unknown = await groups.client.post(f"/v1/consultations/{uuid.uuid4()}/volunteers", json=payload)
    assert unknown.status_code == 404, unknown.text
    from datetime import timedelta

    closed = await groups.consultation(closes_in=timedelta(seconds=-1))
    answer = await groups.client.post(f"/v1/consultations/{closed}/volunteers", json=payload)
    assert answer.status_code == 409, answer.text
    assert await groups.count("volunteers") == 0
