"""View logic on fakes: the services are httpx MockTransports answering as their APIs do
(real ones in tests/browser). CSRF, headers, error pages, the form's errors, the
Idempotency-Key, the receipt kept in the session, the language switch."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.testclient import TestClient

from web.api import ServiceClient, Services
from web.app import create_app
from web.config import WebSettings
from web.text import remaining

Handler = Callable[[httpx.Request], httpx.Response]
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CONSULTATION = {
    "id": str(uuid.uuid4()),
    "number": 3,
    "title": "Strategia 2040+",
    "description": "Opis",
    "kind": "strategy",
    "opens_at": (NOW - timedelta(days=1)).isoformat(),
    "closes_at": (NOW + timedelta(days=12)).isoformat(),
    "themes": ["social", "environmental", "economic", "spatial"],
    "phase": "open",
}


def down(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


class FakeIntake:
    def __init__(self) -> None:
        self.posts: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/consultations":
            return httpx.Response(200, json=[CONSULTATION])
        if path == f"/v1/consultations/{CONSULTATION['id']}":
            return httpx.Response(200, json=CONSULTATION)
        if path.endswith("/submissions") and request.method == "POST":
            self.posts.append(request)
            return httpx.Response(
                202,
                json={
                    "id": "11111111-1111-1111-1111-111111111111",
                    "consultation_id": CONSULTATION["id"],
                    "receipt": {
                        "number": "K3-00042",
                        "received_at": "2026-11-28T14:04:00Z",
                        "digest": "a" * 64,
                    },
                },
            )
        return httpx.Response(404, json={"error": "not_found", "message": "Not found"})


def client(
    intake: Handler = down,
    news: Handler = down,
    groups: Handler = down,
    notifications: Handler = down,
) -> TestClient:
    def service(name: str, handler: Handler) -> ServiceClient:
        return ServiceClient(name, f"http://{name}", 5, transport=httpx.MockTransport(handler))

    services = Services(
        intake=service("intake", intake),
        groups=service("groups", groups),
        notifications=service("notifications", notifications),
        news=service("news", news),
    )
    settings = WebSettings(web_secret_key="k" * 32, clerk_token="clerk-secret")  # type: ignore[arg-type]
    return TestClient(create_app(settings, services, clock=lambda: NOW))


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def form_page(web: TestClient) -> tuple[str, str]:
    page = web.get(f"/konsultacje/{CONSULTATION['id']}").text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert key
    return csrf_of(page), key.group(1)


def valid_form(csrf: str, key: str, **changes: str) -> dict[str, str]:
    form = {
        "csrf_token": csrf,
        "idempotency_key": key,
        "submitter.kind": "resident",
        "submitter.email": "jan@example.com",
        "title": "Żłobek",
        "body": "Brakuje żłobka.",
        "consent.processing": "yes",
    }
    form.update(changes)
    return form


def test_every_page_carries_a_strict_csp_and_no_caching() -> None:
    response = client(FakeIntake()).get("/")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    cookie = response.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()


def test_a_service_that_is_down_is_named_and_what_still_works_is_listed() -> None:
    web = client()
    home = web.get("/")
    assert home.status_code == 200  # the home page degrades part by part
    assert "chwilowo nie odpowiada" in home.text
    page = web.get(f"/konsultacje/{CONSULTATION['id']}")
    assert page.status_code == 503
    assert "konsultacje i przyjmowanie uwag" in page.text
    assert "Co nadal działa" in page.text
    assert "Traceback" not in page.text


def test_a_post_without_the_session_csrf_token_is_refused() -> None:
    intake = FakeIntake()
    web = client(intake)
    _, key = form_page(web)
    response = web.post(f"/konsultacje/{CONSULTATION['id']}/uwagi", data=valid_form("forged", key))
    assert response.status_code == 403
    assert "Formularz wygasł" in response.text
    assert intake.posts == []


def test_the_form_sends_every_field_with_the_idempotency_key_and_shows_the_receipt() -> None:
    intake = FakeIntake()
    web = client(intake)
    csrf, key = form_page(web)
    form = valid_form(csrf, key, **{"submitter.locality": "Gassy", "theme": "social"})
    first = web.post(f"/konsultacje/{CONSULTATION['id']}/uwagi", data=form, follow_redirects=False)
    again = web.post(f"/konsultacje/{CONSULTATION['id']}/uwagi", data=form, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert [r.headers["Idempotency-Key"] for r in intake.posts] == [key, key]
    # The resident's address goes on, for the services' per-client rate limits.
    assert intake.posts[0].headers["X-Forwarded-For"] == "testclient"
    sent = json.loads(intake.posts[0].content)
    assert sent["submitter"] == {
        "kind": "resident",
        "email": "jan@example.com",
        "locality": "Gassy",
    }
    assert sent["consent"] == {"processing": True, "contact": False}
    assert sent["theme"] == "social" and sent["language"] == "pl"
    receipt = web.get(first.headers["location"])
    assert "K3-00042" in receipt.text
    assert "28.11.2026, 15:04" in receipt.text  # Warsaw time (UTC+1 in November)
    assert "a" * 64 in receipt.text
    # Another browser (no session) cannot see it.
    assert client(FakeIntake()).get(first.headers["location"]).status_code == 404


def test_errors_are_shown_in_polish_next_to_their_fields_and_summarised() -> None:
    intake = FakeIntake()
    web = client(intake)
    csrf, key = form_page(web)
    form = valid_form(csrf, key, **{"submitter.email": "zly-adres", "title": "  "})
    del form["consent.processing"]
    response = web.post(f"/konsultacje/{CONSULTATION['id']}/uwagi", data=form)
    assert response.status_code == 422
    assert intake.posts == []
    html = response.text
    for field in ("submitter-email", "title", "consent-processing"):
        assert f'href="#f-{field}"' in html
        assert f'id="f-{field}-error"' in html
    assert 'aria-invalid="true"' in html
    assert "Podaj poprawny adres e-mail" in html
    assert "Wpisano 15 z 10 000 znaków" in html  # the count, without JavaScript
    assert f'value="{key}"' in html  # the same key: sending again cannot submit twice


def test_language_switch_sets_lang_and_refuses_foreign_redirects() -> None:
    web = client(FakeIntake())
    response = web.get("/jezyk?na=en&wroc=//evil.example/", follow_redirects=False)
    assert response.headers["location"] == "/"
    page = web.get("/deklaracja-dostepnosci")
    assert '<html lang="en">' in page.text
    assert "Accessibility statement" in page.text


def test_clerk_desk_needs_the_clerk_token_once() -> None:
    web = client(FakeIntake())
    assert web.get("/urzednik", follow_redirects=False).headers["location"] == (
        "/urzednik/logowanie"
    )
    csrf = csrf_of(web.get("/urzednik/logowanie").text)
    wrong = web.post("/urzednik/logowanie", data={"csrf_token": csrf, "token": "nie"})
    assert wrong.status_code == 401
    ok = web.post(
        "/urzednik/logowanie",
        data={"csrf_token": csrf, "token": "clerk-secret"},
        follow_redirects=False,
    )
    assert ok.headers["location"] == "/urzednik"
    assert "Stanowisko urzędnika" in web.get("/urzednik").text


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (0, "kończą się dziś"),
        (1, "został 1 dzień"),
        (3, "zostały 3 dni"),
        (12, "zostało 12 dni"),
        (22, "zostały 22 dni"),
    ],
)
def test_remaining_days_in_polish(days: int, expected: str) -> None:
    from zoneinfo import ZoneInfo

    assert remaining(NOW + timedelta(days=days), NOW, ZoneInfo("Europe/Warsaw"), "pl") == expected


def test_unknown_pages_get_a_polish_404() -> None:
    response = client(FakeIntake()).get("/nie-ma")
    assert response.status_code == 404
    assert "Nie znaleziono strony" in response.text


ARTICLE = {
    "id": "22222222-2222-2222-2222-222222222222",
    "slug": "konferencja-lgd-22222222",
    "url": "http://web/aktualnosci/konferencja-lgd-22222222",
    "title": "Konferencja LGD",
    "lead": "Zapraszamy.",
    "body_html": "<h2>Program</h2><p>Sala <strong>urzędu</strong>.</p>",
    "tags": ["lgd"],
    "state": "published",
    "publish_at": None,
    "published_at": "2026-11-28T10:00:00Z",
    "withdrawn_at": None,
    "updated_at": "2026-11-28T10:00:00Z",
    "origin": "manual",
    "consultation_id": None,
    "title_en": None,
    "lead_en": None,
    "body_en_html": None,
}
ALERT = {
    "id": "33333333-3333-3333-3333-333333333333",
    "message_type": "Alert",
    "references": [],
    "status": "Actual",
    "in_force": True,
    "source": "imgw",
    "issuer": "IMGW-PIB",
    "category": "Met",
    "level": 1,
    "severity": "Moderate",
    "probability": 80,
    "event": "Burze",
    "headline": "Burze z gradem",
    "description": "Prognozowane burze.",
    "instruction": None,
    "areas": [
        {"description": "powiat piaseczyński", "codes": [{"kind": "TERYT", "value": "1418"}]}
    ],
    "onset": "2026-11-28T12:00:00Z",
    "expires": "2026-11-28T21:00:00Z",
    "sent": "2026-11-28T11:00:00Z",
    "event_en": None,
    "headline_en": None,
    "description_en": None,
    "instruction_en": None,
    "cap_url": "http://news/v1/alerts/33333333-3333-3333-3333-333333333333.cap",
}


def fake_news(request: httpx.Request) -> httpx.Response:
    """The news API as issue 8 specifies it (shapes from the news-service branch)."""
    path = request.url.path
    if path == "/v1/articles":
        return httpx.Response(200, json={"items": [ARTICLE], "total": 1, "limit": 20, "offset": 0})
    if path == f"/v1/articles/{ARTICLE['id']}":
        return httpx.Response(200, json=ARTICLE)
    if path == "/v1/alerts/active":
        return httpx.Response(200, json=[ALERT])
    if path == f"/v1/alerts/{ALERT['id']}":
        return httpx.Response(200, json=ALERT)
    if path == f"/v1/alerts/{ALERT['id']}.cap":
        return httpx.Response(200, content=b"<alert/>", headers={"content-type": "application/xml"})
    return httpx.Response(404, json={"error": "not_found", "message": "Not found"})


def test_news_alerts_and_cap_pages_render_the_news_api() -> None:
    web = client(FakeIntake(), news=fake_news)
    home = web.get("/").text
    assert "Burze z gradem" in home and "1. stopień (żółty)" in home
    assert "28.11.2026, 13:00 – 28.11.2026, 22:00" in home  # Warsaw time
    assert "Konferencja LGD" in home
    listing = web.get("/aktualnosci").text
    assert 'href="/aktualnosci/konferencja-lgd-22222222"' in listing
    assert 'type="application/atom+xml"' in listing
    page = web.get("/aktualnosci/konferencja-lgd-22222222")
    assert page.status_code == 200 and "<strong>urzędu</strong>" in page.text
    alert = web.get(f"/ostrzezenia/{ALERT['id']}").text
    assert "powiat piaseczyński" in alert and "IMGW-PIB" in alert
    cap = web.get(f"/ostrzezenia/{ALERT['id']}.cap")
    assert cap.headers["content-type"] == "application/cap+xml" and cap.content == b"<alert/>"


def subtopic(label: str, count: int, recent: int) -> dict[str, object]:
    return {
        "label": label,
        "phrases": [label],
        "count": count,
        "share": 0.5,
        "localities": 2,
        "submitter_kinds": 1,
        "over_represented": [],
        "suppressed_tests": 0,
        "momentum": {
            "recent": recent,
            "earlier": count - recent,
            "recent_per_day": 0.1,
            "earlier_per_day": None,
            "ratio": None,
            "direction": "steady",
        },
        "mean_assessment": None,
        "assessed": 0,
        "representative_ids": [],
    }


def fake_groups(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    cid = CONSULTATION["id"]
    if path == f"/v1/consultations/{cid}/groups":
        group = {
            "id": str(uuid.uuid4()),
            "name": "Grupa społeczna",
            "name_en": "Social group",
            "theme": "social",
            "ordinal": 1,
            "member_count": 4,
        }
        return httpx.Response(200, json=[group])
    if path == f"/v1/consultations/{cid}/recommendations":
        return httpx.Response(
            200,
            json=[
                {
                    "id": str(uuid.uuid4()),
                    "title": "Żłobki",
                    "body": "Budować żłobki.",
                    "submissions": [
                        {"receipt_number": "K3-00001", "title": "t", "state": "recommended"}
                    ],
                }
            ],
        )
    if path == f"/v1/consultations/{cid}/trends":
        theme = request.url.params["theme"]
        if theme != "social":
            return httpx.Response(
                200, json={"status": "not_enough", "submissions": 2, "minimum": 10, "report": None}
            )
        report = {
            "subtopics": [subtopic("żłobek dzieci", 7, 5), subtopic("droga chodnik", 4, 1)],
            "sentences_pl": ["Najczęściej: żłobki."],
            "sentences_en": ["Mostly nurseries."],
        }
        return httpx.Response(
            200,
            json={
                "status": "ready",
                "submissions": 11,
                "minimum": 10,
                "snapshot": 1,
                "report": report,
            },
        )
    return httpx.Response(404, json={"error": "not_found", "message": "Not found"})


def test_public_results_draw_trends_as_svg_with_their_data() -> None:
    page = client(FakeIntake(), groups=fake_groups).get(f"/konsultacje/{CONSULTATION['id']}/wyniki")
    assert page.status_code == 200
    html = page.text
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"') == 2
    assert '<title id="t0-sub-t">Liczba uwag według podtematu</title>' in html
    assert "żłobek dzieci: 7" in html  # the description read by screen readers
    assert "<td>żłobek dzieci</td><td>7</td><td>5</td><td>2</td>" in html
    assert "Za mało uwag, by liczyć trendy" in html
    assert "Grupa społeczna" in html and "K3-00001" in html


def test_results_say_so_when_groups_is_down() -> None:
    page = client(FakeIntake()).get(f"/konsultacje/{CONSULTATION['id']}/wyniki")
    assert page.status_code == 200
    assert "Usługa grup roboczych chwilowo nie odpowiada" in page.text


def no_route(request: httpx.Request) -> httpx.Response:
    return httpx.Response(404, json={"error": "not_found", "message": "Not Found"})


def subscriptions(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/v1/subscriptions":
        return httpx.Response(202, json={"message": "ok"})
    if request.url.path == "/v1/subscriptions/confirm":
        token = json.loads(request.content)["token"]
        if token == "good":
            return httpx.Response(200, json={"status": "confirmed"})
        return httpx.Response(422, json={"error": "invalid_token", "message": "Invalid token"})
    return no_route(request)


def test_subscription_pages_spend_the_token_by_post_only() -> None:
    web = client(FakeIntake(), notifications=subscriptions)
    page = web.get("/subskrypcje/potwierdz?token=good")
    assert page.status_code == 200 and 'name="token" value="good"' in page.text
    csrf = csrf_of(page.text)
    ok = web.post("/subskrypcje/potwierdz", data={"csrf_token": csrf, "token": "good"})
    assert "Subskrypcja potwierdzona" in ok.text
    bad = web.post("/subskrypcje/potwierdz", data={"csrf_token": csrf, "token": "bad"})
    assert "Link jest nieważny" in bad.text
    sent = web.post(
        "/subskrypcje",
        data={"csrf_token": csrf, "email": "a@example.com", "topics": ["alerts", "news"]},
    )
    assert "Sprawdź skrzynkę" in sent.text


def test_subscription_pages_say_unavailable_when_notifications_lacks_the_api() -> None:
    web = client(FakeIntake(), notifications=no_route)
    csrf = csrf_of(web.get("/subskrypcje").text)
    answer = web.post("/subskrypcje", data={"csrf_token": csrf, "email": "a@example.com"})
    assert answer.status_code == 503
    assert "powiadomienia e-mail i subskrypcje" in answer.text
    confirm = web.post("/subskrypcje/potwierdz", data={"csrf_token": csrf, "token": "t"})
    assert confirm.status_code == 503
