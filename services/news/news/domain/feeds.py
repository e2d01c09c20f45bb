"""Atom (RFC 4287) feeds: published articles, and the current alerts as CAP messages.

Built with feedgen, a maintained generator that takes care of the XML, escaping and
required elements. Everything that varies comes from the arguments (`now` included), so a
feed is a pure function of its inputs; feedgen's own "updated = now" default is always
overridden.

Alerts feed: each entry embeds its CAP 1.2 `<alert>` as `<content
type="application/cap+xml">` (Atom allows any XML media type with inline XML content), so
one document validates against both the Atom and the OASIS CAP schemas, and a reader gets
every message without a second request. A link to the standalone CAP document is added
when the caller has a URL for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from feedgen.feed import FeedGenerator

from news.domain.alerts import Alert
from news.domain.articles import Article
from news.domain.cap import CAP_MEDIA_TYPE, CapSender, cap_fragment

ATOM_MEDIA_TYPE = "application/atom+xml"
DEFAULT_LIMIT = 50


# Characters XML 1.0 cannot hold (lxml refuses them): C0 controls but tab and line ends,
# surrogates, U+FFFE/U+FFFF. Text may carry them (the API refuses only NUL), so they
# are dropped from what goes into a feed.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)


@dataclass(frozen=True, slots=True)
class FeedInfo:
    feed_id: str  # permanent IRI, e.g. "tag:konstancinjeziorna.pl,2026:articles"
    title: str
    self_url: str  # where the feed itself is served
    site_url: str  # the HTML page the feed mirrors
    author: str  # the gmina
    author_email: str | None = None
    subtitle: str | None = None
    language: str = "pl"


def articles_feed(
    articles: Iterable[Article],
    info: FeedInfo,
    *,
    now: datetime,
    article_url: Callable[[Article], str],
    limit: int = DEFAULT_LIMIT,
) -> bytes:
    """The published articles, newest first (at most `limit`)."""
    public = sorted(
        (article for article in articles if article.is_public(now)),
        key=lambda article: (article.public_since() or article.created_at, str(article.id)),
        reverse=True,
    )[:limit]
    feed = _feed(info, updated=max((a.updated_at for a in public), default=now))
    for article in public:
        entry = feed.add_entry(order="append")
        entry.id(article.id.urn)
        entry.title(_xml(article.title))
        entry.updated(article.updated_at)
        entry.published(article.public_since() or article.updated_at)
        entry.summary(_xml(article.lead), type="text")
        entry.content(_xml(article.body_html), type="html")
        for tag in article.tags:
            entry.category(term=_xml(tag))
        _links(entry).add(article_url(article), "alternate", "text/html")
    return _serialise(feed)


def alerts_feed(
    alerts: Iterable[Alert],
    info: FeedInfo,
    sender: CapSender,
    *,
    now: datetime,
    cap_url: Callable[[Alert], str] | None = None,
    web_url: Callable[[Alert], str] | None = None,
) -> bytes:
    """The alerts current at `now` (issued, not replaced, not expired), newest first."""
    current = sorted(
        (alert for alert in alerts if alert.is_current(now)),
        key=lambda alert: (alert.sent, str(alert.id)),
        reverse=True,
    )
    feed = _feed(info, updated=max((a.sent for a in current), default=now))
    for alert in current:
        web = web_url(alert) if web_url else None
        entry = feed.add_entry(order="append")
        entry.id(alert.id.urn)
        entry.title(_xml(alert.headline))
        entry.updated(alert.sent)
        entry.published(alert.sent)
        entry.category(term=_xml(alert.event))
        entry.content(cap_fragment(alert, sender, web=web), type=CAP_MEDIA_TYPE)
        if cap_url is not None:
            _links(entry).add(cap_url(alert), "alternate", CAP_MEDIA_TYPE)
        if web is not None:
            _links(entry).add(web, "related", "text/html")
    return _serialise(feed)


def _feed(info: FeedInfo, *, updated: datetime) -> Any:
    feed = FeedGenerator()
    feed.id(info.feed_id)
    feed.title(info.title)
    if info.subtitle:
        feed.subtitle(info.subtitle)
    author = {"name": info.author}
    if info.author_email:
        author["email"] = info.author_email
    feed.author(author)
    feed.link(href=info.self_url, rel="self", type=ATOM_MEDIA_TYPE)
    feed.link(href=info.site_url, rel="alternate", type="text/html")
    feed.language(info.language)
    feed.updated(updated)
    return feed


def _serialise(feed: Any) -> bytes:
    document: bytes = feed.atom_str(pretty=True, encoding="UTF-8", xml_declaration=True)
    return document


class _EntryLinks:
    """Entry links through feedgen's extension hook.

    feedgen 1.0.0 drops `rel` and `type` of entry links (lkiesow/python-feedgen#135), so
    a CAP link would lose its media type; this writes them itself."""

    def __init__(self) -> None:
        self.links: list[dict[str, str]] = []

    def add(self, href: str, rel: str, media_type: str) -> None:
        self.links.append({"href": href, "rel": rel, "type": media_type})

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, entry: Any) -> Any:
        for attributes in self.links:
            link = entry.makeelement("link", attributes)
            entry.append(link)
        return entry


def _links(entry: Any) -> _EntryLinks:
    existing = getattr(entry, "strategia_links", None)
    if isinstance(existing, _EntryLinks):
        return existing
    entry.register_extension("strategia_links", _EntryLinks, atom=True, rss=False)
    links: _EntryLinks = entry.strategia_links
    return links
