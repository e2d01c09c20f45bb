"""Alerts: one alert message each, CAP-shaped, from an admin or from IMGW.

Each `Alert` value is one *message* (CAP: Alert, Update or Cancel). A change never edits
a message; it issues a new one that references what it replaces, and the replaced one's
status becomes superseded or cancelled. So the history stays what residents were told.

Times are stored in UTC without microseconds: CAP shows whole seconds, and a reference
(`sender,identifier,sent`) must name the replaced message's `sent` exactly as it was shown.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar

from news.domain.errors import FieldProblem, StateConflict, raise_if

EVENT_MAX = 100
HEADLINE_MAX = 160  # CAP 1.2 asks for headlines under 160 characters (SMS, pagers)
DESCRIPTION_MAX = 4000
INSTRUCTION_MAX = 2000
AREAS_MAX = 50
LEVELS = (1, 2, 3)
_T = TypeVar("_T")
TERYT_CODE = re.compile(r"^(\d{4}|\d{7})$")  # powiat (4) or gmina (7 digits, incl. type)


class AlertSource(StrEnum):
    MANUAL = "manual"
    IMGW_METEO = "imgw_meteo"
    IMGW_HYDRO = "imgw_hydro"


class MessageType(StrEnum):
    """CAP `msgType` values this service issues."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"


class AlertStatus(StrEnum):
    ACTIVE = "active"  # the latest message of its chain
    SUPERSEDED = "superseded"  # replaced by an Update
    CANCELLED = "cancelled"  # withdrawn by a Cancel (the Cancel message itself too)
    EXPIRED = "expired"  # past `expires`; computed by `status_at`, never a decision


class Category(StrEnum):
    """CAP 1.2 `category` values."""

    GEO = "Geo"
    MET = "Met"  # CAP: "Meteorological (inc. flood)"
    SAFETY = "Safety"
    SECURITY = "Security"
    RESCUE = "Rescue"
    FIRE = "Fire"
    HEALTH = "Health"
    ENV = "Env"
    TRANSPORT = "Transport"
    INFRA = "Infra"
    CBRNE = "CBRNE"
    OTHER = "Other"


class CodeKind(StrEnum):
    """CAP geocode `valueName`s."""

    TERYT = "TERYT"
    IMGW_BASIN = "IMGW_KOD_ZLEWNI"


@dataclass(frozen=True, slots=True)
class AreaCode:
    kind: CodeKind
    value: str


@dataclass(frozen=True, slots=True)
class AlertArea:
    description: str
    codes: tuple[AreaCode, ...]


@dataclass(frozen=True, slots=True)
class AlertRef:
    """A message this one replaces; CAP renders it as `sender,identifier,sent`."""

    alert_id: uuid.UUID
    sent: datetime


@dataclass(frozen=True, slots=True)
class Alert:
    id: uuid.UUID
    source: AlertSource
    source_key: str | None  # IMGW meteo id or hydro key; None for manual alerts
    category: Category
    event: str
    level: int  # 1 yellow/Moderate, 2 orange/Severe, 3 red/Extreme
    probability: int | None  # percent; None = not stated (certainty Unknown)
    headline: str
    description: str
    instruction: str | None
    areas: tuple[AlertArea, ...]
    onset: datetime
    expires: datetime | None  # None = until further notice (IMGW hydro)
    sent: datetime
    message_type: MessageType
    references: tuple[AlertRef, ...] = ()  # every earlier message of the chain, oldest first
    status: AlertStatus = AlertStatus.ACTIVE
    issuer: str | None = None  # e.g. the IMGW office
    event_en: str | None = None
    headline_en: str | None = None
    description_en: str | None = None
    instruction_en: str | None = None

    @property
    def ref(self) -> AlertRef:
        return AlertRef(self.id, self.sent)

    @property
    def area_codes(self) -> frozenset[AreaCode]:
        return frozenset(code for area in self.areas for code in area.codes)

    def is_expired(self, now: datetime) -> bool:
        return self.expires is not None and self.expires <= now

    def status_at(self, now: datetime) -> AlertStatus:
        """The stored status, or EXPIRED once an active message's time has run out."""
        if self.status is AlertStatus.ACTIVE and self.is_expired(now):
            return AlertStatus.EXPIRED
        return self.status

    def is_current(self, now: datetime) -> bool:
        """Issued, not replaced, not cancelled and not expired — including warnings whose
        onset is still ahead (residents want tomorrow's storm warning today). This is
        what `GET /v1/alerts/active` and the CAP Atom feed list."""
        return self.message_type is not MessageType.CANCEL and (
            self.status_at(now) is AlertStatus.ACTIVE
        )

    def is_in_force(self, now: datetime) -> bool:
        """Current and already started: onset <= now < expires."""
        return self.is_current(now) and self.onset <= now


