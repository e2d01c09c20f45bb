"""Kafka entrypoint: submit commands from other front channels.

The command goes through the same domain validation as the HTTP endpoint; a command that
breaks a rule can never succeed, so it is dead-lettered with the reason. The envelope's
`event_id` makes redelivery harmless (the platform inbox).
"""

from __future__ import annotations

from typing import Any

from intake.domain.errors import DomainError
from intake.domain.submission import SubmissionDraft
from intake.service.handlers import IntakeService, NotFound, Trace
from shared.contracts.envelope import Envelope
from shared.contracts.intake import SubmitSubmission
from shared.platform.database import DbConnection
from shared.platform.messaging import EventConsumer, PermanentFailure


def subscribe_commands(consumer: EventConsumer, service: IntakeService, topic: str) -> None:
    async def on_submit(conn: DbConnection, envelope: Envelope[Any]) -> None:
        command: SubmitSubmission = envelope.data
        draft = SubmissionDraft(
            consultation_id=command.consultation_id,
            submitter=command.submitter,
            theme=command.theme,
            title=command.title,
            body=command.body,
            consent=command.consent,
            channel=command.channel,
            language=command.language,
            received_on=command.received_on,
        )
        try:
            # Runs in the inbox transaction: a rejected command rolls back with it entirely.
            await service.submit_in(
                conn,
                draft,
                entered_by=f"kafka:{envelope.producer}",
                trace=Trace(
                    correlation_id=envelope.correlation_id,
                    causation_id=str(envelope.event_id),
                ),
            )
        except NotFound as error:
            raise PermanentFailure(str(error)) from None
        except DomainError as error:
            details = "; ".join(f"{p.field}: {p.reason}" for p in error.problems)
            suffix = f" ({details})" if details else ""
            raise PermanentFailure(f"{error.message}{suffix}") from None

    consumer.subscribe(
        topic,
        on_submit,
        models=[SubmitSubmission],
        description="Submit a need or proposal on someone's behalf (same rules as HTTP).",
    )
