"""Consultations and their window.

Art. 6 ust. 5 of the development-policy act: comments on a strategy are collected for at
least 35 days. Once a consultation is open its window may only grow.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from intake.domain.errors import FieldProblem, InvalidRequest, WindowConflict
from shared.contracts.intake import (
    ConsultationAnnounced,
    ConsultationClosed,
    ConsultationKind,
    ConsultationOpened,
    ConsultationWindowChanged,
)

MIN_STRATEGY_DAYS = 35
DEFAULT_THEMES: tuple[str, ...] = ("social", "environmental", "economic", "spatial")


class Phase(StrEnum):
    UPCOMING = "upcoming"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Consultation:
    id: uuid.UUID
    number: int
    title: str
    description: str
    kind: ConsultationKind
    opens_at: datetime
    closes_at: datetime
    themes: tuple[str, ...]

    def phase(self, now: datetime) -> Phase:
        if now < self.opens_at:
            return Phase.UPCOMING
        if now < self.closes_at:
            return Phase.OPEN
        return Phase.CLOSED

    def accepts_at(self, moment: datetime) -> bool:
        return self.opens_at <= moment < self.closes_at

    def accepts_on(self, day: date, zone: ZoneInfo) -> bool:
        """A paper form counts by the day it reached the office, in local time."""
        first_day = self.opens_at.astimezone(zone).date()
        last_day = (self.closes_at - timedelta(microseconds=1)).astimezone(zone).date()
        return first_day <= day <= last_day

    # --- the integration events of its life cycle ------------------------------------

    def announced(self) -> ConsultationAnnounced:
        return ConsultationAnnounced(
            consultation_id=self.id,
            title=self.title,
            kind=self.kind,
            opens_at=self.opens_at,
            closes_at=self.closes_at,
            themes=self.themes,
        )

    def opened(self) -> ConsultationOpened:
        return ConsultationOpened(
            consultation_id=self.id,
            title=self.title,
            opens_at=self.opens_at,
            closes_at=self.closes_at,
        )

    def closed(self) -> ConsultationClosed:
        return ConsultationClosed(
            consultation_id=self.id, title=self.title, closes_at=self.closes_at
        )

    def window_changed(self, previous: Consultation) -> ConsultationWindowChanged:
        return ConsultationWindowChanged(
            consultation_id=self.id,
            title=self.title,
            opens_at=self.opens_at,
            closes_at=self.closes_at,
            previous_opens_at=previous.opens_at,
            previous_closes_at=previous.closes_at,
        )


def local_wall_clock(moment: datetime, zone: ZoneInfo) -> datetime:
    """The moment as the gmina's clocks show it (naive): calendar arithmetic across a
    daylight-saving change then counts days, not 24-hour periods."""
    return moment.astimezone(zone).replace(tzinfo=None)


def validate_window(
    kind: ConsultationKind, opens_at: datetime, closes_at: datetime, *, zone: ZoneInfo
) -> None:
    if opens_at.tzinfo is None or closes_at.tzinfo is None:
        raise InvalidRequest(
            "opens_at and closes_at need a time zone",
            (FieldProblem("opens_at", "time zone required"),),
        )
    if closes_at <= opens_at:
        raise InvalidRequest(
            "closes_at must be after opens_at",
            (FieldProblem("closes_at", "must be after opens_at"),),
        )
    # Calendar days in the gmina's time zone: 35 days from 1 March 00:00 end on 5 April
    # 00:00 although the clocks moved forward in between (34 days and 23 hours).
    length = local_wall_clock(closes_at, zone) - local_wall_clock(opens_at, zone)
    if kind is ConsultationKind.STRATEGY and length < timedelta(days=MIN_STRATEGY_DAYS):
        reason = (
            f"a strategy consultation must last at least {MIN_STRATEGY_DAYS} days "
            "(art. 6 ust. 5 of the development-policy act)"
        )
        raise InvalidRequest(reason, (FieldProblem("closes_at", reason),))


def validate_new_window(
    kind: ConsultationKind,
    opens_at: datetime,
    closes_at: datetime,
    *,
    zone: ZoneInfo,
    now: datetime,
) -> None:
    """A new consultation: a valid window that is not over already."""
    validate_window(kind, opens_at, closes_at, zone=zone)
    if closes_at <= now:
        raise InvalidRequest(
            "the window is already over",
            (FieldProblem("closes_at", "must be in the future"),),
        )


def validate_themes(themes: tuple[str, ...]) -> None:
    if not themes:
        raise InvalidRequest("themes must not be empty", (FieldProblem("themes", "empty"),))
    if len(set(themes)) != len(themes):
        raise InvalidRequest("themes must be unique", (FieldProblem("themes", "duplicate theme"),))


def change_window(
    consultation: Consultation,
    *,
    opens_at: datetime | None,
    closes_at: datetime | None,
    now: datetime,
    zone: ZoneInfo,
) -> Consultation:
    """Move the window; once open it may be extended but never shortened, and an upcoming
    one may not be moved wholly into the past."""
    new_opens = opens_at or consultation.opens_at
    new_closes = closes_at or consultation.closes_at
    phase = consultation.phase(now)
    if phase is Phase.CLOSED:
        raise WindowConflict("the consultation has closed; its window can no longer change")
    if phase is Phase.OPEN:
        if new_opens != consultation.opens_at:
            raise WindowConflict(
                "the consultation is open; opens_at can no longer change",
                (FieldProblem("opens_at", "consultation already open"),),
            )
        if new_closes < consultation.closes_at:
            raise WindowConflict(
                "the consultation is open; its window may be extended but not shortened",
                (FieldProblem("closes_at", "earlier than the current closes_at"),),
            )
        if new_closes <= now:
            raise WindowConflict(
                "closes_at must be in the future", (FieldProblem("closes_at", "in the past"),)
            )
    if phase is Phase.UPCOMING and new_closes <= now:
        raise WindowConflict(
            "an upcoming consultation cannot be moved into the past",
            (FieldProblem("closes_at", "must be in the future"),),
        )
    validate_window(consultation.kind, new_opens, new_closes, zone=zone)
    return replace(consultation, opens_at=new_opens, closes_at=new_closes)
