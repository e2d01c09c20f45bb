"""Contracts published by the notifications service."""

from __future__ import annotations

import uuid

from pydantic import AwareDatetime

from shared.contracts.envelope import EventPayload


class DeliveryFailed(EventPayload):
    """An email could not be delivered after the configured number of attempts."""

    event_type = "notifications.DeliveryFailed"

    delivery_id: uuid.UUID
    source_event_id: uuid.UUID
    purpose: str
    # "sha256:<hex>" of the lower-cased address (shared.platform.privacy.email_hash): the
    # address itself stays in notifications' database, where erasure reaches it.
    recipient: str
    attempts: int
    last_error: str
    failed_at: AwareDatetime
