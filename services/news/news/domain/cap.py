"""Alerts as OASIS CAP 1.2 messages (namespace urn:oasis:names:tc:emergency:cap:1.2).

Mapping choices (one place, so the HTTP layer, the feed and the tests agree):

* identifier: `<sender>.<alert id>`; stable, unique per sender, no spaces/commas/`<`/`&`.
* msgType from the message; `references`: `sender,identifier,sent` of every earlier
  message of the chain, space-separated (see `alerts.chain_of`).
* severity: level 1 → Moderate, 2 → Severe, 3 → Extreme (MeteoAlarm's yellow/orange/red).
* certainty from the probability: ≥ 51 % Likely, 6–50 % Possible, ≤ 5 % Unlikely, none
  stated → Unknown (CAP 1.2: Likely "p > ~50%", Possible "p <= ~50%", Unlikely "p ~ 0").
  Observed is never derived: a forecast probability, even 100 %, is not an observation.
* urgency from onset against sent: a Cancel, or already expired → Past; started →
  Immediate; starts within an hour → Expected (CAP: "within next hour"); later → Future.
* category from the alert (IMGW meteo and hydro → Met, which CAP defines as
  "Meteorological (inc. flood)"; manual alerts choose, default Safety).
* Each area has a TERYT geocode. IMGW hydro areas are river basins (geocode
  IMGW_KOD_ZLEWNI); the gmina declared them as concerning it, so they also carry the
  gmina's own TERYT code.
* Dates: `YYYY-MM-DDThh:mm:ss+hh:mm` in the gmina's zone — the schema rejects `Z` and
  fractions of a second.
* A MeteoAlarm-style `awareness_level` parameter ("2; yellow; Moderate") and, for IMGW
  alerts, `source` IMGW-PIB, so European tooling reads the level as it expects.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET  # builds and serialises only; nothing is parsed
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from news.domain.alerts import Alert, AlertSource, CodeKind, MessageType

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_MEDIA_TYPE = "application/cap+xml"
EXPECTED_WITHIN = timedelta(hours=1)

_SENDER_FORBIDDEN = re.compile(r"[\s,<&]")
# Characters XML 1.0 cannot carry; IMGW text is outside input, so they are dropped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class Severity(StrEnum):
    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"


class Certainty(StrEnum):
    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"


class Urgency(StrEnum):
    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"


SEVERITY_BY_LEVEL = {1: Severity.MODERATE, 2: Severity.SEVERE, 3: Severity.EXTREME}
AWARENESS = {1: "2; yellow", 2: "3; orange", 3: "4; red"}  # MeteoAlarm numbering


@dataclass(frozen=True, slots=True)
class CapSender:
    """Who signs the messages: the gmina (from its profile)."""

    sender: str  # e.g. "strategia@konstancinjeziorna.pl" or an OID
    name: str  # senderName, Polish
    zone: ZoneInfo
    gmina_teryt: str  # TERYT of the gmina, for areas that have none of their own
    name_en: str | None = None
    web: str | None = None  # default <web> when no per-alert page is given
    contact: str | None = None

    def __post_init__(self) -> None:
        if not self.sender or _SENDER_FORBIDDEN.search(self.sender):
            raise ValueError("CAP sender must be non-empty, without spaces, commas, < or &")
        if not re.fullmatch(r"\d{4}|\d{7}", self.gmina_teryt):
            raise ValueError("gmina_teryt must be a 4- or 7-digit TERYT code")


def cap_identifier(sender: str, alert_id: uuid.UUID) -> str:
    return f"{sender}.{alert_id}"


def cap_datetime(moment: datetime, zone: ZoneInfo) -> str:
    """CAP date-time: local offset, whole seconds, never `Z`."""
    if moment.tzinfo is None:
        raise ValueError("CAP date-times need a time zone")
    return moment.astimezone(zone).replace(microsecond=0).isoformat()


def severity(level: int) -> Severity:
    return SEVERITY_BY_LEVEL.get(level, Severity.UNKNOWN)


def certainty(probability: int | None) -> Certainty:
    if probability is None:
        return Certainty.UNKNOWN
    if probability >= 51:
        return Certainty.LIKELY
    if probability > 5:
        return Certainty.POSSIBLE
    return Certainty.UNLIKELY


def urgency(alert: Alert) -> Urgency:
    if alert.message_type is MessageType.CANCEL or alert.is_expired(alert.sent):
        return Urgency.PAST
    if alert.onset <= alert.sent:
        return Urgency.IMMEDIATE
    if alert.onset - alert.sent <= EXPECTED_WITHIN:
        return Urgency.EXPECTED
    return Urgency.FUTURE


def references(alert: Alert, sender: CapSender) -> str:
    return " ".join(
        ",".join(
            (
                sender.sender,
                cap_identifier(sender.sender, ref.alert_id),
                cap_datetime(ref.sent, sender.zone),
            )
        )
        for ref in alert.references
    )


def cap_element(alert: Alert, sender: CapSender, *, web: str | None = None) -> ET.Element:
    """The `<alert>` element (elements in the CAP namespace, schema order)."""
    root = ET.Element(_q("alert"))
    _add(root, "identifier", cap_identifier(sender.sender, alert.id))
    _add(root, "sender", sender.sender)
    _add(root, "sent", cap_datetime(alert.sent, sender.zone))
    _add(root, "status", "Actual")
    _add(root, "msgType", alert.message_type.value)
    if alert.source is not AlertSource.MANUAL:
        _add(root, "source", "IMGW-PIB" + (f" — {alert.issuer}" if alert.issuer else ""))
    _add(root, "scope", "Public")
    if alert.references:
        _add(root, "references", references(alert, sender))
    _info(root, alert, sender, web, english=False)
    if alert.headline_en:
        _info(root, alert, sender, web, english=True)
    return root


def render_cap(alert: Alert, sender: CapSender, *, web: str | None = None) -> bytes:
    """One CAP 1.2 document, UTF-8 with an XML declaration."""
    document: bytes = ET.tostring(
        cap_element(alert, sender, web=web),
        encoding="utf-8",
        xml_declaration=True,
        default_namespace=CAP_NAMESPACE,
    )
    return document


def cap_fragment(alert: Alert, sender: CapSender, *, web: str | None = None) -> str:
    """The `<alert>` element as text without a declaration, for embedding in Atom."""
    return ET.tostring(
        cap_element(alert, sender, web=web),
        encoding="unicode",
        default_namespace=CAP_NAMESPACE,
    )


def _info(
    root: ET.Element, alert: Alert, sender: CapSender, web: str | None, *, english: bool
) -> None:
    info = ET.SubElement(root, _q("info"))
    _add(info, "language", "en-US" if english else "pl-PL")
    _add(info, "category", alert.category.value)
    _add(info, "event", (alert.event_en or alert.event) if english else alert.event)
    _add(info, "urgency", urgency(alert).value)
    level_severity = severity(alert.level)
    _add(info, "severity", level_severity.value)
    _add(info, "certainty", certainty(alert.probability).value)
    _add(info, "onset", cap_datetime(alert.onset, sender.zone))
    if alert.expires is not None:
        _add(info, "expires", cap_datetime(alert.expires, sender.zone))
    _add(info, "senderName", (sender.name_en or sender.name) if english else sender.name)
    _add(info, "headline", (alert.headline_en or alert.headline) if english else alert.headline)
    description = alert.description_en if english else alert.description
    if description:
        _add(info, "description", description)
    instruction = alert.instruction_en if english else alert.instruction
    if instruction:
        _add(info, "instruction", instruction)
    link = web or sender.web
    if link:
        _add(info, "web", link)
    if sender.contact:
        _add(info, "contact", sender.contact)
    parameter = ET.SubElement(info, _q("parameter"))
    _add(parameter, "valueName", "awareness_level")
    _add(parameter, "value", f"{AWARENESS.get(alert.level, '1; green')}; {level_severity}")
    for area in alert.areas:
        element = ET.SubElement(info, _q("area"))
        _add(element, "areaDesc", area.description)
        codes = [(code.kind.value, code.value) for code in area.codes]
        if not any(kind == CodeKind.TERYT for kind, _ in codes):
            codes.append((CodeKind.TERYT.value, sender.gmina_teryt))
        for kind, value in codes:
            geocode = ET.SubElement(element, _q("geocode"))
            _add(geocode, "valueName", kind)
            _add(geocode, "value", value)


def _q(name: str) -> str:
    return f"{{{CAP_NAMESPACE}}}{name}"


def _add(parent: ET.Element, name: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, _q(name))
    element.text = _NOT_XML.sub("", text)
    return element
