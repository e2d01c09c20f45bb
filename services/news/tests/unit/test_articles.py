"""Articles: states, validation, safe Markdown, tags and slugs, consultation articles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import lxml.html
import pytest

from news.domain.articles import (
    Article,
    ArticleChanges,
    ArticleDraft,
    ArticleOrigin,
    ArticlePublished,
    ArticleState,
    ArticleUpdated,
    ArticleWithdrawn,
    create_article,
    normalise_tags,
    publish_due,
    render_markdown,
    slugify,
    update_article,
    withdraw_article,
)
from news.domain.consultations import (
    ConsultationNotice,
    NoticeKind,
    article_id_for,
    consultation_article,
    days_left,
    end_pl,
    moment_pl,
    notice_from_event,
    polish_plural,
)
from news.domain.errors import InvalidRequest, StateConflict
from shared.contracts.intake import (
    ConsultationAnnounced,
    ConsultationClosed,
    ConsultationKind,
    ConsultationOpened,
    ConsultationWindowChanged,
)

WARSAW = ZoneInfo("Europe/Warsaw")
NOW = datetime(2026, 11, 20, 9, 0, 0, 500, tzinfo=UTC)
ID = uuid.UUID("a1b2c3d4-0000-4000-8000-000000000000")


def executable_parts(html: str) -> list[str]:
    """What a browser could run: script-like elements, on* handlers, non-web URLs."""
    found: list[str] = []
    for root in lxml.html.fragments_fromstring(html):
        if isinstance(root, str):
            continue
        for element in root.iter():
            if element.tag in {"script", "iframe", "style", "object", "embed", "form"}:
                found.append(element.tag)
            for name, value in element.attrib.items():
                if name.lower().startswith("on"):
                    found.append(name)
                if name in {"href", "src"} and not value.startswith(
                    ("http://", "https://", "mailto:")
                ):
                    found.append(f"{name}={value}")
    return found


def draft(**changes: object) -> ArticleDraft:
    fields: dict[str, object] = {
        "title": "Żłobek w Gassach — spotkanie",
        "lead": "Zapraszamy na spotkanie.",
        "body": "Spotkanie w **świetlicy** o 18:00.",
        "tags": ("Konsultacje", "Gassy"),
    }
    fields.update(changes)
    return ArticleDraft(**fields)  # type: ignore[arg-type]


def create(**changes: object) -> tuple[Article, tuple[object, ...]]:
    return create_article(draft(**changes), article_id=ID, now=NOW)


class TestCreate:
    def test_without_publish_at_it_is_published_now(self) -> None:
        article, events = create()
        assert article.state is ArticleState.PUBLISHED
        assert article.published_at == NOW.replace(microsecond=0)
        assert article.slug == "zlobek-w-gassach-spotkanie-a1b2c3d4"
        assert article.tags == ("konsultacje", "gassy")
        assert article.body_html == "<p>Spotkanie w <strong>świetlicy</strong> o 18:00.</p>\n"
        assert events == (
            ArticlePublished(
                ID,
                article.slug,
                article.title,
                article.published_at,
                article.tags,
                ArticleOrigin.MANUAL,
                None,
            ),
        )

    def test_future_publish_at_schedules(self) -> None:
        article, events = create(publish_at=NOW + timedelta(days=1))
        assert article.state is ArticleState.SCHEDULED
        assert events == ()
        assert not article.is_public(NOW)
        assert article.is_public(NOW + timedelta(days=1))  # readers never wait for the job

    def test_past_publish_at_publishes_now_without_backdating(self) -> None:
        article, _ = create(publish_at=NOW - timedelta(days=30))
        assert article.state is ArticleState.PUBLISHED
        assert article.published_at == NOW.replace(microsecond=0)

    def test_draft(self) -> None:
        article, events = create(draft=True)
        assert article.state is ArticleState.DRAFT and events == ()
        assert not article.is_public(NOW + timedelta(days=365))

    @pytest.mark.parametrize(
        ("field", "value", "reason"),
        [
            ("title", "  ", "must not be empty"),
            ("title", "x" * 201, "at most 200 characters"),
            ("lead", "", "must not be empty"),
            ("lead", "x" * 601, "at most 600 characters"),
            ("body", "\n", "must not be empty"),
            ("body", "x" * 50_001, "at most 50000 characters"),
            ("publish_at", datetime(2026, 12, 1, 9, 0), "time zone required"),
            ("tags", ("ok", "nie/ok"), "letters, digits and hyphens only, at most 40 characters"),
        ],
    )
    def test_validation(self, field: str, value: object, reason: str) -> None:
        with pytest.raises(InvalidRequest) as error:
            create(**{field: value})
        (problem,) = error.value.problems
        assert problem.field.startswith(field)
        assert problem.reason == reason

    def test_at_most_ten_tags(self) -> None:
        with pytest.raises(InvalidRequest) as error:
            create(tags=tuple(f"t{n}" for n in range(11)))
        assert error.value.problems[0].field == "tags"


class TestLifecycle:
    def test_scheduler_publishes_when_due(self) -> None:
        due = NOW + timedelta(hours=2)
        article, _ = create(publish_at=due)
        same, events = publish_due(article, now=due - timedelta(seconds=1))
        assert same is article and events == ()
        published, events = publish_due(article, now=due + timedelta(minutes=5))
        assert published.state is ArticleState.PUBLISHED
        assert published.published_at == due.replace(microsecond=0)  # its time, not the job's
        assert isinstance(events[0], ArticlePublished)
        assert publish_due(published, now=due + timedelta(hours=1))[1] == ()

    def test_editing_a_published_article_keeps_its_slug_and_raises_updated(self) -> None:
        article, _ = create()
        later = NOW + timedelta(hours=1)
        edited, events = update_article(article, ArticleChanges(title="Nowy tytuł"), now=later)
        assert edited.title == "Nowy tytuł"
        assert edited.slug == article.slug
        assert edited.updated_at == later.replace(microsecond=0)
        assert events == (ArticleUpdated(ID, article.slug, "Nowy tytuł", edited.updated_at),)

    def test_editing_the_body_renders_it_again(self) -> None:
        article, _ = create()
        edited, _ = update_article(article, ArticleChanges(body="*nowe*"), now=NOW)
        assert edited.body_html == "<p><em>nowe</em></p>\n"

    def test_a_change_that_changes_nothing_raises_nothing(self) -> None:
        article, _ = create()
        same, events = update_article(article, ArticleChanges(title=article.title), now=NOW)
        assert same is article and events == ()

    def test_reschedule_a_scheduled_article(self) -> None:
        article, _ = create(publish_at=NOW + timedelta(days=1))
        moved, events = update_article(
            article, ArticleChanges(publish_at=NOW + timedelta(days=2)), now=NOW
        )
        assert moved.state is ArticleState.SCHEDULED and events == ()
        assert moved.publish_at == (NOW + timedelta(days=2)).replace(microsecond=0)

    def test_publish_a_draft_by_setting_publish_at_in_the_past(self) -> None:
        article, _ = create(draft=True)
        published, events = update_article(article, ArticleChanges(publish_at=NOW), now=NOW)
        assert published.state is ArticleState.PUBLISHED
        assert isinstance(events[0], ArticlePublished)

    def test_publish_at_of_a_published_article_cannot_change(self) -> None:
        article, _ = create()
        with pytest.raises(StateConflict):
            update_article(article, ArticleChanges(publish_at=NOW + timedelta(days=1)), now=NOW)

    def test_unpublish(self) -> None:
        article, _ = create()
        withdrawn, events = withdraw_article(article, now=NOW)
        assert withdrawn.state is ArticleState.WITHDRAWN
        assert not withdrawn.is_public(NOW)
        assert events == (ArticleWithdrawn(ID, article.slug, NOW.replace(microsecond=0)),)
        again, events = withdraw_article(withdrawn, now=NOW)
        assert again is withdrawn and events == ()

    def test_a_scheduled_article_can_be_withdrawn_before_it_appears(self) -> None:
        article, _ = create(publish_at=NOW + timedelta(days=1))
        withdrawn, _ = withdraw_article(article, now=NOW)
        assert not withdrawn.is_public(NOW + timedelta(days=2))

    def test_a_draft_cannot_be_withdrawn_and_a_withdrawn_one_not_edited(self) -> None:
        with pytest.raises(StateConflict):
            withdraw_article(create(draft=True)[0], now=NOW)
        withdrawn, _ = withdraw_article(create()[0], now=NOW)
        with pytest.raises(StateConflict):
            update_article(withdrawn, ArticleChanges(title="x"), now=NOW)


class TestSafeMarkdown:
    @pytest.mark.parametrize(
        "attack",
        [
            "<script>alert(1)</script>",
            '<img src="x" onerror="alert(1)">',
            '<iframe src="https://evil.example"></iframe>',
            "[klik](javascript:alert(1))",
            "[klik](JaVaScRiPt:alert(1))",
            "[klik](vbscript:msgbox(1))",
            "![x](javascript:alert(1))",
            '<a href="javascript:alert(1)">klik</a>',
            '<div onclick="alert(1)">x</div>',
            "<style>body{display:none}</style>",
            "[klik](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        ],
    )
    def test_nothing_executable_survives(self, attack: str) -> None:
        assert executable_parts(render_markdown(f"Tekst {attack} koniec")) == []

    def test_raw_html_is_shown_as_text(self) -> None:
        assert "&lt;b&gt;" in render_markdown("<b>x</b>")

    def test_the_sanitiser_is_a_second_line_of_defence(self) -> None:
        # Even HTML that reached the sanitiser directly loses scripts and handlers.
        import nh3

        from news.domain import articles

        cleaned = nh3.clean(
            '<p onclick="x()">a<script>b</script><a href="javascript:c">d</a></p>',
            tags=set(articles.ALLOWED_TAGS),
            attributes={t: set(a) for t, a in articles.ALLOWED_ATTRIBUTES.items()},
            url_schemes=set(articles.URL_SCHEMES),
        )
        assert executable_parts(cleaned) == []
        assert cleaned.startswith("<p>a<a") and cleaned.endswith(">d</a></p>")

    def test_ordinary_markdown_survives(self) -> None:
        html = render_markdown(
            "## Plan\n\n- punkt\n- [strona](https://www.konstancinjeziorna.pl)\n\n"
            "| a | b |\n|:-|-:|\n| 1 | 2 |\n\n~~stare~~ `kod`"
        )
        assert "<h2>Plan</h2>" in html
        assert (
            '<a href="https://www.konstancinjeziorna.pl" rel="noopener noreferrer nofollow">'
            in html
        )
        assert '<td style="text-align:right">2</td>' in html
        assert "<s>stare</s>" in html and "<code>kod</code>" in html

    def test_only_alignment_styles_pass(self) -> None:
        # markdown-it never writes other styles; the filter keeps it that way.
        from news.domain.articles import _keep_attribute

        assert _keep_attribute("td", "style", "text-align:left") == "text-align:left"
        assert _keep_attribute("td", "style", "background:url(x)") is None


class TestTextRules:
    def test_tags_are_normalised(self) -> None:
        assert normalise_tags([" Konsultacje ", "konsultacje", "Rada  Sołecka", ""]) == (
            "konsultacje",
            "rada-sołecka",
        )

    @pytest.mark.parametrize(
        ("title", "slug"),
        [
            ("Żółć łąki — Łęg!", "zolc-laki-leg"),
            ("Strategia 2040+", "strategia-2040"),
            ("!!!", "artykul"),
        ],
    )
    def test_slugify(self, title: str, slug: str) -> None:
        assert slugify(title) == slug


OPENS = datetime(2026, 11, 26, 0, 0, tzinfo=WARSAW)
CLOSES = datetime(2027, 1, 5, 23, 59, 59, tzinfo=WARSAW)
CONSULTATION = uuid.UUID("c0000000-0000-4000-8000-000000000003")


class TestConsultationArticles:
    def announced(self) -> ConsultationAnnounced:
        return ConsultationAnnounced(
            consultation_id=CONSULTATION,
            title="Strategia Rozwoju Gminy 2040+",
            kind=ConsultationKind.STRATEGY,
            opens_at=OPENS,
            closes_at=CLOSES,
            themes=("social", "environmental", "economic", "spatial"),
        )

    def test_announced(self) -> None:
        notice = notice_from_event(self.announced())
        article, events = consultation_article(notice, now=NOW, zone=WARSAW)
        assert article.title == "Zapowiedź konsultacji: Strategia Rozwoju Gminy 2040+"
        assert article.lead == (
            "Konsultacje „Strategia Rozwoju Gminy 2040+” rozpoczną się 26 listopada 2026 r. "
            "i potrwają do 5 stycznia 2027 r., godz. 23:59 (za 6 dni)."
        )
        assert "- Tematy: społeczne, środowiskowe, gospodarcze, przestrzenne" in (
            article.body_markdown
        )
        assert article.title_en == "Consultation announced: Strategia Rozwoju Gminy 2040+"
        assert article.origin is ArticleOrigin.CONSULTATION
        assert article.consultation_id == CONSULTATION
        assert article.tags == ("konsultacje", "strategia")
        assert article.state is ArticleState.PUBLISHED
        assert isinstance(events[0], ArticlePublished)

    def test_opened_says_how_many_days_are_left(self) -> None:
        event = ConsultationOpened(
            consultation_id=CONSULTATION, title="Strategia 2040+", opens_at=OPENS, closes_at=CLOSES
        )
        opened_at = OPENS.astimezone(UTC)
        article, _ = consultation_article(notice_from_event(event), now=opened_at, zone=WARSAW)
        assert article.title == "Rozpoczęły się konsultacje: Strategia 2040+"
        assert article.lead == (
            "Do 5 stycznia 2027 r., godz. 23:59 można zgłaszać uwagi i propozycje — zostało 40 dni."
        )
        assert article.lead_en == (
            "Comments and proposals are welcome until 5 January 2027, 23:59 — 40 days left."
        )

    def test_closed(self) -> None:
        event = ConsultationClosed(
            consultation_id=CONSULTATION, title="Strategia 2040+", closes_at=CLOSES
        )
        article, _ = consultation_article(notice_from_event(event), now=CLOSES, zone=WARSAW)
        assert article.title == "Zakończyły się konsultacje: Strategia 2040+"
        assert "zakończyły się 5 stycznia 2027 r., godz. 23:59" in article.lead

    def test_window_changed_mentions_the_previous_end(self) -> None:
        event = ConsultationWindowChanged(
            consultation_id=CONSULTATION,
            title="Strategia 2040+",
            opens_at=OPENS,
            closes_at=datetime(2027, 1, 20, 0, 0, tzinfo=WARSAW),
            previous_opens_at=OPENS,
            previous_closes_at=CLOSES,
        )
        now = datetime(2027, 1, 2, 12, 0, tzinfo=WARSAW)
        article, _ = consultation_article(notice_from_event(event), now=now, zone=WARSAW)
        assert article.title == "Zmiana terminu konsultacji: Strategia 2040+"
        assert article.lead == (
            "Nowy termin: od 26 listopada 2026 r. do 19 stycznia 2027 r. (włącznie) "
            "(poprzednio do 5 stycznia 2027 r., godz. 23:59) — zostało 17 dni."
        )

    def test_ids_are_deterministic_per_event(self) -> None:
        notice = notice_from_event(self.announced())
        assert article_id_for(notice) == article_id_for(notice)
        opened = ConsultationNotice(NoticeKind.OPENED, CONSULTATION, "t", OPENS, CLOSES)
        assert article_id_for(opened) != article_id_for(notice)
        first = ConsultationNotice(NoticeKind.WINDOW_CHANGED, CONSULTATION, "t", OPENS, CLOSES)
        second = ConsultationNotice(
            NoticeKind.WINDOW_CHANGED, CONSULTATION, "t", OPENS, CLOSES + timedelta(days=3)
        )
        assert article_id_for(first) != article_id_for(second)

    @pytest.mark.parametrize(
        ("count", "word"),
        [
            (1, "został"),
            (2, "zostały"),
            (4, "zostały"),
            (5, "zostało"),
            (12, "zostało"),
            (14, "zostało"),
            (21, "zostało"),
            (22, "zostały"),
            (112, "zostało"),
            (0, "zostało"),
        ],
    )
    def test_polish_plural(self, count: int, word: str) -> None:
        assert polish_plural(count, "został", "zostały", "zostało") == word

    def test_days_left_counts_calendar_days_in_warsaw(self) -> None:
        closes = datetime(2026, 12, 1, 0, 0, tzinfo=WARSAW)  # end of 30 November
        assert days_left(closes, datetime(2026, 11, 30, 23, 0, tzinfo=WARSAW), WARSAW) == 0
        assert days_left(closes, datetime(2026, 11, 29, 8, 0, tzinfo=WARSAW), WARSAW) == 1
        # 23:30 UTC on 28 Nov is already 29 Nov in Warsaw.
        assert days_left(closes, datetime(2026, 11, 28, 23, 30, tzinfo=UTC), WARSAW) == 1

    def test_dates_in_polish(self) -> None:
        assert moment_pl(datetime(2027, 1, 5, 22, 59, 59, tzinfo=UTC), WARSAW) == (
            "5 stycznia 2027 r., godz. 23:59"
        )
        assert end_pl(datetime(2025, 9, 20, 0, 0, tzinfo=WARSAW), WARSAW) == (
            "19 września 2025 r. (włącznie)"
        )
