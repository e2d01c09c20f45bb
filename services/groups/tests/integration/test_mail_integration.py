"""groups and notifications together on the real broker, server and SMTP sink: the web
sign-up confirmed by its emailed link, withdrawal by link, merged sign-ups, and the
assignment and decision emails sent exactly once across a restart of notifications."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest

from devtools.pytest_plugin import DatabaseFactory, SmtpSink
from devtools.testing import (
    COORDINATOR,
    RunningService,
    eventually,
    settings_for_test,
    start_service,
    unique_prefix,
)
from notifications.config import NotificationsSettings

from .conftest import Groups, MovableClock, StartGroups

pytestmark = pytest.mark.integration

TOKEN = re.compile(r"\?token=([A-Za-z0-9_-]+)")


class Mail:
    """The SMTP sink, read off the event loop."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def to(self, recipient: str) -> list[EmailMessage]:
        messages = await asyncio.to_thread(self.sink.messages)
        return [m for m in messages if m["To"] == recipient]

    async def wait(self, recipient: str, count: int = 1) -> list[EmailMessage]:
        async def probe() -> list[EmailMessage] | None:
            found = await self.to(recipient)
            return found if len(found) >= count else None

        return await eventually(probe, f"{count} email(s) to {recipient}")

    async def wait_subject(self, recipient: str, part: str) -> EmailMessage:
        async def probe() -> EmailMessage | None:
            return next((m for m in await self.to(recipient) if part in str(m["Subject"])), None)

        return await eventually(probe, f"an email to {recipient} about {part!r}")


def text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    content: str = part.get_content()
    return content


def link_token(message: EmailMessage, page: str) -> str:
    for line in text(message).splitlines():
        if page in line:
            found = TOKEN.search(line)
            if found:
                return found.group(1)
    raise AssertionError(f"no {page} link in {message['Subject']}")


class Stack:
    def __init__(
        self,
        groups: Groups,
        start_notifications: Callable[[], Awaitable[None]],
        stop_notifications: Callable[[], Awaitable[None]],
        mail: Mail,
        notifications_database_url: str,
    ) -> None:
        self.groups = groups
        self.start_notifications = start_notifications
        self.stop_notifications = stop_notifications
        self.mail = mail
        self.notifications_database_url = notifications_database_url

    async def wait_all_sent(self) -> None:
        """Until notifications has no pending email: a delivery is marked sent only after
        the sink accepted it, so every email queued so far is in the sink (the SMTP
        sessions send a batch concurrently: arrival order is not queueing order)."""

        async def probe() -> bool:
            conn = await asyncpg.connect(self.notifications_database_url)
            try:
                pending: int = await conn.fetchval(
                    "SELECT count(*) FROM deliveries WHERE status = 'pending'"
                )
            finally:
                await conn.close()
            return pending == 0

        await eventually(probe, "every queued email sent")


MakeStack = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack(
    start_groups: StartGroups,
    new_database: DatabaseFactory,
    kafka_bootstrap_servers: str,
    smtp_sink: SmtpSink,
) -> AsyncIterator[MakeStack]:
    running: list[RunningService] = []

    async def make(clock: MovableClock | None = None, **group_settings: Any) -> Stack:
        prefix = unique_prefix("mail")
        groups = await start_groups(clock=clock, prefix=prefix, **group_settings)
        settings = settings_for_test(
            NotificationsSettings,
            database_url=await new_database.create("notifications"),
            kafka=kafka_bootstrap_servers,
            prefix=prefix,
            smtp_host=smtp_sink.host,
            smtp_port=smtp_sink.port,
            mail_from="Strategia Test <strategia@example.org>",
            public_base_url="https://konsultacje.example.org",
            delivery_backoff_seconds=0.2,
            delivery_max_backoff_seconds=1.0,
            dispatcher_poll_seconds=0.5,
            # After a restart the volunteer-messages consumer may meet a message before the
            # key consumer has rejoined its group and stored the key: that wait is not
            # counted against the default five attempts (consumer_prerequisite_wait_seconds).
        )

        async def start() -> None:
            running.append(await start_service("notifications", settings))

        async def stop() -> None:
            await running.pop().stop()

        await start()
        return Stack(groups, start, stop, Mail(smtp_sink), settings.database_url)

    try:
        yield make
    finally:
        for service in running:
            await service.stop()


