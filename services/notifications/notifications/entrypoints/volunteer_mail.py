"""Kafka subscriptions of the working groups' emails."""

from __future__ import annotations

from typing import Any

from notifications.service.volunteer_mail import VolunteerMail
from shared.contracts.topics import Topic
from shared.platform.runtime import ServiceRuntime


def register_volunteer_mail(runtime: ServiceRuntime[Any], mail: VolunteerMail) -> None:
    runtime.consumer.subscribe(
        Topic.GROUPS_VOLUNTEER_MESSAGES,
        mail.on_volunteer_message,
        description="Queues the emails to volunteers: confirmation (RODO notice included), "
        "assignment, waiting list, sign-in link; each with its withdrawal link.",
    )
    runtime.consumer.subscribe(
        Topic.GROUPS_SUBMISSIONS,
        mail.on_submission_event,
        description="Queues the decision email to a submitter who consented to contact.",
    )
