"""Atom feeds: articles and CAP alerts.

No RFC 4287 schema file is kept in this repository (see tests/data/README.md), so each feed
is checked three ways: feedparser must read it as Atom 1.0 without the bozo flag, the RFC
4287 rules that a schema would enforce are asserted one by one (`atom_problems`), and every
embedded CAP message must validate against the OASIS CAP 1.2 schema.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import pytest
from lxml import etree

from news.domain.alerts import (
    Alert,
    AlertStatus,
    ManualAlertDraft,
    cancel_manual_alert,
    issue_manual_alert,
)
from news.domain.articles import (
    Article,
    ArticleDraft,
    create_article,
    withdraw_article,
)
from news.domain.cap import CAP_MEDIA_TYPE, CAP_NAMESPACE, CapSender
from news.domain.feeds import FeedInfo, alerts_feed, articles_feed

ATOM = "http://www.w3.org/2005/Atom"
NS = {"a": ATOM, "cap": CAP_NAMESPACE}
WARSAW = ZoneInfo("Europe/Warsaw")
DATA = Path(__file__).parent.parent / "data"
CAP_SCHEMA = etree.XMLSchema(etree.parse(str(DATA / "CAP-v1.2.xsd")))
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SITE = "https://www.konstancinjeziorna.pl"
ARTICLES = FeedInfo(
    feed_id="tag:konstancinjeziorna.pl,2026:strategia:articles",
    title="Strategia — aktualności",
    self_url=f"{SITE}/feeds/articles.atom",
    site_url=f"{SITE}/aktualnosci",
    author="Gmina Konstancin-Jeziorna",
    author_email="strategia@konstancinjeziorna.pl",
    subtitle="Konsultacje i prace nad strategią rozwoju gminy",
)
ALERTS = replace(
    ARTICLES,
    feed_id="tag:konstancinjeziorna.pl,2026:strategia:alerts",
    title="Ostrzeżenia",
    self_url=f"{SITE}/feeds/alerts.atom",
    site_url=f"{SITE}/ostrzezenia",
)
SENDER = CapSender(
    "strategia@konstancinjeziorna.pl", "Gmina Konstancin-Jeziorna", WARSAW, "1418023"
)
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def atom_problems(document: bytes) -> list[str]:
    """RFC 4287 rules a validator checks, for a feed document (empty list = valid)."""
    problems: list[str] = []
    root = etree.fromstring(document)
    if root.tag != f"{{{ATOM}}}feed":
        return [f"root is {root.tag}"]

    def once(parent: etree._Element, name: str, where: str, *, required: bool = True) -> None:
        count = len(parent.findall(f"a:{name}", NS))
        if count > 1 or (required and count == 0):
            problems.append(f"{where}: {count} atom:{name}")

    def dates(parent: etree._Element, where: str) -> None:
        for name in ("updated", "published"):
            for element in parent.findall(f"a:{name}", NS):
                if not RFC3339.match(element.text or ""):
                    problems.append(f"{where}: {name} {element.text!r} is not RFC 3339")

    def iri(element: etree._Element | None, where: str) -> None:
        if element is not None and not re.match(
            r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$", element.text or ""
        ):
            problems.append(f"{where}: id {element.text!r} is not an absolute IRI")

    def links(parent: etree._Element, where: str) -> None:
        alternates: set[tuple[str | None, str | None]] = set()
        for link in parent.findall("a:link", NS):
            if not link.get("href"):
                problems.append(f"{where}: link without href")
            if link.get("rel", "alternate") == "alternate":
                key = (link.get("type"), link.get("hreflang"))
                if key in alternates:
                    problems.append(f"{where}: two alternate links with type {key[0]}")
                alternates.add(key)

    for name in ("id", "title", "updated"):
        once(root, name, "feed")
    for name in ("subtitle", "rights", "icon", "logo", "generator"):
        once(root, name, "feed", required=False)
    iri(root.find("a:id", NS), "feed")
    dates(root, "feed")
    links(root, "feed")
    if not any(link.get("rel") == "self" for link in root.findall("a:link", NS)):
        problems.append("feed: no rel=self link (RFC 4287 says SHOULD)")
    feed_author = root.find("a:author", NS) is not None
    ids: set[str] = set()
    for position, entry in enumerate(root.findall("a:entry", NS)):
        where = f"entry[{position}]"
        for name in ("id", "title", "updated"):
            once(entry, name, where)
        for name in ("content", "summary", "published", "rights", "source"):
            once(entry, name, where, required=False)
        iri(entry.find("a:id", NS), where)
        dates(entry, where)
        links(entry, where)
        entry_id = entry.findtext("a:id", namespaces=NS) or ""
        if entry_id in ids:
            problems.append(f"{where}: duplicate id {entry_id}")
        ids.add(entry_id)
        if not feed_author and entry.find("a:author", NS) is None:
            problems.append(f"{where}: no author in the entry or the feed")
        for author in entry.findall("a:author", NS) + root.findall("a:author", NS):
            if not author.findtext("a:name", namespaces=NS):
                problems.append(f"{where}: author without a name")
        content = entry.find("a:content", NS)
        if content is None:
            if not any(
                lk.get("rel", "alternate") == "alternate" for lk in entry.findall("a:link", NS)
            ):
                problems.append(f"{where}: neither content nor an alternate link")
            continue
        kind = content.get("type", "text")
        if kind in ("text", "html") and len(content):
            problems.append(f"{where}: {kind} content with child elements")
        elif kind not in ("text", "html", "xhtml") and (
            kind.endswith("+xml") or kind.endswith("/xml")
        ):
            if len(content) != 1:
                problems.append(f"{where}: XML content must hold one element")
        elif kind not in ("text", "html", "xhtml") and "/" not in kind:
            problems.append(f"{where}: content type {kind!r} is not a media type")
    return problems


def assert_valid_atom(document: bytes) -> feedparser.FeedParserDict:
    assert atom_problems(document) == []
    parsed = feedparser.parse(document)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def article(title: str, at: datetime, **changes: object) -> Article:
    created, _ = create_article(
        ArticleDraft(
            title=title,
            lead=f"Lead: {title}",
            body=f"**{title}** <script>x</script>",
            tags=("konsultacje",),
            **changes,
        ),  # type: ignore[arg-type]
        article_id=uuid.uuid5(uuid.NAMESPACE_URL, title),
        now=at,
    )
    return created


def url(item: Article) -> str:
    return f"{SITE}/aktualnosci/{item.slug}"


class TestChecker:
    """The checker itself must catch what a schema would."""

    @pytest.mark.parametrize(
        ("change", "problem"),
        [
            (
                lambda d: d.replace(b"<id>tag:", b"<ix>tag:", 1).replace(
                    b":articles</id>", b":articles</ix>", 1
                ),
                "feed: 0 atom:id",
            ),
            (lambda d: d.replace(b"<updated>2026", b"<updated>26", 1), "is not RFC 3339"),
            (lambda d: d.replace(b'rel="self"', b'rel="related"'), "no rel=self"),
        ],
    )
    def test_rejects_broken_feeds(self, change: object, problem: str) -> None:
        document = articles_feed([article("A", NOW)], ARTICLES, now=NOW, article_url=url)
        broken = change(document)  # type: ignore[operator]
        assert any(problem in found for found in atom_problems(broken))


class TestArticlesFeed:
    def test_published_articles_newest_first(self) -> None:
        older = article("Starszy", NOW - timedelta(days=2))
        newer = article("Nowszy", NOW - timedelta(days=1))
        scheduled = article("Jutro", NOW, publish_at=NOW + timedelta(days=1))
        draft = article("Szkic", NOW, draft=True)
        withdrawn, _ = withdraw_article(article("Wycofany", NOW - timedelta(hours=1)), now=NOW)
        document = articles_feed(
            [older, scheduled, newer, draft, withdrawn], ARTICLES, now=NOW, article_url=url
        )
        parsed = assert_valid_atom(document)
        assert [entry.title for entry in parsed.entries] == ["Nowszy", "Starszy"]
        entry = parsed.entries[0]
        assert entry.id == newer.id.urn
        assert entry.link == url(newer)
        assert entry.summary == "Lead: Nowszy"
        assert entry.tags[0].term == "konsultacje"
        assert "<strong>Nowszy</strong>" in entry.content[0].value
        assert "<script>" not in entry.content[0].value
        assert parsed.feed.title == "Strategia — aktualności"
        assert parsed.feed.language == "pl"

    def test_scheduled_article_appears_once_due(self) -> None:
        scheduled = article("Jutro", NOW, publish_at=NOW + timedelta(days=1))
        later = NOW + timedelta(days=1, minutes=1)
        parsed = assert_valid_atom(articles_feed([scheduled], ARTICLES, now=later, article_url=url))
        assert [entry.title for entry in parsed.entries] == ["Jutro"]
        assert parsed.entries[0].published_parsed[:5] == (2026, 11, 27, 9, 0)

    def test_entry_links_keep_rel_and_type(self) -> None:
        # feedgen 1.0.0 drops them (lkiesow/python-feedgen#135); feeds.py writes them itself.
        document = articles_feed([article("A", NOW)], ARTICLES, now=NOW, article_url=url)
        link = etree.fromstring(document).find("a:entry/a:link", NS)
        assert (link.get("rel"), link.get("type")) == ("alternate", "text/html")

    def test_empty_feed_is_valid_and_updated_is_now(self) -> None:
        document = articles_feed([], ARTICLES, now=NOW, article_url=url)
        parsed = assert_valid_atom(document)
        assert parsed.entries == []
        assert etree.fromstring(document).findtext("a:updated", namespaces=NS) == (
            "2026-11-26T09:00:00+00:00"
        )

    def test_feed_updated_is_the_latest_entry_change(self) -> None:
        document = articles_feed(
            [article("A", NOW - timedelta(days=3))], ARTICLES, now=NOW, article_url=url
        )
        assert etree.fromstring(document).findtext("a:updated", namespaces=NS) == (
            "2026-11-23T09:00:00+00:00"
        )

    def test_output_depends_only_on_the_inputs(self) -> None:
        items = [article("A", NOW), article("B", NOW - timedelta(hours=1))]
        first = articles_feed(items, ARTICLES, now=NOW, article_url=url)
        assert articles_feed(items, ARTICLES, now=NOW, article_url=url) == first

    def test_limit(self) -> None:
        items = [article(f"A{n}", NOW - timedelta(hours=n)) for n in range(5)]
        parsed = assert_valid_atom(
            articles_feed(items, ARTICLES, now=NOW, article_url=url, limit=2)
        )
        assert [entry.title for entry in parsed.entries] == ["A0", "A1"]


def alert(headline: str, *, sent: datetime, hours: int = 6) -> Alert:
    return issue_manual_alert(
        ManualAlertDraft(
            "Burze", 2, headline, "Opis", ("1418023",), sent, sent + timedelta(hours=hours)
        ),
        alert_id=uuid.uuid5(uuid.NAMESPACE_URL, headline),
        now=sent,
    )


class TestAlertsFeed:
    def test_current_alerts_with_embedded_cap_messages(self) -> None:
        older = alert("Starsze", sent=NOW - timedelta(hours=2))
        newer = alert("Nowsze", sent=NOW - timedelta(hours=1))
        expired = alert("Wygasłe", sent=NOW - timedelta(hours=5), hours=1)
        cancelled, cancel = cancel_manual_alert(
            alert("Odwołane", sent=NOW - timedelta(hours=3)), alert_id=uuid.uuid4(), now=NOW
        )
        superseded = replace(alert("Zastąpione", sent=NOW), status=AlertStatus.SUPERSEDED)
        document = alerts_feed(
            [older, expired, cancelled, cancel, superseded, newer],
            ALERTS,
            SENDER,
            now=NOW,
            cap_url=lambda a: f"{SITE}/v1/alerts/{a.id}.cap",
            web_url=lambda a: f"{SITE}/ostrzezenia/{a.id}",
        )
        parsed = assert_valid_atom(document)
        assert [entry.title for entry in parsed.entries] == ["Nowsze", "Starsze"]
        root = etree.fromstring(document)
        for entry in root.findall("a:entry", NS):
            content = entry.find("a:content", NS)
            assert content.get("type") == CAP_MEDIA_TYPE
            (cap,) = content
            assert CAP_SCHEMA.validate(cap), CAP_SCHEMA.error_log
            links = {link.get("rel"): link for link in entry.findall("a:link", NS)}
            assert links["alternate"].get("type") == CAP_MEDIA_TYPE
            assert links["alternate"].get("href").endswith(".cap")
            assert cap.findtext("cap:info/cap:web", namespaces=NS) == links["related"].get("href")

    def test_without_urls_the_content_alone_carries_the_message(self) -> None:
        document = alerts_feed([alert("Jedno", sent=NOW)], ALERTS, SENDER, now=NOW)
        parsed = assert_valid_atom(document)
        assert len(parsed.entries) == 1
        (cap,) = etree.fromstring(document).find("a:entry/a:content", NS)
        assert CAP_SCHEMA.validate(cap), CAP_SCHEMA.error_log

    def test_no_current_alerts_is_a_valid_empty_feed(self) -> None:
        expired = alert("Stare", sent=NOW - timedelta(days=2), hours=1)
        parsed = assert_valid_atom(alerts_feed([expired], ALERTS, SENDER, now=NOW))
        assert parsed.entries == []


def test_control_characters_people_typed_do_not_break_the_articles_feed() -> None:
    # The API refuses only NUL; XML 1.0 cannot hold the other C0 controls.
    typed = article("Zebranie\x01 wiejskie\x1f", NOW, lead_en="Meeting\x0b notice\x08")
    document = articles_feed([typed], ARTICLES, now=NOW, article_url=url)
    parsed = assert_valid_atom(document)
    assert parsed.entries[0].title == "Zebranie wiejskie"
