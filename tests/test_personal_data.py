"""Across services: RODO export and erasure of one person, on the real broker and server.

intake, groups, notifications and news run in this process with their own databases,
talking only through Kafka. A resident submits (email and phone) and signs up as a
volunteer; the export gathers what every service holds; after the erasure no table of any
service holds the address, and no Kafka record — on any topic or dead-letter topic —
carries it in clear. The submitter's address (intake) and the volunteer's address and name
(groups) travel sealed under per-person keys (crypto-shredding): erasure deletes the key
in its owner and in notifications, leaves a tombstone on the owner's
`<owner>.person-keys.v1`, and the log cleaner then removes the key's record.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from devtools.kafka_auth import admin_options
from devtools.pytest_plugin import DatabaseFactory, SmtpSink
from devtools.testing import (
    ADMIN,
    CLERK,
    RunningService,
    consultation_payload,
    eventually,
    read_whole_topic,
    settings_for_test,
    start_service,
    unique_prefix,
    wait_for,
)
from groups.config import GroupsSettings
from intake.config import IntakeSettings
from news.config import NewsSettings
from notifications.config import NotificationsSettings
from shared.contracts.topics import Topic
from shared.platform.shredding import encode_key

pytestmark = pytest.mark.integration

# Topics that still carry the address in clear (README: "Personal data"): none. groups no
# longer writes groups.volunteer-messages.v1 (it is checked to stay empty).
NOT_YET_SHREDDED: tuple[str, ...] = ()


@pytest.fixture
async def system(
    kafka_bootstrap_servers: str, new_database: DatabaseFactory, smtp_sink: SmtpSink
) -> AsyncIterator[dict[str, RunningService]]:
    prefix = unique_prefix("rodo")
    common: dict[str, Any] = {
        "kafka": kafka_bootstrap_servers,
        "prefix": prefix,
        # The test waits for the cleaner: the key topics roll their segments every second
        # (the default keeps an erased key up to ten minutes, PERSON_KEYS_COMPACTION_SECONDS).
        "person_keys_compaction_seconds": 1,
    }
    running: dict[str, RunningService] = {}
    specs: list[tuple[str, Any, dict[str, Any]]] = [
        ("intake", IntakeSettings, {}),
        ("groups", GroupsSettings, {}),
        (
            "notifications",
            NotificationsSettings,
            {
                "smtp_host": smtp_sink.host,
                "smtp_port": smtp_sink.port,
                "dispatcher_poll_seconds": 0.5,
            },
        ),
        ("news", NewsSettings, {}),
    ]
    try:
        for name, settings_type, extra in specs:
            settings = settings_for_test(
                settings_type,
                database_url=await new_database.create(name),
                **common,
                **extra,
            )
            running[name] = await start_service(name, settings)
        yield running
    finally:
        for service in reversed(running.values()):
            await service.stop()


async def table_dump(service: RunningService) -> str:
    """Every row of every table of the service's database, as text."""
    tables = await service.runtime.pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    )
    texts: list[str] = []
    for table in tables:
        rows = await service.runtime.pool.fetch(f'SELECT t::text AS row FROM "{table[0]}" t')
        texts.extend(row["row"] for row in rows)
    return "\n".join(texts).lower()


async def kafka_records(kafka: str, prefix: str) -> dict[str, list[bytes]]:
    admin = AIOKafkaAdminClient(**admin_options(kafka))
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
    finally:
        await admin.close()
    found: dict[str, list[bytes]] = {}
    for topic in topics:
        records = await read_whole_topic(kafka, topic)
        found[topic.removeprefix(prefix)] = [
            (record.value or b"") + b"".join(value for _, value in record.headers)
            for record in records
        ]
    return found


# The owners of sealed fields and their compacted key topics.
KEY_TOPICS = {"intake": Topic.INTAKE_PERSON_KEYS, "groups": Topic.GROUPS_PERSON_KEYS}


async def person_key(owner: RunningService, kafka: str) -> tuple[uuid.UUID, str]:
    """The one person key of the owner (id and key as published), checked to be on its
    key topic."""
    [row] = await owner.runtime.pool.fetch("SELECT key_id, key FROM person_keys")
    key_text = encode_key(bytes(row["key"]))
    published = await read_whole_topic(kafka, owner.topic(KEY_TOPICS[owner.runtime.name]))
    assert any(key_text.encode() in (record.value or b"") for record in published)
    return row["key_id"], key_text


