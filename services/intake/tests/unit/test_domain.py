"""Unit tests of intake's domain rules (pure, no I/O)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from intake.domain.commands import Submit
from intake.domain.consultation import (
    DEFAULT_THEMES,
    Consultation,
    Phase,
    change_window,
    validate_new_window,
    validate_window,
)
from intake.domain.errors import InvalidRequest, OutsideWindow, WindowConflict
from intake.domain.submission import (
    SubmissionPolicy,
    canonical_form,
    check_content,
    check_kafka_command,
    check_window,
    digest_of,
    receipt_number,
)
from shared.contracts.intake import (
    BODY_MAX,
    Channel,
    ConsentData,
    ConsultationKind,
    SubmissionContent,
    SubmitSubmission,
    SubmitterData,
    SubmitterKind,
)

WARSAW = ZoneInfo("Europe/Warsaw")
OPENS = datetime(2025, 8, 11, 0, 0, tzinfo=WARSAW)
CLOSES = datetime(2025, 9, 20, 0, 0, tzinfo=WARSAW)  # end of 19 September, local time


def consultation(**changes: object) -> Consultation:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "number": 3,
        "title": "Strategia Rozwoju 2040+",
        "description": "Konsultacje projektu strategii",
        "kind": ConsultationKind.STRATEGY,
        "opens_at": OPENS,
        "closes_at": CLOSES,
        "themes": DEFAULT_THEMES,
    }
    fields.update(changes)
    return Consultation(**fields)  # type: ignore[arg-type]


def draft(
    *,
    channel: Channel = Channel.WEB,
    consultation_id: uuid.UUID | None = None,
    **changes: object,
) -> Submit:
    content: dict[str, object] = {
        "submitter": SubmitterData(kind=SubmitterKind.RESIDENT, locality="Gassy"),
        "theme": "social",
        "title": "  Żłobek w Gassach ",
        "body": "Potrzebny jest żłobek.",
        "consent": ConsentData(processing=True),
    }
    content.update(changes)
    return Submit(
        consultation_id=consultation_id or uuid.uuid4(),
        content=SubmissionContent.model_validate(content),
        channel=channel,
    )


class TestWindow:
    def test_strategy_needs_35_days(self) -> None:
        with pytest.raises(InvalidRequest) as error:
            validate_window(
                ConsultationKind.STRATEGY, OPENS, OPENS + timedelta(days=34), zone=WARSAW
            )
        assert error.value.problems[0].field == "closes_at"
        assert "at least 35 days" in error.value.message
        validate_window(ConsultationKind.STRATEGY, OPENS, OPENS + timedelta(days=35), zone=WARSAW)

    def test_general_consultation_may_be_short_but_not_inverted(self) -> None:
        validate_window(ConsultationKind.GENERAL, OPENS, OPENS + timedelta(days=1), zone=WARSAW)
        with pytest.raises(InvalidRequest):
            validate_window(ConsultationKind.GENERAL, OPENS, OPENS, zone=WARSAW)

    def test_phases(self) -> None:
        c = consultation()
        assert c.phase(OPENS - timedelta(seconds=1)) is Phase.UPCOMING
        assert c.phase(OPENS) is Phase.OPEN
        assert c.phase(CLOSES) is Phase.CLOSED

    def test_open_window_may_be_extended(self) -> None:
        c = consultation()
        later = CLOSES + timedelta(days=7)
        changed = change_window(
            c, opens_at=None, closes_at=later, now=OPENS + timedelta(days=1), zone=WARSAW
        )
        assert changed.closes_at == later

    def test_open_window_may_not_be_shortened_or_moved(self) -> None:
        c = consultation()
        now = OPENS + timedelta(days=1)
        with pytest.raises(WindowConflict, match="not shortened"):
            change_window(
                c, opens_at=None, closes_at=CLOSES - timedelta(days=1), now=now, zone=WARSAW
            )
        with pytest.raises(WindowConflict, match="opens_at"):
            change_window(
                c, opens_at=OPENS + timedelta(hours=1), closes_at=None, now=now, zone=WARSAW
            )

    def test_closed_window_is_final(self) -> None:
        with pytest.raises(WindowConflict, match="closed"):
            change_window(
                consultation(),
                opens_at=None,
                closes_at=CLOSES + timedelta(days=1),
                now=CLOSES,
                zone=WARSAW,
            )

    def test_upcoming_window_may_move_but_keeps_35_days(self) -> None:
        c = consultation()
        now = OPENS - timedelta(days=5)
        moved = change_window(
            c, opens_at=OPENS + timedelta(days=2), closes_at=None, now=now, zone=WARSAW
        )
        assert moved.opens_at == OPENS + timedelta(days=2)
        with pytest.raises(InvalidRequest, match="35 days"):
            change_window(
                c, opens_at=None, closes_at=OPENS + timedelta(days=10), now=now, zone=WARSAW
            )


class TestCalendarRules:
    def test_35_days_are_calendar_days_across_the_clock_change(self) -> None:
        # 1 March 00:00 CET to 5 April 00:00 CEST, as the API receives them (fixed
        # offsets): 35 calendar days, but 34 days 23 hours of elapsed time.
        opens = datetime(2026, 3, 1, tzinfo=timezone(timedelta(hours=1)))
        closes = datetime(2026, 4, 5, tzinfo=timezone(timedelta(hours=2)))
        assert closes - opens == timedelta(days=34, hours=23)
        validate_window(ConsultationKind.STRATEGY, opens, closes, zone=WARSAW)
        with pytest.raises(InvalidRequest, match="35 days"):
            validate_window(
                ConsultationKind.STRATEGY, opens, closes - timedelta(minutes=1), zone=WARSAW
            )

    def test_a_new_consultation_cannot_be_over_already(self) -> None:
        now = datetime(2026, 11, 28, 12, tzinfo=UTC)
        with pytest.raises(InvalidRequest, match="already over") as error:
            validate_new_window(
                ConsultationKind.GENERAL,
                now - timedelta(days=10),
                now - timedelta(seconds=1),
                zone=WARSAW,
                now=now,
            )
        assert error.value.problems[0].field == "closes_at"
        validate_new_window(
            ConsultationKind.GENERAL,
            now - timedelta(days=10),
            now + timedelta(1),
            zone=WARSAW,
            now=now,
        )

    def test_an_upcoming_consultation_cannot_move_into_the_past(self) -> None:
        c = consultation(kind=ConsultationKind.GENERAL)
        now = OPENS - timedelta(days=5)
        with pytest.raises(WindowConflict, match="into the past"):
            change_window(
                c,
                opens_at=OPENS - timedelta(days=30),
                closes_at=OPENS - timedelta(days=20),
                now=now,
                zone=WARSAW,
            )


class TestKafkaCommands:
    def command(self, **changes: object) -> SubmitSubmission:
        fields: dict[str, object] = {
            "consultation_id": uuid.uuid4(),
            "submitter": {"kind": "association", "organisation": "Stowarzyszenie"},
            "title": "Ścieżka",
            "body": "Wzdłuż Jeziorki.",
            "consent": {"processing": True},
        }
        fields.update(changes)
        return SubmitSubmission.model_validate(fields)

    def test_a_plain_command_passes(self) -> None:
        check_kafka_command(self.command())

    @pytest.mark.parametrize("channel", ["web", "phone", "paper", "email"])
    def test_a_command_cannot_claim_another_channel(self, channel: str) -> None:
        with pytest.raises(InvalidRequest) as error:
            check_kafka_command(self.command(channel=channel))
        assert [p.field for p in error.value.problems] == ["channel"]

    def test_a_command_cannot_set_its_own_receipt_time(self) -> None:
        with pytest.raises(InvalidRequest) as error:
            check_kafka_command(self.command(received_at="2020-01-01T00:00:00Z"))
        assert [p.field for p in error.value.problems] == ["received_at"]


class TestContent:
    def test_content_types_trim_and_accept(self) -> None:
        checked = draft()
        check_content(checked, consultation())
        assert checked.content.title == "Żłobek w Gassach"

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"consent": ConsentData(processing=False)}, "consent.processing"),
            ({"theme": "tourism"}, "theme"),
            ({"channel": Channel.PAPER}, "received_on"),
            ({"received_on": date(2025, 9, 1)}, "received_on"),
        ],
    )
    def test_names_the_offending_field(self, changes: dict[str, object], field: str) -> None:
        with pytest.raises(InvalidRequest) as error:
            check_content(draft(**changes), consultation())  # type: ignore[arg-type]
        assert [problem.field for problem in error.value.problems] == [field]

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"title": "   "}, "title"),
            ({"title": "\u200b\ufeff \u2060"}, "title"),
            ({"body": ""}, "body"),
            ({"body": "x" * (BODY_MAX + 1)}, "body"),
            ({"title": "x" * 301}, "title"),
            ({"body": "NUL\x00inside"}, "body"),
            ({"title": "lone \ud800 surrogate"}, "title"),
        ],
    )
    def test_content_types_refuse_what_cannot_be_stored(
        self, changes: dict[str, object], field: str
    ) -> None:
        with pytest.raises(ValidationError) as error:
            draft(**changes)
        assert [part["loc"][0] for part in error.value.errors()] == [field]

    def test_body_at_the_limit_is_fine(self) -> None:
        check_content(draft(body="x" * BODY_MAX), consultation())

    def test_theme_is_optional(self) -> None:
        check_content(draft(theme=None), consultation())


class TestSubmissionWindow:
    def test_open_window_accepts(self) -> None:
        check_window(draft(), consultation(), OPENS + timedelta(days=1), WARSAW)

    def test_before_opening_says_when_it_opens(self) -> None:
        with pytest.raises(OutsideWindow, match="opens at 2025-08-11T00:00"):
            check_window(draft(), consultation(), OPENS - timedelta(minutes=1), WARSAW)

    def test_after_closing_says_it_closed(self) -> None:
        with pytest.raises(OutsideWindow, match="closed at 2025-09-20T00:00"):
            check_window(draft(), consultation(), CLOSES, WARSAW)

    def test_paper_received_on_time_counts_when_typed_in_late(self) -> None:
        paper = draft(channel=Channel.PAPER, received_on=date(2025, 9, 19))
        check_window(paper, consultation(), CLOSES + timedelta(days=3), WARSAW)

    def test_paper_received_after_the_last_day_is_late(self) -> None:
        paper = draft(channel=Channel.PAPER, received_on=date(2025, 9, 20))
        with pytest.raises(OutsideWindow, match="closed"):
            check_window(paper, consultation(), CLOSES + timedelta(days=3), WARSAW)

    def test_paper_dated_long_before_it_is_typed_in_is_refused(self) -> None:
        # The form "arrived" on the window's first day but is typed in 20 days later.
        paper = draft(channel=Channel.PAPER, received_on=date(2025, 8, 11))
        typed_in = datetime(2025, 8, 31, 12, tzinfo=UTC)
        with pytest.raises(InvalidRequest, match="too long ago") as error:
            check_window(paper, consultation(), typed_in, WARSAW)
        assert error.value.problems[0].field == "received_on"
        check_window(
            paper, consultation(), typed_in, WARSAW, SubmissionPolicy(paper_max_age_days=20)
        )
        within = draft(channel=Channel.PAPER, received_on=date(2025, 8, 17))
        check_window(within, consultation(), typed_in, WARSAW)  # 14 days: still fine

    def test_paper_from_the_future_is_invalid(self) -> None:
        paper = draft(channel=Channel.PAPER, received_on=date(2025, 9, 2))
        with pytest.raises(InvalidRequest, match="future"):
            check_window(paper, consultation(), datetime(2025, 9, 1, 12, tzinfo=UTC), WARSAW)


class TestReceipt:
    def test_number_is_short_and_ordered(self) -> None:
        assert receipt_number(3, 42) == "K3-00042"
        assert receipt_number(12, 123456) == "K12-123456"

    def test_digest_is_sha256_of_canonical_json(self) -> None:
        d = draft(title="Żłobek", consultation_id=uuid.UUID(int=1))
        received = datetime(2025, 8, 12, 10, 0, tzinfo=UTC)
        form = canonical_form(d.consultation_id, d.content, d.channel, received)
        assert form == {
            "consultation_id": "00000000-0000-0000-0000-000000000001",
            "submitter": {"kind": "resident", "locality": "Gassy"},
            "theme": "social",
            "title": "Żłobek",
            "body": "Potrzebny jest żłobek.",
            "channel": "web",
            "received_at": "2025-08-12T10:00:00Z",
        }
        import hashlib
        import json

        canonical = json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert digest_of(form) == hashlib.sha256(canonical.encode()).hexdigest()
        other = draft(title="Żłobek", consultation_id=uuid.UUID(int=1), body="inna treść")
        other_form = canonical_form(other.consultation_id, other.content, other.channel, received)
        assert digest_of(other_form) != digest_of(form)
