"""IMGW life cycle: successive fetches → Alert / Update / Cancel decisions (pure)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from news.domain.alerts import (
    Alert,
    AlertSource,
    AlertStatus,
    AreaCode,
    Category,
    CodeKind,
    MessageType,
)
from news.domain.imgw import (
    FailedFetch,
    FeedError,
    FeedKind,
    FetchOutcome,
    parse_hydro,
    parse_meteo,
)
from news.domain.lifecycle import (
    AlertCancelled,
    AlertUpdated,
    ImgwScope,
    IngestPlan,
    NewAlert,
    plan_ingest,
)

WARSAW = ZoneInfo("Europe/Warsaw")
IMGW = Path(__file__).parent.parent / "data" / "imgw"
SCOPE = ImgwScope.of("1418", "powiat piaseczyński", ["Z_O_MA_2594", "Z_O_MA_259"])
MORNING = datetime(2025, 7, 8, 7, 30, tzinfo=UTC)  # 09:30 in Warsaw
NOON = datetime(2025, 7, 8, 10, 0, tzinfo=UTC)
AFTERNOON = datetime(2025, 7, 8, 13, 30, tzinfo=UTC)


def meteo(name: str, status: int = 200) -> FetchOutcome:
    return parse_meteo(status, (IMGW / name).read_bytes(), WARSAW)


def hydro(name: str, status: int = 200) -> FetchOutcome:
    return parse_hydro(status, (IMGW / name).read_bytes(), WARSAW)


def fetch_or_fail(kind: FeedKind, name: str, status: int = 200) -> FetchOutcome:
    """What the poller does: a FeedError becomes a failed fetch."""
    try:
        return (meteo if kind is FeedKind.METEO else hydro)(name, status)
    except FeedError as error:
        return FailedFetch(error.kind, error.reason)


def plan(known: Sequence[Alert], outcome: FetchOutcome, now: datetime) -> IngestPlan:
    return plan_ingest(known, outcome, scope=SCOPE, now=now)


def apply(known: Sequence[Alert], result: IngestPlan) -> list[Alert]:
    """The caller's state after applying a plan: the active alerts it now knows."""
    gone = {alert.id for alert in result.expired}
    active = {alert.id: alert for alert in known if alert.id not in gone}
    for decision in result.decisions:
        match decision:
            case NewAlert(alert):
                active[alert.id] = alert
            case AlertUpdated(update, replaced):
                for old in replaced:
                    active.pop(old.id, None)
                active[update.id] = update
            case AlertCancelled(_, cancelled):
                active.pop(cancelled.id, None)
    return list(active.values())


def first_storm() -> Alert:
    result = plan([], meteo("meteo_new.json"), MORNING)
    (decision,) = result.decisions
    assert isinstance(decision, NewAlert)
    return decision.alert


class TestNew:
    def test_a_new_warning_for_our_powiat_is_an_alert(self) -> None:
        alert = first_storm()
        assert alert.source is AlertSource.IMGW_METEO
        assert alert.source_key == "Sk20250708090000001"
        assert alert.message_type is MessageType.ALERT
        assert alert.references == ()
        assert alert.status is AlertStatus.ACTIVE
        assert alert.category is Category.MET
        assert alert.level == 1 and alert.probability == 70
        assert alert.event == "Burze" and alert.event_en == "Thunderstorms"
        assert alert.headline == "Ostrzeżenie meteorologiczne 1. stopnia (żółte): Burze"
        assert alert.headline_en == "Weather warning, level 1 (yellow): Thunderstorms"
        assert alert.onset == datetime(2025, 7, 8, 11, 0, tzinfo=UTC)
        assert alert.expires == datetime(2025, 7, 8, 20, 0, tzinfo=UTC)
        assert alert.sent == MORNING
        assert alert.area_codes == {AreaCode(CodeKind.TERYT, "1418")}
        assert alert.areas[0].description == "powiat piaseczyński"
        assert alert.issuer == "Biuro Prognoz Meteorologicznych w Warszawie"

    def test_same_fetch_twice_yields_the_same_message_id(self) -> None:
        assert first_storm().id == first_storm().id

    def test_other_powiats_only_yield_nothing(self) -> None:
        result = plan([], meteo("meteo_other_powiats.json"), MORNING)
        assert result.decisions == () and result.reliable

    def test_a_record_already_expired_is_not_issued(self) -> None:
        result = plan([], meteo("meteo_new.json"), datetime(2025, 7, 8, 21, 0, tzinfo=UTC))
        assert result.decisions == ()

    def test_meteo_level_minus_one_is_not_a_warning(self) -> None:
        records = json.loads((IMGW / "meteo_new.json").read_bytes())
        records[0]["stopien"] = "-1"
        outcome = parse_meteo(200, json.dumps(records).encode(), WARSAW)
        assert plan([], outcome, MORNING).decisions == ()


