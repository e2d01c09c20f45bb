"""News, alerts and subscriptions in real Chromium against the real stack.

While the news service is down, its pages say so and what still works (the process is
really stopped for that test and started again).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devtools.testing import ADMIN

from .conftest import Browser, Stack, eventually, text_of

pytestmark = pytest.mark.integration


def test_news_pages_say_so_when_the_news_service_cannot_serve_them(
    stack: Stack, browser: Browser
) -> None:
    stack.news.stop()
    try:
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
    finally:
        stack.news.start()
        stack.news.ready(timeout=180)
    browser.open("/aktualnosci")
    assert browser.heading != "Usługa chwilowo niedostępna"


def test_news_list_article_atom_and_alert_with_cap(stack: Stack, browser: Browser) -> None:
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

    # Only mail sent to a confirmed subscriber carries the manage and unsubscribe links:
    # an alert brings one.
    now = datetime.now(UTC)
    with httpx.Client(base_url=stack.news.url, timeout=30, headers=ADMIN) as news:
        news.post(
            "/v1/alerts",
            json={
                "event": "Silny wiatr",
                "level": 2,
                "headline": "Ostrzeżenie 2. stopnia: silny wiatr",
                "description": "Porywy do 90 km/h.",
                "areas": ["1418"],
                "onset": (now - timedelta(minutes=5)).isoformat(),
                "expires": (now + timedelta(hours=6)).isoformat(),
            },
        ).raise_for_status()

    def link(page: str) -> str | None:
        for message in stack.mail_to("subskrybent@example.com"):
            found = re.search(
                re.escape(stack.web.url) + page + r"\?token=[^\s\"<>]+", text_of(message)
            )
            if found:
                return found.group(0)
        return None

    manage = eventually(lambda: link("/subskrypcje/zarzadzaj"), "a manage link")
    browser.open(manage)
    assert "subskrybent@example.com" in browser.find("main").text
    assert browser.find("#topic-news").is_selected() is False
    browser.check_page("subskrypcje-zarzadzaj")
    browser.tick("topics")  # alerts stay ticked
    browser.find("#topic-news").click()
    browser.fill("min_level", "2")
    browser.submit()
    browser.wait(lambda d: browser.heading == "Zmiany zapisane", "changes saved")
    token = manage.split("token=", 1)[1]
    with httpx.Client(base_url=stack.notifications.url, timeout=30) as notifications:
        current = notifications.post("/v1/subscriptions/manage", json={"token": token}).json()
    assert sorted(current["topics"]) == ["alerts", "news"]
    assert current["min_level"] == 2
    # The same link opens the settings again (it is reusable), now as saved.
    browser.open(manage)
    assert browser.find("#topic-news").is_selected()

    browser.open(eventually(lambda: link("/subskrypcje/wypisz"), "an unsubscribe link"))
    browser.submit()
    browser.wait(lambda d: browser.heading == "Wypisano z powiadomień", "unsubscribed")
    # After unsubscribing, the manage link no longer opens any settings.
    browser.open(manage)
    assert browser.heading == "Link jest nieważny"


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
