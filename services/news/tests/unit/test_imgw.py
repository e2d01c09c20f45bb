"""IMGW feed parsing: formats, times, bad answers, relevance filters (fixtures in tests/data)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from news.domain.imgw import (
    FeedError,
    FeedKind,
    HydroWarning,
    MeteoWarning,
    parse_hydro,
    parse_local_time,
    parse_meteo,
    relevant_hydro,
    relevant_meteo,
)

WARSAW = ZoneInfo("Europe/Warsaw")
IMGW = Path(__file__).parent.parent / "data" / "imgw"
# Illustrative basin codes (Jeziorka, Vistula Pilica–Narew); the gmina confirms real ones.
BASINS = ("Z_O_MA_2594", "Z_O_MA_259")


def body(name: str) -> bytes:
    return (IMGW / name).read_bytes()


class TestLocalTime:
    def test_summer_and_winter_offsets(self) -> None:
        assert parse_local_time("2025-07-08 13:00:00", WARSAW) == datetime(
            2025, 7, 8, 11, 0, tzinfo=UTC
        )
        assert parse_local_time("2025-01-08 13:00:00", WARSAW) == datetime(
            2025, 1, 8, 12, 0, tzinfo=UTC
        )

    def test_result_is_utc(self) -> None:
        moment = parse_local_time("2025-07-08 13:00:00", WARSAW)
        assert moment is not None and moment.tzinfo is UTC

    def test_spring_gap_is_read_with_the_winter_offset(self) -> None:
        # 02:30 does not exist on 30 March 2025; fold=0 reads it as 02:30+01:00.
        assert parse_local_time("2025-03-30 02:30:00", WARSAW) == datetime(
            2025, 3, 30, 1, 30, tzinfo=UTC
        )

    def test_autumn_fold_is_the_first_occurrence(self) -> None:
        # 02:30 happens twice on 26 October 2025; the first one is summer time (+02:00).
        assert parse_local_time("2025-10-26 02:30:00", WARSAW) == datetime(
            2025, 10, 26, 0, 30, tzinfo=UTC
        )

    def test_year_9999_is_open_ended(self) -> None:
        assert parse_local_time("9999-12-31 23:59:59", WARSAW) is None

    @pytest.mark.parametrize(
        "text", ["2025-07-08T13:00:00", "08.07.2025 13:00", "", "2025-13-01 00:00:00"]
    )
    def test_other_shapes_are_rejected(self, text: str) -> None:
        with pytest.raises(ValueError):
            parse_local_time(text, WARSAW)


class TestMeteo:
    def test_reads_every_field_as_typed_values(self) -> None:
        feed = parse_meteo(200, body("meteo_new.json"), WARSAW)
        assert feed.kind is FeedKind.METEO and feed.complete
        storm = feed.warnings[0]
        assert isinstance(storm, MeteoWarning)
        assert storm.id == "Sk20250708090000001"
        assert storm.key == storm.id
        assert storm.event == "Burze"
        assert storm.level == 1
        assert storm.probability == 70
        assert storm.valid_from == datetime(2025, 7, 8, 11, 0, tzinfo=UTC)
        assert storm.valid_to == datetime(2025, 7, 8, 20, 0, tzinfo=UTC)
        assert storm.published == datetime(2025, 7, 8, 7, 0, tzinfo=UTC)
        assert storm.teryt == ("1418", "1412", "1465")
        assert storm.office == "Biuro Prognoz Meteorologicznych w Warszawie"

    def test_404_no_products_is_an_empty_complete_feed(self) -> None:
        feed = parse_meteo(404, body("meteo_no_products.json"), WARSAW)
        assert feed.warnings == () and feed.complete

    def test_no_products_body_with_200_is_empty_too(self) -> None:
        assert parse_meteo(200, body("meteo_no_products.json"), WARSAW).warnings == ()

    def test_empty_array_is_an_empty_complete_feed(self) -> None:
        feed = parse_meteo(200, b"[]", WARSAW)
        assert feed.warnings == () and feed.complete

    def test_404_with_another_body_is_an_error_not_an_empty_feed(self) -> None:
        with pytest.raises(FeedError, match="404"):
            parse_meteo(404, b"<html>Not Found</html>", WARSAW)
        with pytest.raises(FeedError, match="404"):
            parse_meteo(404, b"[]", WARSAW)

    @pytest.mark.parametrize("status", [500, 502, 503, 301, 204])
    def test_other_statuses_are_errors(self, status: int) -> None:
        with pytest.raises(FeedError, match=str(status)):
            parse_meteo(status, body("meteo_new.json"), WARSAW)

    def test_malformed_json(self) -> None:
        with pytest.raises(FeedError, match="malformed JSON") as error:
            parse_meteo(200, body("meteo_malformed.json"), WARSAW)
        assert error.value.kind is FeedKind.METEO

    def test_not_utf8(self) -> None:
        with pytest.raises(FeedError, match="UTF-8"):
            parse_meteo(200, b"\xff\xfe[]", WARSAW)

    def test_top_level_object_is_a_wrong_type(self) -> None:
        with pytest.raises(FeedError, match="expected a JSON array, got an object"):
            parse_meteo(200, body("meteo_not_array.json"), WARSAW)

    @pytest.mark.parametrize("document", ["42", '"text"', "null", "true"])
    def test_top_level_scalars_are_wrong_types(self, document: str) -> None:
        with pytest.raises(FeedError, match="expected a JSON array"):
            parse_meteo(200, document.encode(), WARSAW)

    def test_records_of_wrong_types_are_problems_and_the_rest_is_kept(self) -> None:
        feed = parse_meteo(200, body("meteo_wrong_types.json"), WARSAW)
        assert [warning.key for warning in feed.warnings] == ["Sk20250708090000002"]
        assert not feed.complete
        reasons = {problem.key: problem.reason for problem in feed.problems}
        assert reasons == {
            "Sk20250708120000005": "stopien: expected a string, got a number",
            "Sk20250708120000006": "teryt: expected an array of strings, got a string",
        }

    def test_a_record_that_is_not_an_object(self) -> None:
        feed = parse_meteo(200, b'["Sk1", 3]', WARSAW)
        assert [problem.reason for problem in feed.problems] == [
            "record is a string, not an object",
            "record is a number, not an object",
        ]

    @pytest.mark.parametrize(
        ("field", "value", "reason"),
        [
            ("stopien", "4", "stopien: '4' is not one of -1, 1, 2, 3"),
            ("stopien", "", "stopien: empty"),
            ("prawdopodobienstwo", "120", "prawdopodobienstwo: '120' is not a percentage 0-100"),
            ("obowiazuje_od", "2025-07-08", "obowiazuje_od: '2025-07-08' is not YYYY-MM-DD"),
            ("obowiazuje_do", "2025-07-08 10:00:00", "obowiazuje_do: ends before it starts"),
            ("teryt", ["14"], "teryt: not 4-digit powiat codes: 14"),
            ("teryt", [], "teryt: empty"),
            ("id", None, "id: missing"),
            ("nazwa_zdarzenia", 5, "nazwa_zdarzenia: expected a string, got a number"),
        ],
    )
    def test_field_rules(self, field: str, value: object, reason: str) -> None:
        record = json.loads(body("meteo_new.json"))[0]
        record[field] = value
        feed = parse_meteo(200, json.dumps([record]).encode(), WARSAW)
        assert feed.warnings == ()
        assert feed.problems[0].reason.startswith(reason)

    def test_optional_texts_may_be_missing_or_null(self) -> None:
        record = json.loads(body("meteo_new.json"))[0]
        del record["komentarz"]
        record["tresc"] = None
        record["prawdopodobienstwo"] = ""
        (warning,) = parse_meteo(200, json.dumps([record]).encode(), WARSAW).warnings
        assert isinstance(warning, MeteoWarning)
        assert (warning.comment, warning.text, warning.probability) == ("", "", None)

    def test_relevance_keeps_the_gmina_powiat_only(self) -> None:
        feed = relevant_meteo(parse_meteo(200, body("meteo_new.json"), WARSAW), "1418")
        assert [warning.key for warning in feed.warnings] == ["Sk20250708090000001"]

    def test_other_powiats_only(self) -> None:
        feed = relevant_meteo(parse_meteo(200, body("meteo_other_powiats.json"), WARSAW), "1418")
        assert feed.warnings == () and feed.complete

    def test_a_bad_record_about_other_powiats_does_not_make_our_feed_incomplete(self) -> None:
        raw = parse_meteo(200, body("meteo_bad_elsewhere.json"), WARSAW)
        assert not raw.complete
        assert relevant_meteo(raw, "1418").complete

    def test_a_bad_record_whose_area_is_unreadable_may_concern_us(self) -> None:
        feed = relevant_meteo(parse_meteo(200, body("meteo_wrong_types.json"), WARSAW), "1418")
        assert not feed.complete
        assert len(feed.problems) == 2

    def test_powiat_must_be_four_digits(self) -> None:
        with pytest.raises(ValueError, match="4 digits"):
            relevant_meteo(parse_meteo(200, b"[]", WARSAW), "141802")


class TestHydro:
    def test_new_format_with_diacritic_field_names(self) -> None:
        feed = parse_hydro(200, body("hydro_ours.json"), WARSAW)
        assert feed.kind is FeedKind.HYDRO and feed.complete
        flood, drought = feed.warnings
        assert isinstance(flood, HydroWarning) and isinstance(drought, HydroWarning)
        assert flood.level == 2 and flood.probability == 80
        assert flood.number == "12"
        assert flood.valid_to == datetime(2025, 7, 11, 18, 0, tzinfo=UTC)
        assert flood.area_codes == ("Z_O_MA_2594", "Z_O_LD_254")
        assert flood.areas[0].description == "mazowieckie, zlewnia Jeziorki"
        # `prawdopodobieństwo` (with the diacritic) is read too; 9999 = open-ended.
        assert drought.level == -1 and drought.probability == 95
        assert drought.valid_to is None

    def test_key_is_number_publication_and_office(self) -> None:
        flood = parse_hydro(200, body("hydro_ours.json"), WARSAW).warnings[0]
        assert flood.key.startswith("12/20250709T053000Z/")
        same = parse_hydro(200, body("hydro_ours.json"), WARSAW).warnings[0]
        assert same.key == flood.key

    def test_old_flat_format(self) -> None:
        (warning,) = parse_hydro(200, body("hydro_old_format.json"), WARSAW).warnings
        assert isinstance(warning, HydroWarning)
        assert warning.level == 1 and warning.probability == 70
        assert warning.areas[0].voivodeship == "mazowieckie"
        assert warning.areas[0].description == "zlewnia Jeziorki"
        assert warning.area_codes == ()

    def test_with_the_gmina_basins(self) -> None:
        feed = relevant_hydro(parse_hydro(200, body("hydro_ours.json"), WARSAW), BASINS)
        assert [warning.event for warning in feed.warnings] == [
            "Wezbranie z przekroczeniem stanów ostrzegawczych"
        ]

    def test_without_the_gmina_basins(self) -> None:
        feed = relevant_hydro(parse_hydro(200, body("hydro_other_basins.json"), WARSAW), BASINS)
        assert feed.warnings == () and feed.complete

    def test_basin_codes_compare_case_insensitively(self) -> None:
        feed = relevant_hydro(parse_hydro(200, body("hydro_ours.json"), WARSAW), [" z_o_ma_2594 "])
        assert len(feed.warnings) == 1

    def test_old_format_has_no_codes_so_never_matches(self) -> None:
        feed = relevant_hydro(parse_hydro(200, body("hydro_old_format.json"), WARSAW), BASINS)
        assert feed.warnings == ()

    def test_no_products(self) -> None:
        assert parse_hydro(404, body("meteo_no_products.json"), WARSAW).warnings == ()

    def test_wrong_area_shape_is_a_problem(self) -> None:
        record = json.loads(body("hydro_ours.json"))[0]
        record["obszary"] = [
            {"wojewodztwo": "mazowieckie", "opis": "x", "kod_zlewni": "Z_O_MA_2594"}
        ]
        feed = parse_hydro(200, json.dumps([record]).encode(), WARSAW)
        assert feed.problems[0].reason.startswith("kod_zlewni: expected an array of strings")
        assert feed.problems[0].key == "12"

    def test_missing_level_in_both_spellings(self) -> None:
        record = json.loads(body("hydro_ours.json"))[0]
        del record["stopień"]
        feed = parse_hydro(200, json.dumps([record]).encode(), WARSAW)
        assert feed.problems[0].reason == "stopień: missing"