# --- manual alerts ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManualAlertDraft:
    """What an admin sends to create or replace (PATCH) a manual alert."""

    event: str
    level: int
    headline: str
    description: str
    areas: tuple[str, ...]  # TERYT codes, 4 (powiat) or 7 (gmina) digits
    onset: datetime
    expires: datetime
    instruction: str | None = None
    probability: int | None = None
    category: Category = Category.SAFETY
    event_en: str | None = None
    headline_en: str | None = None
    description_en: str | None = None
    instruction_en: str | None = None


def draft_of(current: Alert) -> ManualAlertDraft:
    """What an admin would send to issue `current` again: the base a PATCH changes."""
    if current.expires is None:
        raise StateConflict(
            "an open-ended alert is not a manual one",
            (FieldProblem("expires", "missing"),),
        )
    return ManualAlertDraft(
        event=current.event,
        level=current.level,
        headline=current.headline,
        description=current.description,
        areas=tuple(
            code.value
            for area in current.areas
            for code in area.codes
            if code.kind is CodeKind.TERYT
        ),
        onset=current.onset,
        expires=current.expires,
        instruction=current.instruction,
        probability=current.probability,
        category=current.category,
        event_en=current.event_en,
        headline_en=current.headline_en,
        description_en=current.description_en,
        instruction_en=current.instruction_en,
    )


def issue_manual_alert(
    draft: ManualAlertDraft,
    *,
    alert_id: uuid.UUID,
    now: datetime,
    area_names: Mapping[str, str] | None = None,
) -> Alert:
    """A new manual alert (CAP Alert). Raises InvalidRequest listing every problem."""
    clean = validate_manual(draft, now)
    return _manual_message(clean, alert_id, now, MessageType.ALERT, (), area_names)


def update_manual_alert(
    current: Alert,
    draft: ManualAlertDraft,
    *,
    alert_id: uuid.UUID,
    now: datetime,
    area_names: Mapping[str, str] | None = None,
) -> tuple[Alert, Alert]:
    """Replace a manual alert: returns (the current one superseded, the Update)."""
    _require_replaceable(current, now, manual_only=True)
    clean = validate_manual(draft, now)
    update = _manual_message(
        clean, alert_id, now, MessageType.UPDATE, chain_of(current), area_names
    )
    return replace(current, status=AlertStatus.SUPERSEDED), update


def cancel_manual_alert(
    current: Alert, *, alert_id: uuid.UUID, now: datetime, note: str | None = None
) -> tuple[Alert, Alert]:
    """Withdraw a manual alert: returns (the current one cancelled, the Cancel message).

    IMGW alerts follow the feed; an admin cancelling one would see it issued again by the
    next poll, so that is refused."""
    _require_replaceable(current, now, manual_only=True)
    return cancel_message(current, alert_id=alert_id, now=now, note=note)


def cancel_message(
    current: Alert, *, alert_id: uuid.UUID, now: datetime, note: str | None = None
) -> tuple[Alert, Alert]:
    """The CAP Cancel for `current`: same event and area, headline marked as withdrawn."""
    description = "Ostrzeżenie zostało odwołane przed upływem jego ważności."
    description_en = "The warning was withdrawn before it expired."
    if note:
        description = f"{description}\n\n{note.strip()}"
    cancel = replace(
        current,
        id=alert_id,
        sent=moment(now),
        message_type=MessageType.CANCEL,
        references=chain_of(current),
        status=AlertStatus.CANCELLED,
        headline=_clip(f"Odwołane: {current.headline}", HEADLINE_MAX),
        description=description,
        instruction=None,
        headline_en=_clip(f"Cancelled: {current.headline_en or current.headline}", HEADLINE_MAX),
        description_en=description_en,
        instruction_en=None,
    )
    return replace(current, status=AlertStatus.CANCELLED), cancel


def chain_of(current: Alert) -> tuple[AlertRef, ...]:
    """References for a message replacing `current`: its chain, then itself.

    CAP lets `references` name several earlier messages; naming the whole chain lets a
    receiver that missed an Update still link the new message to the Alert it knows."""
    return _unique((*current.references, current.ref))


def merge_chains(replaced: Iterable[Alert]) -> tuple[AlertRef, ...]:
    refs: list[AlertRef] = []
    for alert in replaced:
        refs.extend(chain_of(alert))
    return _unique(sorted(_unique(refs), key=lambda ref: (ref.sent, str(ref.alert_id))))


