"""The upgrade to derived subscriber links, on a database of the version before it: links
already emailed keep working, a delivery queued then is sent with derived links, and no
link secret is left anywhere in the database."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest

from devtools.pytest_plugin import DatabaseFactory, SmtpSink
from devtools.testing import eventually, settings_for_test, start_service, unique_prefix
from notifications.bootstrap import MIGRATIONS
from notifications.config import NotificationsSettings
from shared.platform.database import apply_migrations

pytestmark = pytest.mark.integration

UPGRADE = "20260601000000"
PUBLIC = "https://www.gmina.example"
API = "https://api.gmina.example/notifications"


async def tables_holding(database_url: str, secret: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        tables = await conn.fetch(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS name"
            " FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            " AND table_type = 'BASE TABLE'"
        )
        return [
            table["name"]
            for table in tables
            if await conn.fetchval(
                f"SELECT count(*) FROM {table['name']} t WHERE strpos(t::text, $1) > 0", secret
            )
        ]
    finally:
        await conn.close()


async def test_links_emailed_before_the_upgrade_keep_working_and_leave_no_secret(
    new_database: DatabaseFactory,
    kafka_bootstrap_servers: str,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> None:
    database_url = await new_database.create("notifications")
    before = tmp_path / "migrations"
    before.mkdir()
    for migration in MIGRATIONS.glob("*.sql"):
        if migration.name < UPGRADE:
            shutil.copy(migration, before)
    await apply_migrations(database_url, before)

    # A subscriber of the old version: the link token stored in clear, an alert queued
    # with the finished links in its substitutions and its List-Unsubscribe.
    legacy = secrets.token_urlsafe(32)
    recipient = f"old.{uuid.uuid4().hex[:8]}@example.org"
    subscription_id, content_id = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO subscriptions (id, email, status, topics, min_level, locale,"
            " link_token, created_at, updated_at, confirmed_at)"
            " VALUES ($1, $2, 'confirmed', ARRAY['alerts'], 1, 'pl', $3, now(), now(), now())",
            subscription_id,
            recipient,
            legacy,
        )
        await conn.execute(
            "INSERT INTO mail_contents (id, language, subject, text_body, html_body)"
            " VALUES ($1, 'pl', '[Ostrzeżenie] Burze',"
            " E'Burze.\\nWypisz: %%UNSUBSCRIBE_URL%%\\nZarządzaj: %%MANAGE_URL%%\\n',"
            " '<a href=\"%%MANAGE_URL%%\">x</a>')",
            content_id,
        )
        delivery_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO deliveries (id, source_event_id, correlation_id, purpose, recipient,"
            " language, content_id, substitutions, list_unsubscribe, message_id, priority,"
            " subscription_id, subject_key)"
            " VALUES ($1, $2, 'c', 'alert', $3, 'pl', $4,"
            " jsonb_build_object('%%UNSUBSCRIBE_URL%%', $5::text, '%%MANAGE_URL%%', $6::text),"
            " $7, $8, 0, $9, 'k')",
            delivery_id,
            uuid.uuid4(),
            recipient,
            content_id,
            f"{PUBLIC}/subskrypcje/wypisz?token={legacy}",
            f"{PUBLIC}/subskrypcje/zarzadzaj?token={legacy}",
            f"{API}/v1/subscriptions/one-click-unsubscribe?token={legacy}",
            f"<{delivery_id}@strategia.1418023>",
            subscription_id,
        )
    finally:
        await conn.close()
    assert set(await tables_holding(database_url, legacy)) == {
        "public.deliveries",
        "public.subscriptions",
    }

    settings = settings_for_test(
        NotificationsSettings,
        database_url=database_url,
        kafka=kafka_bootstrap_servers,
        prefix=unique_prefix("link-upgrade"),
        smtp_host=smtp_sink.host,
        smtp_port=smtp_sink.port,
        public_base_url=PUBLIC,
        api_public_url=API,
        dispatcher_poll_seconds=0.5,
    )
    running = await start_service("notifications", settings)  # migrates on start
    try:
        assert await tables_holding(database_url, legacy) == []

        async def arrived() -> list[object] | None:
            found = [m for m in await asyncio.to_thread(smtp_sink.messages) if m["To"] == recipient]
            return found or None

        [message] = await eventually(arrived, "the alert queued before the upgrade")
        one_click = str(message["List-Unsubscribe"]).strip("<>")
        derived = one_click.rsplit("token=", 1)[1]
        assert "." in derived and derived != legacy
        body = message.get_body(("plain",))
        assert body is not None
        match = re.search(r"/subskrypcje/zarzadzaj\?token=([A-Za-z0-9_.-]+)", body.get_content())
        assert match and match.group(1) == derived
        assert await tables_holding(database_url, derived) == []

        client = running.client
        # The link from an email sent before the upgrade still works, and so does the new one.
        for token in (legacy, derived):
            shown = await client.post("/v1/subscriptions/manage", json={"token": token})
            assert shown.status_code == 200, shown.text
            assert shown.json()["email"] == recipient
        tampered = legacy[:-1] + ("x" if legacy[-1] != "x" else "y")
        forged = await client.post("/v1/subscriptions/manage", json={"token": tampered})
        assert forged.status_code == 422
        gone = await client.post("/v1/subscriptions/unsubscribe", json={"token": legacy})
        assert gone.status_code == 200 and gone.json() == {"status": "unsubscribed"}
    finally:
        await running.stop()