class TestDuplicates:
    def test_the_same_warning_fetched_again_is_the_same_alert(self) -> None:
        known = [first_storm()]
        result = plan(known, meteo("meteo_new.json"), NOON)
        assert result.decisions == ()
        assert result.unchanged == tuple(known)

    def test_two_records_with_one_id_in_one_fetch_are_one_alert(self) -> None:
        result = plan([], meteo("meteo_duplicated.json"), MORNING)
        assert len(result.decisions) == 1
        assert result.duplicates == ("Sk20250708090000001",)

    def test_duplicate_keeps_the_latest_publication(self) -> None:
        records = json.loads((IMGW / "meteo_duplicated.json").read_bytes())
        records[2] = dict(records[2], stopien="2", opublikowano="2025-07-08 09:10:00")
        outcome = parse_meteo(200, json.dumps(records).encode(), WARSAW)
        (decision,) = plan([], outcome, MORNING).decisions
        assert isinstance(decision, NewAlert) and decision.alert.level == 2

    def test_a_known_record_changed_in_place_is_an_update(self) -> None:
        known = [first_storm()]
        records = json.loads((IMGW / "meteo_new.json").read_bytes())
        records[0]["obowiazuje_do"] = "2025-07-09 02:00:00"
        outcome = parse_meteo(200, json.dumps(records).encode(), WARSAW)
        (decision,) = plan(known, outcome, NOON).decisions
        assert isinstance(decision, AlertUpdated)
        assert decision.update.expires == datetime(2025, 7, 9, 0, 0, tzinfo=UTC)
        assert decision.update.id != known[0].id
        assert [ref.alert_id for ref in decision.update.references] == [known[0].id]

    def test_an_event_renamed_in_place_is_an_update_with_a_new_id(self) -> None:
        known = [first_storm()]
        records = json.loads((IMGW / "meteo_new.json").read_bytes())
        records[0]["nazwa_zdarzenia"] = "Silny deszcz z burzami"
        outcome = parse_meteo(200, json.dumps(records).encode(), WARSAW)
        (decision,) = plan(known, outcome, NOON).decisions
        assert isinstance(decision, AlertUpdated)
        assert decision.update.id != known[0].id

    def test_a_wording_change_alone_is_not_an_update(self) -> None:
        known = [first_storm()]
        records = json.loads((IMGW / "meteo_new.json").read_bytes())
        records[0]["tresc"] = records[0]["tresc"] + " Poprawka."
        outcome = parse_meteo(200, json.dumps(records).encode(), WARSAW)
        assert plan(known, outcome, NOON).decisions == ()


