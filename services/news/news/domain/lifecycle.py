"""IMGW warning life cycle: what one fetch means for the alerts already issued.

The feed has no update or cancel flag, so it is derived by comparing the fetch with the
alerts the service issued from earlier fetches (the caller's stored state):

* Same key (meteo `id`, hydro number + publication time) as an active alert: the same
  warning; nothing to do — unless its level, probability, validity or event changed in
  place, which is an Update of it.
* A new key: an Update when it replaces active alerts that are *gone from this fetch* and
  are about the same thing — same source, same event name, overlapping area codes and
  overlapping validity (a raised or lowered level, a shortened or extended window).
  Otherwise a new Alert. Several gone alerts replaced by one record are all referenced;
  each gone alert is replaced at most once (the earliest-published record claims it).
* An active alert absent from the fetch and not replaced: a Cancel — only when the fetch
  is complete. A failed fetch, or one with an unreadable record that may concern the
  gmina, cancels and supersedes nothing: the warning might be that record.
* An alert whose `expires` has passed drops out by itself (no Cancel), as do records that
  have already expired (never issued).
* The same key twice in one fetch is one warning (the latest publication wins).

Message ids are UUIDv5 of the source, key and content, so running the same fetch twice
(a retry after a crash) yields the same ids and the caller can insert idempotently.
Decisions come in a fixed order: records by (publication time, key), then Cancels by
(sent, key).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from news.domain.alerts import (
    EVENT_MAX,
    HEADLINE_MAX,
    Alert,
    AlertArea,
    AlertRef,
    AlertSource,
    AlertStatus,
    AreaCode,
    Category,
    CodeKind,
    MessageType,
    cancel_message,
    chain_of,
    merge_chains,
    moment,
)
from news.domain.imgw import (
    NO_LEVEL,
    FailedFetch,
    FeedKind,
    FetchOutcome,
    HydroWarning,
    MeteoWarning,
    ParsedFeed,
    Warning,
    normalise_basins,
    relevant_hydro,
    relevant_meteo,
)
from shared.contracts.news import ALERT_AREA_MAX, ALERT_DESCRIPTION_MAX

# Fixed namespace for message ids derived from IMGW records (never change it).
IMGW_NAMESPACE = uuid.UUID("6f0c2a52-61b4-5d8e-9a57-0b7c1f6d3e21")

LEVEL_COLOURS = {1: ("żółte", "yellow"), 2: ("pomarańczowe", "orange"), 3: ("czerwone", "red")}

# English names of the events IMGW publishes (reference list); unknown ones stay Polish.
EVENTS_EN = {
    "burze": "Thunderstorms",
    "upał": "Heat",
    "silny wiatr": "Strong wind",
    "intensywne opady deszczu": "Heavy rainfall",
    "gęsta mgła": "Dense fog",
    "oblodzenie": "Icing",
    "opady marznące": "Freezing precipitation",
    "intensywne opady śniegu": "Heavy snowfall",
    "opady śniegu": "Snowfall",
    "przymrozki": "Ground frost",
    "roztopy": "Thaw",
    "silny deszcz z burzami": "Heavy rain with thunderstorms",
    "silny mróz": "Severe frost",
    "zawieje/zamiecie śnieżne": "Blowing and drifting snow",
    "susza hydrologiczna": "Hydrological drought",
    "wezbranie z przekroczeniem stanów ostrzegawczych": "River rise above warning levels",
    "wezbranie z przekroczeniem stanów alarmowych": "River rise above alarm levels",
    "gwałtowne wzrosty stanów wody": "Rapid rise of water levels",
}


@dataclass(frozen=True, slots=True)
class ImgwScope:
    """What the gmina watches (from its profile): its powiat and its river basins."""

    powiat_teryt: str
    powiat_name: str  # area description, e.g. "powiat piaseczyński"
    basins: frozenset[str]

    @classmethod
    def of(cls, powiat_teryt: str, powiat_name: str, basins: Iterable[str]) -> ImgwScope:
        return cls(powiat_teryt, powiat_name, normalise_basins(basins))


@dataclass(frozen=True, slots=True)
class NewAlert:
    alert: Alert


@dataclass(frozen=True, slots=True)
class AlertUpdated:
    update: Alert
    replaced: tuple[Alert, ...]  # with status SUPERSEDED


@dataclass(frozen=True, slots=True)
class AlertCancelled:
    cancel: Alert
    cancelled: Alert  # with status CANCELLED


Decision = NewAlert | AlertUpdated | AlertCancelled


@dataclass(frozen=True, slots=True)
class IngestPlan:
    kind: FeedKind
    reliable: bool  # False: failed or incomplete fetch, so nothing was cancelled
    decisions: tuple[Decision, ...]
    unchanged: tuple[Alert, ...]  # active alerts this fetch confirms
    unconfirmed: tuple[Alert, ...]  # absent from an unreliable fetch: left as they are
    expired: tuple[Alert, ...]  # time ran out: the caller may store them as expired
    duplicates: tuple[str, ...]  # keys met more than once in this fetch


def plan_ingest(
    known: Iterable[Alert], outcome: FetchOutcome, *, scope: ImgwScope, now: datetime
) -> IngestPlan:
    """Decide what one fetch means, given the active alerts issued from this feed."""
    source = AlertSource.IMGW_METEO if outcome.kind is FeedKind.METEO else AlertSource.IMGW_HYDRO
    mine = sorted(
        (
            alert
            for alert in known
            if alert.source is source
            and alert.status is AlertStatus.ACTIVE
            and alert.message_type is not MessageType.CANCEL
        ),
        key=lambda alert: (alert.sent, alert.source_key or "", str(alert.id)),
    )
    expired = tuple(alert for alert in mine if alert.is_expired(now))
    live = [alert for alert in mine if not alert.is_expired(now)]
    if isinstance(outcome, FailedFetch):
        return IngestPlan(outcome.kind, False, (), (), tuple(live), expired, ())

    feed = _relevant(outcome, scope)
    reliable = feed.complete
    records, duplicates = _deduplicate(feed.warnings)
    present = {record.key for record in records if _is_warning(record)}
    by_key = {alert.source_key: alert for alert in live}
    claimed: set[uuid.UUID] = set()
    decisions: list[Decision] = []
    unchanged: list[Alert] = []

    for record in records:
        if not _is_warning(record) or _has_expired(record, now):
            continue
        fresh = _alert_from(record, source, scope, now)
        old = by_key.get(record.key)
        if old is not None:
            if _material(old) == _material(fresh):
                unchanged.append(old)
            else:
                update = _as_update(fresh, chain_of(old))
                decisions.append(
                    AlertUpdated(update, (replace(old, status=AlertStatus.SUPERSEDED),))
                )
                claimed.add(old.id)
            continue
        replaced = (
            [
                alert
                for alert in live
                if alert.id not in claimed
                and alert.source_key not in present
                and _same_subject(alert, fresh)
            ]
            if reliable
            else []
        )
        if replaced:
            claimed.update(alert.id for alert in replaced)
            update = _as_update(fresh, merge_chains(replaced))
            superseded = tuple(replace(a, status=AlertStatus.SUPERSEDED) for a in replaced)
            decisions.append(AlertUpdated(update, superseded))
        else:
            decisions.append(NewAlert(fresh))

    unconfirmed: list[Alert] = []
    for alert in live:
        if alert.source_key in present or alert.id in claimed:
            continue
        if not reliable:
            unconfirmed.append(alert)
            continue
        cancelled, cancel = cancel_message(
            alert,
            alert_id=uuid.uuid5(IMGW_NAMESPACE, f"cancel|{alert.id}"),
            now=now,
            note="IMGW nie publikuje już tego ostrzeżenia.",
        )
        decisions.append(AlertCancelled(cancel, cancelled))

    return IngestPlan(
        kind=outcome.kind,
        reliable=reliable,
        decisions=tuple(decisions),
        unchanged=tuple(unchanged),
        unconfirmed=tuple(unconfirmed),
        expired=expired,
        duplicates=duplicates,
    )


def _as_update(fresh: Alert, references: tuple[AlertRef, ...]) -> Alert:
    """`fresh` as an Update of `references`. Its id also covers what it replaces: a
    warning edited and then edited back must not reuse the id of its first message (the
    store already has it), while the same fetch applied twice still gives the same id."""
    chain = ",".join(str(ref.alert_id) for ref in references)
    return replace(
        fresh,
        id=uuid.uuid5(IMGW_NAMESPACE, f"update|{fresh.id}|{chain}"),
        message_type=MessageType.UPDATE,
        references=references,
    )


def _relevant(feed: ParsedFeed, scope: ImgwScope) -> ParsedFeed:
    if feed.kind is FeedKind.METEO:
        return relevant_meteo(feed, scope.powiat_teryt)
    return relevant_hydro(feed, scope.basins)


def _deduplicate(warnings: Iterable[Warning]) -> tuple[list[Warning], tuple[str, ...]]:
    """One record per key (the latest published; the first in the feed on a tie),
    ordered by (publication time, key)."""
    chosen: dict[str, Warning] = {}
    seen_twice: set[str] = set()
    for warning in warnings:
        previous = chosen.get(warning.key)
        if previous is None:
            chosen[warning.key] = warning
            continue
        seen_twice.add(warning.key)
        if warning.published > previous.published:
            chosen[warning.key] = warning
    records = sorted(chosen.values(), key=lambda warning: (warning.published, warning.key))
    return records, tuple(sorted(seen_twice))


def _is_warning(record: Warning) -> bool:
    """Meteo level -1 means "no warning"; hydro -1 is a drought warning."""
    return not (isinstance(record, MeteoWarning) and record.level == NO_LEVEL)


def _has_expired(record: Warning, now: datetime) -> bool:
    return record.valid_to is not None and record.valid_to <= now


def _same_subject(old: Alert, new: Alert) -> bool:
    return (
        old.source is new.source
        and _event_key(old.event) == _event_key(new.event)
        and bool(old.area_codes & new.area_codes)
        and _overlap(old, new)
    )


def _overlap(a: Alert, b: Alert) -> bool:
    a_open = a.expires is None or b.onset < a.expires
    b_open = b.expires is None or a.onset < b.expires
    return a_open and b_open


def _material(alert: Alert) -> tuple[object, ...]:
    """What makes an in-place change an Update (texts are not: wording fixes are noise)."""
    return (
        _event_key(alert.event),
        alert.level,
        alert.probability,
        alert.onset,
        alert.expires,
        alert.area_codes,
    )


def _event_key(event: str) -> str:
    return " ".join(event.casefold().split())


def _alert_from(record: Warning, source: AlertSource, scope: ImgwScope, now: datetime) -> Alert:
    if isinstance(record, MeteoWarning):
        return _meteo_alert(record, scope, now)
    return _hydro_alert(record, scope, now)


def _message_id(source: AlertSource, record: Warning) -> uuid.UUID:
    # The key and the material content: the same record yields the same id on a retry,
    # a record changed in place yields a new one.
    valid_to = record.valid_to.isoformat() if record.valid_to else "open"
    areas = ",".join(sorted(record.area_codes))
    content = (
        f"{_event_key(record.event)}|{record.level}|{record.probability}|"
        f"{record.valid_from.isoformat()}|{valid_to}|{areas}"
    )
    return uuid.uuid5(IMGW_NAMESPACE, f"{source}|{record.key}|{content}")


def _meteo_alert(record: MeteoWarning, scope: ImgwScope, now: datetime) -> Alert:
    level = record.level  # -1 never reaches here (`_is_warning`)
    colour_pl, colour_en = LEVEL_COLOURS[level]
    event = _line(record.event, EVENT_MAX)
    event_en = EVENTS_EN.get(_event_key(record.event))
    return Alert(
        id=_message_id(AlertSource.IMGW_METEO, record),
        source=AlertSource.IMGW_METEO,
        source_key=record.key,
        category=Category.MET,
        event=event,
        level=level,
        probability=record.probability,
        headline=_line(
            f"Ostrzeżenie meteorologiczne {level}. stopnia ({colour_pl}): {event}", HEADLINE_MAX
        ),
        description=_paragraphs(record.text, record.comment),
        instruction=None,
        areas=(AlertArea(scope.powiat_name, (AreaCode(CodeKind.TERYT, scope.powiat_teryt),)),),
        onset=moment(record.valid_from),
        expires=moment(record.valid_to) if record.valid_to else None,
        sent=moment(now),
        message_type=MessageType.ALERT,
        issuer=_line(record.office, ALERT_AREA_MAX) or None,
        event_en=event_en,
        headline_en=_line(
            f"Weather warning, level {level} ({colour_en}): {event_en or event}", HEADLINE_MAX
        ),
    )


def _hydro_alert(record: HydroWarning, scope: ImgwScope, now: datetime) -> Alert:
    # Hydro level -1 is a hydrological drought warning. It has no colour; it is mapped to
    # level 1 (CAP Moderate): a real hazard (wells, crops, fire) that develops slowly.
    drought = record.level == NO_LEVEL
    level = 1 if drought else record.level
    event = _line(record.event, EVENT_MAX)
    event_en = EVENTS_EN.get(_event_key(record.event))
    if drought:
        headline = f"Ostrzeżenie hydrologiczne: {event}"
        headline_en = f"Hydrological warning: {event_en or event}"
    else:
        colour_pl, colour_en = LEVEL_COLOURS[level]
        headline = f"Ostrzeżenie hydrologiczne {level}. stopnia ({colour_pl}): {event}"
        headline_en = f"Hydrological warning, level {level} ({colour_en}): {event_en or event}"
    areas = tuple(
        AlertArea(
            _line(
                area.description or area.voivodeship or ", ".join(area.basin_codes),
                ALERT_AREA_MAX,
            ),
            tuple(
                AreaCode(CodeKind.IMGW_BASIN, code)
                for code in area.basin_codes
                if code.upper() in scope.basins
            ),
        )
        for area in record.areas
        if any(code.upper() in scope.basins for code in area.basin_codes)
    )
    return Alert(
        id=_message_id(AlertSource.IMGW_HYDRO, record),
        source=AlertSource.IMGW_HYDRO,
        source_key=record.key,
        category=Category.MET,  # CAP: "Met - Meteorological (inc. flood)"
        event=event,
        level=level,
        probability=record.probability,
        headline=_line(headline, HEADLINE_MAX),
        description=_paragraphs(record.course, record.comment),
        instruction=None,
        areas=areas,
        onset=moment(record.valid_from),
        expires=moment(record.valid_to) if record.valid_to else None,
        sent=moment(now),
        message_type=MessageType.ALERT,
        issuer=_line(record.office, ALERT_AREA_MAX) or None,
        event_en=event_en,
        headline_en=_line(headline_en, HEADLINE_MAX),
    )


def _paragraphs(*parts: str) -> str:
    text = "\n\n".join(part for part in parts if part)
    return _clip(text, ALERT_DESCRIPTION_MAX)


def _line(text: str, limit: int) -> str:
    """One line, whitespace collapsed, at most `limit` characters: feed text goes into
    CAP headlines and event contracts that allow no more."""
    return _clip(" ".join(text.split()), limit)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
