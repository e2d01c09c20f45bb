"""The notifications unit of work on PostgreSQL."""

from __future__ import annotations

from notifications.adapters.delivery_repository import PostgresDeliveries
from notifications.adapters.submitter_repository import PostgresSubmitters
from notifications.service.ports import NotificationsUnitOfWork
from shared.platform.database import DbConnection
from shared.platform.unit_of_work import PostgresUnitOfWork


class PostgresNotificationsUnitOfWork(PostgresUnitOfWork, NotificationsUnitOfWork):
    deliveries: PostgresDeliveries
    submitters: PostgresSubmitters

    def bind(self, connection: DbConnection) -> None:
        self.deliveries = PostgresDeliveries(connection)
        self.submitters = PostgresSubmitters(connection)