class TestUpdates:
    def test_raised_level_is_an_update_referencing_the_alert(self) -> None:
        storm = first_storm()
        result = plan([storm], meteo("meteo_raised.json"), NOON)
        (decision,) = result.decisions
        assert isinstance(decision, AlertUpdated)
        update = decision.update
        assert update.message_type is MessageType.UPDATE
        assert update.level == 2 and update.source_key == "Sk20250708110000003"
        assert update.references == (storm.ref,)
        assert update.headline.startswith("Ostrzeżenie meteorologiczne 2. stopnia (pomarańczowe)")
        assert "Podniesienie stopnia ostrzeżenia." in update.description
        assert decision.replaced == (replace(storm, status=AlertStatus.SUPERSEDED),)

    def test_lowered_level_after_raised_references_the_whole_chain(self) -> None:
        storm = first_storm()
        state = apply([storm], plan([storm], meteo("meteo_raised.json"), NOON))
        (raised,) = state
        (decision,) = plan(state, meteo("meteo_lowered.json"), AFTERNOON).decisions
        assert isinstance(decision, AlertUpdated)
        assert decision.update.level == 1
        assert decision.update.references == (storm.ref, raised.ref)
        assert decision.replaced[0].id == raised.id

    def test_another_event_is_a_new_alert_and_the_old_one_is_cancelled(self) -> None:
        storm = first_storm()
        records = json.loads((IMGW / "meteo_raised.json").read_bytes())
        records[0]["nazwa_zdarzenia"] = "Silny wiatr"
        outcome = parse_meteo(200, json.dumps(records).encode(), WARSAW)
        decisions = plan([storm], outcome, NOON).decisions
        assert [type(d) for d in decisions] == [NewAlert, AlertCancelled]

    def test_a_warning_still_in_the_feed_is_not_replaced_by_a_later_one(self) -> None:
        # The afternoon storm warning and an overlapping night one are both published:
        # the old one is still there, so the new one is a separate alert.
        storm = first_storm()
        records = json.loads((IMGW / "meteo_new.json").read_bytes())
        night = dict(
            records[0],
            id="Sk20250708120000009",
            stopien="2",
            obowiazuje_od="2025-07-08 20:00:00",
            obowiazuje_do="2025-07-09 04:00:00",
        )
        outcome = parse_meteo(200, json.dumps([*records, night]).encode(), WARSAW)
        result = plan([storm], outcome, NOON)
        assert [type(d) for d in result.decisions] == [NewAlert]
        assert result.unchanged == (storm,)

    def test_no_overlap_in_time_is_not_an_update(self) -> None:
        storm = first_storm()
        records = json.loads((IMGW / "meteo_raised.json").read_bytes())
        records[0]["obowiazuje_od"] = "2025-07-09 13:00:00"
        records[0]["obowiazuje_do"] = "2025-07-09 22:00:00"
        outcome = parse_meteo(200, json.dumps(records).encode(), WARSAW)
        decisions = plan([storm], outcome, NOON).decisions
        assert [type(d) for d in decisions] == [NewAlert, AlertCancelled]

    def test_one_record_replacing_two_references_both(self) -> None:
        storm = first_storm()
        records = json.loads((IMGW / "meteo_new.json").read_bytes())
        evening = dict(
            records[0],
            id="Sk20250708090000008",
            obowiazuje_od="2025-07-08 20:00:00",
            obowiazuje_do="2025-07-09 02:00:00",
        )
        state = apply(
            [storm],
            plan(
                [storm],
                parse_meteo(200, json.dumps([records[0], evening]).encode(), WARSAW),
                MORNING,
            ),
        )
        assert len(state) == 2
        result = plan(state, meteo("meteo_raised.json"), NOON)
        (decision,) = result.decisions
        assert isinstance(decision, AlertUpdated)
        assert {alert.id for alert in decision.replaced} == {alert.id for alert in state}
        assert len(decision.update.references) == 2


