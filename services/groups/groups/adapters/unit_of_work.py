"""The groups unit of work on PostgreSQL: one transaction and the repositories on it."""

from __future__ import annotations

from groups.adapters.repository import (
    PostgresAssessments,
    PostgresAssignments,
    PostgresConsultations,
    PostgresDuplicateLinks,
    PostgresGroups,
    PostgresHousekeeping,
    PostgresRecommendations,
    PostgresSessions,
    PostgresSubmissions,
    PostgresTrends,
    PostgresVolunteers,
)
from groups.service.ports import GroupsUnitOfWork
from shared.contracts.groups import GroupsPersonKeyPublished
from shared.contracts.topics import Topic
from shared.platform.database import DbConnection
from shared.platform.one_time_tokens import PostgresOneTimeTokens
from shared.platform.shredding import PersonKeyTopic, PostgresPersonKeys
from shared.platform.unit_of_work import PostgresUnitOfWork

PERSON_KEYS = PersonKeyTopic(Topic.GROUPS_PERSON_KEYS, GroupsPersonKeyPublished)


class PostgresGroupsUnitOfWork(PostgresUnitOfWork, GroupsUnitOfWork):
    def bind(self, connection: DbConnection) -> None:
        self.consultations = PostgresConsultations(connection)
        self.volunteers = PostgresVolunteers(connection)
        self.groups = PostgresGroups(connection)
        self.submissions = PostgresSubmissions(connection)
        self.assignments = PostgresAssignments(connection)
        self.assessments = PostgresAssessments(connection)
        self.duplicates = PostgresDuplicateLinks(connection)
        self.recommendations = PostgresRecommendations(connection)
        self.trends = PostgresTrends(connection)
        self.sessions = PostgresSessions(connection)
        self.tokens = PostgresOneTimeTokens(connection)
        self.housekeeping = PostgresHousekeeping(connection)
        self.person_keys = PostgresPersonKeys(connection, self.stage_event, PERSON_KEYS)
