"""CAP 1.2 output: every message validated against the official OASIS schema (lxml)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from news.domain.alerts import (
    Alert,
    AlertSource,
    ManualAlertDraft,
    MessageType,
    cancel_manual_alert,
    issue_manual_alert,
    update_manual_alert,
)
from news.domain.cap import (
    CAP_NAMESPACE,
    CapSender,
    Certainty,
    Severity,
    Urgency,
    cap_datetime,
    certainty,
    render_cap,
    severity,
    urgency,
)
from news.domain.imgw import parse_hydro, parse_meteo
from news.domain.lifecycle import AlertUpdated, ImgwScope, NewAlert, plan_ingest

WARSAW = ZoneInfo("Europe/Warsaw")
DATA = Path(__file__).parent.parent / "data"
SCHEMA = etree.XMLSchema(etree.parse(str(DATA / "CAP-v1.2.xsd")))
NS = {"cap": CAP_NAMESPACE}
SENDER = CapSender(
    sender="strategia@konstancinjeziorna.pl",
    name="Gmina Konstancin-Jeziorna",
    name_en="Konstancin-Jeziorna Municipality",
    zone=WARSAW,
    gmina_teryt="1418023",
    web="https://www.konstancinjeziorna.pl",
)
NOW = datetime(2025, 7, 8, 10, 0, tzinfo=UTC)
SCOPE = ImgwScope.of("1418", "powiat piaseczyński", ["Z_O_MA_2594", "Z_O_MA_259"])


def manual(**changes: object) -> Alert:
    fields: dict[str, object] = {
        "event": "Burze",
        "level": 2,
        "headline": "Silne burze z gradem & porywy <90 km/h>",
        "description": "Zabezpiecz rzeczy na balkonach.",
        "areas": ("1418023",),
        "onset": NOW + timedelta(hours=3),
        "expires": NOW + timedelta(hours=10),
        "probability": 80,
        "headline_en": "Severe thunderstorms with hail",
        "description_en": "Secure loose items on balconies.",
    }
    fields.update(changes)
    return issue_manual_alert(
        ManualAlertDraft(**fields),  # type: ignore[arg-type]
        alert_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
        now=NOW,
        area_names={"1418023": "gmina Konstancin-Jeziorna"},
    )


def valid(document: bytes) -> etree._Element:
    root = etree.fromstring(document)
    assert SCHEMA.validate(root), SCHEMA.error_log
    return root


def text(root: etree._Element, path: str) -> list[str]:
    return [element.text for element in root.findall(path, NS)]


def imgw_alerts() -> list[Alert]:
    meteo = parse_meteo(200, (DATA / "imgw" / "meteo_new.json").read_bytes(), WARSAW)
    hydro = parse_hydro(200, (DATA / "imgw" / "hydro_ours.json").read_bytes(), WARSAW)
    drought = parse_hydro(200, (DATA / "imgw" / "hydro_drought_ours.json").read_bytes(), WARSAW)
    alerts: list[Alert] = []
    for outcome in (meteo, hydro, drought):
        for decision in plan_ingest([], outcome, scope=SCOPE, now=NOW).decisions:
            assert isinstance(decision, NewAlert)
            alerts.append(decision.alert)
    return alerts


class TestSchema:
    def test_schema_is_strict_enough_to_catch_mistakes(self) -> None:
        root = etree.fromstring(render_cap(manual(), SENDER))
        root.find("cap:sent", NS).text = "2025-07-08T10:00:00Z"
        assert not SCHEMA.validate(root)

    def test_manual_alert(self) -> None:
        root = valid(render_cap(manual(), SENDER))
        assert text(root, "cap:identifier") == [
            "strategia@konstancinjeziorna.pl.00000000-0000-4000-8000-000000000001"
        ]
        assert text(root, "cap:sender") == ["strategia@konstancinjeziorna.pl"]
        assert text(root, "cap:sent") == ["2025-07-08T12:00:00+02:00"]
        assert text(root, "cap:status") == ["Actual"]
        assert text(root, "cap:msgType") == ["Alert"]
        assert text(root, "cap:scope") == ["Public"]
        assert root.find("cap:references", NS) is None
        assert root.find("cap:source", NS) is None
        assert text(root, "cap:info/cap:language") == ["pl-PL", "en-US"]
        assert text(root, "cap:info/cap:severity") == ["Severe", "Severe"]
        assert text(root, "cap:info/cap:certainty") == ["Likely", "Likely"]
        assert text(root, "cap:info/cap:urgency") == ["Future", "Future"]
        assert text(root, "cap:info/cap:onset") == ["2025-07-08T15:00:00+02:00"] * 2
        assert text(root, "cap:info/cap:expires") == ["2025-07-08T22:00:00+02:00"] * 2
        assert text(root, "cap:info/cap:senderName") == [
            "Gmina Konstancin-Jeziorna",
            "Konstancin-Jeziorna Municipality",
        ]
        assert text(root, "cap:info/cap:headline")[0] == ("Silne burze z gradem & porywy <90 km/h>")
        assert text(root, "cap:info/cap:web") == ["https://www.konstancinjeziorna.pl"] * 2
        assert text(root, "cap:info/cap:parameter/cap:value") == ["3; orange; Severe"] * 2
        assert text(root, "cap:info[1]/cap:area/cap:areaDesc") == ["gmina Konstancin-Jeziorna"]
        assert text(root, "cap:info[1]/cap:area/cap:geocode/cap:valueName") == ["TERYT"]
        assert text(root, "cap:info[1]/cap:area/cap:geocode/cap:value") == ["1418023"]

    def test_polish_only_when_no_english_text(self) -> None:
        root = valid(render_cap(manual(headline_en=None, description_en=None), SENDER))
        assert text(root, "cap:info/cap:language") == ["pl-PL"]

    def test_update_references_what_it_replaces(self) -> None:
        first = manual()
        later = NOW + timedelta(minutes=20)
        _, update = update_manual_alert(
            first,
            ManualAlertDraft(
                "Burze", 3, "Nawałnica", "Opis", ("1418",), NOW, NOW + timedelta(hours=5)
            ),
            alert_id=uuid.UUID("00000000-0000-4000-8000-000000000002"),
            now=later,
        )
        root = valid(render_cap(update, SENDER))
        assert text(root, "cap:msgType") == ["Update"]
        assert text(root, "cap:references") == [
            "strategia@konstancinjeziorna.pl,"
            "strategia@konstancinjeziorna.pl.00000000-0000-4000-8000-000000000001,"
            "2025-07-08T12:00:00+02:00"
        ]
        assert text(root, "cap:info/cap:severity") == ["Extreme"]
        assert text(root, "cap:info/cap:urgency") == ["Immediate"]

    def test_references_are_space_separated_for_a_chain(self) -> None:
        first = manual()
        _, second = update_manual_alert(
            first,
            ManualAlertDraft("Burze", 1, "H", "D", ("1418",), NOW, NOW + timedelta(hours=5)),
            alert_id=uuid.uuid4(),
            now=NOW + timedelta(minutes=1),
        )
        _, cancel = cancel_manual_alert(
            second, alert_id=uuid.uuid4(), now=NOW + timedelta(minutes=2)
        )
        root = valid(render_cap(cancel, SENDER))
        (references,) = text(root, "cap:references")
        triples = references.split(" ")
        assert [len(triple.split(",")) for triple in triples] == [3, 3]
        assert triples[1].endswith(",2025-07-08T12:01:00+02:00")

    def test_cancel(self) -> None:
        _, cancel = cancel_manual_alert(manual(), alert_id=uuid.uuid4(), now=NOW)
        root = valid(render_cap(cancel, SENDER))
        assert text(root, "cap:msgType") == ["Cancel"]
        assert text(root, "cap:info/cap:urgency") == ["Past", "Past"]
        assert len(text(root, "cap:references")) == 1

    def test_every_imgw_alert_validates(self) -> None:
        for alert in imgw_alerts():
            valid(render_cap(alert, SENDER))

    def test_imgw_meteo_message(self) -> None:
        meteo = imgw_alerts()[0]
        root = valid(render_cap(meteo, SENDER))
        assert text(root, "cap:source") == [
            "IMGW-PIB — Biuro Prognoz Meteorologicznych w Warszawie"
        ]
        assert text(root, "cap:info/cap:category") == ["Met", "Met"]
        assert text(root, "cap:info/cap:event") == ["Burze", "Thunderstorms"]
        assert text(root, "cap:info/cap:severity") == ["Moderate", "Moderate"]
        assert text(root, "cap:info[1]/cap:area/cap:areaDesc") == ["powiat piaseczyński"]
        assert text(root, "cap:info[1]/cap:area/cap:geocode/cap:value") == ["1418"]

    def test_hydro_basin_area_also_carries_the_gmina_teryt(self) -> None:
        flood = imgw_alerts()[1]
        assert flood.source is AlertSource.IMGW_HYDRO
        root = valid(render_cap(flood, SENDER))
        names = text(root, "cap:info[1]/cap:area/cap:geocode/cap:valueName")
        values = text(root, "cap:info[1]/cap:area/cap:geocode/cap:value")
        assert list(zip(names, values, strict=True)) == [
            ("IMGW_KOD_ZLEWNI", "Z_O_MA_2594"),
            ("TERYT", "1418023"),
        ]

    def test_open_ended_drought_has_no_expires(self) -> None:
        drought = imgw_alerts()[2]
        root = valid(render_cap(drought, SENDER))
        assert root.find("cap:info/cap:expires", NS) is None
        assert text(root, "cap:info/cap:severity") == ["Moderate", "Moderate"]
        assert text(root, "cap:info/cap:certainty") == ["Likely", "Likely"]

    def test_imgw_update_validates(self) -> None:
        meteo = imgw_alerts()[0]
        raised = parse_meteo(200, (DATA / "imgw" / "meteo_raised.json").read_bytes(), WARSAW)
        (decision,) = plan_ingest([meteo], raised, scope=SCOPE, now=NOW).decisions
        assert isinstance(decision, AlertUpdated)
        root = valid(render_cap(decision.update, SENDER))
        assert text(root, "cap:msgType") == ["Update"]

    def test_control_characters_from_the_feed_are_dropped(self) -> None:
        alert = replace(manual(), description="Linia\x00 pierwsza\x07\nLinia druga")
        root = valid(render_cap(alert, SENDER))
        assert text(root, "cap:info[1]/cap:description") == ["Linia pierwsza\nLinia druga"]


class TestMapping:
    @pytest.mark.parametrize(
        ("level", "expected"),
        [(1, Severity.MODERATE), (2, Severity.SEVERE), (3, Severity.EXTREME)],
    )
    def test_severity(self, level: int, expected: Severity) -> None:
        assert severity(level) is expected

    @pytest.mark.parametrize(
        ("probability", "expected"),
        [
            (None, Certainty.UNKNOWN),
            (100, Certainty.LIKELY),
            (51, Certainty.LIKELY),
            (50, Certainty.POSSIBLE),
            (6, Certainty.POSSIBLE),
            (5, Certainty.UNLIKELY),
            (0, Certainty.UNLIKELY),
        ],
    )
    def test_certainty(self, probability: int | None, expected: Certainty) -> None:
        assert certainty(probability) is expected

    @pytest.mark.parametrize(
        ("onset_after_sent", "expected"),
        [
            (timedelta(hours=-1), Urgency.IMMEDIATE),
            (timedelta(0), Urgency.IMMEDIATE),
            (timedelta(minutes=60), Urgency.EXPECTED),
            (timedelta(minutes=61), Urgency.FUTURE),
        ],
    )
    def test_urgency_from_onset_against_sent(
        self, onset_after_sent: timedelta, expected: Urgency
    ) -> None:
        alert = replace(manual(), onset=NOW + onset_after_sent)
        assert urgency(alert) is expected

    def test_urgency_of_an_already_expired_message_is_past(self) -> None:
        alert = replace(manual(), onset=NOW - timedelta(hours=5), expires=NOW)
        assert urgency(alert) is Urgency.PAST
        assert urgency(replace(manual(), message_type=MessageType.CANCEL)) is Urgency.PAST

    def test_cap_datetime_has_an_offset_and_whole_seconds(self) -> None:
        moment = datetime(2025, 1, 8, 10, 0, 5, 999999, tzinfo=UTC)
        assert cap_datetime(moment, WARSAW) == "2025-01-08T11:00:05+01:00"
        assert cap_datetime(moment, ZoneInfo("UTC")) == "2025-01-08T10:00:05+00:00"

    def test_naive_times_are_refused(self) -> None:
        with pytest.raises(ValueError):
            cap_datetime(datetime(2025, 1, 1), WARSAW)

    @pytest.mark.parametrize("sender", ["", "strategia konstancin", "a,b", "a<b", "a&b"])
    def test_sender_has_no_forbidden_characters(self, sender: str) -> None:
        with pytest.raises(ValueError):
            replace(SENDER, sender=sender)

    def test_oid_like_sender(self) -> None:
        oid = replace(SENDER, sender="2.49.0.0.616.1418023")
        root = valid(render_cap(manual(), oid))
        assert text(root, "cap:identifier")[0].startswith("2.49.0.0.616.1418023.")
