"""Kafka side of groups: the consultations and submissions it projects, what it publishes.

Handlers run in the unit of work holding the inbox claim: a redelivered event has no
second effect, and one that breaks a rule (a `DomainError`) is dead-lettered with the
reason.
"""

from __future__ import annotations

from typing import Any

from groups.service.ports import GroupsUnitOfWork
from groups.service.review import SubmissionReview
from shared.contracts.envelope import Envelope
from shared.contracts.topics import Topic
from shared.platform.runtime import ServiceRuntime


def register_subscriptions(runtime: ServiceRuntime[Any], review: SubmissionReview) -> None:
    async def on_consultation(uow: GroupsUnitOfWork, envelope: Envelope[Any]) -> None:
        await review.consultation_event(uow, envelope.data)

    async def on_submission(uow: GroupsUnitOfWork, envelope: Envelope[Any]) -> None:
        await review.receive(uow, envelope.data)

    runtime.consumer.subscribe(
        Topic.INTAKE_CONSULTATIONS,
        on_consultation,
        description="Keeps the consultations projection (themes and window) groups belong to.",
    )
    runtime.consumer.subscribe(
        Topic.INTAKE_SUBMISSIONS,
        on_submission,
        description="Projects each submission (no contact data), classifies it when it has "
        "no theme, routes it to a group of its theme and flags possible duplicates.",
    )


def document_publications(runtime: ServiceRuntime[Any]) -> None:
    runtime.document_publication(
        Topic.GROUPS_GROUPS, "Working groups formed and their leads, keyed by group id"
    )
    runtime.document_publication(
        Topic.GROUPS_VOLUNTEERS,
        "Volunteers signed up, confirmed, assigned, waitlisted, left; no contact data; "
        "keyed by volunteer id",
    )
    runtime.document_publication(
        Topic.GROUPS_VOLUNTEER_MESSAGES_V2,
        "Emails to volunteers for notifications: address and names sealed under their "
        "person's key (groups.person-keys.v1), link secrets; retained 48 hours (the longest "
        "a link lives); keyed by volunteer id. Replaces groups.volunteer-messages.v1, which "
        "carried the address in clear and is no longer written",
    )
    runtime.document_publication(
        Topic.GROUPS_VOLUNTEER_MESSAGES,
        "No longer written (replaced by groups.volunteer-messages.v2): emails to volunteers "
        "with the address and name in clear; notifications reads it until its 48-hour "
        "retention has drained it; keyed by volunteer id",
    )
    runtime.document_publication(
        Topic.GROUPS_PERSON_KEYS,
        "Per-person data keys of the volunteers' sealed fields, compacted; a tombstone when "
        "the person is erased (crypto-shredding); keyed by key id",
    )
    runtime.document_publication(
        Topic.GROUPS_SUBMISSIONS,
        "Submissions routed to groups (how the theme was chosen) and decided (outcome and "
        "public reason), keyed by submission id",
    )
    runtime.document_publication(
        Topic.GROUPS_RECOMMENDATIONS, "Published recommendations, keyed by recommendation id"
    )
