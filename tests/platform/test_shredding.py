"""Crypto-shredding primitives: sealed fields open only with their key, their associated
data and their exact ciphertext; the blind index finds a person by the request hashes."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest
from cryptography.exceptions import InvalidTag
from pydantic import ValidationError

from devtools.pytest_plugin import DatabaseFactory
from devtools.testing import wait_until_blocked_by
from shared.contracts.groups import (
    VolunteerAssignmentNotice,
    VolunteerAssignmentNoticeV2,
    volunteer_message_associated_data,
)
from shared.contracts.intake import (
    IntakePersonKeyPublished,
    SubmissionReceived,
    submitter_email_associated_data,
)
from shared.contracts.sealed import SealedValue
from shared.contracts.topics import Topic, dead_letter_config, topic_config
from shared.platform.database import PERSON_KEYS_MIGRATIONS, apply_migrations
from shared.platform.privacy import subject_for_email, subject_for_phone
from shared.platform.shredding import (
    PERSON_ERASED,
    KeyNotYetKnown,
    PersonKeyTopic,
    PostgresPersonKeys,
    PostgresReceivedKeys,
    SealRequest,
    blind_index,
    decode_key,
    email_index,
    encode_key,
    new_data_key,
    open_value,
    phone_index,
    seal_value,
)

# The table is notifications' (the consumer of intake's keys); the class is the platform's.
NOTIFICATIONS_KEY_MIGRATION = (
    Path(__file__).parents[2]
    / "services/notifications/notifications/migrations/20260602000000_received_person_keys.sql"
)
SUBMISSION = uuid.uuid4()
AD = submitter_email_associated_data(SUBMISSION)


def sealed(text: str = "Jan.Kowalski@example.org") -> tuple[bytes, SealedValue]:
    key = new_data_key()
    return key, seal_value(uuid.uuid4(), key, text, associated_data=AD)


def test_a_sealed_value_opens_with_its_key_and_associated_data() -> None:
    key, value = sealed()
    assert open_value(key, value, associated_data=AD) == "Jan.Kowalski@example.org"
    assert b"kowalski" not in value.model_dump_json().lower().encode()
    # A fresh nonce each time: the same address never gives the same ciphertext.
    assert seal_value(value.key_id, key, "x", associated_data=AD).nonce != value.nonce


def test_a_wrong_key_does_not_open_it() -> None:
    _, value = sealed()
    with pytest.raises(InvalidTag):
        open_value(new_data_key(), value, associated_data=AD)


def test_a_value_moved_to_another_submission_does_not_open() -> None:
    key, value = sealed()
    other = submitter_email_associated_data(uuid.uuid4())
    with pytest.raises(InvalidTag):
        open_value(key, value, associated_data=other)


def test_a_tampered_ciphertext_does_not_open() -> None:
    key, value = sealed()
    raw = bytearray(value.ciphertext.encode())
    raw[3] = ord("A") if raw[3] != ord("A") else ord("B")
    tampered = value.model_copy(update={"ciphertext": raw.decode()})
    with pytest.raises(InvalidTag):
        open_value(key, tampered, associated_data=AD)


def test_the_blind_index_finds_a_person_by_the_request_hashes() -> None:
    secret, other_secret = b"s" * 32, b"t" * 32
    by_email = email_index(secret, " Jan.Kowalski@Example.org ")
    assert by_email == email_index(secret, "jan.kowalski@example.org")
    # An erasure request names the person by hashes only; the owner finds the key by them.
    assert by_email in {
        blind_index(secret, h) for h in subject_for_email("JAN.kowalski@example.org").hashes
    }
    assert by_email != email_index(other_secret, "jan.kowalski@example.org")
    assert len(by_email) == 64 and "kowalski" not in by_email
    by_phone = phone_index(secret, "+48 601 234 567")
    assert by_phone is not None
    assert by_phone in {blind_index(secret, h) for h in subject_for_phone("601-234-567").hashes}
    assert phone_index(secret, "not a phone") is None


def test_keys_travel_as_base64_and_must_be_32_bytes() -> None:
    key = new_data_key()
    published = IntakePersonKeyPublished(key_id=uuid.uuid4(), key=encode_key(key))
    assert decode_key(published.key) == key
    with pytest.raises(ValidationError):
        IntakePersonKeyPublished(key_id=uuid.uuid4(), key=encode_key(key[:16]))


def test_submission_received_carries_the_sealed_address_and_reads_old_records() -> None:
    _, value = sealed()
    base = {
        "submission_id": str(SUBMISSION),
        "consultation_id": str(uuid.uuid4()),
        "consultation_title": "Strategia",
        "theme": None,
        "submitter_kind": "resident",
        "locality": None,
        "title": "t",
        "body": "b",
        "channel": "web",
        "received_at": "2026-11-29T00:00:00Z",
        "receipt_number": "K1-00001",
        "digest": "0" * 64,
        "language": "pl",
    }
    event = SubmissionReceived.model_validate(
        {**base, "submitter_email_sealed": value.model_dump(mode="json")}
    )
    assert event.submitter_email_sealed == value and event.submitter_email is None
    # A record from before sealing is still readable (the clear field stays in v1).
    old = SubmissionReceived.model_validate({**base, "submitter_email": "jan@example.org"})
    assert old.submitter_email == "jan@example.org" and old.submitter_email_sealed is None


@pytest.mark.parametrize("topic", [Topic.INTAKE_PERSON_KEYS, Topic.GROUPS_PERSON_KEYS])
def test_the_key_topics_are_compacted_and_their_dead_letters_short_lived(topic: Topic) -> None:
    config = topic_config(topic)
    assert config["cleanup.policy"] == "compact"
    assert int(config["delete.retention.ms"]) <= 60_000
    assert int(dead_letter_config(topic)["retention.ms"]) <= 3_600_000
    # An erased key leaves the log within the compaction time: ten minutes by default…
    assert config["segment.ms"] == config["max.compaction.lag.ms"] == "600000"
    # …or what the operator set (`STRATEGIA_PERSON_KEYS_COMPACTION_SECONDS`).
    chosen = topic_config(topic, compaction_seconds=1)
    assert chosen["segment.ms"] == chosen["max.compaction.lag.ms"] == "1000"
    assert chosen["cleanup.policy"] == "compact"


def test_the_compaction_time_leaves_other_topics_alone() -> None:
    assert topic_config(Topic.INTAKE_SUBMISSIONS, compaction_seconds=1) == {}
    assert "segment.ms" not in topic_config(
        Topic.GROUPS_VOLUNTEER_MESSAGES_V2, compaction_seconds=1
    )


def test_volunteer_messages_v2_keep_links_no_longer_than_v1() -> None:
    # The tokens stay in clear on v2: kept 48 h at most, like v1, dead letters too.
    for config in (
        topic_config(Topic.GROUPS_VOLUNTEER_MESSAGES_V2),
        dead_letter_config(Topic.GROUPS_VOLUNTEER_MESSAGES_V2),
    ):
        assert int(config["retention.ms"]) <= 48 * 3_600_000


def test_a_volunteer_message_v2_has_the_address_only_sealed_and_opens_as_v1() -> None:
    key_id, key = uuid.uuid4(), new_data_key()
    volunteer_id, token = uuid.uuid4(), "w" * 43

    def sealed(field: str, plaintext: str) -> SealedValue:
        bound = volunteer_message_associated_data(
            VolunteerAssignmentNoticeV2, field, volunteer_id, token
        )
        return seal_value(key_id, key, plaintext, associated_data=bound)

    base: dict[str, object] = {
        "volunteer_id": volunteer_id,
        "consultation_id": uuid.uuid4(),
        "consultation_title": "Strategia",
        "locale": "pl",
        "withdraw_token": token,
        "withdraw_expires_at": "2026-06-03T12:00:00+00:00",
        "group_id": uuid.uuid4(),
        "group_name_pl": "Grupa 1",
        "group_name_en": "Group 1",
        "theme": "social",
    }
    with pytest.raises(ValidationError, match="email_sealed"):
        VolunteerAssignmentNoticeV2.model_validate({**base, "email": "jan@example.org"})
    message = VolunteerAssignmentNoticeV2.model_validate(
        {
            **base,
            "email_sealed": sealed("email", "jan@example.org"),
            "name_sealed": sealed("name", "Jan"),
        }
    )
    assert "jan@example.org" not in message.model_dump_json()
    assert VolunteerAssignmentNoticeV2.event_version == 2
    clear = message.opened(email="jan@example.org", name="Jan", lead_name="Anna")
    assert isinstance(clear, VolunteerAssignmentNotice)
    assert (clear.email, clear.name, clear.lead_name, clear.theme) == (
        "jan@example.org",
        "Jan",
        "Anna",
        "social",
    )


async def test_keys_read_ahead_for_a_batch_open_like_keys_read_one_by_one(
    new_database: DatabaseFactory, tmp_path: Path
) -> None:
    """`PostgresReceivedKeys.prefetch` (one query for a batch's keys) changes what `open`
    costs, not what it answers: a live key opens, an erased one is `PERSON_ERASED`, one
    not yet received or another owner's is `KeyNotYetKnown`, a tombstone after the read
    ahead still erases."""
    dsn = await new_database.create("received_keys")
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    shutil.copy(NOTIFICATIONS_KEY_MIGRATION, migrations)
    await apply_migrations(dsn, migrations)
    conn = await asyncpg.connect(dsn)
    try:
        intake_keys = PostgresReceivedKeys(conn, "intake")
        live_key, live = sealed("live@example.org")
        erased_key, erased = sealed("erased@example.org")
        later_key, later = sealed("later@example.org")
        foreign_key, foreign = sealed("foreign@example.org")
        _, missing = sealed("missing@example.org")
        await intake_keys.on_keys(
            [published(value, key) for value, key in ((live, live_key), (erased, erased_key))]
        )
        await intake_keys.on_keys([published(later, later_key)])
        await intake_keys.on_tombstone(str(erased.key_id).encode())
        await PostgresReceivedKeys(conn, "groups").on_key(published(foreign, foreign_key))

        ahead = PostgresReceivedKeys(conn, "intake")
        await ahead.prefetch(v.key_id for v in (live, erased, later, foreign, missing))
        await ahead.on_tombstone(str(later.key_id).encode())  # erased after the read ahead
        for keys in (ahead, PostgresReceivedKeys(conn, "intake")):
            assert await keys.open(live, associated_data=AD) == "live@example.org"
            assert await keys.open(erased, associated_data=AD) is PERSON_ERASED
            assert await keys.open(later, associated_data=AD) is PERSON_ERASED
            for unknown in (foreign, missing):
                with pytest.raises(KeyNotYetKnown):
                    await keys.open(unknown, associated_data=AD)
    finally:
        await conn.close()


def published(value: SealedValue, key: bytes) -> IntakePersonKeyPublished:
    return IntakePersonKeyPublished(key_id=value.key_id, key=encode_key(key))


async def test_a_batch_is_sealed_with_the_keys_sealing_one_by_one_would_use(
    new_database: DatabaseFactory, tmp_path: Path
) -> None:
    """`PostgresPersonKeys.seal_many` (one query for the stored keys, one insert for the
    new ones) answers as `seal` one request after another: a stored key is found by the
    email, else by the phone, and learns the other address; two requests of a new person
    share one new key, published once and before use; and a key that a concurrent
    transaction creates first is used instead of a second one."""
    dsn = await new_database.create("person_keys")
    await apply_migrations(dsn, [PERSON_KEYS_MIGRATIONS])
    conn = await asyncpg.connect(dsn)
    rival = await asyncpg.connect(dsn)
    staged: list[IntakePersonKeyPublished] = []

    def stage(event: IntakePersonKeyPublished, *, key: uuid.UUID) -> None:
        assert key == event.key_id
        staged.append(event)

    def owner_keys(connection: asyncpg.Connection) -> PostgresPersonKeys:
        return PostgresPersonKeys(
            connection, stage, PersonKeyTopic(Topic.INTAKE_PERSON_KEYS, IntakePersonKeyPublished)
        )

    def request(email: str | None, phone: str | None = None) -> SealRequest:
        return SealRequest(
            email=email, phone=phone, plaintext=email or phone or "", associated_data=AD
        )

    try:
        async with conn.transaction():
            by_email = await owner_keys(conn).seal(
                email="stary@example.org", phone=None, plaintext="x", associated_data=AD
            )
            by_phone = await owner_keys(conn).seal(
                email=None, phone="600 100 201", plaintext="x", associated_data=AD
            )
        staged.clear()
        # A concurrent first submission of "wyscig@" holds its new key, not yet committed.
        racing = rival.transaction()
        await racing.start()
        rival_key = await owner_keys(rival).key_for(email="wyscig@example.org", phone=None)
        staged.clear()
        requests = [
            request("stary@example.org", "600 100 300"),  # stored; learns the phone
            request("nowy@example.org"),  # new
            request("Nowy@Example.org"),  # the same new person: the same key
            request(None, "+48600100201"),  # stored, by the phone
            request("inny@example.org", "600100201"),  # found by the phone; learns the email
            request("wyscig@example.org"),  # the rival's key, once it commits
            request(None, "600 100 300"),  # the phone "stary@" learned above
        ]
        async with conn.transaction():
            sealing = asyncio.ensure_future(owner_keys(conn).seal_many(requests))

            await wait_until_blocked_by(rival, "the batch's insert to meet the rival's key")
            await racing.commit()
            sealed = await sealing
        keys = {
            row["key_id"]: row
            for row in await conn.fetch(
                "SELECT key_id, key, email_index, phone_index FROM person_keys"
            )
        }
        ids = [value.key_id for value in sealed]
        new_key = ids[1]
        assert ids == [
            by_email.key_id,
            new_key,
            new_key,
            by_phone.key_id,
            by_phone.key_id,
            rival_key[0],
            by_email.key_id,
        ]
        assert len(keys) == 4  # stary, 600100201 (with inny@), wyscig, nowy
        assert [event.key_id for event in staged] == [new_key]  # the rival published its own
        for value, sent in zip(sealed, requests, strict=True):
            assert (
                open_value(bytes(keys[value.key_id]["key"]), value, associated_data=AD)
                == sent.plaintext
            )
        # What the batch stored is what one-by-one sealing now finds.
        for sent, value in zip(requests, sealed, strict=True):
            found, _ = await owner_keys(conn).key_for(email=sent.email, phone=sent.phone)
            assert found == value.key_id
        assert keys[by_phone.key_id]["email_index"] is not None
        assert keys[by_email.key_id]["phone_index"] is not None
    finally:
        await rival.close()
        await conn.close()