class TestCancelAndExpiry:
    def test_withdrawn_before_expiry_is_a_cancel(self) -> None:
        storm = first_storm()
        result = plan([storm], meteo("meteo_no_products.json", status=404), NOON)
        (decision,) = result.decisions
        assert isinstance(decision, AlertCancelled)
        assert decision.cancel.message_type is MessageType.CANCEL
        assert decision.cancel.references == (storm.ref,)
        assert decision.cancel.sent == NOON
        assert decision.cancel.headline.startswith("Odwołane: ")
        assert decision.cancelled == replace(storm, status=AlertStatus.CANCELLED)

    def test_withdrawn_when_only_other_powiats_remain(self) -> None:
        storm = first_storm()
        (decision,) = plan([storm], meteo("meteo_other_powiats.json"), NOON).decisions
        assert isinstance(decision, AlertCancelled)

    def test_cancel_ids_are_deterministic(self) -> None:
        storm = first_storm()
        once = plan([storm], meteo("meteo_other_powiats.json"), NOON).decisions[0]
        again = plan([storm], meteo("meteo_other_powiats.json"), NOON).decisions[0]
        assert isinstance(once, AlertCancelled) and isinstance(again, AlertCancelled)
        assert once.cancel.id == again.cancel.id

    def test_expired_alerts_drop_out_without_a_cancel(self) -> None:
        storm = first_storm()
        late = datetime(2025, 7, 8, 20, 0, tzinfo=UTC)  # exactly at expiry
        result = plan([storm], meteo("meteo_other_powiats.json"), late)
        assert result.decisions == ()
        assert result.expired == (storm,)

    def test_expired_ones_drop_out_even_on_a_failed_fetch(self) -> None:
        storm = first_storm()
        failed = FailedFetch(FeedKind.METEO, "timeout")
        result = plan([storm], failed, datetime(2025, 7, 9, tzinfo=UTC))
        assert result.expired == (storm,) and result.decisions == ()

    def test_a_not_yet_started_warning_that_disappears_is_cancelled(self) -> None:
        storm = first_storm()
        early = datetime(2025, 7, 8, 8, 0, tzinfo=UTC)  # before the 13:00 onset
        assert isinstance(
            plan([storm], meteo("meteo_other_powiats.json"), early).decisions[0], AlertCancelled
        )


class TestUnreliableFetches:
    @pytest.mark.parametrize(
        ("name", "status"),
        [
            ("meteo_malformed.json", 200),  # malformed JSON
            ("meteo_not_array.json", 200),  # wrong top-level type
            ("meteo_new.json", 503),  # server error
            ("meteo_not_array.json", 404),  # 404 without the documented body
        ],
    )
    def test_a_failed_fetch_cancels_nothing(self, name: str, status: int) -> None:
        storm = first_storm()
        outcome = fetch_or_fail(FeedKind.METEO, name, status)
        assert isinstance(outcome, FailedFetch)
        result = plan([storm], outcome, NOON)
        assert result.decisions == ()
        assert not result.reliable
        assert result.unconfirmed == (storm,)

    def test_timeout_is_a_failed_fetch_the_poller_reports(self) -> None:
        storm = first_storm()
        result = plan([storm], FailedFetch(FeedKind.METEO, "timeout after 10 s"), NOON)
        assert result.decisions == () and result.unconfirmed == (storm,)

    def test_wrong_types_in_a_record_make_the_fetch_unreliable(self) -> None:
        storm = first_storm()
        result = plan([storm], meteo("meteo_wrong_types.json"), NOON)
        assert not result.reliable
        assert result.decisions == ()
        assert result.unconfirmed == (storm,)

    def test_an_incomplete_fetch_still_issues_new_warnings_but_supersedes_nothing(self) -> None:
        storm = first_storm()
        records = json.loads((IMGW / "meteo_raised.json").read_bytes())
        records.append(dict(records[0], id="Sk20250708110000099", stopien="x"))
        outcome = parse_meteo(200, json.dumps(records).encode(), WARSAW)
        result = plan([storm], outcome, NOON)
        (decision,) = result.decisions
        assert isinstance(decision, NewAlert) and decision.alert.level == 2
        assert result.unconfirmed == (storm,)

    def test_a_bad_record_elsewhere_does_not_stop_cancels(self) -> None:
        storm = first_storm()
        result = plan([storm], meteo("meteo_bad_elsewhere.json"), NOON)
        assert result.reliable
        assert isinstance(result.decisions[0], AlertCancelled)

    def test_a_hydro_failure_leaves_meteo_alerts_alone(self) -> None:
        storm = first_storm()
        result = plan([storm], hydro("hydro_other_basins.json"), NOON)
        assert result.decisions == () and result.unconfirmed == ()


