"""What notifications holds about a person, for erasure and export (RODO)."""

from __future__ import annotations

from notifications.domain.subscriptions import CONFIRMATION_PURPOSE
from shared.contracts.privacy import ExportRecords, PersonRef
from shared.platform.database import DbConnection
from shared.platform.privacy import matches_sql
from shared.platform.retention import Purge
from shared.platform.unit_of_work import PostgresUnitOfWork

ERASED = "(usunięto na wniosek)"


class NotificationsPersonalData:
    """A subscription of the address is deleted, with the emails sent to it as a
    subscriber and its open confirmation tokens. Other deliveries lose the address and the
    message (which names the person); one still pending is not sent. Submitters
    remembered for decision emails are forgotten."""

    async def erase(self, uow: PostgresUnitOfWork, subject: PersonRef) -> int:
        conn = uow.connection
        erased = 0
        where = matches_sql(subject, email="email", phone=None, param=1)
        subscriptions = [
            row["id"]
            for row in await conn.fetch(
                f"SELECT id FROM subscriptions WHERE {where} FOR UPDATE", list(subject.hashes)
            )
        ]
        if subscriptions:
            # Deleted rather than anonymised: they would all point at no subscription, and
            # one email per (event, purpose, subscription) is a unique key.
            status = await conn.execute(
                "DELETE FROM deliveries WHERE subscription_id = ANY ($1::uuid[])", subscriptions
            )
            erased += int(status.split()[-1])
            await conn.execute(
                "DELETE FROM one_time_tokens WHERE purpose = $1 AND subject = ANY ($2::text[])",
                CONFIRMATION_PURPOSE,
                [str(subscription_id) for subscription_id in subscriptions],
            )
            status = await conn.execute(
                "DELETE FROM subscriptions WHERE id = ANY ($1::uuid[])", subscriptions
            )
            erased += int(status.split()[-1])
        where = matches_sql(subject, email="recipient", phone=None, param=1)
        status = await conn.execute(
            # content_id: a message shared with others is not this person's to keep.
            "UPDATE deliveries SET recipient = '', subject = $2, text_body = '',"
            " html_body = '', content_id = NULL, last_error = CASE WHEN status = 'pending' THEN $2"
            " ELSE last_error END, failed_at = CASE WHEN status = 'pending' THEN now()"
            " ELSE failed_at END, status = CASE WHEN status = 'pending' THEN 'failed'"
            f" ELSE status END WHERE {where}",
            list(subject.hashes),
            ERASED,
        )
        erased += int(status.split()[-1])
        where = matches_sql(subject, email="email", phone=None, param=1)
        status = await conn.execute(f"DELETE FROM submitters WHERE {where}", list(subject.hashes))
        return erased + int(status.split()[-1])

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
        # what the subscription is (no link secret: none is stored)
        "id, email, status, topics, min_level, locale, requested_topics, requested_min_level,"
        " requested_locale, created_at, confirmation_sent_at, confirmed_at, unsubscribed_at",
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
