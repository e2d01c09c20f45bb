"""Which payload model belongs to which (event type, version) and topic."""

from __future__ import annotations

from collections.abc import Iterable

from shared.contracts.envelope import EventPayload
from shared.contracts.intake import (
    ConsultationAnnounced,
    ConsultationClosed,
    ConsultationOpened,
    ConsultationWindowChanged,
    SubmissionReceived,
    SubmitSubmission,
)
from shared.contracts.notifications import DeliveryFailed
from shared.contracts.topics import Topic

TOPIC_EVENTS: dict[Topic, tuple[type[EventPayload], ...]] = {
    Topic.INTAKE_CONSULTATIONS: (
        ConsultationAnnounced,
        ConsultationOpened,
        ConsultationClosed,
        ConsultationWindowChanged,
    ),
    Topic.INTAKE_SUBMISSIONS: (SubmissionReceived,),
    Topic.INTAKE_SUBMISSION_COMMANDS: (SubmitSubmission,),
    Topic.NOTIFICATIONS_DELIVERIES: (DeliveryFailed,),
}


class EventRegistry:
    """Resolves a payload model from the envelope's type and version."""

    def __init__(self, models: Iterable[type[EventPayload]]) -> None:
        self._models: dict[tuple[str, int], type[EventPayload]] = {}
        for model in models:
            self._models[(model.event_type, model.event_version)] = model

    def resolve(self, event_type: str, event_version: int) -> type[EventPayload] | None:
        return self._models.get((event_type, event_version))

    @classmethod
    def for_topic(cls, topic: Topic) -> EventRegistry:
        return cls(TOPIC_EVENTS[topic])


def topic_of(model: type[EventPayload]) -> Topic:
    for topic, models in TOPIC_EVENTS.items():
        if model in models:
            return topic
    raise LookupError(f"{model.__name__} is not declared on any topic")