class TestHydro:
    def test_with_our_basins_is_an_alert_for_those_basins_only(self) -> None:
        now = datetime(2025, 7, 9, 6, 0, tzinfo=UTC)
        (decision,) = plan([], hydro("hydro_ours.json"), now).decisions
        assert isinstance(decision, NewAlert)
        alert = decision.alert
        assert alert.source is AlertSource.IMGW_HYDRO
        assert alert.category is Category.MET
        assert alert.level == 2
        assert alert.area_codes == {AreaCode(CodeKind.IMGW_BASIN, "Z_O_MA_2594")}
        assert alert.areas[0].description == "mazowieckie, zlewnia Jeziorki"
        assert alert.event_en == "River rise above warning levels"

    def test_without_our_basins_is_nothing(self) -> None:
        now = datetime(2025, 7, 9, 6, 0, tzinfo=UTC)
        assert plan([], hydro("hydro_other_basins.json"), now).decisions == ()

    def test_drought_maps_to_level_one_and_is_open_ended(self) -> None:
        now = datetime(2025, 7, 9, 6, 0, tzinfo=UTC)
        (decision,) = plan([], hydro("hydro_drought_ours.json"), now).decisions
        assert isinstance(decision, NewAlert)
        assert decision.alert.level == 1
        assert decision.alert.expires is None
        assert decision.alert.headline == "Ostrzeżenie hydrologiczne: Susza hydrologiczna"
        assert decision.alert.probability == 95

    def test_open_ended_alert_never_expires_but_can_be_cancelled(self) -> None:
        now = datetime(2025, 7, 9, 6, 0, tzinfo=UTC)
        (decision,) = plan([], hydro("hydro_drought_ours.json"), now).decisions
        assert isinstance(decision, NewAlert)
        later = datetime(2030, 1, 1, tzinfo=UTC)
        assert decision.alert.is_current(later)
        gone = plan([decision.alert], hydro("meteo_no_products.json", status=404), later)
        assert isinstance(gone.decisions[0], AlertCancelled)

    def test_reissued_hydro_warning_is_an_update(self) -> None:
        now = datetime(2025, 7, 9, 6, 0, tzinfo=UTC)
        (decision,) = plan([], hydro("hydro_ours.json"), now).decisions
        assert isinstance(decision, NewAlert)
        records = json.loads((IMGW / "hydro_ours.json").read_bytes())
        records[0] = dict(records[0], opublikowano="2025-07-09 15:00:00", **{"stopień": "3"})
        outcome = parse_hydro(200, json.dumps(records).encode(), WARSAW)
        (update,) = plan([decision.alert], outcome, now + timedelta(hours=8)).decisions
        assert isinstance(update, AlertUpdated)
        assert update.update.level == 3
        assert update.update.references == (decision.alert.ref,)


class TestOrder:
    def test_decisions_follow_publication_then_cancels(self) -> None:
        storm = first_storm()
        records = json.loads((IMGW / "meteo_new.json").read_bytes())
        wind = dict(
            records[0], id="Sk2", nazwa_zdarzenia="Silny wiatr", opublikowano="2025-07-08 11:30:00"
        )
        fog = dict(
            records[0], id="Sk1", nazwa_zdarzenia="Gęsta mgła", opublikowano="2025-07-08 11:00:00"
        )
        outcome = parse_meteo(200, json.dumps([wind, fog]).encode(), WARSAW)
        decisions = plan([storm], outcome, NOON).decisions
        kinds = [
            (type(d).__name__, d.alert.event if isinstance(d, NewAlert) else "") for d in decisions
        ]
        assert kinds == [
            ("NewAlert", "Gęsta mgła"),
            ("NewAlert", "Silny wiatr"),
            ("AlertCancelled", ""),
        ]
