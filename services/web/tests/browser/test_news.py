"""News, alerts and subscriptions in real Chromium against the real stack.

The news service's articles and alerts and notifications' subscriptions are being
finished on another branch (issue 8). On a branch whose services do not offer those
endpoints yet, the pages must say that the service is unavailable (checked here, with
axe); the flows that need the endpoints are skipped only when the service's own OpenAPI
document lacks them, saying so.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devtools.testing import ADMIN

from .conftest import Browser, Stack, eventually, text_of

pytestmark = pytest.mark.integration


def offers(stack_url: str, path: str) -> bool:
    document = httpx.get(f"{stack_url}/openapi.json", timeout=30).json()
    return path in document.get("paths", {})


def test_news_pages_say_so_when_the_news_service_cannot_serve_them(
    stack: Stack, browser: Browser
) -> None:
    if offers(stack.news.url, "/v1/articles"):
        pytest.skip("the news service offers articles here: see the test below")
    browser.open("/aktualnosci")
    assert browser.heading == "Usługa chwilowo niedostępna"
    assert "aktualności i ostrzeżenia" in browser.find("main").text
    assert "Co nadal działa" in browser.find("main").text
    browser.check_page("uslugi-niedostepne")
    browser.open("/ostrzezenia")
    assert browser.heading == "Usługa chwilowo niedostępna"
    # The home page still works, and says which part is missing.
    browser.open("/")
    assert "Aktualności są chwilowo niedostępne" in browser.find("main").text
    browser.check_page()


def test_news_list_article_atom_and_alert_with_cap(stack: Stack, browser: Browser) -> None:
    if not offers(stack.news.url, "/v1/articles"):
        pytest.skip(
            "the news service on this branch has no articles/alerts API yet (issue 8, "
            "branch news-service); the pages' 'service unavailable' answer is tested above"
        )
    news = httpx.Client(base_url=stack.news.url, timeout=30, headers=ADMIN)
    article = news.post(
        "/v1/articles",
        json={
            "title": "Konferencja lokalnej grupy działania",
            "lead": "Zapraszamy na konferencję.",
            "body": "## Program\n\nSpotkanie w **sali** urzędu.",
        },
    )
    article.raise_for_status()
    now = datetime.now(UTC)
    alert = news.post(
        "/v1/alerts",
        json={
            "event": "Burze",
            "level": 1,
            "headline": "Ostrzeżenie 1. stopnia: burze",
            "description": "Prognozowane burze z opadami deszczu.",
            "areas": ["1418"],
            "onset": (now - timedelta(minutes=5)).isoformat(),
            "expires": (now + timedelta(hours=6)).isoformat(),
        },
    )
    alert.raise_for_status()
    browser.open("/aktualnosci")
    assert "Konferencja lokalnej grupy działania" in browser.find("main").text
    browser.check_page("aktualnosci")
    browser.click("main article h2 a")
    assert browser.heading == "Konferencja lokalnej grupy działania"
    browser.check_page("artykul")
    feed = httpx.get(f"{stack.web.url}/aktualnosci/kanal.atom", timeout=30)
    assert feed.status_code == 200 and b"<feed" in feed.content
    browser.open("/")
    assert "Ostrzeżenie 1. stopnia: burze" in browser.find(".alerts-banner").text
    browser.check_page()
    browser.open("/ostrzezenia")
    browser.check_page("ostrzezenia")
    cap = browser.find('a[href$=".cap"]').get_attribute("href")
    answer = httpx.get(cap, timeout=30)
    assert answer.status_code == 200 and b"urn:oasis:names:tc:emergency:cap:1.2" in answer.content
    news.close()


def test_a_subscriber_confirms_and_unsubscribes(stack: Stack, browser: Browser) -> None:
    if not offers(stack.notifications.url, "/v1/subscriptions"):
        pytest.skip(
            "notifications on this branch has no subscriptions API yet (issue 8, branch "
            "news-service); the pages are coded against the API that issue specifies"
        )
    browser.open("/subskrypcje")
    browser.check_page("subskrypcje")
    browser.fill("email", "subskrybent@example.com")
    browser.tick("topics")
    browser.submit()
    assert "Sprawdź skrzynkę" in browser.find("main").text
    [mail] = stack.mail_to("subskrybent@example.com")
    found = re.search(
        re.escape(stack.web.url) + r"/subskrypcje/potwierdz\?token=[^\s\"<>]+", text_of(mail)
    )
    assert found
    browser.open(found.group(0))
    browser.check_page("subskrypcje-potwierdz")
    browser.submit()
    browser.wait(lambda d: browser.heading == "Subskrypcja potwierdzona", "confirmed")

    def unsubscribe_link() -> str | None:
        for message in stack.mail_to("subskrybent@example.com"):
            link = re.search(
                re.escape(stack.web.url) + r"/subskrypcje/wypisz\?token=[^\s\"<>]+",
                text_of(message),
            )
            if link:
                return link.group(0)
        return None

    browser.open(eventually(unsubscribe_link, "an unsubscribe link"))
    browser.submit()
    browser.wait(lambda d: browser.heading == "Wypisano z powiadomień", "unsubscribed")


@pytest.mark.parametrize(
    "path",
    [
        "/subskrypcje",
        "/subskrypcje/potwierdz?token=abc",
        "/subskrypcje/zarzadzaj?token=abc",
        "/subskrypcje/wypisz?token=abc",
        "/subskrypcje/wypisz",
        "/konsultacje",
    ],
)
def test_the_other_pages_pass_axe(stack: Stack, browser: Browser, path: str) -> None:
    browser.open(path)
    browser.check_page(None)
