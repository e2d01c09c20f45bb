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


def client(intake: Handler = down, news: Handler = down, groups: Handler = down) -> TestClient:
    def service(name: str, handler: Handler) -> ServiceClient:
        return ServiceClient(name, f"http://{name}", 5, transport=httpx.MockTransport(handler))

    services = Services(
        intake=service("intake", intake),
        groups=service("groups", groups),
        notifications=service("notifications", down),
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
