"""IMGW-PIB warning feeds (meteo and hydro): parsing HTTP answers into value objects.

The feeds are JSON arrays in which every value is a string, local times are Europe/Warsaw
without an offset, and nothing says whether a record is new, revised or withdrawn (that is
derived in `lifecycle`). See `shared/reference/imgw-warnings.md`.

What a bad answer means, decided here once:

* The whole answer is unusable (`FeedError`): an HTTP status other than 200, or 404 whose
  body is not the documented "No products were found"; bytes that are not UTF-8 JSON; JSON
  that is not an array. The poller logs it and retries with back-off; nothing is decided.
* Some records are unusable (a record that is not an object, a missing field, a value of
  the wrong type or format): the good records are kept, because a real warning must not be
  hidden by its broken neighbour, and every bad one is listed in `ParsedFeed.problems`.
  Such a feed is *incomplete*: a warning that seems to have disappeared may be the broken
  record, so `lifecycle` never cancels (nor supersedes) anything because of it.
* HTTP 404 with `{"status": false, "message": "No products were found"}` (and the same
  body with 200) is a complete, empty feed: no warning is in force.

Times: a local time that does not exist (the spring DST gap) or exists twice (the autumn
fold) is read with `fold=0` (PEP 495): a gap time is shifted forward by the gap's hour, a
fold time is the first (summer-time) occurrence. All parsed times are returned in UTC so
comparisons never depend on a zone's fold rules.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from shared.contracts.fields import INVISIBLE

NO_PRODUCTS_MESSAGE = "No products were found"
OPEN_ENDED_YEAR = 9999  # `data_do: 9999-12-31 23:59:59` means "until further notice"
LEVELS = frozenset({-1, 1, 2, 3})
NO_LEVEL = -1  # meteo: no warning level; hydro: hydrological drought

_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_POWIAT = re.compile(r"^\d{4}$")
# Loose on purpose: a new code shape must not hide a real warning.
_BASIN = re.compile(r"^[A-Za-z0-9_]{1,40}$")
_INTEGER = re.compile(r"^-?\d{1,3}$")
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
EARLIEST_YEAR = 1970
LATEST_YEAR = 2199


class FeedKind(StrEnum):
    METEO = "meteo"
    HYDRO = "hydro"


class FeedError(Exception):
    """The answer as a whole cannot be used; `reason` says why, for the log."""

    def __init__(self, kind: FeedKind, reason: str) -> None:
        super().__init__(f"IMGW {kind} feed unusable: {reason}")
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RecordProblem:
    """A record that could not be read. `areas` are its powiat or basin codes when they
    could be read (None otherwise), so a broken record about another region does not make
    this gmina's feed incomplete."""

    index: int
    key: str | None
    reason: str
    areas: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class MeteoWarning:
    id: str
    event: str  # nazwa_zdarzenia
    level: int  # -1 (none), 1 yellow, 2 orange, 3 red
    probability: int | None  # percent
    valid_from: datetime  # UTC
    valid_to: datetime | None  # UTC; None = open-ended
    published: datetime  # UTC
    text: str  # tresc
    comment: str  # komentarz, e.g. "Podniesienie stopnia ostrzeżenia."
    office: str  # biuro
    teryt: tuple[str, ...]  # 4-digit powiat codes

    @property
    def key(self) -> str:
        return self.id

    @property
    def area_codes(self) -> tuple[str, ...]:
        return self.teryt


@dataclass(frozen=True, slots=True)
class HydroArea:
    voivodeship: str
    description: str  # opis, e.g. "mazowieckie, zlewnia Jeziorki, ..."
    basin_codes: tuple[str, ...]  # kod_zlewni, e.g. Z_O_MA_2545; empty in the old format


@dataclass(frozen=True, slots=True)
class HydroWarning:
    number: str  # numer
    event: str  # zdarzenie
    level: int  # -1 (hydrological drought), 1..3
    probability: int | None
    valid_from: datetime  # UTC
    valid_to: datetime | None  # UTC; None = open-ended (9999-12-31)
    published: datetime  # UTC
    course: str  # przebieg
    comment: str  # komentarz
    office: str  # biuro
    areas: tuple[HydroArea, ...]

    @property
    def key(self) -> str:
        """Hydro records have no id: number + publication time + office identify one.

        A re-issued warning gets a new publication time, hence a new key; `lifecycle`
        recognises it as an Update of the one it replaces."""
        office = hashlib.sha256(self.office.encode()).hexdigest()[:8]
        return f"{self.number}/{self.published:%Y%m%dT%H%M%SZ}/{office}"

    @property
    def area_codes(self) -> tuple[str, ...]:
        return tuple(code for area in self.areas for code in area.basin_codes)


