"""A volunteer in real Chromium against the real stack: signs up, confirms from the
email's link, signs in from the magic link, assesses a submission; the lead finalises;
public results; a clerk enters a paper form and a phone volunteer."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devtools.testing import ADMIN, COORDINATOR, submission_payload
from shared.platform.gmina import load_profile

from .conftest import Browser, Stack, eventually, text_of

pytestmark = pytest.mark.integration


def link_in(stack: Stack, address: str, path: str, count: int = 1) -> str:
    """The newest link to `path` in the emails to `address`, once `count` such links
    arrived."""
    pattern = re.escape(stack.web.url + path) + r"\?token=[^\s\"<>]+"

    def links() -> list[str]:
        found = []
        for message in stack.mail_to(address):
            found.extend(re.findall(pattern, text_of(message)))
        return list(dict.fromkeys(found))

    return str(eventually(lambda: len(links()) >= count and links()[-1], f"{path} link"))


def test_a_volunteer_signs_up_confirms_signs_in_and_assesses(
    stack: Stack, browser: Browser
) -> None:
    consultation = stack.new_consultation()
    cid = consultation["id"]
    groups = httpx.Client(base_url=stack.groups.url, timeout=30)
    intake = httpx.Client(base_url=stack.intake.url, timeout=30)
    intake.post(
        f"/v1/consultations/{cid}/submissions",
        json=submission_payload(title="Żłobek w Gassach"),
        headers={"Idempotency-Key": f"vol-{cid}"},
    ).raise_for_status()

    browser.open(f"/konsultacje/{cid}/wolontariat")
    assert browser.heading == "Dołącz do grupy roboczej"
    browser.check_page("wolontariat")
    browser.fill("name", "Ewa Zielińska")
    browser.fill("email", "ewa.zielinska@example.com")
    browser.fill("locality", "Słomczyn")
    browser.fill("theme_1", "social")
    browser.fill("theme_2", "social")
    browser.tick("consent.processing")
    browser.submit()
    # The same theme twice is refused next to the ranking.
    assert browser.find("#f-themes-error").is_displayed()
    browser.fill("theme_2", "environmental")
    browser.submit()
    browser.wait(lambda d: "Dziękujemy za zgłoszenie" in browser.heading, "sign-up done")
    browser.check_page()

    confirm = link_in(stack, "ewa.zielinska@example.com", "/wolontariat/potwierdz")
    browser.open(confirm)
    assert browser.heading == "Potwierdź udział w grupie roboczej"
    browser.check_page("wolontariat-potwierdzenie")
    browser.submit()
    browser.wait(lambda d: browser.heading == "Udział potwierdzony", "confirmation")
    assert "Grupa społeczna" in browser.find("main").text
    browser.check_page()
    # The link works once.
    browser.open(confirm)
    browser.submit()
    browser.wait(lambda d: browser.heading == "Link jest nieważny", "a spent link")

    # A coordinator appoints her the lead; the submission reaches her group's queue.
    [group] = groups.get(f"/v1/consultations/{cid}/groups").json()
    members = groups.get(f"/v1/groups/{group['id']}/members", headers=COORDINATOR).json()
    [member] = members["members"]
    groups.put(
        f"/v1/groups/{group['id']}/lead",
        json={"volunteer_id": member["volunteer_id"]},
        headers=COORDINATOR,
    ).raise_for_status()
    eventually(
        lambda: groups.get(f"/v1/groups/{group['id']}/submissions", headers=COORDINATOR).json()[
            "total"
        ],
        "the submission routed to the group",
    )

    browser.open("/czlonkowie")
    browser.wait_for_path("/czlonkowie/logowanie")
    browser.check_page("czlonkowie-logowanie")
    browser.fill("email", "ewa.zielinska@example.com")
    browser.submit()
    browser.wait(lambda d: "wysłaliśmy na niego link" in browser.find("main").text, "link sent")
    link = link_in(stack, "ewa.zielinska@example.com", "/czlonkowie/logowanie")
    browser.open(link)
    browser.submit()
    browser.wait_for_path("/czlonkowie")
    assert browser.heading == "Kolejka uwag"
    assert "jesteś liderem" in browser.find("main").text
    browser.check_page("czlonkowie-kolejka")
    browser.fill("assessed_by_me", "false")
    browser.submit("form.filters button")
    browser.click("table a")
    assert "Żłobek w Gassach" in browser.heading
    browser.check_page("czlonkowie-ocena")

    for name, value in (("need", "2"), ("reach", "1"), ("strategy_fit", "2"), ("competence", "2")):
        browser.find(f"#{name}-{value}").click()
    browser.find("#cost_band-medium").click()
    browser.find("#horizon-short").click()
    browser.fill("tags", "żłobek, dzieci")
    browser.click('form[action$="/ocena"] button')
    browser.wait(lambda d: "Ocena zapisana" in browser.find("main").text, "assessment saved")
    assert "1.0" in browser.find("main").text or "ocen: 1" in browser.find("main").text

    # The lead finalises: "out of scope" needs a public reason, shown next to the field.
    browser.fill("state", "out_of_scope")
    browser.click('form[action$="/status"] button')
    assert browser.find("#error-summary").is_displayed()
    browser.check_page()
    browser.fill("state", "out_of_scope")
    browser.fill("reason", "Żłobki prowadzi powiat; przekazaliśmy wniosek.")
    browser.click('form[action$="/status"] button')
    browser.wait(lambda d: "Decyzja zapisana" in browser.find("main").text, "decision saved")
    assert "poza zakresem" in browser.find("main").text

    browser.open("/czlonkowie/trendy")
    assert browser.heading == "Trendy"
    browser.check_page("czlonkowie-trendy")
    browser.open("/czlonkowie/rekomendacje")
    browser.check_page("czlonkowie-rekomendacje")

    browser.open(f"/konsultacje/{cid}/wyniki")
    assert "Grupa społeczna" in browser.find("main").text
    browser.check_page("wyniki")

    # Every email to a volunteer carries the withdrawal link.
    withdraw = link_in(stack, "ewa.zielinska@example.com", "/wolontariat/rezygnacja")
    browser.open(withdraw)
    assert browser.heading == "Rezygnacja z udziału w grupie"
    browser.check_page("wolontariat-rezygnacja")
    browser.submit()
    browser.wait(lambda d: browser.heading == "Rezygnacja przyjęta", "withdrawn")
    members = groups.get(f"/v1/groups/{group['id']}/members", headers=COORDINATOR).json()
    assert members["members"] == []
    groups.close()
    intake.close()


def test_a_clerk_enters_a_paper_form_and_a_phone_volunteer(stack: Stack, browser: Browser) -> None:
    # Opened three days ago: "yesterday" in the gmina's time lies inside the window even
    # when UTC and local time fall on different dates (an evening run at 23:30 UTC failed).
    consultation = stack.new_consultation(
        title="Konsultacje — stanowisko urzędnika",
        opens_at=(datetime.now(UTC) - timedelta(days=3)).isoformat(),
    )
    cid = consultation["id"]
    browser.open("/urzednik")
    browser.wait_for_path("/urzednik/logowanie")
    browser.check_page("urzednik-logowanie")
    browser.fill("token", "zly-token")
    browser.submit()
    assert "Token jest nieprawidłowy" in browser.find("main").text
    from devtools.testing import CLERK_TOKEN

    browser.fill("token", CLERK_TOKEN)
    browser.submit()
    browser.wait(lambda d: browser.heading == "Stanowisko urzędnika", "the desk")
    browser.check_page("urzednik")

    yesterday = (datetime.now(load_profile().zone) - timedelta(days=1)).strftime("%Y-%m-%d")
    form = 'form[action="/urzednik/uwagi"]'
    browser.fill("consultation_id", cid)
    browser.fill("channel", "paper")
    browser.driver.execute_script(
        "document.querySelector(arguments[0]).value = arguments[1]",
        f"{form} [name=received_on]",
        yesterday,
    )
    browser.fill("submitter.kind", "association")
    browser.fill("submitter.organisation", "Stowarzyszenie Przyjaciół Skolimowa")
    browser.fill("submitter.email", "stowarzyszenie@example.com")
    browser.fill("title", "Park w Skolimowie")
    browser.fill("body", "Wniosek złożony na formularzu papierowym.")
    browser.find(f'{form} [name="consent.processing"]').click()
    browser.click(f"{form} button")
    browser.wait_for_path("/potwierdzenie/")
    number = browser.find(".receipt-number").text
    with httpx.Client(base_url=stack.intake.url, timeout=30) as intake:
        [item] = intake.get(f"/v1/consultations/{cid}/submissions", headers=ADMIN).json()["items"]
    assert item["channel"] == "paper"
    assert item["received_on"] == yesterday
    assert item["receipt"]["number"] == number
    stack.mail_to("stowarzyszenie@example.com")

    browser.open("/urzednik")
    form = 'form[action="/urzednik/wolontariusze"]'
    browser.driver.execute_script(
        "document.querySelector(arguments[0]).value = arguments[1]",
        f"{form} [name=consultation_id]",
        cid,
    )
    for name, value in (("name", "Jan Telefoniczny"), ("phone", "501 234 567")):
        browser.find(f"{form} [name={name}]").send_keys(value)
    browser.driver.execute_script(
        "document.querySelector(arguments[0]).value = 'economic'", f"{form} [name=theme_1]"
    )
    browser.find(f"{form} #v-consent").click()
    browser.click(f"{form} button")
    browser.wait(lambda d: "Dziękujemy za zgłoszenie" in browser.heading, "phone volunteer")
    with httpx.Client(base_url=stack.groups.url, timeout=30) as groups:
        [group] = groups.get(f"/v1/consultations/{cid}/groups").json()
        members = groups.get(f"/v1/groups/{group['id']}/members", headers=COORDINATOR).json()
    assert [m["phone"] for m in members["members"]] == ["+48501234567"]