def validate_manual(draft: ManualAlertDraft, now: datetime) -> ManualAlertDraft:
    """Check every rule; return the draft with texts trimmed and codes de-duplicated."""
    problems: list[FieldProblem] = []
    event = _text(draft.event, "event", EVENT_MAX, problems, required=True)
    headline = _text(draft.headline, "headline", HEADLINE_MAX, problems, required=True)
    description = _text(draft.description, "description", DESCRIPTION_MAX, problems, required=True)
    instruction = _optional(draft.instruction, "instruction", INSTRUCTION_MAX, problems)
    event_en = _optional(draft.event_en, "event_en", EVENT_MAX, problems)
    headline_en = _optional(draft.headline_en, "headline_en", HEADLINE_MAX, problems)
    description_en = _optional(draft.description_en, "description_en", DESCRIPTION_MAX, problems)
    instruction_en = _optional(draft.instruction_en, "instruction_en", INSTRUCTION_MAX, problems)
    if isinstance(draft.level, bool) or draft.level not in LEVELS:
        problems.append(FieldProblem("level", "must be 1, 2 or 3"))
    if draft.probability is not None and (
        isinstance(draft.probability, bool) or not 0 <= draft.probability <= 100
    ):
        problems.append(FieldProblem("probability", "must be a percentage 0-100"))
    areas = _unique(code.strip() for code in draft.areas)
    if not areas:
        problems.append(FieldProblem("areas", "at least one TERYT code is required"))
    elif len(areas) > AREAS_MAX:
        problems.append(FieldProblem("areas", f"at most {AREAS_MAX} codes"))
    for position, code in enumerate(areas):
        if not TERYT_CODE.match(code):
            problems.append(
                FieldProblem(f"areas[{position}]", "must be a 4- or 7-digit TERYT code")
            )
    if draft.onset.tzinfo is None:
        problems.append(FieldProblem("onset", "time zone required"))
    if draft.expires.tzinfo is None:
        problems.append(FieldProblem("expires", "time zone required"))
    elif draft.onset.tzinfo is not None:
        if draft.expires <= draft.onset:
            problems.append(FieldProblem("expires", "must be after onset"))
        elif draft.expires <= now:
            problems.append(FieldProblem("expires", "must be in the future"))
    raise_if(problems, "alert")
    return replace(
        draft,
        event=event,
        headline=headline,
        description=description,
        instruction=instruction,
        areas=areas,
        event_en=event_en,
        headline_en=headline_en,
        description_en=description_en,
        instruction_en=instruction_en,
    )


def moment(value: datetime) -> datetime:
    """UTC, whole seconds: how every alert time is kept."""
    return value.astimezone(UTC).replace(microsecond=0)


def _manual_message(
    draft: ManualAlertDraft,
    alert_id: uuid.UUID,
    now: datetime,
    message_type: MessageType,
    references: tuple[AlertRef, ...],
    area_names: Mapping[str, str] | None,
) -> Alert:
    names = area_names or {}
    return Alert(
        id=alert_id,
        source=AlertSource.MANUAL,
        source_key=None,
        category=draft.category,
        event=draft.event,
        level=draft.level,
        probability=draft.probability,
        headline=draft.headline,
        description=draft.description,
        instruction=draft.instruction,
        areas=tuple(
            AlertArea(names.get(code, f"TERYT {code}"), (AreaCode(CodeKind.TERYT, code),))
            for code in draft.areas
        ),
        onset=moment(draft.onset),
        expires=moment(draft.expires),
        sent=moment(now),
        message_type=message_type,
        references=references,
        event_en=draft.event_en,
        headline_en=draft.headline_en,
        description_en=draft.description_en,
        instruction_en=draft.instruction_en,
    )


def _require_replaceable(current: Alert, now: datetime, *, manual_only: bool) -> None:
    if manual_only and current.source is not AlertSource.MANUAL:
        raise StateConflict(
            "IMGW alerts follow the IMGW feed and cannot be changed by hand",
            (FieldProblem("source", f"is {current.source}, not manual"),),
        )
    status = current.status_at(now)
    if current.message_type is MessageType.CANCEL or status is not AlertStatus.ACTIVE:
        raise StateConflict(
            f"the alert is {status}; only an active alert can be updated or cancelled",
            (FieldProblem("status", f"is {status}"),),
        )


def _text(
    value: str, name: str, limit: int, problems: list[FieldProblem], *, required: bool
) -> str:
    text = value.strip()
    if required and not text:
        problems.append(FieldProblem(name, "must not be empty"))
    elif len(text) > limit:
        problems.append(FieldProblem(name, f"at most {limit} characters"))
    return text


def _optional(value: str | None, name: str, limit: int, problems: list[FieldProblem]) -> str | None:
    if value is None:
        return None
    return _text(value, name, limit, problems, required=False) or None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unique(items: Iterable[_T]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(items))
