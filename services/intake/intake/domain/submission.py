"""Submission rules shared by every front channel (HTTP, clerk, Kafka command).

The content's own shape (lengths, blank text, valid email, strict consent) is enforced by
the contract types it arrives in; the rules here need the consultation or the clock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from intake.domain.commands import Submit
from intake.domain.consultation import Consultation, Phase
from intake.domain.errors import FieldProblem, InvalidRequest, OutsideWindow
from shared.canonical import sha256_hex
from shared.contracts.intake import (
    Channel,
    SubmissionContent,
    SubmissionReceived,
    SubmitSubmission,
)
from shared.contracts.sealed import SealedValue

CLERK_CHANNELS = frozenset({Channel.PHONE, Channel.PAPER, Channel.EMAIL})


@dataclass(frozen=True, slots=True)
class Receipt:
    number: str
    received_at: datetime
    digest: str


@dataclass(frozen=True, slots=True)
class Submission:
    """An accepted submission: what was said, by which channel, and its receipt."""

    id: uuid.UUID
    consultation_id: uuid.UUID
    sequence: int
    content: SubmissionContent
    channel: Channel
    entered_by: str | None
    receipt: Receipt

    def received(
        self, consultation: Consultation, submitter_email: SealedValue | None = None
    ) -> SubmissionReceived:
        """The integration event: what groups and notifications need, nothing more. The
        address only sealed (`submitter_email`: the service seals it under the person's
        key), never in clear."""
        content = self.content
        return SubmissionReceived(
            submission_id=self.id,
            consultation_id=self.consultation_id,
            consultation_title=consultation.title,
            theme=content.theme,
            submitter_kind=content.submitter.kind,
            locality=content.submitter.locality,
            title=content.title,
            body=content.body,
            channel=self.channel,
            received_at=self.receipt.received_at,
            receipt_number=self.receipt.number,
            digest=self.receipt.digest,
            language=content.language,
            submitter_email_sealed=submitter_email,
            contact_consent=content.consent.contact,
        )


def receipt_number(consultation_number: int, sequence: int) -> str:
    """Short enough to read over the phone: consultation number, then a sequence."""
    return f"K{consultation_number}-{sequence:05d}"


def check_content(command: Submit, consultation: Consultation) -> None:
    """The rules about what was said that depend on the consultation and the channel."""
    content = command.content
    problems: list[FieldProblem] = []
    if content.consent.processing is not True:
        problems.append(
            FieldProblem("consent.processing", "consent to processing is required to submit")
        )
    if content.theme is not None and content.theme not in consultation.themes:
        allowed = ", ".join(consultation.themes)
        problems.append(FieldProblem("theme", f"unknown theme; one of: {allowed}"))
    if command.channel is Channel.PAPER and content.received_on is None:
        problems.append(FieldProblem("received_on", "required for a paper form"))
    if command.channel is not Channel.PAPER and content.received_on is not None:
        problems.append(FieldProblem("received_on", "only a paper form has a received date"))
    if problems:
        raise InvalidRequest("the submission is invalid", tuple(problems))


@dataclass(frozen=True, slots=True)
class SubmissionPolicy:
    """Configurable limits of the rules (settings)."""

    # A paper form is typed in soon after it arrives: its `received_on` may lie at most this
    # many days before the day it is entered, so nobody can date a form into a window that
    # closed long ago.
    paper_max_age_days: int = 14


def check_window(
    command: Submit,
    consultation: Consultation,
    now: datetime,
    zone: ZoneInfo,
    policy: SubmissionPolicy = SubmissionPolicy(),
) -> None:
    """Paper counts by the day it was received; everything else by the present moment."""
    received_on = command.content.received_on
    if received_on is not None:
        today = now.astimezone(zone).date()
        if received_on > today:
            raise InvalidRequest(
                "received_on is in the future",
                (FieldProblem("received_on", "must not be in the future"),),
            )
        if (today - received_on).days > policy.paper_max_age_days:
            reason = f"at most {policy.paper_max_age_days} days before the day the form is entered"
            raise InvalidRequest(
                f"received_on is too long ago: {reason}", (FieldProblem("received_on", reason),)
            )
        if consultation.accepts_on(received_on, zone):
            return
        moment_phase = (
            Phase.UPCOMING
            if received_on < consultation.opens_at.astimezone(zone).date()
            else Phase.CLOSED
        )
    else:
        if consultation.accepts_at(now):
            return
        moment_phase = consultation.phase(now)
    local_opens = consultation.opens_at.astimezone(zone).isoformat(timespec="minutes")
    local_closes = consultation.closes_at.astimezone(zone).isoformat(timespec="minutes")
    if moment_phase is Phase.UPCOMING:
        raise OutsideWindow(f"the consultation is not open yet; it opens at {local_opens}")
    raise OutsideWindow(f"the consultation closed at {local_closes}")


def canonical_form(
    consultation_id: uuid.UUID,
    content: SubmissionContent,
    channel: Channel,
    received_at: datetime,
) -> dict[str, Any]:
    """What the digest covers; documented so a resident can recompute it."""
    submitter = {
        key: value
        for key, value in content.submitter.model_dump(mode="json").items()
        if value is not None
    }
    form: dict[str, Any] = {
        "consultation_id": str(consultation_id),
        "submitter": submitter,
        "theme": content.theme,
        "title": content.title,
        "body": content.body,
        "channel": channel.value,
        "received_at": received_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if content.received_on is not None:
        form["received_on"] = content.received_on.isoformat()
    return form


def digest_of(form: dict[str, Any]) -> str:
    """SHA-256 over canonical JSON: sorted keys, no spaces, UTF-8."""
    return sha256_hex(form)


def check_acceptable(
    command: Submit,
    consultation: Consultation,
    now: datetime,
    zone: ZoneInfo,
    policy: SubmissionPolicy = SubmissionPolicy(),
) -> None:
    """Every rule a submission must pass; raises a `DomainError` naming what failed."""
    check_content(command, consultation)
    check_window(command, consultation, now, zone, policy)


# Who entered a Kafka command: the command topic, which only front-channel principals may
# write (broker ACLs) — never a name the message gives itself.
KAFKA_ENTERED_BY = "kafka"


def check_kafka_command(command: SubmitSubmission) -> None:
    """A command from another channel is a `kafka` submission and nothing else: it cannot
    pass for a clerk's phone, paper or email entry nor for the web form, and intake, not
    the sender, says when it was received."""
    problems: list[FieldProblem] = []
    if command.channel is not Channel.KAFKA:
        problems.append(
            FieldProblem("channel", "a Kafka command is a kafka submission; omit the channel")
        )
    if command.received_at is not None:
        problems.append(
            FieldProblem("received_at", "intake records when it receives a command; omit it")
        )
    if problems:
        raise InvalidRequest("the command claims what only intake may set", tuple(problems))


def accepted(
    command: Submit,
    consultation: Consultation,
    *,
    submission_id: uuid.UUID,
    sequence: int,
    now: datetime,
) -> Submission:
    """The submission with its receipt, once `check_acceptable` passed and the
    consultation gave it the next receipt sequence."""
    form = canonical_form(consultation.id, command.content, command.channel, now)
    return Submission(
        id=submission_id,
        consultation_id=consultation.id,
        sequence=sequence,
        content=command.content,
        channel=command.channel,
        entered_by=command.entered_by,
        receipt=Receipt(
            number=receipt_number(consultation.number, sequence),
            received_at=now,
            digest=digest_of(form),
        ),
    )


def request_fingerprint(command: Submit) -> str:
    """Identifies a request for Idempotency-Key replay: same key, same request."""
    return sha256_hex(
        {
            "consultation_id": str(command.consultation_id),
            "content": command.content.model_dump(mode="json"),
            "channel": command.channel.value,
            "entered_by": command.entered_by,
        }
    )
