"""Kafka entrypoint: submit commands from other front channels.

The command goes through the same use case and rules as the HTTP endpoint, inside the
unit of work that holds the inbox claim: a redelivered command creates nothing new, and
one that breaks a rule (a `DomainError`) can never succeed, so the platform dead-letters
it with the reason.
"""

from __future__ import annotations

from typing import Any

from intake.domain.commands import Submit
from intake.domain.submission import KAFKA_ENTERED_BY, check_kafka_command
from intake.service.handlers import IntakeService
from intake.service.ports import IntakeUnitOfWork
from shared.contracts.envelope import Envelope
from shared.contracts.intake import Channel, SubmitSubmission
from shared.contracts.topics import Topic
from shared.platform.messaging import EventConsumer


def subscribe_commands(consumer: EventConsumer[Any], service: IntakeService) -> None:
    async def on_submit(uow: IntakeUnitOfWork, envelope: Envelope[Any]) -> None:
        command: SubmitSubmission = envelope.data
        check_kafka_command(command)
        await service.submit(
            uow,
            Submit(
                consultation_id=command.consultation_id,
                content=command,
                channel=Channel.KAFKA,
                entered_by=KAFKA_ENTERED_BY,
            ),
        )

    consumer.subscribe(
        Topic.INTAKE_SUBMISSION_COMMANDS,
        on_submit,
        description="Submit a need or proposal on someone's behalf (same rules as HTTP).",
    )
