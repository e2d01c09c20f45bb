"""Create the service's topics (and their dead-letter topics) before use.

Relying on broker auto-creation gives one partition and error noise on first publish;
declaring them gives the configured partitions and replication everywhere.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.platform.kafka_security import KafkaConnection

log = logging.getLogger(__name__)


async def ensure_topics(
    connection: KafkaConnection,
    topics: Mapping[str, Mapping[str, str]],
    *,
    partitions: int,
    replication: int,
) -> None:
    """Create the missing ones among `topics` (name → topic-level configs). Existing topics
    are left as they are: changing a live topic's settings is an operator's decision.

    The service's principal may create only the topics it uses (see `kafka_access`)."""
    wanted = sorted(topics)
    if not wanted:
        return
    admin = AIOKafkaAdminClient(client_id="topic-admin", **connection.client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return
        # Another replica may have created them first.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [
                    NewTopic(name, partitions, replication, topic_configs=dict(topics[name]))
                    for name in missing
                ]
            )
        log.info("topics created", extra={"topics": missing})
    finally:
        await admin.close()
