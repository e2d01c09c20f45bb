"""A personal field sealed under its person's data key (crypto-shredding).

The owner of a person's data keeps one AES-256-GCM key per person in its own database and
publishes it on its compacted `<owner>.person-keys.v1`; an event carries the field as a
`SealedValue` instead of the clear text. Erasure deletes the key (and publishes its
tombstone), after which every copy of the field, on any topic or dead-letter topic, is
ciphertext nobody can open (`shared/platform/shredding.py`).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, Field

from shared.contracts.envelope import TOLERANT_READER

_BASE64URL = r"^[A-Za-z0-9_-]+={0,2}$"


class SealedValue(BaseModel):
    """`ciphertext` (with its GCM tag) of a UTF-8 field under the key `key_id`, bound by
    associated data to the event and field it travels in."""

    model_config = TOLERANT_READER

    key_id: uuid.UUID
    nonce: Annotated[str, Field(pattern=_BASE64URL, min_length=16, max_length=16)]
    ciphertext: Annotated[str, Field(pattern=_BASE64URL, min_length=24, max_length=4096)]


class PersonKeyPublished(BaseModel):
    """Fields of an owner's key record (each owner declares its own event type)."""

    model_config = TOLERANT_READER

    key_id: uuid.UUID
    # The raw 32-byte AES key, base64url: only the consumers granted the topic read it.
    key: Annotated[str, Field(pattern=_BASE64URL, min_length=44, max_length=44)]
