"""The notifications unit of work on PostgreSQL."""

from __future__ import annotations

from notifications.adapters.delivery_repository import PostgresDeliveries
from notifications.adapters.submitter_repository import PostgresSubmitters
from notifications.adapters.subscription_repository import PostgresSubscriptions
from notifications.service.ports import NotificationsUnitOfWork
from shared.platform.database import DbConnection
from shared.platform.one_time_tokens import PostgresOneTimeTokens
from shared.platform.shredding import PostgresReceivedKeys
from shared.platform.unit_of_work import PostgresUnitOfWork


class PostgresNotificationsUnitOfWork(PostgresUnitOfWork, NotificationsUnitOfWork):
    deliveries: PostgresDeliveries
    submitters: PostgresSubmitters

    def bind(self, connection: DbConnection) -> None:
        self.deliveries = PostgresDeliveries(connection)
        self.subscriptions = PostgresSubscriptions(connection)
        self.one_time_tokens = PostgresOneTimeTokens(connection)
        self.submitters = PostgresSubmitters(connection)
        self.intake_keys = PostgresReceivedKeys(connection, "intake")
        self.groups_keys = PostgresReceivedKeys(connection, "groups")
