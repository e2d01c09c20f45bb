"""Crypto-shredding: personal fields on the topics are sealed under a per-person key.

The owner of a person's data (intake for submitters) keeps one AES-256-GCM data key per
person in its own database (`person_keys`), found again by a blind index: HMAC-SHA256,
under a secret of that database, of the same SHA-256 hashes of the normalised email or
phone that name a person in data-subject requests (`shared/platform/privacy.py`). So the
same address always gets the same key, and an erasure request — which carries only those
hashes — finds the key without any address.

An event carries the field as a `SealedValue` (key id, nonce, ciphertext) whose
associated data binds it to the event and field (it cannot be moved to another event).
The key itself is published, through the owner's outbox in the same transaction and
before the event that first uses it, on the owner's compacted `<owner>.person-keys.v1`
(key: key id). A consumer that needs the clear text (notifications) keeps the keys it
receives (`PostgresReceivedKeys`) and opens the field; on a tombstone it deletes its copy.

Erasure deletes the owner's key row and stages the key id's tombstone; the consumer
deletes its copy when the tombstone arrives, and the log cleaner drops the key record.
Every sealed copy — the topic, its dead letters, backups — is then ciphertext nobody can
open.

Ordering: the key record and the event are on different topics, so a consumer may see
the event first. A sealed field whose key id is unknown is `KeyNotYetKnown`, an
`AwaitingPrerequisite`: the platform rewinds and tries again soon (50 ms, doubling to 1 s;
the key arrives within the outbox relay's batch) without counting attempts, for
`consumer_prerequisite_wait_seconds` (120 s); only then do attempts count, and after
`consumer_max_attempts` it is dead-lettered — a dead letter that holds only ciphertext,
replayable once the key is there. A key id that
is known but erased (its tombstone was seen) is `PERSON_ERASED`: the field is treated as
absent, and the message is processed without it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.contracts.envelope import Envelope, EventPayload
from shared.contracts.privacy import PersonRef
from shared.contracts.sealed import PersonKeyPublished, SealedValue
from shared.contracts.topics import Topic
from shared.platform.database import DbConnection
from shared.platform.messaging import AwaitingPrerequisite, PermanentFailure
from shared.platform.privacy import email_hash, subject_for_phone

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode())


# --- primitives -------------------------------------------------------------------------------


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def seal_value(
    key_id: uuid.UUID, key: bytes, plaintext: str, *, associated_data: bytes
) -> SealedValue:
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext.encode(), associated_data)
    return SealedValue(key_id=key_id, nonce=_b64(nonce), ciphertext=_b64(ciphertext))


def open_value(key: bytes, sealed: SealedValue, *, associated_data: bytes) -> str:
    """The clear text; `cryptography.exceptions.InvalidTag` when the ciphertext, the key
    or the associated data is not the one it was sealed with."""
    return (
        AESGCM(key)
        .decrypt(_unb64(sealed.nonce), _unb64(sealed.ciphertext), associated_data)
        .decode()
    )


def encode_key(key: bytes) -> str:
    return _b64(key)


def decode_key(text: str) -> bytes:
    key = _unb64(text)
    if len(key) != KEY_BYTES:
        raise ValueError("a person key is 32 bytes")
    return key


def blind_index(secret: bytes, subject_hash: str) -> str:
    """HMAC-SHA256 of a person hash (`privacy.email_hash`, a phone form's hash)."""
    return hmac.new(secret, subject_hash.encode(), hashlib.sha256).hexdigest()


def email_index(secret: bytes, email: str) -> str:
    return blind_index(secret, email_hash(email))


def phone_index(secret: bytes, phone: str, *, region: str = "PL") -> str | None:
    """The index of the number's E.164 form (the first of `subject_for_phone`'s hashes);
    None for a string that is no phone number (no key is found by it then)."""
    try:
        return blind_index(secret, subject_for_phone(phone, region=region).hashes[0])
    except Exception:
        return None


# --- the owner's side -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SealRequest:
    """One field to seal, of the person named by `email`/`phone`."""

    email: str | None
    phone: str | None
    plaintext: str
    associated_data: bytes


class PersonSealer(Protocol):
    """The owner's port: seal a field of the person named by `email`/`phone`."""

    async def seal(
        self, *, email: str | None, phone: str | None, plaintext: str, associated_data: bytes
    ) -> SealedValue: ...

    async def seal_many(self, requests: Sequence[SealRequest]) -> list[SealedValue]:
        """`seal` of each request, in order, as if one after another (one person, one
        key, also for two requests of a new person)."""
        ...


async def _seal_request(sealer: PersonSealer, request: SealRequest) -> SealedValue:
    return await sealer.seal(
        email=request.email,
        phone=request.phone,
        plaintext=request.plaintext,
        associated_data=request.associated_data,
    )


@dataclass(frozen=True, slots=True)
class PersonKeyTopic:
    """Where an owner publishes its keys, and the event type it publishes them as."""

    topic: Topic
    event: type[EventPayload]


class InMemoryPersonKeys:
    """`PersonSealer` for fake units of work in unit tests: one real AES key per person
    (email, else phone), so what the tests open is the platform's own sealing."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[uuid.UUID, bytes]] = {}

    async def seal(
        self, *, email: str | None, phone: str | None, plaintext: str, associated_data: bytes
    ) -> SealedValue:
        person = (email or phone or "").lower()
        key_id, key = self.keys.setdefault(person, (uuid.uuid4(), new_data_key()))
        return seal_value(key_id, key, plaintext, associated_data=associated_data)

    async def seal_many(self, requests: Sequence[SealRequest]) -> list[SealedValue]:
        return [await _seal_request(self, request) for request in requests]


_INDEX_KEY_SQL: Final = (
    "WITH created AS (INSERT INTO person_key_secret (id, secret) VALUES (1, $1)"
    " ON CONFLICT (id) DO NOTHING RETURNING secret)"
    " SELECT secret FROM created UNION ALL SELECT secret FROM person_key_secret WHERE id = 1"
)


async def index_secret(conn: DbConnection) -> bytes:
    """The database's blind-index secret, created on first use."""
    secret = await conn.fetchval(_INDEX_KEY_SQL, os.urandom(32))
    if secret is None:  # created by a concurrent first use, after this statement began
        secret = await conn.fetchval("SELECT secret FROM person_key_secret WHERE id = 1")
    return bytes(secret)


class PostgresPersonKeys:
    """`PersonSealer` on the owner's `person_keys` table; a new key is staged on the
    owner's key topic through `stage` (the unit of work's `stage_event`), so it is in the
    outbox before the event that uses it."""

    def __init__(
        self,
        conn: DbConnection,
        stage: Callable[..., None],
        topic: PersonKeyTopic,
        *,
        phone_region: str = "PL",
    ) -> None:
        self._conn = conn
        self._stage = stage
        self._topic = topic
        self._region = phone_region
        self._secret: bytes | None = None  # the database's, read once per unit of work

    async def _index_secret(self) -> bytes:
        if self._secret is None:
            self._secret = await index_secret(self._conn)
        return self._secret

    async def key_for(self, *, email: str | None, phone: str | None) -> tuple[uuid.UUID, bytes]:
        """The person's key: found by the email's index, else the phone's; else created."""
        secret = await self._index_secret()
        by_email = email_index(secret, email) if email else None
        by_phone = phone_index(secret, phone, region=self._region) if phone else None
        if by_email is None and by_phone is None:
            raise ValueError("a person key needs an email or a phone")
        for column, index in (("email_index", by_email), ("phone_index", by_phone)):
            if index is None:
                continue
            row = await self._conn.fetchrow(
                f"SELECT key_id, key FROM person_keys WHERE {column} = $1", index
            )
            if row is not None:
                await self._complete(row["key_id"], by_email, by_phone)
                return row["key_id"], bytes(row["key"])
        key_id, key = uuid.uuid4(), new_data_key()
        # Concurrent first submissions of one person: one insert wins, the other uses it.
        inserted = await self._conn.fetchrow(
            "INSERT INTO person_keys (key_id, key, email_index, phone_index)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING key_id",
            key_id,
            key,
            by_email,
            by_phone,
        )
        if inserted is None:
            return await self.key_for(email=email, phone=phone)
        self._stage(self._topic.event(key_id=key_id, key=encode_key(key)), key=key_id)
        return key_id, key

    async def _complete(
        self, key_id: uuid.UUID, by_email: str | None, by_phone: str | None
    ) -> None:
        """A key found by one address learns the other one (so erasure by either finds
        it), unless that address already has a key of its own."""
        for column, index in (("email_index", by_email), ("phone_index", by_phone)):
            if index is None:
                continue
            with contextlib.suppress(asyncpg.UniqueViolationError):
                async with self._conn.transaction():  # a savepoint
                    await self._conn.execute(
                        f"UPDATE person_keys SET {column} = $2 WHERE key_id = $1"
                        f" AND {column} IS NULL AND NOT EXISTS"
                        f" (SELECT 1 FROM person_keys WHERE {column} = $2)",
                        key_id,
                        index,
                    )

    async def seal(
        self, *, email: str | None, phone: str | None, plaintext: str, associated_data: bytes
    ) -> SealedValue:
        key_id, key = await self.key_for(email=email, phone=phone)
        return seal_value(key_id, key, plaintext, associated_data=associated_data)

    async def seal_many(self, requests: Sequence[SealRequest]) -> list[SealedValue]:
        """`seal` of each request with one query for the keys that exist and one insert
        for the new ones (a group commit seals a whole batch of submitters at once).

        The outcome is `key_for`'s one request after another: found by the email's
        index, else the phone's; a found key learns the other address if no key has it;
        two requests of one new person share one new key. A new key that a concurrent
        transaction created first (the insert skips it) is found again one by one."""
        if len(requests) <= 1:
            return [await _seal_request(self, request) for request in requests]
        secret = await self._index_secret()
        named = [
            (
                email_index(secret, request.email) if request.email else None,
                phone_index(secret, request.phone, region=self._region) if request.phone else None,
            )
            for request in requests
        ]
        if any(by_email is None and by_phone is None for by_email, by_phone in named):
            raise ValueError("a person key needs an email or a phone")
        rows = await self._conn.fetch(
            "SELECT key_id, key, email_index, phone_index FROM person_keys"
            " WHERE email_index = ANY($1::text[]) OR phone_index = ANY($2::text[])",
            [by_email for by_email, _ in named if by_email is not None],
            [by_phone for _, by_phone in named if by_phone is not None],
        )
        keys = [
            _Key(row["key_id"], bytes(row["key"]), row["email_index"], row["phone_index"])
            for row in rows
        ]
        by_email_index = {key.email_index: key for key in keys if key.email_index}
        by_phone_index = {key.phone_index: key for key in keys if key.phone_index}
        chosen: list[_Key] = []
        for by_email, by_phone in named:
            key = (by_email_index.get(by_email) if by_email else None) or (
                by_phone_index.get(by_phone) if by_phone else None
            )
            if key is None:
                key = _Key(uuid.uuid4(), new_data_key(), by_email, by_phone, stored=False)
            else:
                await self._learn(key, by_email, by_phone, by_email_index, by_phone_index)
            if by_email and by_email not in by_email_index and key.email_index == by_email:
                by_email_index[by_email] = key
            if by_phone and by_phone not in by_phone_index and key.phone_index == by_phone:
                by_phone_index[by_phone] = key
            chosen.append(key)
        new = list({key.key_id: key for key in chosen if not key.stored}.values())
        inserted: set[uuid.UUID] = set()
        if new:
            # Concurrent first submissions of one person: one insert wins, the other
            # finds its key one by one below.
            inserted = {
                row["key_id"]
                for row in await self._conn.fetch(
                    "INSERT INTO person_keys (key_id, key, email_index, phone_index)"
                    " SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[], $4::text[])"
                    " ON CONFLICT DO NOTHING RETURNING key_id",
                    [key.key_id for key in new],
                    [key.key for key in new],
                    [key.email_index for key in new],
                    [key.phone_index for key in new],
                )
            }
            for key in new:  # staged before any event that uses it, in the order made
                if key.key_id in inserted:
                    self._stage(
                        self._topic.event(key_id=key.key_id, key=encode_key(key.key)),
                        key=key.key_id,
                    )
        sealed: list[SealedValue] = []
        for request, key in zip(requests, chosen, strict=True):
            if key.stored or key.key_id in inserted:
                sealed.append(
                    seal_value(
                        key.key_id,
                        key.key,
                        request.plaintext,
                        associated_data=request.associated_data,
                    )
                )
            else:
                sealed.append(await _seal_request(self, request))
        return sealed

    async def _learn(
        self,
        key: _Key,
        by_email: str | None,
        by_phone: str | None,
        by_email_index: dict[str, _Key],
        by_phone_index: dict[str, _Key],
    ) -> None:
        """A key found by one address learns the other, unless another key has it (as
        `_complete`; a stored key is updated, a new one is inserted with it)."""
        learns_email = bool(by_email) and key.email_index is None and by_email not in by_email_index
        learns_phone = bool(by_phone) and key.phone_index is None and by_phone not in by_phone_index
        if not (learns_email or learns_phone):
            return
        if key.stored:
            await self._complete(
                key.key_id, by_email if learns_email else None, by_phone if learns_phone else None
            )
        if learns_email:
            key.email_index = by_email
        if learns_phone:
            key.phone_index = by_phone


@dataclass(slots=True)
class _Key:
    """A person key while `seal_many` resolves a batch: stored, or made by this call."""

    key_id: uuid.UUID
    key: bytes
    email_index: str | None
    phone_index: str | None
    stored: bool = True


async def erase_person_keys(
    conn: DbConnection, subject: PersonRef, stage_tombstone: Callable[..., None], topic: Topic
) -> int:
    """Delete the keys of the person named by `subject` and stage their tombstones."""
    secret = await index_secret(conn)
    indexes = [blind_index(secret, subject_hash) for subject_hash in subject.hashes]
    rows = await conn.fetch(
        "DELETE FROM person_keys WHERE email_index = ANY($1::text[])"
        " OR phone_index = ANY($1::text[]) RETURNING key_id",
        indexes,
    )
    for row in rows:
        stage_tombstone(topic, key=row["key_id"])
    return len(rows)


# --- a consumer's side ------------------------------------------------------------------------


class KeyNotYetKnown(AwaitingPrerequisite):
    """A sealed field under a key id whose record has not arrived yet (transient)."""


class _Erased:
    def __repr__(self) -> str:
        return "PERSON_ERASED"


PERSON_ERASED: Final = _Erased()


class ReceivedKeys(Protocol):
    """A consumer's copy of an owner's keys (a repository of its unit of work)."""

    async def on_key(self, published: PersonKeyPublished) -> None: ...

    async def on_keys(self, published: Sequence[PersonKeyPublished]) -> None: ...

    async def on_tombstone(self, key: bytes) -> None: ...

    async def prefetch(self, key_ids: Iterable[uuid.UUID]) -> None: ...

    async def open(self, sealed: SealedValue, *, associated_data: bytes) -> str | _Erased: ...


class PostgresReceivedKeys:
    """`ReceivedKeys` on table `received_person_keys`: a row per key id; `key` is NULL once
    the owner's tombstone arrived (the person is erased)."""

    def __init__(self, conn: DbConnection, owner: str) -> None:
        self._conn = conn
        self._owner = owner
        # Keys read ahead for a batch (`prefetch`), for this unit of work only: key id ->
        # the key, or None when erased.
        self._fetched: dict[uuid.UUID, bytes | None] = {}

    async def on_key(self, published: PersonKeyPublished) -> None:
        # A key id is never reused, so a row erased already stays erased.
        await self._conn.execute(
            "INSERT INTO received_person_keys (key_id, owner, key) VALUES ($1, $2, $3)"
            " ON CONFLICT (key_id) DO NOTHING",
            published.key_id,
            self._owner,
            decode_key(published.key),
        )

    async def on_keys(self, published: Sequence[PersonKeyPublished]) -> None:
        """`on_key` for a consumer batch in one statement: a key arrives with every new
        person, so one insert per key would bound how fast sealed events can be opened."""
        if not published:
            return
        await self._conn.execute(
            "INSERT INTO received_person_keys (key_id, owner, key)"
            " SELECT key_id, $2, key FROM unnest($1::uuid[], $3::bytea[]) AS k (key_id, key)"
            " ON CONFLICT (key_id) DO NOTHING",
            [p.key_id for p in published],
            self._owner,
            [decode_key(p.key) for p in published],
        )

    async def on_tombstone(self, key: bytes) -> None:
        try:
            key_id = uuid.UUID(key.decode())
        except ValueError:
            log.warning("tombstone with a key that is no key id: ignored")
            return
        self._fetched.pop(key_id, None)
        await self._conn.execute(
            "INSERT INTO received_person_keys (key_id, owner, key, erased_at)"
            " VALUES ($1, $2, NULL, now())"
            " ON CONFLICT (key_id) DO UPDATE SET key = NULL, erased_at = now()",
            key_id,
            self._owner,
        )

    async def prefetch(self, key_ids: Iterable[uuid.UUID]) -> None:
        """Read the keys a batch of events is sealed under with one query, so opening
        them costs no round trip each (a key not found is looked up again by `open`)."""
        wanted = list(set(key_ids) - self._fetched.keys())
        if not wanted:
            return
        rows = await self._conn.fetch(
            "SELECT key_id, key FROM received_person_keys WHERE key_id = ANY($1::uuid[])"
            " AND owner = $2",
            wanted,
            self._owner,
        )
        for row in rows:
            self._fetched[row["key_id"]] = None if row["key"] is None else bytes(row["key"])

    async def open(self, sealed: SealedValue, *, associated_data: bytes) -> str | _Erased:
        """The clear text, or `PERSON_ERASED`; raises `KeyNotYetKnown` (retry later) and
        `InvalidTag` (a tampered or misplaced value: the message is at fault)."""
        if sealed.key_id in self._fetched:
            key = self._fetched[sealed.key_id]
        else:
            # Only this owner's keys: a value sealed by one owner never opens as another's.
            row = await self._conn.fetchrow(
                "SELECT key FROM received_person_keys WHERE key_id = $1 AND owner = $2",
                sealed.key_id,
                self._owner,
            )
            if row is None:
                raise KeyNotYetKnown(f"person key {sealed.key_id} has not arrived yet")
            key = None if row["key"] is None else bytes(row["key"])
        if key is None:
            return PERSON_ERASED
        return open_value(key, sealed, associated_data=associated_data)


async def open_field(
    keys: ReceivedKeys,
    sealed: SealedValue,
    *,
    associated_data: bytes,
    field: str,
    event_id: uuid.UUID | None = None,
) -> str | _Erased:
    """`ReceivedKeys.open` for a consumer's handler: a value that does not open under its
    key (tampered, or moved from another event or field) is the message's fault, a
    `PermanentFailure` (dead-lettered at once); `KeyNotYetKnown` stays transient, naming
    `event_id` (so a batch's other events need not wait for it)."""
    try:
        return await keys.open(sealed, associated_data=associated_data)
    except InvalidTag:
        raise PermanentFailure(f"{field} does not open under its key") from None
    except KeyNotYetKnown as error:
        raise KeyNotYetKnown(str(error), event_id=event_id) from None


def subscribe_received_keys(
    runtime: Any, topic: Topic, keys_of: Callable[[Any], ReceivedKeys], *, description: str
) -> None:
    """Subscribe `runtime` to an owner's compacted key topic: a key record is kept in the
    unit of work's `ReceivedKeys` (`keys_of(uow)`), a tombstone erases the copy.

    In batches: every new person brings a key, and an event sealed under it waits (is
    retried) until the key is stored, so keys consumed one per transaction (~60/s on the
    2-core benchmark machine) held receipts to that rate. A batch holding a tombstone goes
    event by event, in partition order, so a key and its later tombstone keep their order."""

    async def on_key(uow: Any, envelope: Envelope[Any]) -> None:
        await keys_of(uow).on_key(envelope.data)

    async def on_keys(uow: Any, envelopes: Sequence[Envelope[Any]]) -> None:
        await keys_of(uow).on_keys([envelope.data for envelope in envelopes])

    async def on_key_erased(uow: Any, key: bytes) -> None:
        await keys_of(uow).on_tombstone(key)

    runtime.consumer.subscribe(
        topic,
        on_key,
        on_tombstone=on_key_erased,
        batch=True,
        handle_batch=on_keys,
        description=description,
    )
