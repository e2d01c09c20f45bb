"""Submission rules shared by every front channel (HTTP, clerk, Kafka command)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from intake.domain.consultation import Consultation, Phase
from intake.domain.errors import FieldProblem, InvalidRequest, OutsideWindow
from shared.contracts.intake import Channel, ConsentData, Language, SubmitterData

TITLE_MAX = 300
BODY_MAX = 10_000
CLERK_CHANNELS = frozenset({Channel.PHONE, Channel.PAPER, Channel.EMAIL})


@dataclass(frozen=True, slots=True)
class SubmissionDraft:
    consultation_id: uuid.UUID
    submitter: SubmitterData
    theme: str | None
    title: str
    body: str
    consent: ConsentData
    channel: Channel
    language: Language
    received_on: date | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    number: str
    received_at: datetime
    digest: str


def receipt_number(consultation_number: int, sequence: int) -> str:
    """Short enough to read over the phone: consultation number, then a sequence."""
    return f"K{consultation_number}-{sequence:05d}"


def check_content(draft: SubmissionDraft, consultation: Consultation) -> SubmissionDraft:
    """Validate what was said; returns the draft with title and body trimmed."""
    problems: list[FieldProblem] = []
    if draft.consent.processing is not True:
        problems.append(
            FieldProblem("consent.processing", "consent to processing is required to submit")
        )
    title = draft.title.strip()
    body = draft.body.strip()
    if not title:
        problems.append(FieldProblem("title", "must not be empty"))
    elif len(title) > TITLE_MAX:
        problems.append(FieldProblem("title", f"at most {TITLE_MAX} characters"))
    if not body:
        problems.append(FieldProblem("body", "must not be empty"))
    elif len(body) > BODY_MAX:
        problems.append(FieldProblem("body", f"at most {BODY_MAX} characters"))
    if draft.theme is not None and draft.theme not in consultation.themes:
        allowed = ", ".join(consultation.themes)
        problems.append(FieldProblem("theme", f"unknown theme; one of: {allowed}"))
    if draft.channel is Channel.PAPER and draft.received_on is None:
        problems.append(FieldProblem("received_on", "required for a paper form"))
    if draft.channel is not Channel.PAPER and draft.received_on is not None:
        problems.append(FieldProblem("received_on", "only a paper form has a received date"))
    if problems:
        raise InvalidRequest("the submission is invalid", tuple(problems))
    return SubmissionDraft(
        consultation_id=draft.consultation_id,
        submitter=draft.submitter,
        theme=draft.theme,
        title=title,
        body=body,
        consent=draft.consent,
        channel=draft.channel,
        language=draft.language,
        received_on=draft.received_on,
    )


def check_window(
    draft: SubmissionDraft, consultation: Consultation, now: datetime, zone: ZoneInfo
) -> None:
    """Paper counts by the day it was received; everything else by the present moment."""
    if draft.received_on is not None:
        today = now.astimezone(zone).date()
        if draft.received_on > today:
            raise InvalidRequest(
                "received_on is in the future",
                (FieldProblem("received_on", "must not be in the future"),),
            )
        if consultation.accepts_on(draft.received_on, zone):
            return
        moment_phase = (
            Phase.UPCOMING
            if draft.received_on < consultation.opens_at.astimezone(zone).date()
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


def canonical_form(draft: SubmissionDraft, received_at: datetime) -> dict[str, Any]:
    """What the digest covers; documented so a resident can recompute it."""
    submitter = {
        key: value
        for key, value in draft.submitter.model_dump(mode="json").items()
        if value is not None
    }
    form: dict[str, Any] = {
        "consultation_id": str(draft.consultation_id),
        "submitter": submitter,
        "theme": draft.theme,
        "title": draft.title,
        "body": draft.body,
        "channel": draft.channel.value,
        "received_at": received_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if draft.received_on is not None:
        form["received_on"] = draft.received_on.isoformat()
    return form


def digest_of(form: dict[str, Any]) -> str:
    """SHA-256 over canonical JSON: sorted keys, no spaces, UTF-8."""
    canonical = json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
