"""What notifications holds about a person, for erasure and export (RODO)."""

from __future__ import annotations

from notifications.domain.subscriptions import CONFIRMATION_PURPOSE
from shared.contracts.privacy import ExportRecords, PersonRef
from shared.platform.database import DbConnection
from shared.platform.privacy import matches_sql
from shared.platform.retention import Purge
from shared.platform.unit_of_work import PostgresUnitOfWork

ERASED = "(usunięto na wniosek)"
# An erased subscription's address: unique per row (one subscription per address) and
# never an address.
ERASED_SUBSCRIPTION = "(erased) "


class NotificationsPersonalData:
    """Deliveries lose the address and the message (which names the person); one still
    pending is not sent. Submitters remembered for decision emails are forgotten. A
    subscription is ended and loses the address (the row stays, anonymised, because sent
    deliveries refer to it); its unspent confirmation links stop working."""

    async def erase(self, uow: PostgresUnitOfWork, subject: PersonRef) -> int:
        conn = uow.connection
        where = matches_sql(subject, email="recipient", phone=None, param=1)
        status = await conn.execute(
            "UPDATE deliveries SET recipient = '', subject = $2, text_body = '',"
            " html_body = '', last_error = CASE WHEN status = 'pending' THEN $2"
            " ELSE last_error END, failed_at = CASE WHEN status = 'pending' THEN now()"
            " ELSE failed_at END, status = CASE WHEN status = 'pending' THEN 'failed'"
            f" ELSE status END WHERE {where}",
            list(subject.hashes),
            ERASED,
        )
        deliveries = int(status.split()[-1])
        where = matches_sql(subject, email="email", phone=None, param=1)
        status = await conn.execute(f"DELETE FROM submitters WHERE {where}", list(subject.hashes))
        submitters = int(status.split()[-1])
        where = matches_sql(subject, email="email", phone=None, param=1)
        erased = await conn.fetch(
            "UPDATE subscriptions SET email = $2 || id::text, status = 'unsubscribed',"
            " requested_topics = NULL, requested_min_level = NULL, requested_locale = NULL,"
            " unsubscribed_at = coalesce(unsubscribed_at, now()), updated_at = now()"
            f" WHERE {where} RETURNING id::text",
            list(subject.hashes),
            ERASED_SUBSCRIPTION,
        )
        if erased:
            await conn.execute(
                "DELETE FROM one_time_tokens WHERE purpose = $1 AND subject = ANY($2::text[])",
                CONFIRMATION_PURPOSE,
                [row[0] for row in erased],
            )
        return deliveries + submitters + len(erased)

    async def export(self, conn: DbConnection, subject: PersonRef) -> ExportRecords:
        found: ExportRecords = {}
        for table, columns, address, order in _EXPORTED:
            where = matches_sql(subject, email=address, phone=None, param=1)
            rows = await conn.fetch(
                f"SELECT {columns} FROM {table} WHERE {where} ORDER BY {order}",
                list(subject.hashes),
            )
            if rows:
                found[table] = [dict(row) for row in rows]
        return found


# What an export shows of each table: (table, columns, the column holding the address,
# the order of the rows).
_EXPORTED = (
    (
        "deliveries",
        "id, purpose, recipient, language, subject, text_body, status, created_at, sent_at,"
        " failed_at",
        "recipient",
        "created_at",
    ),
    (
        "submitters",
        "submission_id, email, language, consultation_title, recorded_at",
        "email",
        "recorded_at",
    ),
    (
        "subscriptions",
        "email, status, topics, min_level, locale, created_at, confirmed_at, unsubscribed_at",
        "email",
        "created_at",
    ),
)


def purge_after(days: int) -> Purge:
    """Retention: delivered or failed emails, and remembered submitters, older than
    `days` are deleted (the inbox still keeps the events from being handled again)."""

    async def purge(conn: DbConnection) -> int:
        deliveries = await conn.execute(
            "DELETE FROM deliveries WHERE status <> 'pending'"
            " AND created_at < now() - make_interval(days => $1)",
            days,
        )
        submitters = await conn.execute(
            "DELETE FROM submitters WHERE recorded_at < now() - make_interval(days => $1)", days
        )
        return int(deliveries.split()[-1]) + int(submitters.split()[-1])

    return purge