def address() -> str:
    return f"wolontariusz.{uuid.uuid4().hex[:10]}@example.org"


async def web_sign_up(
    groups: Groups, consultation_id: uuid.UUID, email: str, **changes: Any
) -> Any:
    payload = {"name": "Anna Nowak", "email": email, "themes": ["social"],
               "consent": {"processing": True}, **changes}  # fmt: skip
    response = await groups.client.post(
        f"/v1/consultations/{consultation_id}/volunteers", json=payload
    )
    assert response.status_code == 202, response.text
    return response.json()


async def volunteer_status(groups: Groups, email: str) -> str | None:
    status: str | None = await groups.runtime.pool.fetchval(
        "SELECT status FROM volunteers WHERE email = $1", email
    )
    return status


async def test_a_web_sign_up_counts_only_after_its_emailed_link_is_posted(
    make_stack: MakeStack,
) -> None:
    stack = await make_stack()
    groups = stack.groups
    consultation_id = await groups.consultation()
    people = [address() for _ in range(3)]
    for email in people:
        answer = await web_sign_up(groups, consultation_id, email)
        assert answer["status"] == "awaiting_confirmation" and answer["volunteer_id"] is None
    tokens = []
    for email in people:
        (message,) = await stack.mail.wait(email)
        assert "RODO" in text(message)  # the art. 13 notice is in the confirmation email
        tokens.append(link_token(message, "/wolontariat/potwierdz"))
    assert await groups.groups(consultation_id) == []

    # A mail scanner fetching the link changes nothing: only a POST spends the token.
    fetched = await groups.client.get("/v1/volunteers/confirm", params={"token": tokens[0]})
    assert fetched.status_code == 405
    assert await volunteer_status(groups, people[0]) == "awaiting_confirmation"

    for token in tokens:
        confirmed = await groups.client.post("/v1/volunteers/confirm", json={"token": token})
        assert confirmed.status_code == 200, confirmed.text
    again = await groups.client.post("/v1/volunteers/confirm", json={"token": tokens[0]})
    assert again.status_code == 422 and again.json()["error"] == "invalid_token"
    (group,) = await groups.groups(consultation_id)
    assert group["member_count"] == 3
    for email in people:  # the assignment, with the members' sign-in page
        assignment = await stack.mail.wait_subject(email, "Grupa społeczna 1")
        assert "/czlonkowie/logowanie" in text(assignment)


async def test_a_confirmation_link_expires_after_48_hours(make_stack: MakeStack) -> None:
    clock = MovableClock()
    stack = await make_stack(clock=clock)
    consultation_id = await stack.groups.consultation()
    email = address()
    await web_sign_up(stack.groups, consultation_id, email)
    (message,) = await stack.mail.wait(email)
    clock.advance(hours=48, minutes=1)
    late = await stack.groups.client.post(
        "/v1/volunteers/confirm", json={"token": link_token(message, "/wolontariat/potwierdz")}
    )
    assert late.status_code == 422, late.text
    assert await volunteer_status(stack.groups, email) == "awaiting_confirmation"


async def test_signing_up_again_merges_and_the_web_change_waits_for_its_link(
    make_stack: MakeStack,
) -> None:
    stack = await make_stack()
    groups = stack.groups
    consultation_id = await groups.consultation()
    email = address()
    await groups.clerk_sign_up(consultation_id, ["social"], email=email, name="Jan Kowalski")
    await groups.clerk_sign_up(consultation_id, ["economic", "social"], email=email.upper(),
                               name="Jan Kowalski", phone="+48 22 484 23 90")  # fmt: skip
    await web_sign_up(groups, consultation_id, email, name="Ktoś Podszywający Się")
    rows = await groups.runtime.pool.fetch("SELECT name, phone, themes FROM volunteers")
    assert [(r["name"], r["phone"], r["themes"]) for r in rows] == [
        ("Jan Kowalski", "+48224842390", ["economic", "social"])
    ]
    messages = await stack.mail.wait(email, 2)  # the waiting list, then the confirmation
    confirm = next(m for m in messages if "/wolontariat/potwierdz" in text(m))
    token = link_token(confirm, "/wolontariat/potwierdz")
    response = await groups.client.post("/v1/volunteers/confirm", json={"token": token})
    assert response.status_code == 200, response.text
    assert await groups.count("volunteers") == 1
    assert await groups.runtime.pool.fetchval("SELECT name FROM volunteers") == (
        "Ktoś Podszywający Się"
    )


