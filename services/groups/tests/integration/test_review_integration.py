"""Submissions in the working groups, through the real service: routing (with a theme,
classified, before the theme's group exists, overridden), two assessors, members' access
and its limits, assessments, decisions, duplicates, trends, recommendations, the report."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest

from devtools.testing import COORDINATOR, body, eventually, read_topic, wait_for
from shared.clock import utc_now
from shared.contracts.privacy import ErasureRequested
from shared.contracts.topics import Topic
from shared.platform.privacy import subject_for_email

from .conftest import Groups

pytestmark = pytest.mark.integration


async def member_session(groups: Groups, email: str) -> dict[str, str]:
    """Sign a member in the way a person does: ask for a link, spend its token. The token
    is read from the event notifications would email (the mail tests cover that leg)."""
    asked = await groups.client.post("/v1/access-links", json={"email": email})
    assert asked.status_code == 202, asked.text
    # The address is sealed on the topic: the link is found by the member's volunteer id,
    # and its sealed address opens to the email asked for.
    seats = {
        str(row["id"])
        for row in await groups.runtime.pool.fetch(
            "SELECT id FROM volunteers WHERE email = $1", email
        )
    }
    records = await read_topic(
        groups.settings.kafka_bootstrap_servers,
        groups.topic(Topic.GROUPS_VOLUNTEER_MESSAGES_V2),
        until=lambda found: bool(found),
        keep=lambda r: (
            body(r)["event_type"] == "groups.MemberSignInLinkRequested"
            and body(r)["data"]["volunteer_id"] in seats
        ),
    )
    assert await groups.opened(body(records[-1]), "email") == email
    token = body(records[-1])["data"]["sign_in_token"]
    session = await groups.client.post("/v1/sessions", json={"token": token})
    assert session.status_code == 201, session.text
    return {"Authorization": f"Bearer {session.json()['token']}"}


async def form_group(groups: Groups, consultation_id: uuid.UUID, theme: str) -> list[str]:
    emails = [f"{theme}.{uuid.uuid4().hex[:8]}@example.org" for _ in range(3)]
    for email in emails:
        await groups.clerk_sign_up(consultation_id, [theme], email=email)
    return emails


async def group_id_of(groups: Groups, consultation_id: uuid.UUID, theme: str) -> str:
    found = [g for g in await groups.groups(consultation_id) if g["theme"] == theme]
    return str(found[0]["id"])


async def routed(groups: Groups, submission_id: uuid.UUID) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        row = await groups.stored_submission(submission_id)
        return row if row["group_id"] is not None else None

    return await eventually(probe, f"submission {submission_id} routed")


async def assessors(groups: Groups, submission_id: uuid.UUID) -> set[uuid.UUID]:
    rows = await groups.runtime.pool.fetch(
        "SELECT member_id FROM assignments WHERE submission_id = $1", submission_id
    )
    return {row["member_id"] for row in rows}


async def members(groups: Groups, group_id: str) -> set[uuid.UUID]:
    rows = await groups.runtime.pool.fetch(
        "SELECT id FROM volunteers WHERE group_id = $1", uuid.UUID(group_id)
    )
    return {row["id"] for row in rows}


def assessment(submission_id: uuid.UUID, need: int, **changes: Any) -> dict[str, Any]:
    return {
        "submission_id": str(submission_id),
        "need": need,
        "reach": 1,
        "strategy_fit": 2,
        "competence": 1,
        "cost_band": "medium",
        "horizon": "short",
        "tags": ["żłobki"],
        **changes,
    }


async def test_routing_with_a_theme_without_one_and_before_the_group_exists(
    groups: Groups,
) -> None:
    consultation_id = await groups.consultation()
    early = await groups.submission(consultation_id, theme="spatial")
    assert (await groups.stored_submission(early))["group_id"] is None  # waits
    await form_group(groups, consultation_id, "economic")
    unthemed = await groups.submission(
        consultation_id,
        theme=None,
        title="Strefa aktywności gospodarczej",
        body="Proponuję uzbrojenie terenów inwestycyjnych dla przedsiębiorców i ulgi "
        "podatkowe dla nowych firm, które stworzą miejsca pracy w gminie.",
    )
    row = await routed(groups, unthemed)
    assert (row["theme"], row["theme_source"]) == ("economic", "classifier")
    economic = await group_id_of(groups, consultation_id, "economic")
    assert str(row["group_id"]) == economic
    assert (await groups.stored_submission(early))["group_id"] is None

    await form_group(groups, consultation_id, "spatial")
    row = await routed(groups, early)
    spatial = await group_id_of(groups, consultation_id, "spatial")
    assert str(row["group_id"]) == spatial
    # Two members of its own group assess each submission.
    assert len(await assessors(groups, early)) == 2
    assert await assessors(groups, early) <= await members(groups, spatial)

    events = await read_topic(
        groups.settings.kafka_bootstrap_servers,
        groups.topic(Topic.GROUPS_SUBMISSIONS),
        until=lambda found: len(found) >= 2,
    )
    sources = {body(r)["data"]["submission_id"]: body(r)["data"]["theme_source"] for r in events}
    assert sources == {str(unthemed): "classifier", str(early): "submitted"}

    # A coordinator's theme override routes it anew, to the new theme's group.
    overridden = await groups.client.put(
        f"/v1/submissions/{early}/theme", json={"theme": "economic"}, headers=COORDINATOR
    )
    assert overridden.status_code == 200, overridden.text
    assert overridden.json()["group_id"] == economic
    assert overridden.json()["theme_source"] == "coordinator"
    assert await assessors(groups, early) <= await members(groups, economic)


async def test_members_assess_and_the_lead_decides_with_a_public_reason(groups: Groups) -> None:
    consultation_id = await groups.consultation()
    social_emails = await form_group(groups, consultation_id, "social")
    economic_emails = await form_group(groups, consultation_id, "economic")
    social = await group_id_of(groups, consultation_id, "social")
    submission_id = await groups.submission(consultation_id, theme="social")
    await routed(groups, submission_id)
    a, b, c = [await member_session(groups, email) for email in social_emails]
    outsider = await member_session(groups, economic_emails[0])

    first = await groups.client.post(
        f"/v1/groups/{social}/assessments", json=assessment(submission_id, 0), headers=a
    )
    assert first.status_code == 201, first.text
    second = await groups.client.post(
        f"/v1/groups/{social}/assessments", json=assessment(submission_id, 2), headers=b
    )
    score = second.json()["score"]
    assert (score["need"], score["to_discuss"], score["disputed"]) == (1.0, True, ["need"])
    third = await groups.client.post(
        f"/v1/groups/{social}/assessments", json=assessment(submission_id, 2), headers=c
    )
    assert third.json()["score"]["need"] == 2.0 and third.json()["score"]["overall"] == 6.0
    # One per member: a second assessment replaces the first.
    replaced = await groups.client.post(
        f"/v1/groups/{social}/assessments", json=assessment(submission_id, 2), headers=a
    )
    assert replaced.json()["score"]["assessments"] == 3
    assert replaced.json()["score"]["to_discuss"] is False

    queue = await groups.client.get(
        f"/v1/groups/{social}/submissions",
        params={"assessed_by_me": "true", "tag": "Żłobki", "state": "in_review"},
        headers=a,
    )
    assert [item["submission_id"] for item in queue.json()["items"]] == [str(submission_id)]
    none_left = await groups.client.get(
        f"/v1/groups/{social}/submissions", params={"assessed_by_me": "false"}, headers=a
    )
    assert none_left.json()["total"] == 0

    # A member of another group is refused here.
    for response in (
        await groups.client.get(f"/v1/groups/{social}/submissions", headers=outsider),
        await groups.client.post(
            f"/v1/groups/{social}/assessments", json=assessment(submission_id, 1), headers=outsider
        ),
        await groups.client.get(f"/v1/groups/{social}/members", headers=a),
    ):
        assert response.status_code == 403, response.text

    def move(state: str, headers: dict[str, str], reason: str | None = None) -> Any:
        payload = {"state": state, **({"reason": reason} if reason else {})}
        return groups.client.post(
            f"/v1/submissions/{submission_id}/state", json=payload, headers=headers
        )

    assert (await move("assessed", b)).status_code == 200
    assert (await move("rejected", b, "Nie mieści się w budżecie.")).status_code == 403
    lead_id = (await groups.client.post("/v1/sessions", json={"token": "x" * 43})).status_code
    assert lead_id == 422
    sessions = await groups.runtime.pool.fetch(
        "SELECT id FROM volunteers WHERE email = $1", social_emails[0]
    )
    appointed = await groups.client.put(
        f"/v1/groups/{social}/lead",
        json={"volunteer_id": str(sessions[0]["id"])},
        headers=COORDINATOR,
    )
    assert appointed.status_code == 200, appointed.text
    assert (await move("rejected", a)).status_code == 422  # no public reason
    decided = await move("rejected", a, "Nie mieści się w budżecie gminy.")
    assert decided.status_code == 200, decided.text
    events = await read_topic(
        groups.settings.kafka_bootstrap_servers,
        groups.topic(Topic.GROUPS_SUBMISSIONS),
        until=lambda found: any(body(r)["event_type"] == "groups.SubmissionDecided" for r in found),
    )
    (decision,) = [body(r)["data"] for r in events if body(r)["event_type"].endswith("Decided")]
    assert (decision["outcome"], decision["public_reason"]) == (
        "rejected",
        "Nie mieści się w budżecie gminy.",
    )
    roster = await groups.client.get(f"/v1/groups/{social}/members", headers=a)
    assert roster.status_code == 200 and len(roster.json()["members"]) == 3


async def test_withdrawal_hands_open_assessments_to_other_members(groups: Groups) -> None:
    consultation_id = await groups.consultation()
    await form_group(groups, consultation_id, "social")
    social = await group_id_of(groups, consultation_id, "social")
    submissions = [await groups.submission(consultation_id, theme="social") for _ in range(3)]
    for submission_id in submissions:
        await routed(groups, submission_id)
    leaver = next(iter(await assessors(groups, submissions[0])))
    withdrawn = await groups.client.post(
        f"/v1/volunteers/{leaver}/withdrawal",
        headers={"Authorization": COORDINATOR["Authorization"]},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    remaining = await members(groups, social)
    for submission_id in submissions:
        assigned = await assessors(groups, submission_id)
        assert leaver not in assigned
        assert assigned <= remaining and len(assigned) == 2


async def test_an_erased_member_leaves_and_hands_open_assessments_over(groups: Groups) -> None:
    """RODO erasure of a member is a departure too: their open assessments go to the
    others and `VolunteerLeft` is announced, as on withdrawal."""
    consultation_id = await groups.consultation()
    emails = await form_group(groups, consultation_id, "social")
    social = await group_id_of(groups, consultation_id, "social")
    submissions = [await groups.submission(consultation_id, theme="social") for _ in range(3)]
    for submission_id in submissions:
        await routed(groups, submission_id)
    leaver = next(iter(await assessors(groups, submissions[0])))
    email = await groups.runtime.pool.fetchval("SELECT email FROM volunteers WHERE id = $1", leaver)
    assert email in emails
    request_id = uuid.uuid4()
    await groups.publish(
        Topic.INTAKE_PRIVACY_REQUESTS,
        ErasureRequested(
            request_id=request_id, subject=subject_for_email(email), requested_at=utc_now()
        ),
        key=request_id,
    )

    async def erased() -> bool:
        row = await groups.runtime.pool.fetchrow(
            "SELECT email, status FROM volunteers WHERE id = $1", leaver
        )
        return row is not None and row["email"] is None and row["status"] == "withdrawn"

    await wait_for(erased, "the member's erasure")
    remaining = await members(groups, social)
    assert leaver not in remaining and len(remaining) == 2
    for submission_id in submissions:
        assigned = await assessors(groups, submission_id)
        assert leaver not in assigned
        assert assigned <= remaining and len(assigned) == 2
    left = await read_topic(
        groups.settings.kafka_bootstrap_servers,
        groups.topic(Topic.GROUPS_VOLUNTEERS),
        until=lambda found: bool(found),
        keep=lambda r: (
            body(r)["event_type"] == "groups.VolunteerLeft"
            and body(r)["data"]["volunteer_id"] == str(leaver)
        ),
    )
    assert body(left[0])["data"]["group_id"] == social


async def test_duplicates_are_flagged_and_confirmed_ones_count_as_support(groups: Groups) -> None:
    consultation_id = await groups.consultation()
    emails = await form_group(groups, consultation_id, "environmental")
    group = await group_id_of(groups, consultation_id, "environmental")
    text = "Proszę o budowę kanalizacji sanitarnej w Słomczynie, szamba się przelewają."
    original = await groups.submission(consultation_id, theme="environmental", body=text)
    await routed(groups, original)
    duplicate = await groups.submission(
        consultation_id, theme="environmental", body=text + " Mieszkańcy czekają od lat."
    )
    await routed(groups, duplicate)
    member = await member_session(groups, emails[0])
    links = (await groups.client.get(f"/v1/groups/{group}/duplicates", headers=member)).json()
    assert [(x["original_id"], x["duplicate_id"], x["state"]) for x in links] == [
        (str(original), str(duplicate), "possible")
    ]
    flagged = await groups.client.get(
        f"/v1/groups/{group}/submissions", params={"flag": "possible_duplicate"}, headers=member
    )
    assert flagged.json()["total"] == 2
    confirmed = await groups.client.post(
        f"/v1/groups/{group}/duplicates",
        json={"original_id": str(original), "duplicate_id": str(duplicate), "confirmed": True},
        headers=member,
    )
    assert confirmed.status_code == 200 and confirmed.json()["state"] == "confirmed"
    queue = (await groups.client.get(f"/v1/groups/{group}/submissions", headers=member)).json()
    support = {item["submission_id"]: item["support"] for item in queue["items"]}
    assert support == {str(original): 1, str(duplicate): 0}  # nothing deleted


async def test_trends_recommendations_and_the_report_from_real_assessments(
    groups: Groups,
) -> None:
    consultation_id = await groups.consultation()
    emails = await form_group(groups, consultation_id, "social")
    social = await group_id_of(groups, consultation_id, "social")
    texts = [
        ("Żłobek w Gassach", "Brakuje żłobka w Gassach, rodzice dojeżdżają do Warszawy."),
        ("Przedszkole", "Potrzebne nowe przedszkole i żłobek w Słomczynie."),
        ("Opieka nad seniorami", "Dzienny dom opieki dla seniorów w Konstancinie."),
        ("Klub seniora", "Klub seniora i zajęcia dla osób starszych w Oborach."),
    ]
    submissions = [
        await groups.submission(
            consultation_id, theme="social", title=title, body=f"{text} Zgłoszenie {n}.",
            locality=("Gassy", "Słomczyn", "Obory")[n % 3],
        )
        for n, (title, text) in enumerate(texts * 3)
    ]  # fmt: skip
    for n in range(4):
        await groups.submission(
            consultation_id, theme="economic", title="Strefa gospodarcza",
            body=f"Tereny inwestycyjne dla firm i przedsiębiorców, numer {n}.",
        )  # fmt: skip
    for submission_id in submissions:
        await routed(groups, submission_id)
    member = await member_session(groups, emails[0])
    for submission_id in submissions[:4]:
        answer = await groups.client.post(
            f"/v1/groups/{social}/assessments", json=assessment(submission_id, 2), headers=member
        )
        assert answer.status_code == 201, answer.text

    async def assessed_snapshot() -> dict[str, Any] | None:
        answer = await groups.client.get(f"/v1/groups/{social}/trends")
        view: dict[str, Any] = answer.json()
        ready = view["status"] == "ready" and view["report"]["assessed"] == 4
        return view if ready else None

    view = await eventually(assessed_snapshot, "a trend snapshot with the 4 assessments")
    report = view["report"]
    assert report["submissions"] == 12 and report["mean_assessment"] == 6.0
    assert report["key_phrases"] and report["sentences_pl"]
    public = await groups.client.get(
        f"/v1/consultations/{consultation_id}/trends", params={"theme": "social"}
    )
    assert public.json()["snapshot"] == view["snapshot"]
    thin = await groups.client.get(
        f"/v1/consultations/{consultation_id}/trends", params={"theme": "spatial"}
    )
    assert thin.json()["status"] == "not_enough"
    assert b"@example.org" not in public.content

    drafted = await groups.client.post(
        f"/v1/groups/{social}/recommendations",
        json={
            "title": "Żłobki i opieka nad seniorami",
            "body": "Ująć w strategii sieć żłobków i dziennych domów seniora.",
            "submission_ids": [str(s) for s in submissions[:2]],
            "trend_snapshot": view["snapshot"],
        },
        headers=member,
    )
    assert drafted.status_code == 201, drafted.text
    recommendation = drafted.json()["id"]
    assert (
        await groups.client.post(f"/v1/recommendations/{recommendation}/publish", headers=member)
    ).status_code == 403  # a member drafts; the lead or a coordinator publishes
    published = await groups.client.post(
        f"/v1/recommendations/{recommendation}/publish", headers=COORDINATOR
    )
    assert published.status_code == 200, published.text
    listed = (
        await groups.client.get(f"/v1/consultations/{consultation_id}/recommendations")
    ).json()
    assert len(listed) == 1 and len(listed[0]["cited"]) == 2
    assert listed[0]["evidence"]["snapshot"] == view["snapshot"]

    waiting = await groups.submission(consultation_id, theme="spatial", title="Ścieżka")
    await groups.stored_submission(waiting)
    as_json = await groups.client.get(
        f"/v1/consultations/{consultation_id}/report", headers=COORDINATOR
    )
    rows = {row["submission_id"]: row for row in as_json.json()["submissions"]}
    assert len(rows) == 17 and rows[str(waiting)]["group"] is None
    assert rows[str(submissions[0])]["recommendations"][0]["id"] == recommendation
    as_csv = await groups.client.get(
        f"/v1/consultations/{consultation_id}/report",
        headers={**COORDINATOR, "Accept": "text/csv"},
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(table) == 17 and {"receipt_number", "state", "public_reason"} <= set(table[0])
    refused = await groups.client.get(f"/v1/consultations/{consultation_id}/report", headers=member)
    assert refused.status_code == 403
