"""Every Kafka topic of the system, declared in one place.

A topic name starts with the owning service and ends with the major version of its
contract; a breaking change gets a new topic (`….v2`) while the old one is drained.
Dead letters of a topic go to `<topic>.dlt`.
"""

from __future__ import annotations

from enum import StrEnum

DEAD_LETTER_SUFFIX = ".dlt"


class Topic(StrEnum):
    # intake: consultations and their life cycle (key: consultation id)
    INTAKE_CONSULTATIONS = "intake.consultations.v1"
    # intake: accepted submissions (key: submission id)
    INTAKE_SUBMISSIONS = "intake.submissions.v1"
    # intake: per-person data keys of sealed fields, compacted (key: key id; a tombstone
    # when the person is erased)
    INTAKE_PERSON_KEYS = "intake.person-keys.v1"
    # intake: submit commands from other front channels (key: consultation id)
    INTAKE_SUBMISSION_COMMANDS = "intake.submission-commands.v1"
    # groups: working groups formed and their leads (key: group id)
    GROUPS_GROUPS = "groups.groups.v1"
    # groups: volunteers' life cycle, no contact data (key: volunteer id)
    GROUPS_VOLUNTEERS = "groups.volunteers.v1"
    # groups: emails to volunteers, with the address and link secrets (key: volunteer id;
    # kept only as long as the longest token lives, see TOPIC_CONFIGS). v1 carried the
    # address and name in clear and is no longer written (read while it drains); v2
    # carries them sealed under the person's key.
    GROUPS_VOLUNTEER_MESSAGES = "groups.volunteer-messages.v1"
    GROUPS_VOLUNTEER_MESSAGES_V2 = "groups.volunteer-messages.v2"
    # groups: per-person data keys of the volunteers' sealed fields, compacted (key: key
    # id; a tombstone when the person is erased)
    GROUPS_PERSON_KEYS = "groups.person-keys.v1"
    # groups: submissions routed to groups and decided (key: submission id)
    GROUPS_SUBMISSIONS = "groups.submissions.v1"
    # groups: published recommendations (key: recommendation id)
    GROUPS_RECOMMENDATIONS = "groups.recommendations.v1"
    # notifications: delivery outcomes worth acting on (key: delivery id)
    NOTIFICATIONS_DELIVERIES = "notifications.deliveries.v1"
    # news: articles published, updated, withdrawn (key: article id)
    NEWS_ARTICLES = "news.articles.v1"
    # news: alert messages, CAP Alert / Update / Cancel (key: id of the alert's first message)
    NEWS_ALERTS = "news.alerts.v1"
    # intake: data-subject requests, erasure and export (key: request id; no address)
    INTAKE_PRIVACY_REQUESTS = "intake.privacy-requests.v1"
    # each service: its answers to data-subject requests (key: request id)
    INTAKE_PRIVACY_REPLIES = "intake.privacy-replies.v1"
    GROUPS_PRIVACY_REPLIES = "groups.privacy-replies.v1"
    NOTIFICATIONS_PRIVACY_REPLIES = "notifications.privacy-replies.v1"
    NEWS_PRIVACY_REPLIES = "news.privacy-replies.v1"

    @property
    def owner(self) -> str:
        return self.value.split(".", 1)[0]


# Topics other front channels write and their owner consumes: the owner may read them but
# never write them (so nobody can pass an event off as the owner's), the front channel
# principal may only write them.
COMMAND_TOPICS: frozenset[Topic] = frozenset({Topic.INTAKE_SUBMISSION_COMMANDS})


def dead_letter_topic(topic: str) -> str:
    return f"{topic}{DEAD_LETTER_SUFFIX}"


_HOUR_MS = 60 * 60 * 1000
_DAY_MS = 24 * _HOUR_MS

# How long an erased person's key may stay readable in the key topic's log by default:
# the active segment rolls after this long (on the next key record) and is then
# compacted within as long again. Seconds would do too, but rolling a segment every
# second (new index files) and cleaning the log each second cost the broker 10–15 % of
# a core at 200 submissions/s (README "Person keys compacted in minutes").
PERSON_KEYS_COMPACTION_SECONDS = 600

PERSON_KEYS_CONFIG = {
    "cleanup.policy": "compact",
    "segment.ms": str(PERSON_KEYS_COMPACTION_SECONDS * 1000),
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "60000",
    "min.compaction.lag.ms": "0",
    "max.compaction.lag.ms": str(PERSON_KEYS_COMPACTION_SECONDS * 1000),
}

# Topic-level settings applied when a topic is created. A topic whose events carry a
# secret (an emailed link's token) keeps them no longer than the secret is valid.
TOPIC_CONFIGS: dict[Topic, dict[str, str]] = {
    # Confirmation and withdrawal links live 48 h, sign-in links 24 h.
    Topic.GROUPS_VOLUNTEER_MESSAGES: {"retention.ms": str(2 * _DAY_MS)},
    Topic.GROUPS_VOLUNTEER_MESSAGES_V2: {"retention.ms": str(2 * _DAY_MS)},
    # Person keys: the latest record per key id is kept; an erased key's tombstone makes
    # the cleaner drop the key bytes within minutes (`PERSON_KEYS_COMPACTION_SECONDS`,
    # any dirt triggers a clean) and the tombstone itself one minute later.
    Topic.INTAKE_PERSON_KEYS: PERSON_KEYS_CONFIG,
    Topic.GROUPS_PERSON_KEYS: PERSON_KEYS_CONFIG,
}

# Dead letters are for operators to look at and replay, not an archive of personal data.
DEAD_LETTER_CONFIG = {"retention.ms": str(30 * _DAY_MS)}


def privacy_replies_topic(service: str) -> Topic:
    """The topic on which `service` answers data-subject requests."""
    return Topic(f"{service}.privacy-replies.v1")


def topic_config(topic: Topic, *, compaction_seconds: float | None = None) -> dict[str, str]:
    """The settings `topic` is created with; `compaction_seconds` replaces the default
    time within which a compacted topic's erased keys leave its log."""
    config = dict(TOPIC_CONFIGS.get(topic, {}))
    if compaction_seconds is not None and config.get("cleanup.policy") == "compact":
        milliseconds = str(round(compaction_seconds * 1000))
        config["segment.ms"] = milliseconds
        config["max.compaction.lag.ms"] = milliseconds
    return config


def dead_letter_config(topic: str) -> dict[str, str]:
    """A dead-letter topic keeps its letters 30 days, or less when its source topic does
    (a copy must not outlive the original's personal data)."""
    config = dict(DEAD_LETTER_CONFIG)
    own = TOPIC_CONFIGS.get(Topic(topic), {}) if topic in Topic._value2member_map_ else {}
    if own.get("cleanup.policy") == "compact":
        # A dead-lettered key record holds a person's key, which erasure cannot reach on
        # a dead-letter topic: it is kept one hour, for an operator to see, no longer.
        config["retention.ms"] = str(_HOUR_MS)
    if "retention.ms" in own:
        config["retention.ms"] = str(min(int(own["retention.ms"]), int(config["retention.ms"])))
    return config


class TopicNames:
    """Physical topic and consumer-group names: the logical name behind a prefix.

    The prefix (setting `kafka_topic_prefix`) lets several gminas or test runs share one
    cluster; an empty prefix gives the names the contracts document.
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def __call__(self, topic: str) -> str:
        return f"{self.prefix}{topic}"

    def group(self, consumer: str) -> str:
        return f"{self.prefix}{consumer}"