async def test_withdrawal_by_the_emailed_link_frees_the_place(make_stack: MakeStack) -> None:
    stack = await make_stack(group_max_size=3)
    groups = stack.groups
    consultation_id = await groups.consultation()
    people = [address() for _ in range(4)]
    for email in people:
        await groups.clerk_sign_up(consultation_id, ["social"], email=email)
    assert await volunteer_status(groups, people[3]) == "waitlisted"
    assignment = await stack.mail.wait_subject(people[2], "Dołączasz do grupy")
    token = link_token(assignment, "/wolontariat/rezygnacja")
    response = await groups.client.post("/v1/volunteers/withdraw", json={"token": token})
    assert response.status_code == 200 and response.json()["status"] == "withdrawn"
    assert await volunteer_status(groups, people[2]) == "withdrawn"
    assert await volunteer_status(groups, people[3]) == "placed"
    replay = await groups.client.post("/v1/volunteers/withdraw", json={"token": token})
    assert replay.status_code == 422


async def test_assignment_and_decision_emails_exactly_once_across_a_restart(
    make_stack: MakeStack,
) -> None:
    stack = await make_stack()
    groups = stack.groups
    consultation_id = await groups.consultation()
    submitter = address()
    submission_id = await groups.submission(
        consultation_id, submitter_email=submitter, contact_consent=True
    )
    silent = address()  # left an address but no consent to contact: a receipt, no decision
    silent_id = await groups.submission(consultation_id, submitter_email=silent)
    volunteers = [address() for _ in range(3)]
    for email in volunteers:
        await groups.clerk_sign_up(consultation_id, ["social"], email=email)
    await stack.mail.wait(volunteers[-1])  # notifications is running: the last one's email

    await stack.stop_notifications()
    later = [address() for _ in range(3)]
    for email in later:
        await groups.clerk_sign_up(consultation_id, ["economic"], email=email)
    await groups.stored_submission(submission_id)
    for target in (submission_id, silent_id):
        decided = await groups.client.post(
            f"/v1/submissions/{target}/state",
            json={"state": "out_of_scope", "reason": "To zadanie powiatu, nie gminy."},
            headers=COORDINATOR,
        )
        assert decided.status_code == 200, decided.text
    await stack.start_notifications()

    # Barriers: one more email on each topic, published last; each topic has one partition
    # here and the dispatcher sends in queueing order, so once these arrive every earlier
    # email has been sent — and counting now would see a second copy.
    sentinel = address()
    await groups.clerk_sign_up(consultation_id, ["spatial"], email=sentinel)
    await stack.mail.wait(sentinel)
    sentinel_submitter = address()
    sentinel_submission = await groups.submission(
        consultation_id, submitter_email=sentinel_submitter, contact_consent=True
    )
    await groups.stored_submission(sentinel_submission)
    await groups.client.post(
        f"/v1/submissions/{sentinel_submission}/state",
        json={"state": "out_of_scope", "reason": "Poza zakresem."},
        headers=COORDINATOR,
    )
    await stack.mail.wait(sentinel_submitter, 2)
    await stack.wait_all_sent()

    for email in volunteers:
        subjects = [str(m["Subject"]) for m in await stack.mail.to(email)]
        assert sum("Dołączasz do grupy" in s for s in subjects) == 1, subjects
    for email in later:
        subjects = [str(m["Subject"]) for m in await stack.mail.to(email)]
        assert sum("Dołączasz do grupy" in s for s in subjects) == 1, subjects
    decisions = [m for m in await stack.mail.to(submitter) if "Rozpatrzenie" in str(m["Subject"])]
    assert len(decisions) == 1
    assert "To zadanie powiatu, nie gminy." in text(decisions[0])
    assert "poza zakresem strategii" in text(decisions[0])
    await stack.mail.wait_subject(silent, "Potwierdzenie")  # its receipt, from intake's topic
    assert not [m for m in await stack.mail.to(silent) if "Rozpatrzenie" in str(m["Subject"])]
