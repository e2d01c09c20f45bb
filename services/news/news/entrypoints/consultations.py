"""Kafka entrypoint: consultation events from intake become news articles.

The article's id is derived from the event (see `news.domain.consultations`) and the
handler runs in the unit of work holding the inbox claim, so a redelivered event adds no
second article and publishes nothing twice.
"""

from __future__ import annotations

from typing import Any

from news.service.handlers import NewsService
from news.service.ports import NewsUnitOfWork
from shared.contracts.envelope import Envelope
from shared.contracts.topics import Topic
from shared.platform.messaging import EventConsumer


def subscribe_consultations(consumer: EventConsumer[Any], service: NewsService) -> None:
    async def on_consultation_event(uow: NewsUnitOfWork, envelope: Envelope[Any]) -> None:
        await service.on_consultation_event(uow, envelope.data)

    consumer.subscribe(
        Topic.INTAKE_CONSULTATIONS,
        on_consultation_event,
        description="Announces, opens, closes and moves consultations as news articles.",
    )
