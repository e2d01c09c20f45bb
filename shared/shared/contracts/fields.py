"""Field types safe at every edge: HTTP bodies and queries, Kafka payloads, settings.

Each type rejects, with a reason, what would otherwise crash deeper down (PostgreSQL refuses
NUL characters and unpaired surrogates; `bigint` and `timestamptz` have ranges) or what a
person would not call a value (a title made of spaces and zero-width characters).

* `Annotated[str, Text(max_length)]`: NFC-normalised and trimmed (whitespace, zero-width
  characters and a byte-order mark at either end); no NUL, no unpaired surrogate; not empty
  once whitespace, zero-width characters and BOMs are removed; at most `max_length`
  characters, counted in code points both as sent and as kept (so `maxLength` holds).
* `SafeDatetime`: an aware datetime that converts to UTC without overflow, within
  `EARLIEST`..`LATEST`; stored and returned in UTC.
* `SafeDate`: a calendar day as `YYYY-MM-DD` (never a number).
* `PageLimit`, `PageOffset`: page bounds a database can hold (PostgreSQL `integer`).
* `Consent`: a JSON `true`/`false` and nothing else (`"true"` or `1` is not consent).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictBool,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

# Invisible characters a person cannot see or type on purpose at the ends of a field.
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2199, 12, 31, 23, 59, 59, tzinfo=UTC)

# PostgreSQL `integer`: every count and page position fits.
INT32_MAX = 2**31 - 1

# Compiled once: every text field of every request passes these (a per-character Python
# loop was a visible share of intake's CPU under load).
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_storable(value: str) -> str:
    """Reject what PostgreSQL cannot store in `text`: NUL and unpaired surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if _SURROGATE.search(value):
        raise ValueError("must not contain unpaired surrogate code points")
    return value


def _trim(value: str) -> str:
    """Strip whitespace and invisible characters at both ends, in any interleaving."""
    previous = None
    while previous != value:
        previous = value
        value = value.strip().strip(INVISIBLE)
    return value


def clean_text(value: str, *, max_length: int, min_length: int = 1, multiline: bool = True) -> str:
    check_storable(value)
    if len(value) > max_length:
        raise ValueError(f"at most {max_length} characters")
    cleaned = _trim(unicodedata.normalize("NFC", value))
    if not multiline and any(char in cleaned for char in "\r\n"):
        raise ValueError("must be a single line")
    # Stops at the first visible character, normally the first one.
    visible = any(char not in INVISIBLE and not char.isspace() for char in cleaned)
    if min_length > 0 and not visible:
        raise ValueError("must not be blank")
    if len(cleaned) < min_length:
        raise ValueError(f"at least {min_length} characters")
    if len(cleaned) > max_length:
        raise ValueError(f"at most {max_length} characters")
    return cleaned


class Text:
    """`Annotated[str, Text(300)]`: a strict string, cleaned, documented with its bounds."""

    def __init__(self, max_length: int, *, min_length: int = 1, multiline: bool = True) -> None:
        self.max_length = max_length
        self.min_length = min_length
        self.multiline = multiline

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: str) -> str:
            return clean_text(
                value,
                max_length=self.max_length,
                min_length=self.min_length,
                multiline=self.multiline,
            )

        return core_schema.no_info_after_validator_function(
            validate, core_schema.str_schema(strict=True)
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update(maxLength=self.max_length, minLength=max(self.min_length, 0))
        if self.min_length > 0:
            # At least one visible character (ECMA-262 `\S` also admits zero-width ones,
            # which the validator refuses; the schema cannot say everything).
            json_schema["pattern"] = r"\S"
        return json_schema


# A short one-line identifier or name (envelope metadata, codes, tokens).
Line = Annotated[str, Text(200, multiline=False)]


def _to_sane_utc(value: datetime) -> datetime:
    try:
        moment = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("date-time out of range") from None
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)")
    return moment


def _sane_datetime_json(schema: dict[str, Any]) -> None:
    schema["description"] = (
        f"{schema.get('description', '')} ISO 8601 with a UTC offset, "
        f"between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}."
    ).strip()


class _AwareOnly:
    """Refuses naive datetimes (what zone would a naive moment be in?)."""

    @staticmethod
    def check(value: datetime) -> datetime:
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError("needs a UTC offset or Z")
        return value


def _only_text(value: Any) -> Any:
    """JSON numbers are not dates: pydantic would read them as Unix timestamps."""
    if isinstance(value, int | float):
        raise ValueError("expected an ISO 8601 string")
    return value


SafeDatetime = Annotated[
    datetime,
    BeforeValidator(_only_text),
    AfterValidator(_AwareOnly.check),
    AfterValidator(_to_sane_utc),
    Field(json_schema_extra=_sane_datetime_json),
]

SafeDate = Annotated[date, BeforeValidator(_only_text)]

PageLimit = Annotated[int, Field(ge=1, le=200)]
PageOffset = Annotated[int, Field(ge=0, le=INT32_MAX)]
Consent = StrictBool
