"""Manual alerts: validation, Update and Cancel rules, status over time."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from news.domain.alerts import (
    HEADLINE_MAX,
    Alert,
    AlertSource,
    AlertStatus,
    Category,
    ManualAlertDraft,
    MessageType,
    cancel_manual_alert,
    issue_manual_alert,
    update_manual_alert,
)
from news.domain.errors import InvalidRequest, StateConflict

NOW = datetime(2025, 7, 8, 10, 0, 30, 123456, tzinfo=UTC)
NAMES = {"1418023": "gmina Konstancin-Jeziorna"}


def draft(**changes: object) -> ManualAlertDraft:
    fields: dict[str, object] = {
        "event": "Awaria wodociągu",
        "level": 2,
        "headline": "  Brak wody w Gassach  ",
        "description": "Awaria magistrali; woda beczkowozem przy OSP.",
        "areas": ("1418023",),
        "onset": NOW - timedelta(hours=1),
        "expires": NOW + timedelta(hours=12),
        "instruction": "Zapasy wody pitnej; nie pić wody z kranu.",
        "category": Category.INFRA,
    }
    fields.update(changes)
    return ManualAlertDraft(**fields)  # type: ignore[arg-type]


def issued(**changes: object) -> Alert:
    return issue_manual_alert(draft(**changes), alert_id=uuid.uuid4(), now=NOW, area_names=NAMES)


def problems(error: pytest.ExceptionInfo[InvalidRequest]) -> dict[str, str]:
    return {problem.field: problem.reason for problem in error.value.problems}


class TestIssue:
    def test_a_valid_draft_becomes_an_alert(self) -> None:
        alert = issued()
        assert alert.source is AlertSource.MANUAL and alert.source_key is None
        assert alert.message_type is MessageType.ALERT
        assert alert.status is AlertStatus.ACTIVE
        assert alert.headline == "Brak wody w Gassach"  # trimmed
        assert alert.category is Category.INFRA
        assert alert.areas[0].description == "gmina Konstancin-Jeziorna"
        assert alert.sent == datetime(2025, 7, 8, 10, 0, 30, tzinfo=UTC)  # whole seconds

    def test_times_are_kept_in_utc(self) -> None:
        plus_two = timezone(timedelta(hours=2))
        alert = issued(onset=datetime(2025, 7, 8, 14, 0, tzinfo=plus_two))
        assert alert.onset == datetime(2025, 7, 8, 12, 0, tzinfo=UTC)
        assert alert.onset.tzinfo is UTC

    def test_unnamed_area_falls_back_to_its_code(self) -> None:
        alert = issue_manual_alert(draft(areas=("1418",)), alert_id=uuid.uuid4(), now=NOW)
        assert alert.areas[0].description == "TERYT 1418"

    @pytest.mark.parametrize("level", [0, 4, -1, True])
    def test_level_is_one_to_three(self, level: int) -> None:
        with pytest.raises(InvalidRequest) as error:
            issued(level=level)
        assert problems(error) == {"level": "must be 1, 2 or 3"}

    def test_expires_after_onset(self) -> None:
        with pytest.raises(InvalidRequest) as error:
            issued(expires=NOW - timedelta(hours=1))
        assert problems(error) == {"expires": "must be after onset"}

    def test_expires_in_the_future(self) -> None:
        with pytest.raises(InvalidRequest) as error:
            issued(onset=NOW - timedelta(hours=3), expires=NOW - timedelta(hours=1))
        assert problems(error) == {"expires": "must be in the future"}

    def test_times_need_a_zone(self) -> None:
        with pytest.raises(InvalidRequest) as error:
            issued(onset=datetime(2025, 7, 8, 12, 0))
        assert problems(error) == {"onset": "time zone required"}

    def test_areas_non_empty(self) -> None:
        with pytest.raises(InvalidRequest) as error:
            issued(areas=())
        assert problems(error) == {"areas": "at least one TERYT code is required"}

    @pytest.mark.parametrize("code", ["14", "14180", "141802", "14180234", "14a8", ""])
    def test_areas_are_4_or_7_digit_teryt(self, code: str) -> None:
        with pytest.raises(InvalidRequest) as error:
            issued(areas=("1418", code))
        assert problems(error) == {"areas[1]": "must be a 4- or 7-digit TERYT code"}

    def test_duplicate_areas_are_merged(self) -> None:
        assert len(issued(areas=("1418023", " 1418023")).areas) == 1

    @pytest.mark.parametrize(
        ("field", "value", "reason"),
        [
            ("event", "  ", "must not be empty"),
            ("headline", "", "must not be empty"),
            ("headline", "x" * (HEADLINE_MAX + 1), f"at most {HEADLINE_MAX} characters"),
            ("description", " ", "must not be empty"),
            ("description", "x" * 4001, "at most 4000 characters"),
            ("instruction", "x" * 2001, "at most 2000 characters"),
            ("event", "x" * 101, "at most 100 characters"),
            ("probability", 101, "must be a percentage 0-100"),
        ],
    )
    def test_text_and_number_limits(self, field: str, value: object, reason: str) -> None:
        with pytest.raises(InvalidRequest) as error:
            issued(**{field: value})
        assert problems(error) == {field: reason}

    def test_every_problem_is_reported_at_once(self) -> None:
        with pytest.raises(InvalidRequest) as error:
            issued(event="", level=5, areas=())
        assert set(problems(error)) == {"event", "level", "areas"}
        assert "invalid alert" in error.value.message

    def test_empty_instruction_becomes_none(self) -> None:
        assert issued(instruction="   ").instruction is None


class TestUpdate:
    def test_update_supersedes_and_references(self) -> None:
        first = issued()
        later = NOW + timedelta(minutes=30)
        old, update = update_manual_alert(
            first, draft(level=3), alert_id=uuid.uuid4(), now=later, area_names=NAMES
        )
        assert old == replace(first, status=AlertStatus.SUPERSEDED)
        assert update.message_type is MessageType.UPDATE
        assert update.level == 3
        assert update.references == (first.ref,)
        assert update.id != first.id

    def test_second_update_references_the_whole_chain(self) -> None:
        first = issued()
        _, second = update_manual_alert(first, draft(), alert_id=uuid.uuid4(), now=NOW)
        _, third = update_manual_alert(second, draft(), alert_id=uuid.uuid4(), now=NOW)
        assert third.references == (first.ref, second.ref)

    def test_a_superseded_alert_cannot_be_updated(self) -> None:
        old, _ = update_manual_alert(issued(), draft(), alert_id=uuid.uuid4(), now=NOW)
        with pytest.raises(StateConflict, match="superseded"):
            update_manual_alert(old, draft(), alert_id=uuid.uuid4(), now=NOW)

    def test_an_expired_alert_cannot_be_updated(self) -> None:
        alert = issued()
        with pytest.raises(StateConflict, match="expired"):
            update_manual_alert(alert, draft(), alert_id=uuid.uuid4(), now=NOW + timedelta(days=1))

    def test_an_imgw_alert_cannot_be_updated_by_hand(self) -> None:
        imgw = replace(issued(), source=AlertSource.IMGW_METEO, source_key="Sk1")
        with pytest.raises(StateConflict) as error:
            update_manual_alert(imgw, draft(), alert_id=uuid.uuid4(), now=NOW)
        assert error.value.problems[0].field == "source"

    def test_the_update_is_validated(self) -> None:
        with pytest.raises(InvalidRequest):
            update_manual_alert(issued(), draft(level=9), alert_id=uuid.uuid4(), now=NOW)


class TestCancel:
    def test_cancel_marks_the_alert_and_issues_a_cancel_message(self) -> None:
        alert = issued()
        later = NOW + timedelta(hours=1)
        cancelled, cancel = cancel_manual_alert(
            alert, alert_id=uuid.uuid4(), now=later, note="Awaria usunięta."
        )
        assert cancelled == replace(alert, status=AlertStatus.CANCELLED)
        assert cancel.message_type is MessageType.CANCEL
        assert cancel.references == (alert.ref,)
        assert cancel.sent == later.replace(microsecond=0)
        assert cancel.headline == "Odwołane: Brak wody w Gassach"
        assert cancel.description.endswith("Awaria usunięta.")
        assert not cancel.is_current(later)

    def test_a_cancelled_alert_cannot_be_cancelled_again(self) -> None:
        cancelled, cancel = cancel_manual_alert(issued(), alert_id=uuid.uuid4(), now=NOW)
        with pytest.raises(StateConflict):
            cancel_manual_alert(cancelled, alert_id=uuid.uuid4(), now=NOW)
        with pytest.raises(StateConflict):
            cancel_manual_alert(cancel, alert_id=uuid.uuid4(), now=NOW)

    def test_an_imgw_alert_cannot_be_cancelled_by_hand(self) -> None:
        imgw = replace(issued(), source=AlertSource.IMGW_HYDRO, source_key="7/x/y")
        with pytest.raises(StateConflict):
            cancel_manual_alert(imgw, alert_id=uuid.uuid4(), now=NOW)


class TestInForce:
    def test_expired_ones_drop_out_by_themselves(self) -> None:
        alert = issued()
        assert alert.is_in_force(NOW)
        end = alert.expires
        assert end is not None
        assert alert.is_in_force(end - timedelta(seconds=1))
        assert not alert.is_in_force(end)
        assert alert.status_at(end) is AlertStatus.EXPIRED
        assert alert.status is AlertStatus.ACTIVE  # nothing had to be written

    def test_future_alert_is_current_but_not_yet_in_force(self) -> None:
        alert = issued(onset=NOW + timedelta(hours=2))
        assert alert.is_current(NOW)
        assert not alert.is_in_force(NOW)
        assert alert.is_in_force(NOW + timedelta(hours=2))

    def test_superseded_and_cancelled_are_not_in_force(self) -> None:
        alert = issued()
        assert not replace(alert, status=AlertStatus.SUPERSEDED).is_in_force(NOW)
        assert not replace(alert, status=AlertStatus.CANCELLED).is_in_force(NOW)

    def test_open_ended_never_expires(self) -> None:
        alert = replace(issued(), expires=None)
        assert alert.is_in_force(NOW + timedelta(days=3650))
