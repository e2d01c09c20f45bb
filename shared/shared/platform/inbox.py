"""Idempotent consumer: remember which events already had their effect.

The claim runs in the same transaction as the handler's writes; if the handler fails the
claim is rolled back with them, so a redelivered event is processed again, and a
committed one is skipped. Keyed on the envelope's `event_id`, never on Kafka offsets.
"""

from __future__ import annotations

import uuid

from shared.platform.database import DbConnection


async def claim_event(
    conn: DbConnection, *, consumer: str, event_id: uuid.UUID, event_type: str
) -> bool:
    """True when this consumer sees the event for the first time."""
    if not conn.is_in_transaction():
        raise RuntimeError("claim_event must run inside the handler's transaction")
    inserted = await conn.fetchval(
        "INSERT INTO inbox (consumer, event_id, event_type) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        consumer,
        event_id,
        event_type,
    )
    return inserted is not None
