"""Which payload model belongs to which (event type, version) and topic.

`TOPIC_EVENTS` is the one place an event type is bound to its topic: staging an event looks
its topic up here, so a new event type cannot be published anywhere before it is declared.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.contracts.envelope import EventPayload
from shared.contracts.groups import (
    GroupFormed,
    GroupsPersonKeyPublished,
    LeadAppointed,
    MemberSignInLinkRequested,
    MemberSignInLinkRequestedV2,
    RecommendationPublished,
    SubmissionDecided,
    SubmissionRouted,
    VolunteerAssigned,
    VolunteerAssignmentNotice,
    VolunteerAssignmentNoticeV2,
    VolunteerConfirmationRequested,
    VolunteerConfirmationRequestedV2,
    VolunteerConfirmed,
    VolunteerLeft,
    VolunteerSignedUp,
    VolunteerWaitlisted,
    VolunteerWaitlistNotice,
    VolunteerWaitlistNoticeV2,
)
from shared.contracts.intake import (
    ConsultationAnnounced,
    ConsultationClosed,
    ConsultationOpened,
    ConsultationWindowChanged,
    IntakePersonKeyPublished,
    SubmissionReceived,
    SubmitSubmission,
)
from shared.contracts.news import (
    AlertIssued,
    ArticlePublished,
    ArticleUpdated,
    ArticleWithdrawn,
)
from shared.contracts.notifications import DeliveryFailed
from shared.contracts.privacy import REPLY_MODELS, ErasureRequested, ExportRequested
from shared.contracts.topics import Topic

TOPIC_EVENTS: dict[Topic, tuple[type[EventPayload], ...]] = {
    Topic.INTAKE_CONSULTATIONS: (
        ConsultationAnnounced,
        ConsultationOpened,
        ConsultationClosed,
        ConsultationWindowChanged,
    ),
    Topic.INTAKE_SUBMISSIONS: (SubmissionReceived,),
    Topic.INTAKE_PERSON_KEYS: (IntakePersonKeyPublished,),
    Topic.INTAKE_SUBMISSION_COMMANDS: (SubmitSubmission,),
    Topic.GROUPS_GROUPS: (GroupFormed, LeadAppointed),
    Topic.GROUPS_VOLUNTEERS: (
        VolunteerSignedUp,
        VolunteerConfirmed,
        VolunteerAssigned,
        VolunteerWaitlisted,
        VolunteerLeft,
    ),
    Topic.GROUPS_VOLUNTEER_MESSAGES: (
        VolunteerConfirmationRequested,
        VolunteerAssignmentNotice,
        VolunteerWaitlistNotice,
        MemberSignInLinkRequested,
    ),
    Topic.GROUPS_VOLUNTEER_MESSAGES_V2: (
        VolunteerConfirmationRequestedV2,
        VolunteerAssignmentNoticeV2,
        VolunteerWaitlistNoticeV2,
        MemberSignInLinkRequestedV2,
    ),
    Topic.GROUPS_PERSON_KEYS: (GroupsPersonKeyPublished,),
    Topic.GROUPS_SUBMISSIONS: (SubmissionRouted, SubmissionDecided),
    Topic.GROUPS_RECOMMENDATIONS: (RecommendationPublished,),
    Topic.NOTIFICATIONS_DELIVERIES: (DeliveryFailed,),
    Topic.NEWS_ARTICLES: (ArticlePublished, ArticleUpdated, ArticleWithdrawn),
    Topic.NEWS_ALERTS: (AlertIssued,),
    Topic.INTAKE_PRIVACY_REQUESTS: (ErasureRequested, ExportRequested),
    Topic.INTAKE_PRIVACY_REPLIES: REPLY_MODELS["intake"],
    Topic.GROUPS_PRIVACY_REPLIES: REPLY_MODELS["groups"],
    Topic.NOTIFICATIONS_PRIVACY_REPLIES: REPLY_MODELS["notifications"],
    Topic.NEWS_PRIVACY_REPLIES: REPLY_MODELS["news"],
}


# What each service consumes: the one place a subscription is declared. The platform
# refuses to subscribe a service to a topic not listed here, and the broker's ACLs (read
# rights, consumer group, dead-letter topics) are derived from it
# (shared/platform/kafka_access.py). A service's keys here are the services there are.
SUBSCRIPTIONS: dict[str, tuple[Topic, ...]] = {
    "intake": (
        Topic.INTAKE_SUBMISSION_COMMANDS,  # commands from the other front channels
        Topic.INTAKE_PRIVACY_REQUESTS,  # intake answers the requests it records, too
        # every service's answers to data-subject requests (STRATEGIA_PRIVACY_SERVICES)
        Topic.INTAKE_PRIVACY_REPLIES,
        Topic.GROUPS_PRIVACY_REPLIES,
        Topic.NOTIFICATIONS_PRIVACY_REPLIES,
        Topic.NEWS_PRIVACY_REPLIES,
    ),
    "groups": (Topic.INTAKE_CONSULTATIONS, Topic.INTAKE_SUBMISSIONS, Topic.INTAKE_PRIVACY_REQUESTS),
    "notifications": (
        Topic.INTAKE_SUBMISSIONS,
        Topic.INTAKE_PERSON_KEYS,  # the keys of sealed submitter addresses
        Topic.GROUPS_VOLUNTEER_MESSAGES,  # no longer written: read while it drains
        Topic.GROUPS_VOLUNTEER_MESSAGES_V2,
        Topic.GROUPS_PERSON_KEYS,  # the keys of sealed volunteer addresses and names
        Topic.GROUPS_SUBMISSIONS,
        Topic.NEWS_ALERTS,
        Topic.NEWS_ARTICLES,
        Topic.INTAKE_PRIVACY_REQUESTS,
    ),
    "news": (Topic.INTAKE_CONSULTATIONS, Topic.INTAKE_PRIVACY_REQUESTS),
}

SERVICES: tuple[str, ...] = tuple(SUBSCRIPTIONS)


def _topic_by_model() -> dict[type[EventPayload], Topic]:
    found: dict[type[EventPayload], Topic] = {}
    for topic, models in TOPIC_EVENTS.items():
        for model in models:
            if model in found:
                raise ValueError(f"{model.__name__} is declared on {found[model]} and {topic}")
            found[model] = topic
    return found


_TOPIC_OF = _topic_by_model()


class EventRegistry:
    """Resolves a payload model from the envelope's type and version."""

    def __init__(self, models: Iterable[type[EventPayload]]) -> None:
        self._models: dict[tuple[str, int], type[EventPayload]] = {}
        for model in models:
            self._models[(model.event_type, model.event_version)] = model

    def resolve(self, event_type: str, event_version: int) -> type[EventPayload] | None:
        return self._models.get((event_type, event_version))


def topic_of(model: type[EventPayload]) -> Topic:
    try:
        return _TOPIC_OF[model]
    except KeyError:
        raise LookupError(
            f"{model.__name__} is not declared on any topic (shared/contracts/registry.py)"
        ) from None
