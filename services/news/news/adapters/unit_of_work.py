"""The news unit of work on PostgreSQL: one transaction and the repositories on it."""

from __future__ import annotations

from news.adapters.repository import PostgresAlerts, PostgresArticles
from news.service.ports import NewsUnitOfWork
from shared.platform.database import DbConnection
from shared.platform.unit_of_work import PostgresUnitOfWork


class PostgresNewsUnitOfWork(PostgresUnitOfWork, NewsUnitOfWork):
    def bind(self, connection: DbConnection) -> None:
        self.articles = PostgresArticles(connection)
        self.alerts = PostgresAlerts(connection)
