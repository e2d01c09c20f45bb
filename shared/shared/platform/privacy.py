"""Data-subject requests in every service: one seam, one subscription, sealed answers.

A service plugs in with its `PersonalData` adapter (SQL over its own tables):

    install_privacy(runtime, MyPersonalData())

and then answers every `ErasureRequested` (erase or anonymise, confirm with
`<Service>ErasureCompleted`) and `ExportRequested` (collect, seal to the request's public
key, answer with `<Service>ExportAnswered`) on its own `<service>.privacy-replies.v1`,
exactly once per request (the inbox), in the same transaction as the erasure.

Persons are named by hashes (`subject_hashes`); SQL compares them with
`email_hash_sql(column)` / `phone_hash_sql(column)`, the same normalisation in PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import uuid
from typing import Any, Protocol

import phonenumbers
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.clock import utc_now
from shared.contracts.envelope import Envelope
from shared.contracts.privacy import (
    REPLY_MODELS,
    ErasureRequested,
    ExportRecords,
    ExportRequested,
    PersonRef,
    SealedBox,
    SubjectKind,
)
from shared.contracts.topics import Topic, privacy_replies_topic
from shared.errors import FieldProblem, InvalidRequest
from shared.platform.database import DbConnection
from shared.platform.unit_of_work import PostgresUnitOfWork

# --- naming a person without their address ---------------------------------------------------


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_hash(email: str) -> str:
    return _sha256(normalise_email(email))


def phone_digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


def redact(text: str, address: str) -> str:
    """`text` without `address` (any letter case)."""
    return re.sub(re.escape(address.strip()), "<recipient>", text, flags=re.IGNORECASE)


def subject_for_email(email: str) -> PersonRef:
    return PersonRef(kind=SubjectKind.EMAIL, hashes=(email_hash(email),))


_NOT_A_PHONE = FieldProblem("phone", "not a phone number")


def subject_for_phone(phone: str, *, region: str = "PL") -> PersonRef:
    """Hashes of the number's digits as E.164 and as dialled nationally, so a number stored
    as `+48 600 100 200` and one stored as `600-100-200` both match."""
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidRequest("not a phone number", (_NOT_A_PHONE,)) from error
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidRequest("not a phone number", (_NOT_A_PHONE,))
    e164 = phone_digits(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    national = str(parsed.national_number)
    forms = dict.fromkeys((e164, national, f"00{e164}"))
    return PersonRef(kind=SubjectKind.PHONE, hashes=tuple(_sha256(form) for form in forms))


def email_hash_sql(column: str) -> str:
    """SQL: the hash `email_hash` gives, of an email column."""
    return f"encode(sha256(convert_to(lower(btrim({column})), 'UTF8')), 'hex')"


def phone_hash_sql(column: str) -> str:
    """SQL: the hash of a phone column's digits (compare with `subject_for_phone`)."""
    return f"encode(sha256(convert_to(regexp_replace({column}, '[^0-9]', '', 'g'), 'UTF8')), 'hex')"


def matches_sql(subject: PersonRef, *, email: str | None, phone: str | None, param: int) -> str:
    """A WHERE condition: the row's email (or phone) column names `subject`, whose hashes
    are the text[] parameter `$param`. A column the table lacks (None) never matches."""
    column = email if subject.kind is SubjectKind.EMAIL else phone
    if column is None:  # still names the parameter, so PostgreSQL knows its type
        return f"(${param}::text[] IS NULL AND false)"
    hashed = email_hash_sql(column) if subject.kind is SubjectKind.EMAIL else phone_hash_sql(column)
    return f"({column} IS NOT NULL AND {hashed} = ANY(${param}::text[]))"


# --- sealed answers (X25519 + HKDF-SHA256 + AES-256-GCM) -------------------------------------

_INFO = b"strategia privacy export v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode())


def new_key_pair() -> tuple[bytes, str]:
    """A one-off key pair: (raw private key for the requester's database, public key text)."""
    private = X25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return private.private_bytes_raw(), _b64(public)


def _key(shared: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=salt, info=_INFO).derive(shared)


def seal(public_key: str, plaintext: bytes, *, associated_data: bytes = b"") -> SealedBox:
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(_unb64(public_key)))
    nonce = os.urandom(12)
    ciphertext = AESGCM(_key(shared, ephemeral_public)).encrypt(nonce, plaintext, associated_data)
    return SealedBox(
        ephemeral_public_key=_b64(ephemeral_public), nonce=_b64(nonce), ciphertext=_b64(ciphertext)
    )


