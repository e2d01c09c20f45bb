"""Intake's unit of work on PostgreSQL: one transaction and the repositories on it."""

from __future__ import annotations

from intake.adapters.privacy import PostgresPrivacyRequests
from intake.adapters.repository import (
    PostgresConsultations,
    PostgresIdempotencyKeys,
    PostgresSubmissions,
)
from intake.service.ports import IntakeUnitOfWork
from shared.contracts.intake import IntakePersonKeyPublished
from shared.contracts.topics import Topic
from shared.platform.database import DbConnection
from shared.platform.shredding import PersonKeyTopic, PostgresPersonKeys
from shared.platform.unit_of_work import PostgresUnitOfWork

PERSON_KEYS = PersonKeyTopic(Topic.INTAKE_PERSON_KEYS, IntakePersonKeyPublished)


class PostgresIntakeUnitOfWork(PostgresUnitOfWork, IntakeUnitOfWork):
    def bind(self, connection: DbConnection) -> None:
        self.consultations = PostgresConsultations(connection)
        self.submissions = PostgresSubmissions(connection)
        self.idempotency_keys = PostgresIdempotencyKeys(connection)
        self.privacy_requests = PostgresPrivacyRequests(connection)
        self.person_keys = PostgresPersonKeys(connection, self.stage_event, PERSON_KEYS)