Warning = MeteoWarning | HydroWarning


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A fetch that answered: the readable warnings and the records that were not."""

    kind: FeedKind
    warnings: tuple[Warning, ...]
    problems: tuple[RecordProblem, ...] = field(default=())

    @property
    def complete(self) -> bool:
        """Only a complete feed may be trusted to say that a warning is gone."""
        return not self.problems


@dataclass(frozen=True, slots=True)
class FailedFetch:
    """A fetch that gave nothing usable (timeout, connection error, FeedError)."""

    kind: FeedKind
    reason: str


FetchOutcome = ParsedFeed | FailedFetch


# --- time ---------------------------------------------------------------------------


def parse_local_time(text: str, zone: ZoneInfo) -> datetime | None:
    """`YYYY-MM-DD HH:MM:SS` in `zone` → aware UTC; year 9999 → None (open-ended).

    Raises ValueError for any other shape, and for a year outside 1970–2199 (no warning
    is about such a time, and the alert contracts cannot carry one)."""
    if not _LOCAL_TIME.match(text):
        raise ValueError(f"{text!r} is not YYYY-MM-DD HH:MM:SS")
    naive = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    if naive.year == OPEN_ENDED_YEAR:
        return None
    if not EARLIEST_YEAR <= naive.year <= LATEST_YEAR:
        raise ValueError(f"{text!r} lies outside {EARLIEST_YEAR}–{LATEST_YEAR}")
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def clean_feed_text(value: str) -> str:
    """Drop what no warning text needs and no database or XML can store: NUL and the
    other C0 controls (tab and line breaks stay) and unpaired surrogates."""
    return _UNSTORABLE.sub("", value)


# --- parsing ------------------------------------------------------------------------


def parse_meteo(status: int, body: bytes, zone: ZoneInfo) -> ParsedFeed:
    """Parse one answer of `.../api/data/warningsmeteo`. Raises FeedError."""
    return _parse(FeedKind.METEO, status, body, zone)


def parse_hydro(status: int, body: bytes, zone: ZoneInfo) -> ParsedFeed:
    """Parse one answer of `.../api/data/warningshydro`. Raises FeedError."""
    return _parse(FeedKind.HYDRO, status, body, zone)


def _parse(kind: FeedKind, status: int, body: bytes, zone: ZoneInfo) -> ParsedFeed:
    if status not in (200, 404):
        raise FeedError(kind, f"HTTP status {status}")
    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as error:
        problem = f"body is not UTF-8: {error.reason}"
        document = _UNREADABLE
    except json.JSONDecodeError as error:
        problem = f"malformed JSON: {error.msg} at {error.pos}"
        document = _UNREADABLE
    if _is_no_products(document):
        return ParsedFeed(kind, ())
    if status == 404:
        # Not the documented "no warnings" answer: a wrong URL or a proxy page. Treating
        # it as empty would cancel every active warning.
        raise FeedError(kind, "HTTP 404 without the 'No products were found' body")
    if document is _UNREADABLE:
        raise FeedError(kind, problem)
    if not isinstance(document, list):
        raise FeedError(kind, f"expected a JSON array, got {_type_name(document)}")
    warnings: list[Warning] = []
    problems: list[RecordProblem] = []
    reader = _read_meteo if kind is FeedKind.METEO else _read_hydro
    for index, record in enumerate(document):
        if not isinstance(record, dict):
            problems.append(
                RecordProblem(index, None, f"record is {_type_name(record)}, not an object")
            )
            continue
        try:
            warnings.append(reader(record, zone))
        except _BadRecord as error:
            problems.append(RecordProblem(index, error.key, error.reason, error.areas))
    return ParsedFeed(kind, tuple(warnings), tuple(problems))


_UNREADABLE = object()


def _is_no_products(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and document.get("status") is False
        and document.get("message") == NO_PRODUCTS_MESSAGE
    )


class _BadRecord(Exception):
    def __init__(self, reason: str, key: str | None, areas: tuple[str, ...] | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key = key
        self.areas = areas


class _Fields:
    """Typed access to one record; every failure names the field."""

    def __init__(self, record: Mapping[str, Any], zone: ZoneInfo) -> None:
        self.record = record
        self.zone = zone
        self.key: str | None = None
        self.areas: tuple[str, ...] | None = None

    def fail(self, name: str, reason: str) -> _BadRecord:
        return _BadRecord(f"{name}: {reason}", self.key, self.areas)

    def first_present(self, *names: str) -> str:
        for name in names:
            if name in self.record:
                return name
        return names[0]

    def text(self, name: str, *, required: bool) -> str:
        value = self.record.get(name)
        if value is None:
            if required:
                raise self.fail(name, "missing")
            return ""
        if not isinstance(value, str):
            raise self.fail(name, f"expected a string, got {_type_name(value)}")
        value = clean_feed_text(value).strip().strip(INVISIBLE).strip()
        if required and not "".join(char for char in value if char not in INVISIBLE).strip():
            raise self.fail(name, "empty")
        return value

    def level(self, name: str) -> int:
        raw = self.text(name, required=True)
        if not _INTEGER.match(raw) or int(raw) not in LEVELS:
            raise self.fail(name, f"{raw!r} is not one of -1, 1, 2, 3")
        return int(raw)

    def probability(self, name: str) -> int | None:
        raw = self.text(name, required=False)
        if not raw:
            return None
        if not _INTEGER.match(raw) or not 0 <= int(raw) <= 100:
            raise self.fail(name, f"{raw!r} is not a percentage 0-100")
        return int(raw)

    def time(self, name: str) -> datetime | None:
        raw = self.text(name, required=True)
        try:
            return parse_local_time(raw, self.zone)
        except ValueError as error:
            raise self.fail(name, str(error)) from None

    def bounded_time(self, name: str) -> datetime:
        moment = self.time(name)
        if moment is None:
            raise self.fail(name, "open-ended date where a start is expected")
        return moment

    def strings(self, name: str, container: Mapping[str, Any] | None = None) -> tuple[str, ...]:
        value = (self.record if container is None else container).get(name)
        if not isinstance(value, list):
            raise self.fail(name, f"expected an array of strings, got {_type_name(value)}")
        if not all(isinstance(item, str) for item in value):
            raise self.fail(name, "expected an array of strings")
        return tuple(item.strip() for item in value)


def _read_meteo(record: Mapping[str, Any], zone: ZoneInfo) -> MeteoWarning:
    fields = _Fields(record, zone)
    raw_id = record.get("id")
    fields.key = raw_id if isinstance(raw_id, str) and raw_id.strip() else None
    raw_teryt = record.get("teryt")
    if isinstance(raw_teryt, list) and all(isinstance(code, str) for code in raw_teryt):
        fields.areas = tuple(code.strip() for code in raw_teryt)
    warning_id = fields.text("id", required=True)
    teryt = fields.strings("teryt")
    if not teryt:
        raise fields.fail("teryt", "empty")
    bad = [code for code in teryt if not _POWIAT.match(code)]
    if bad:
        raise fields.fail("teryt", f"not 4-digit powiat codes: {', '.join(bad)}")
    valid_from = fields.bounded_time("obowiazuje_od")
    valid_to = fields.time("obowiazuje_do")
    _check_window(fields, "obowiazuje_do", valid_from, valid_to)
    return MeteoWarning(
        id=warning_id,
        event=fields.text("nazwa_zdarzenia", required=True),
        level=fields.level("stopien"),
        probability=fields.probability("prawdopodobienstwo"),
        valid_from=valid_from,
        valid_to=valid_to,
        published=fields.bounded_time("opublikowano"),
        text=fields.text("tresc", required=False),
        comment=fields.text("komentarz", required=False),
        office=fields.text("biuro", required=False),
        teryt=teryt,
    )


def _read_hydro(record: Mapping[str, Any], zone: ZoneInfo) -> HydroWarning:
    fields = _Fields(record, zone)
    fields.areas = _hydro_codes_if_readable(record)
    number = fields.text("numer", required=True)
    fields.key = number
    valid_from = fields.bounded_time("data_od")
    valid_to = fields.time("data_do")
    _check_window(fields, "data_do", valid_from, valid_to)
    return HydroWarning(
        number=number,
        event=fields.text("zdarzenie", required=True),
        # The feed spells these with and without Polish diacritics; accept both.
        level=fields.level(fields.first_present("stopień", "stopien")),
        probability=fields.probability(
            fields.first_present("prawdopodobienstwo", "prawdopodobieństwo")
        ),
        valid_from=valid_from,
        valid_to=valid_to,
        published=fields.bounded_time("opublikowano"),
        course=fields.text("przebieg", required=False),
        comment=fields.text("komentarz", required=False),
        office=fields.text("biuro", required=False),
        areas=_hydro_areas(fields),
    )


def _hydro_areas(fields: _Fields) -> tuple[HydroArea, ...]:
    record = fields.record
    if "obszary" not in record:
        # Format before August 2025: flat `wojewodztwo` and `obszar`, no basin codes.
        return (
            HydroArea(
                voivodeship=fields.text("wojewodztwo", required=True),
                description=fields.text("obszar", required=False),
                basin_codes=(),
            ),
        )
    raw = record["obszary"]
    if not isinstance(raw, list):
        raise fields.fail("obszary", f"expected an array, got {_type_name(raw)}")
    areas: list[HydroArea] = []
    for position, item in enumerate(raw):
        name = f"obszary[{position}]"
        if not isinstance(item, dict):
            raise fields.fail(name, f"expected an object, got {_type_name(item)}")
        voivodeship = item.get("wojewodztwo", "")
        description = item.get("opis", "")
        if not isinstance(voivodeship, str) or not isinstance(description, str):
            raise fields.fail(name, "wojewodztwo and opis must be strings")
        codes = fields.strings("kod_zlewni", item)
        bad = [code for code in codes if not _BASIN.match(code)]
        if bad:
            raise fields.fail(f"{name}.kod_zlewni", f"not basin codes: {', '.join(bad)}")
        areas.append(
            HydroArea(
                clean_feed_text(voivodeship).strip(), clean_feed_text(description).strip(), codes
            )
        )
    if not areas:
        raise fields.fail("obszary", "empty")
    return tuple(areas)


def _hydro_codes_if_readable(record: Mapping[str, Any]) -> tuple[str, ...] | None:
    raw = record.get("obszary")
    if not isinstance(raw, list):
        return None
    codes: list[str] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("kod_zlewni"), list):
            return None
        codes.extend(code.strip() for code in item["kod_zlewni"] if isinstance(code, str))
    return tuple(codes)


def _check_window(
    fields: _Fields, name: str, valid_from: datetime, valid_to: datetime | None
) -> None:
    if valid_to is not None and valid_to <= valid_from:
        raise fields.fail(name, "ends before it starts")


def _type_name(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


# --- relevance ----------------------------------------------------------------------


def normalise_basins(codes: Iterable[str]) -> frozenset[str]:
    """Configured basin codes, compared upper-case without surrounding blanks."""
    return frozenset(code.strip().upper() for code in codes if code.strip())


def concerns(codes: Sequence[str] | None, *, powiat: str | None, basins: frozenset[str]) -> bool:
    """Whether area codes (powiat codes or basin codes) touch the gmina's area."""
    if codes is None:
        return True  # unknown area: assume it might concern us
    wanted = ({powiat} if powiat else set()) | basins
    return any(code.strip().upper() in wanted for code in codes)


def relevant_meteo(feed: ParsedFeed, powiat_teryt: str) -> ParsedFeed:
    """Keep the meteo warnings (and problems) whose `teryt` holds the gmina's powiat."""
    if not _POWIAT.match(powiat_teryt):
        raise ValueError(f"powiat TERYT must be 4 digits, got {powiat_teryt!r}")
    return _keep(feed, powiat=powiat_teryt, basins=frozenset())


def relevant_hydro(feed: ParsedFeed, basin_codes: Iterable[str]) -> ParsedFeed:
    """Keep the hydro warnings (and problems) naming one of the configured basins."""
    return _keep(feed, powiat=None, basins=normalise_basins(basin_codes))


def _keep(feed: ParsedFeed, *, powiat: str | None, basins: frozenset[str]) -> ParsedFeed:
    warnings = tuple(
        warning
        for warning in feed.warnings
        if concerns(warning.area_codes, powiat=powiat, basins=basins)
    )
    problems = tuple(
        problem
        for problem in feed.problems
        if concerns(problem.areas, powiat=powiat, basins=basins)
    )
    return replace(feed, warnings=warnings, problems=problems)
