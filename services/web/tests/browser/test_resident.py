"""A resident in real Chromium against the real stack: home, a consultation, the form with
its errors, the receipt, the email; a double submission makes one; axe on every page."""

from __future__ import annotations

import re

import httpx
import pytest

from devtools.testing import ADMIN

from .conftest import Browser, Stack, text_of

pytestmark = pytest.mark.integration


def submissions_of(stack: Stack, consultation_id: str) -> list[dict[str, object]]:
    with httpx.Client(base_url=stack.intake.url, timeout=30) as client:
        response = client.get(f"/v1/consultations/{consultation_id}/submissions", headers=ADMIN)
        response.raise_for_status()
        items: list[dict[str, object]] = response.json()["items"]
        return items


def test_a_resident_submits_sees_the_receipt_and_gets_the_email(
    stack: Stack, browser: Browser
) -> None:
    consultation = stack.new_consultation(title="Strategia Rozwoju Gminy 2040+")
    stack.new_consultation(
        title="Program rewitalizacji",
        opens_at="2030-01-01T00:00:00+01:00",
        closes_at="2030-03-01T00:00:00+01:00",
    )

    browser.open("/")
    assert "Współtwórz strategię" in browser.heading
    assert browser.find("html").get_attribute("lang") == "pl"
    assert "Strategia Rozwoju Gminy 2040+" in browser.find("main").text
    assert "Wkrótce" in browser.find("main").text
    browser.check_page("strona-glowna")

    browser.click(f'a[href="/konsultacje/{consultation["id"]}"]')
    assert browser.heading == "Strategia Rozwoju Gminy 2040+"
    assert re.search(r"zostało \d+ dni", browser.find("main").text)
    browser.check_page("konsultacja-formularz")

    browser.fill("submitter.kind", "resident")
    browser.fill("submitter.name", "Anna Nowak")
    browser.fill("submitter.email", "anna.nowak@example.com")
    browser.fill("submitter.locality", "Gassy")
    browser.fill("theme", "social")
    browser.fill("title", "Żłobek w Gassach")
    browser.fill("body", "W Gassach brakuje żłobka; proszę o ujęcie go w strategii.")
    # The live count (JavaScript) follows the typing.
    browser.wait(lambda d: "Wpisano 57 z" in browser.find("#f-body-count").text, "the live count")
    browser.tick("consent.processing")
    browser.submit()

    browser.wait_for_path("/potwierdzenie/")
    assert "Uwaga została przyjęta" in browser.heading
    number = browser.find(".receipt-number").text
    assert re.fullmatch(r"K\d+-\d{5}", number)
    digest = browser.find(".digest code").text
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    browser.check_page("potwierdzenie")

    [mail] = stack.mail_to("anna.nowak@example.com")
    body = text_of(mail)
    assert number in body
    assert digest in body
    # Reloading the receipt shows it again and submits nothing.
    browser.driver.refresh()
    assert browser.find(".receipt-number").text == number
    assert len(submissions_of(stack, consultation["id"])) == 1


def test_a_field_error_is_shown_next_to_the_field_and_fixed(stack: Stack, browser: Browser) -> None:
    consultation = stack.new_consultation()
    browser.open(f"/konsultacje/{consultation['id']}")
    browser.fill("submitter.kind", "village_council")
    browser.fill("submitter.organisation", "Rada Sołecka Gassy")
    browser.fill("submitter.email", "to-nie-jest-adres")
    browser.fill("title", "Chodnik przy szkole")
    browser.fill("body", "Prosimy o chodnik wzdłuż drogi do szkoły.")
    browser.submit()

    summary = browser.find("#error-summary")
    assert "Popraw zaznaczone pola" in summary.text
    links = {
        a.get_attribute("href").split("#")[1]: a.text
        for a in summary.find_elements("css selector", "a")
    }
    assert "f-submitter-email" in links and "f-consent-processing" in links
    assert "poprawny adres e-mail" in browser.find("#f-submitter-email-error").text
    assert browser.find("#f-submitter-email").get_attribute("aria-invalid") == "true"
    assert "zgodę na przetwarzanie" in browser.find("#f-consent-processing-error").text
    # What was typed is kept, with its count written out (no JavaScript needed).
    assert browser.find("#f-title").get_attribute("value") == "Chodnik przy szkole"
    assert "Wpisano 41 z 10 000 znaków" in browser.find("#f-body-count").text
    assert browser.driver.title.startswith("Błąd:")
    browser.check_page("formularz-bledy")
    # The summary's link moves the focus to the field.
    summary.find_element("css selector", 'a[href="#f-submitter-email"]').click()
    assert browser.driver.switch_to.active_element.get_attribute("id") == "f-submitter-email"

    browser.fill("submitter.email", "rada.gassy@example.com")
    browser.tick("consent.processing")
    browser.submit()
    browser.wait_for_path("/potwierdzenie/")
    assert len(submissions_of(stack, consultation["id"])) == 1
    stack.mail_to("rada.gassy@example.com")


def test_a_double_submission_makes_one_submission(stack: Stack, browser: Browser) -> None:
    consultation = stack.new_consultation()
    browser.open(f"/konsultacje/{consultation['id']}")
    browser.fill("submitter.kind", "resident")
    browser.fill("title", "Ścieżka rowerowa")
    browser.fill("body", "Ścieżka rowerowa do Mirkowa.")
    browser.tick("consent.processing")
    # Two posts of the same form racing (a double click without JavaScript, or a
    # resubmitted page), then the user's own click: one Idempotency-Key, one submission.
    statuses = browser.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const form = document.querySelector('form.submission-form');"
        "const send = () => fetch(form.action, {method: 'POST', body: new FormData(form),"
        " redirect: 'manual'}).then(r => r.type === 'opaqueredirect' ? 303 : r.status);"
        "Promise.all([send(), send()]).then(done);"
    )
    assert statuses == [303, 303]
    browser.submit()
    browser.wait_for_path("/potwierdzenie/")
    number = browser.find(".receipt-number").text
    items = submissions_of(stack, consultation["id"])
    assert len(items) == 1
    assert items[0]["receipt"]["number"] == number  # type: ignore[index]


def test_pages_work_without_javascript(stack: Stack, browser_without_js: Browser) -> None:
    consultation = stack.new_consultation()
    browser = browser_without_js
    browser.open(f"/konsultacje/{consultation['id']}")
    assert "Najwyżej 10 000 znaków" in browser.find("#f-body-count").text
    browser.fill("submitter.kind", "entrepreneur")
    browser.fill("title", "Strefa przemysłowa")
    browser.fill("body", "Uzbrojenie terenów inwestycyjnych.")
    browser.tick("consent.processing")
    browser.submit()
    browser.wait_for_path("/potwierdzenie/")
    assert re.fullmatch(r"K\d+-\d{5}", browser.find(".receipt-number").text)


def test_english_switch_and_static_pages(stack: Stack, browser: Browser) -> None:
    browser.open("/deklaracja-dostepnosci")
    assert browser.heading == "Deklaracja dostępności"
    browser.check_page("deklaracja-dostepnosci")
    browser.click(".lang-switch")
    browser.wait(lambda d: browser.find("html").get_attribute("lang") == "en", "English")
    assert browser.heading == "Accessibility statement"
    browser.check_page()
    browser.click(".lang-switch")
    browser.wait(lambda d: browser.find("html").get_attribute("lang") == "pl", "Polish")
    browser.open("/nie-ma-takiej-strony")
    assert browser.heading == "Nie znaleziono strony"
    browser.check_page()