async def answered(intake: RunningService, path: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await intake.client.get(path, headers=ADMIN)
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        return view if view["complete"] else None

    return await eventually(probe, f"every service to answer {path}")


async def test_export_then_erasure_leaves_no_address(
    system: dict[str, RunningService], kafka_bootstrap_servers: str
) -> None:
    intake, groups, notifications = system["intake"], system["groups"], system["notifications"]
    email = f"Osoba.{uuid.uuid4().hex[:10]}@Example.org"
    phone = "+48 601 234 567"
    consultation = (
        await intake.client.post("/v1/consultations", headers=ADMIN, json=consultation_payload())
    ).json()
    submitted = await intake.client.post(
        f"/v1/consultations/{consultation['id']}/submissions",
        json={
            "submitter": {"kind": "resident", "name": "Jan Osoba", "email": email, "phone": phone},
            "theme": "social",
            "title": "Żłobek w Gassach",
            "body": "Brakuje żłobka.",
            "consent": {"processing": True, "contact": True},
        },
    )
    assert submitted.status_code == 202, submitted.text
    receipt = submitted.json()["receipt"]["number"]

    async def consultation_known() -> bool:
        return await groups.count("consultations") == 1

    await wait_for(consultation_known, "groups to learn the consultation")
    signed = await groups.client.post(
        f"/v1/consultations/{consultation['id']}/volunteers",
        headers=CLERK,
        json={
            "name": "Jan Osoba",
            "email": email.lower(),
            "themes": ["social"],
            "consent": {"processing": True},
            "channel": "phone",
        },
    )
    assert signed.status_code == 202, signed.text
    subscribed = await notifications.client.post(
        "/v1/subscriptions", json={"email": email, "topics": ["alerts", "news"]}
    )
    assert subscribed.status_code == 202, subscribed.text

    async def mailed() -> bool:
        return (
            await notifications.count(
                "deliveries WHERE lower(recipient) = lower($1) AND status = 'sent'", email
            )
            >= 3
            and await notifications.count("submitters") == 1
        )

    await wait_for(mailed, "the receipt, the volunteer's and the confirmation email sent")
    # One key for the person in each owner (intake: the submitter, groups: the volunteer),
    # and a copy of each in notifications.
    keys = {owner: await person_key(system[owner], kafka_bootstrap_servers) for owner in KEY_TOPICS}
    for owner in KEY_TOPICS:
        assert (
            await notifications.count(
                "received_person_keys WHERE key IS NOT NULL AND owner = $1", owner
            )
            == 1
        )

    # Art. 15: every service answers with what it holds, sealed; intake assembles it.
    export = await intake.client.post("/v1/export-requests", headers=ADMIN, json={"email": email})
    assert export.status_code == 202, export.text
    early = await intake.client.get(
        f"/v1/export-requests/{export.json()['id']}/export", headers=ADMIN
    )
    view = await answered(intake, f"/v1/export-requests/{export.json()['id']}")
    assert set(view["services"]) == {"intake", "groups", "notifications", "news"}
    assert early.status_code in (200, 409)
    document = (
        await intake.client.get(f"/v1/export-requests/{export.json()['id']}/export", headers=ADMIN)
    ).json()
    services = document["services"]
    assert services["intake"]["submissions"][0]["receipt_number"] == receipt
    assert services["intake"]["submissions"][0]["submitter_phone"] == phone
    assert services["groups"]["volunteers"][0]["email"] == email.lower()
    assert len(services["notifications"]["deliveries"]) >= 3
    assert services["notifications"]["subscriptions"][0]["topics"] == ["alerts", "news"]
    assert services["news"] == {}
    # The answers travelled sealed: no reply topic carries the address.
    records = await kafka_records(kafka_bootstrap_servers, intake.runtime.topic_names.prefix)
    for service in ("intake", "groups", "notifications", "news"):
        for value in records[f"{service}.privacy-replies.v1"]:
            assert email.lower().encode() not in value.lower()

    # Art. 17: every service erases, confirms, and intake shows it per service.
    erasure = await intake.client.post("/v1/erasure-requests", headers=ADMIN, json={"email": email})
    assert erasure.status_code == 202, erasure.text
    view = await answered(intake, f"/v1/erasure-requests/{erasure.json()['id']}")
    assert all(answer["done"] for answer in view["services"].values())
    assert view["services"]["intake"]["records"] == 2  # the submission and the person's key
    assert view["services"]["groups"]["records"] == 2  # the volunteer and the person's key
    phone_request = await intake.client.post(
        "/v1/erasure-requests", headers=ADMIN, json={"phone": "601-234-567"}
    )
    await answered(intake, f"/v1/erasure-requests/{phone_request.json()['id']}")

    for name, service in system.items():
        dump = await table_dump(service)
        assert email.lower() not in dump, f"{name} still holds the address"
        assert "601 234 567" not in dump and "601234567" not in dump, f"{name} holds the phone"
    # Submissions keep their text and receipt number but lose the person.
    row = await intake.runtime.pool.fetchrow("SELECT * FROM submissions")
    assert row["receipt_number"] == receipt and row["body"] == "Brakuje żłobka."
    assert row["submitter_email"] is None and row["submitter_name"] is None
    # The subscription is gone with its emails, and its confirmation link is dead.
    assert await notifications.count("subscriptions") == 0
    assert await notifications.count("one_time_tokens") == 0

    # Crypto-shredding: the keys are gone from their owners, notifications' copies with them.
    assert await intake.count("person_keys") == 0
    assert await groups.count("person_keys") == 0

    async def copies_erased() -> bool:
        return await notifications.count("received_person_keys WHERE key IS NOT NULL") == 0 and all(
            [
                await notifications.count("received_person_keys WHERE key_id = $1", key_id) == 1
                for key_id, _ in keys.values()
            ]
        )

    await wait_for(copies_erased, "notifications to drop its copies of the person's keys")
    kafka = kafka_bootstrap_servers
    for owner, (key_id, key_text) in keys.items():
        for name, service in system.items():
            assert key_text.lower() not in await table_dump(service), f"{name} holds {owner}'s key"
        # The latest record of the key id on the key topic is its tombstone.
        keys_topic = system[owner].topic(KEY_TOPICS[owner])
        ours = [
            r for r in await read_whole_topic(kafka, keys_topic) if r.key == str(key_id).encode()
        ]
        assert ours and ours[-1].value is None, f"{owner}: no tombstone last"

    # The log cleaner removes the key records (the active segment is never cleaned: the
    # next key record, another person's, rolls it after `segment.ms`).
    async def compacted() -> bool:
        await asyncio.sleep(1.5)  # past segment.ms, so the next record rolls the segment
        someone_else = f"{uuid.uuid4().hex}@example.org"
        other = await intake.client.post(
            f"/v1/consultations/{consultation['id']}/submissions",
            json={
                "submitter": {"kind": "resident", "email": someone_else},
                "title": "Inna sprawa",
                "body": "Inna treść.",
                "consent": {"processing": True},
            },
        )
        assert other.status_code == 202, other.text
        volunteer = await groups.client.post(
            f"/v1/consultations/{consultation['id']}/volunteers",
            headers=CLERK,
            json={
                "name": "Ktoś Inny",
                "email": someone_else,
                "themes": ["social"],
                "consent": {"processing": True},
                "channel": "phone",
            },
        )
        assert volunteer.status_code == 202, volunteer.text
        for owner, (_, key_text) in keys.items():
            remaining = await read_whole_topic(kafka, system[owner].topic(KEY_TOPICS[owner]))
            if any(key_text.encode() in (r.value or b"") for r in remaining):
                return False
        return True

    await wait_for(compacted, "the cleaner to compact the erased keys away")

    records = await kafka_records(kafka_bootstrap_servers, intake.runtime.topic_names.prefix)
    assert "intake.privacy-requests.v1" in records
    # The volunteer's emails went through v2 (sealed); groups no longer writes v1.
    assert records["groups.volunteer-messages.v2"]
    assert not records.get("groups.volunteer-messages.v1")
    for topic, values in records.items():
        if topic.removesuffix(".dlt") in NOT_YET_SHREDDED:
            continue
        for value in values:
            assert email.lower().encode() not in value.lower(), f"{topic} carries the address"
            assert b"601 234 567" not in value, f"{topic} carries the phone"