def open_sealed(private_key: bytes, box: SealedBox, *, associated_data: bytes = b"") -> bytes:
    """The plaintext; `cryptography.exceptions.InvalidTag` when it was tampered with."""
    ephemeral_public = _unb64(box.ephemeral_public_key)
    shared = X25519PrivateKey.from_private_bytes(private_key).exchange(
        X25519PublicKey.from_public_bytes(ephemeral_public)
    )
    return AESGCM(_key(shared, ephemeral_public)).decrypt(
        _unb64(box.nonce), _unb64(box.ciphertext), associated_data
    )


def export_associated_data(request_id: uuid.UUID, service: str) -> bytes:
    """Binds a sealed answer to its request and service (it cannot be replayed elsewhere)."""
    return f"{request_id}:{service}".encode()


# --- the seam every service implements --------------------------------------------------------


class PersonalData(Protocol):
    """What a service holds about persons, over its own database (an adapter)."""

    async def erase(self, uow: PostgresUnitOfWork, subject: PersonRef) -> int:
        """Erase or anonymise every row naming `subject` in the unit of work's transaction;
        the number of rows changed. It gets the whole unit of work, not just its
        connection, because erasing may be a business event too (a volunteer erased
        leaves their group, which the service announces)."""
        ...

    async def export(self, conn: DbConnection, subject: PersonRef) -> ExportRecords:
        """Every row naming `subject`, by table (JSON-ready values)."""
        ...


class HoldsNothing:
    """A service with no personal data yet: it still answers, so requests complete."""

    async def erase(self, uow: PostgresUnitOfWork, subject: PersonRef) -> int:
        return 0

    async def export(self, conn: DbConnection, subject: PersonRef) -> ExportRecords:
        return {}


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d ()-]{5,}\d")


def names_subject(text: str, subject: PersonRef) -> bool:
    """Whether free text (a dead letter, say) contains an address of `subject`."""
    wanted = set(subject.hashes)
    if subject.kind is SubjectKind.EMAIL:
        return any(email_hash(found) in wanted for found in _EMAIL.findall(text))
    return any(_sha256(phone_digits(found)) in wanted for found in _PHONE.findall(text))


async def erase_dead_letters(conn: DbConnection, subject: PersonRef) -> int:
    """Delete the service's stored dead letters that name the person (their bytes are
    the original message, which may carry an address)."""
    rows = await conn.fetch("SELECT id, value FROM dead_letters")
    doomed = [
        row["id"]
        for row in rows
        if names_subject(bytes(row["value"]).decode(errors="replace"), subject)
    ]
    if doomed:
        await conn.execute("DELETE FROM dead_letters WHERE id = ANY($1::bigint[])", doomed)
    return len(doomed)


def _count(records: ExportRecords) -> int:
    return sum(len(rows) for rows in records.values())


def install_privacy(
    runtime: Any, personal_data: PersonalData, *, person_keys: Topic | None = None
) -> None:
    """Subscribe `runtime` to the data-subject requests and declare its replies topic.

    An owner of sealed fields names its compacted key topic (`person_keys`): erasure then
    also deletes the person's data keys and publishes their tombstones (crypto-shredding,
    `shared/platform/shredding.py`)."""
    service: str = runtime.name
    erased_model, exported_model = REPLY_MODELS[service]
    replies = privacy_replies_topic(service)

    async def on_request(uow: Any, envelope: Envelope[Any]) -> None:
        request = envelope.data
        conn = uow.connection
        if isinstance(request, ErasureRequested):
            records = await personal_data.erase(uow, request.subject)
            records += await erase_dead_letters(conn, request.subject)
            if person_keys is not None:
                from shared.platform.shredding import erase_person_keys

                records += await erase_person_keys(
                    conn, request.subject, uow.stage_tombstone, person_keys
                )
            uow.stage_event(
                erased_model(
                    request_id=request.request_id,
                    service=service,
                    records=records,
                    completed_at=utc_now(),
                ),
                key=request.request_id,
            )
        elif isinstance(request, ExportRequested):
            found = await personal_data.export(conn, request.subject)
            plaintext = json.dumps(found, default=str, ensure_ascii=False).encode()
            box = seal(
                request.public_key,
                plaintext,
                associated_data=export_associated_data(request.request_id, service),
            )
            uow.stage_event(
                exported_model(
                    request_id=request.request_id,
                    service=service,
                    records=_count(found),
                    sealed=box,
                    answered_at=utc_now(),
                ),
                key=request.request_id,
            )
        await uow.commit()

    runtime.consumer.subscribe(
        Topic.INTAKE_PRIVACY_REQUESTS,
        on_request,
        description="Erases or exports what the service holds about a person (RODO).",
    )
    runtime.document_publication(
        replies,
        "Answers to data-subject requests: erasure confirmed, export sealed to the "
        "request's key (key: request id)",
    )
