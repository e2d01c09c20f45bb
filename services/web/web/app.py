"""The web front: server-rendered pages over the services' public HTTP APIs.

No database, no Kafka, no JavaScript build. Sessions are Starlette's signed cookie
(itsdangerous); every form carries a CSRF token kept in that session; every answer carries
a strict Content-Security-Policy. The services' failures become Polish pages (see
`api.py`): `ServiceDown` -> 503 naming the service and what still works, a 404 -> a
not-found page, anything unexpected -> a plain apology, never a stack trace.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from email_validator import EmailNotValidError, validate_email
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.contracts.links import Page
from web import text
from web.api import CLIENT_ADDRESS, ApiError, ServiceClient, ServiceDown, Services
from web.charts import bar_chart
from web.config import WebSettings

log = logging.getLogger("web")
HERE = Path(__file__).parent
SESSION_COOKIE = "strategia_session"
TOPICS = ("alerts", "news", "consultations")
QUEUE_FILTERS = ("state", "assessed_by_me", "flag", "tag")
MAX_RECEIPTS = 5
SERVICE_NAMES: dict[str, tuple[str, str]] = {
    "intake": ("konsultacje i przyjmowanie uwag", "consultations and submissions"),
    "groups": ("grupy robocze i wolontariat", "working groups and volunteering"),
    "notifications": ("powiadomienia e-mail i subskrypcje", "email notifications"),
    "news": ("aktualności i ostrzeżenia", "news and alerts"),
}

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)


class CsrfFailed(Exception):
    pass


class NotSignedIn(Exception):
    pass


class NotClerk(Exception):
    pass


class SecurityHeaders:
    """Headers on every answer: CSP, no sniffing, no framing, no referrer (links carry
    tokens), no caching of pages (they may show personal data); HSTS behind TLS."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")
        client = scope.get("client")
        CLIENT_ADDRESS.set(client[0] if client else None)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                extra = {
                    b"content-security-policy": CSP.encode(),
                    b"x-content-type-options": b"nosniff",
                    b"x-frame-options": b"DENY",
                    b"referrer-policy": b"no-referrer",
                    b"permissions-policy": b"camera=(), microphone=(), geolocation=()",
                    b"cross-origin-opener-policy": b"same-origin",
                }
                if not static:
                    extra[b"cache-control"] = b"no-store"
                if self.hsts:
                    extra[b"strict-transport-security"] = b"max-age=31536000"
                present = {name.lower() for name, _ in headers}
                headers.extend((k, v) for k, v in extra.items() if k not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build_services(settings: WebSettings) -> Services:
    timeout = settings.api_timeout_seconds
    return Services(
        intake=ServiceClient("intake", settings.intake_url, timeout),
        groups=ServiceClient("groups", settings.groups_url, timeout),
        notifications=ServiceClient("notifications", settings.notifications_url, timeout),
        news=ServiceClient("news", settings.news_url, timeout),
    )


def route_missing(exc: ApiError) -> bool:
    """A 404 for the address itself (the service does not offer this endpoint, e.g. an
    older version), not for a thing it looked up: the part is unavailable."""
    return exc.status == 404 and exc.message in ("", "Not Found")


def valid_email(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _str(form: FormData | Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _opt(form: FormData | Mapping[str, Any], name: str) -> str | None:
    value = _str(form, name).strip()
    return value or None


def create_app(
    settings: WebSettings | None = None,
    services: Services | None = None,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FastAPI:
    settings = settings or WebSettings()
    profile = settings.gmina()
    zone = profile.zone
    api = services or build_services(settings)
    secret = (
        settings.web_secret_key.get_secret_value()
        if settings.web_secret_key
        else secrets.token_urlsafe(32)
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        yield
        await api.aclose()

    app = FastAPI(
        title="Strategia web",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=SESSION_COOKIE,
        max_age=12 * 3600,
        same_site="lax",
        https_only=settings.web_secure_cookies,
    )
    app.add_middleware(SecurityHeaders, hsts=settings.web_secure_cookies)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    env.globals["kinds"] = lambda lang: [
        (key, text.label(text.SUBMITTER_KINDS, key, lang)) for key in text.SUBMITTER_KINDS
    ]
    env.globals["options"] = lambda table, lang: [
        (str(key), text.label(getattr(text, table), key, lang)) for key in getattr(text, table)
    ]
    env.globals["localities_options"] = lambda names: [(name, name) for name in names]
    env.globals["themes_options"] = lambda themes, lang: [
        (theme, text.label(text.THEMES, theme, lang)) for theme in themes
    ]

    # --- helpers ---------------------------------------------------------------------

    def lang_of(request: Request) -> str:
        return "en" if request.session.get("lang") == "en" else "pl"

    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not isinstance(token, str):
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return token

    async def checked_form(request: Request) -> FormData:
        form = await request.form()
        expected = request.session.get("csrf")
        sent = form.get("csrf_token")
        if (
            not isinstance(expected, str)
            or not isinstance(sent, str)
            or not secrets.compare_digest(expected.encode(), sent.encode())
        ):
            raise CsrfFailed
        return form

    def render(
        request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        lang = lang_of(request)

        def tr(pl: str, en: str) -> str:
            return en if lang == "en" else pl

        def lbl(table: str, key: object) -> str:
            return text.label(getattr(text, table), key, lang)

        def when(value: Any) -> str:
            return text.local_time(value, zone) if value else ""

        def day(value: Any) -> str:
            return text.local_day(value, zone) if value else ""

        flash = request.session.pop("flash", None)
        path = request.url.path
        query = request.url.query
        here = path + (f"?{query}" if query else "")
        page = env.get_template(template).render(
            request=request,
            lang=lang,
            other_lang="pl" if lang == "en" else "en",
            _=tr,
            lbl=lbl,
            when=when,
            day=day,
            csrf_token=csrf_token(request),
            gmina=profile,
            flash=flash,
            lang_switch="/jezyk?" + urlencode({"na": "pl" if lang == "en" else "en", "wroc": here}),
            member=request.session.get("member"),
            clerk=bool(request.session.get("clerk")),
            path=path,
            text=text,
            **context,
        )
        return HTMLResponse(page, status_code=status_code)

    def redirect(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    def flash(request: Request, message: str) -> None:
        request.session["flash"] = message

    async def attempt(call: Awaitable[Any]) -> tuple[Any, str | None]:
        """Run a call whose failure only hides one part of a page: (result, down service)."""
        try:
            return await call, None
        except ServiceDown as exc:
            return None, exc.service
        except ApiError as exc:
            if exc.status == 404:
                # An endpoint the service does not offer (yet): that part is unavailable.
                return None, exc.service
            raise

    def member_of(request: Request) -> dict[str, Any] | None:
        member = request.session.get("member")
        if not isinstance(member, dict):
            return None
        expires = member.get("expires_at")
        if isinstance(expires, str) and text.parse_time(expires) <= clock():
            request.session.pop("member", None)
            return None
        return member

    def clerk_token() -> str:
        return settings.clerk_token.get_secret_value() if settings.clerk_token else ""

    def field_errors(exc: ApiError, lang: str) -> dict[str, str]:
        return {name: text.field_message(name, lang) for name in exc.fields()}

    # --- errors ----------------------------------------------------------------------

    @app.exception_handler(ServiceDown)
    async def service_down(request: Request, exc: ServiceDown) -> HTMLResponse:
        log.warning("service %s unavailable for %s", exc.service, request.url.path)
        return render(
            request,
            "error_down.html",
            503,
            service=exc.service,
            service_name=SERVICE_NAMES.get(exc.service, (exc.service, exc.service)),
        )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        log.info("api error %s on %s", exc, request.url.path)
        if exc.status == 401 and request.url.path.startswith("/czlonkowie"):
            # The member's session ended at groups (expired, or the member withdrew).
            request.session.pop("member", None)
            return redirect(Page.MEMBER_SIGN_IN.value)
        status = exc.status if exc.status in (403, 404, 409) else 400
        return render(request, "error.html", status, error=exc)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> HTMLResponse:
        return render(request, "error_csrf.html", 403)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return render(request, "error_404.html", 404)
        return render(
            request,
            "error.html",
            exc.status_code,
            error=ApiError("web", exc.status_code, "", str(exc.detail)),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> HTMLResponse:
        log.exception("unexpected error on %s", request.url.path)
        return render(request, "error_500.html", 500)

    # --- health and language -----------------------------------------------------------

    @app.get("/health/live")
    async def live() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/health/ready")
    async def ready() -> JSONResponse:
        # No state of its own: ready once it answers; each page says which service is down.
        return JSONResponse({"status": "ready"})

    @app.get("/jezyk")
    async def switch_language(request: Request, na: str = "pl", wroc: str = "/") -> Response:
        request.session["lang"] = "en" if na == "en" else "pl"
        return redirect(_safe_next(wroc))

    # --- home and consultations --------------------------------------------------------

    def annotate(consultation: dict[str, Any], lang: str) -> dict[str, Any]:
        return {
            **consultation,
            "remaining": text.remaining(consultation["closes_at"], clock(), zone, lang),
        }

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> HTMLResponse:
        lang = lang_of(request)
        consultations, intake_down = await attempt(api.intake.get("/v1/consultations"))
        alerts, news_down = await attempt(api.news.get("/v1/alerts/active"))
        articles, _ = (
            await attempt(api.news.get("/v1/articles", params={"limit": 3}))
            if not news_down
            else (None, news_down)
        )
        found = [annotate(c, lang) for c in consultations or []]
        return render(
            request,
            "home.html",
            open_consultations=[c for c in found if c["phase"] == "open"],
            upcoming=[c for c in found if c["phase"] == "upcoming"],
            intake_down=intake_down,
            news_down=news_down,
            alerts=alerts or [],
            articles=(articles or {}).get("items", []),
        )

    @app.get("/konsultacje", response_class=HTMLResponse)
    async def consultations(request: Request) -> HTMLResponse:
        lang = lang_of(request)
        found = await api.intake.get("/v1/consultations", params={"limit": 200})
        return render(
            request, "consultations.html", consultations=[annotate(c, lang) for c in found]
        )

    async def consultation_or_404(consultation_id: str) -> dict[str, Any]:
        if not _is_uuid(consultation_id):
            raise StarletteHTTPException(404)
        found: dict[str, Any] = await api.intake.get(f"/v1/consultations/{consultation_id}")
        return found

    def submission_form_context(
        consultation: dict[str, Any],
        values: Mapping[str, Any] | None = None,
        errors: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return {
            "consultation": consultation,
            "values": dict(values or {}),
            "errors": errors or {},
            "idempotency_key": _str(values or {}, "idempotency_key") or str(uuid.uuid4()),
            "localities": profile.localities.villages,
        }

    @app.get("/konsultacje/{consultation_id}", response_class=HTMLResponse)
    async def consultation_page(request: Request, consultation_id: str) -> HTMLResponse:
        consultation = annotate(await consultation_or_404(consultation_id), lang_of(request))
        return render(request, "consultation.html", **submission_form_context(consultation))

    def submission_body(form: FormData, lang: str) -> dict[str, Any]:
        submitter: dict[str, Any] = {"kind": _opt(form, "submitter.kind")}
        for name in ("name", "organisation", "email", "phone", "locality"):
            value = _opt(form, f"submitter.{name}")
            if value is not None:
                submitter[name] = value
        body: dict[str, Any] = {
            "submitter": submitter,
            "title": _str(form, "title"),
            "body": _str(form, "body"),
            "consent": {
                "processing": form.get("consent.processing") == "yes",
                "contact": form.get("consent.contact") == "yes",
            },
            "language": lang,
        }
        theme = _opt(form, "theme")
        if theme is not None:
            body["theme"] = theme
        return body

    def precheck_submission(body: dict[str, Any], lang: str) -> dict[str, str]:
        """Every rule the page can check itself, so all errors show at once (the service
        checks them again, and the rest)."""
        problems = []
        if not body["submitter"].get("kind"):
            problems.append("submitter.kind")
        email = body["submitter"].get("email")
        if email and not valid_email(email):
            problems.append("submitter.email")
        if not body["title"].strip() or len(body["title"].strip()) > 300:
            problems.append("title")
        if not body["body"].strip() or len(body["body"].strip()) > 10_000:
            problems.append("body")
        if not body["consent"]["processing"]:
            problems.append("consent.processing")
        return {name: text.field_message(name, lang) for name in problems}

    def keep_receipt(request: Request, accepted: dict[str, Any], extra: dict[str, Any]) -> None:
        receipts = request.session.get("receipts")
        if not isinstance(receipts, dict):
            receipts = {}
        receipts[str(accepted["id"])] = {
            "consultation_id": str(accepted["consultation_id"]),
            **accepted["receipt"],
            **extra,
        }
        while len(receipts) > MAX_RECEIPTS:
            receipts.pop(next(iter(receipts)))
        request.session["receipts"] = receipts

    def idempotency_key(form: FormData) -> str:
        key = _str(form, "idempotency_key").strip()
        return key if 8 <= len(key) <= 200 else str(uuid.uuid4())

    @app.post("/konsultacje/{consultation_id}/uwagi", response_class=HTMLResponse)
    async def submit(request: Request, consultation_id: str) -> Response:
        form = await checked_form(request)
        lang = lang_of(request)
        consultation = annotate(await consultation_or_404(consultation_id), lang)
        body = submission_body(form, lang)
        errors = precheck_submission(body, lang)
        if not errors:
            try:
                accepted = await api.intake.post(
                    f"/v1/consultations/{consultation_id}/submissions",
                    json=body,
                    headers={"Idempotency-Key": idempotency_key(form)},
                )
            except ApiError as exc:
                if exc.status != 422:
                    raise
                errors = field_errors(exc, lang)
        if errors:
            return render(
                request,
                "consultation.html",
                422,
                **submission_form_context(consultation, form, errors),
            )
        keep_receipt(
            request,
            accepted,
            {"title": consultation["title"], "email": bool(_opt(form, "submitter.email"))},
        )
        return redirect(f"/konsultacje/{consultation_id}/potwierdzenie/{accepted['id']}")

    @app.get(
        "/konsultacje/{consultation_id}/potwierdzenie/{submission_id}",
        response_class=HTMLResponse,
    )
    async def receipt(request: Request, consultation_id: str, submission_id: str) -> HTMLResponse:
        receipts = request.session.get("receipts") or {}
        found = receipts.get(submission_id) if isinstance(receipts, dict) else None
        if not found or found.get("consultation_id") != consultation_id:
            raise StarletteHTTPException(404)
        return render(request, "receipt.html", receipt=found, submission_id=submission_id)

    # --- public results ------------------------------------------------------------------

    def trend_charts(report: dict[str, Any], lang: str, prefix: str) -> list[str]:
        subtopics = report.get("subtopics") or []
        if not subtopics:
            return []

        def tr(pl: str, en: str) -> str:
            return en if lang == "en" else pl

        counts = bar_chart(
            tr("Liczba uwag według podtematu", "Submissions by sub-topic"),
            [(s["label"], [s["count"]]) for s in subtopics],
            chart_id=f"{prefix}-sub",
        )
        momentum = bar_chart(
            tr("Tempo: ostatnie 14 dni i wcześniej", "Momentum: last 14 days and before"),
            [(s["label"], [s["momentum"]["recent"], s["momentum"]["earlier"]]) for s in subtopics],
            series=(tr("ostatnie 14 dni", "last 14 days"), tr("wcześniej", "before")),
            chart_id=f"{prefix}-mom",
        )
        return [counts, momentum]

    @app.get("/konsultacje/{consultation_id}/wyniki", response_class=HTMLResponse)
    async def results(request: Request, consultation_id: str) -> HTMLResponse:
        lang = lang_of(request)
        consultation = annotate(await consultation_or_404(consultation_id), lang)
        groups, groups_down = await attempt(
            api.groups.get(f"/v1/consultations/{consultation_id}/groups")
        )
        recommendations: Any = None
        trends: list[dict[str, Any]] = []
        if not groups_down:
            recommendations, groups_down = await attempt(
                api.groups.get(f"/v1/consultations/{consultation_id}/recommendations")
            )
            for index, theme in enumerate(consultation["themes"]):
                found, _ = await attempt(
                    api.groups.get(
                        f"/v1/consultations/{consultation_id}/trends", params={"theme": theme}
                    )
                )
                if found:
                    report = found.get("report") or {}
                    trends.append(
                        {
                            **found,
                            "theme": theme,
                            "charts": trend_charts(report, lang, f"t{index}"),
                        }
                    )
        return render(
            request,
            "results.html",
            consultation=consultation,
            groups=groups or [],
            groups_down=groups_down,
            recommendations=recommendations or [],
            trends=trends,
        )

    # --- volunteering ----------------------------------------------------------------

    def volunteer_context(
        consultation: dict[str, Any],
        values: Mapping[str, Any] | None = None,
        errors: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return {
            "consultation": consultation,
            "values": dict(values or {}),
            "errors": errors or {},
            "localities": profile.localities.villages,
        }

    @app.get("/konsultacje/{consultation_id}/wolontariat", response_class=HTMLResponse)
    async def volunteer_page(request: Request, consultation_id: str) -> HTMLResponse:
        consultation = annotate(await consultation_or_404(consultation_id), lang_of(request))
        return render(request, "volunteer.html", **volunteer_context(consultation))

    def ranked_themes(form: FormData, count: int) -> list[str]:
        return [t for t in (_opt(form, f"theme_{i}") for i in range(1, count + 1)) if t]

    def volunteer_body(form: FormData, themes: list[str], lang: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": _str(form, "name"),
            "themes": themes,
            "consent": {"processing": form.get("consent.processing") == "yes"},
            "locale": lang,
        }
        for name in ("email", "phone", "locality", "expertise"):
            value = _opt(form, name)
            if value is not None:
                body[name] = value
        return body

    async def sign_up(
        request: Request,
        consultation: dict[str, Any],
        form: FormData,
        template: str,
        context: dict[str, Any],
        *,
        token: str | None = None,
        channel: str = "web",
    ) -> Response:
        lang = lang_of(request)
        themes = ranked_themes(form, len(consultation["themes"]))
        errors: dict[str, str] = {}
        if len(set(themes)) != len(themes):
            errors["themes"] = text.field_message("themes", lang)
        body = volunteer_body(form, themes, lang)
        body["channel"] = channel
        if not errors:
            try:
                result = await api.groups.post(
                    f"/v1/consultations/{consultation['id']}/volunteers",
                    json=body,
                    token=token,
                )
            except ApiError as exc:
                if exc.status != 422:
                    raise
                errors = field_errors(exc, lang)
            else:
                return render(
                    request, "volunteer_done.html", result=result, consultation=consultation
                )
        return render(
            request, template, 422, **context, values=form, errors=errors, consultation=consultation
        )

    @app.post("/konsultacje/{consultation_id}/wolontariat", response_class=HTMLResponse)
    async def volunteer_submit(request: Request, consultation_id: str) -> Response:
        form = await checked_form(request)
        consultation = annotate(await consultation_or_404(consultation_id), lang_of(request))
        context = volunteer_context(consultation)
        context.pop("values")
        context.pop("errors")
        context.pop("consultation")
        return await sign_up(request, consultation, form, "volunteer.html", context)

    def token_page(
        request: Request, template: str, token: str | None, **context: Any
    ) -> HTMLResponse:
        return render(request, template, token=token or "", **context)

    @app.get(Page.VOLUNTEER_CONFIRM.value, response_class=HTMLResponse)
    async def volunteer_confirm_page(request: Request, token: str | None = None) -> HTMLResponse:
        return token_page(request, "token_confirm.html", token, action=Page.VOLUNTEER_CONFIRM)

    async def spend(
        request: Request, client: ServiceClient, path: str, form: FormData
    ) -> tuple[Any, bool]:
        """POST the link's token; (answer, True) or (None, False) for an invalid link."""
        token = _str(form, "token").strip()
        if not token:
            return None, False
        try:
            return await client.post(path, json={"token": token}), True
        except ApiError as exc:
            if exc.status in (404, 409, 422):
                if route_missing(exc):
                    raise ServiceDown(client.name) from exc
                return None, False
            raise

    @app.post(Page.VOLUNTEER_CONFIRM.value, response_class=HTMLResponse)
    async def volunteer_confirm(request: Request) -> HTMLResponse:
        form = await checked_form(request)
        result, ok = await spend(request, api.groups, "/v1/volunteers/confirm", form)
        return render(request, "token_result.html", ok=ok, kind="confirm", result=result)

    @app.get(Page.VOLUNTEER_WITHDRAW.value, response_class=HTMLResponse)
    async def volunteer_withdraw_page(request: Request, token: str | None = None) -> HTMLResponse:
        return token_page(request, "token_withdraw.html", token, action=Page.VOLUNTEER_WITHDRAW)

    @app.post(Page.VOLUNTEER_WITHDRAW.value, response_class=HTMLResponse)
    async def volunteer_withdraw(request: Request) -> HTMLResponse:
        form = await checked_form(request)
        result, ok = await spend(request, api.groups, "/v1/volunteers/withdraw", form)
        return render(request, "token_result.html", ok=ok, kind="withdraw", result=result)

    # --- member area ------------------------------------------------------------------

    @app.get(Page.MEMBER_SIGN_IN.value, response_class=HTMLResponse)
    async def member_sign_in_page(request: Request, token: str | None = None) -> HTMLResponse:
        return render(request, "member_sign_in.html", token=token or "", sent=False, errors={})

    @app.post(Page.MEMBER_SIGN_IN.value, response_class=HTMLResponse)
    async def member_sign_in(request: Request) -> Response:
        form = await checked_form(request)
        session, ok = await spend(request, api.groups, "/v1/sessions", form)
        if not ok:
            return render(request, "token_result.html", 422, ok=False, kind="sign_in", result=None)
        group_id = session["group"]["id"]
        lead = True
        try:
            await api.groups.get(f"/v1/groups/{group_id}/members", token=session["token"])
        except ApiError:
            lead = False
        request.session.clear()
        request.session["member"] = {
            "token": session["token"],
            "expires_at": session["expires_at"],
            "volunteer_id": str(session["volunteer_id"]),
            "group": session["group"],
            "lead": lead,
        }
        return redirect("/czlonkowie")

    @app.post("/czlonkowie/link", response_class=HTMLResponse)
    async def member_link(request: Request) -> HTMLResponse:
        form = await checked_form(request)
        lang = lang_of(request)
        try:
            await api.groups.post("/v1/access-links", json={"email": _str(form, "email")})
        except ApiError as exc:
            if exc.status != 422:
                raise
            return render(
                request,
                "member_sign_in.html",
                422,
                token="",
                sent=False,
                errors={"email": text.field_message("email", lang)},
                values=form,
            )
        return render(request, "member_sign_in.html", token="", sent=True, errors={})

    @app.post("/czlonkowie/wyloguj")
    async def member_sign_out(request: Request) -> Response:
        await checked_form(request)
        request.session.pop("member", None)
        return redirect("/")

    def require_member(request: Request) -> dict[str, Any]:
        member = member_of(request)
        if member is None:
            raise NotSignedIn
        return member

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        return redirect(Page.MEMBER_SIGN_IN.value)

    async def queue(member: dict[str, Any], filters: Mapping[str, str]) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": 200}
        params.update({k: v for k, v in filters.items() if k in QUEUE_FILTERS and v})
        found: dict[str, Any] = await api.groups.get(
            f"/v1/groups/{member['group']['id']}/submissions",
            params=params,
            token=member["token"],
        )
        return found

    @app.get("/czlonkowie", response_class=HTMLResponse)
    async def member_home(request: Request) -> HTMLResponse:
        member = require_member(request)
        filters = {k: request.query_params.get(k, "") for k in QUEUE_FILTERS}
        try:
            page = await queue(member, filters)
        except ApiError as exc:
            if exc.status != 422:
                raise
            page = {"items": [], "total": 0}
        return render(request, "member_queue.html", page=page, filters=filters)

    async def queue_item(member: dict[str, Any], submission_id: str) -> dict[str, Any]:
        if not _is_uuid(submission_id):
            raise StarletteHTTPException(404)
        for item in (await queue(member, {}))["items"]:
            if str(item["submission_id"]) == submission_id:
                return dict(item)
        raise StarletteHTTPException(404)

    @app.get("/czlonkowie/uwagi/{submission_id}", response_class=HTMLResponse)
    async def member_item(request: Request, submission_id: str) -> HTMLResponse:
        member = require_member(request)
        item = await queue_item(member, submission_id)
        return render(request, "member_item.html", item=item, errors={}, values={})

    @app.post("/czlonkowie/uwagi/{submission_id}/ocena", response_class=HTMLResponse)
    async def member_assess(request: Request, submission_id: str) -> Response:
        form = await checked_form(request)
        member = require_member(request)
        lang = lang_of(request)
        item = await queue_item(member, submission_id)
        body: dict[str, Any] = {"submission_id": submission_id}
        errors: dict[str, str] = {}
        for name in ("need", "reach", "strategy_fit", "competence"):
            value = _str(form, name)
            if value not in ("0", "1", "2"):
                errors[name] = text.label(
                    {
                        "x": (
                            "Wybierz ocenę od 0 do 2.",
                            "Choose a score from 0 to 2.",
                        )
                    },
                    "x",
                    lang,
                )
            else:
                body[name] = int(value)
        body["cost_band"] = _str(form, "cost_band") or None
        body["horizon"] = _str(form, "horizon") or None
        body["tags"] = [t.strip() for t in _str(form, "tags").split(",") if t.strip()]
        note = _opt(form, "note")
        if note:
            body["note"] = note
        if not errors:
            try:
                await api.groups.post(
                    f"/v1/groups/{member['group']['id']}/assessments",
                    json=body,
                    token=member["token"],
                )
            except ApiError as exc:
                if exc.status != 422:
                    raise
                errors = field_errors(exc, lang)
                for name in ("cost_band", "horizon"):
                    if name in errors:
                        errors[name] = text.label(
                            {"x": ("Wybierz jedną z możliwości.", "Choose one option.")},
                            "x",
                            lang,
                        )
            else:
                flash(request, "assessed")
                return redirect(f"/czlonkowie/uwagi/{submission_id}")
        return render(request, "member_item.html", 422, item=item, errors=errors, values=form)

    @app.post("/czlonkowie/uwagi/{submission_id}/status", response_class=HTMLResponse)
    async def member_decide(request: Request, submission_id: str) -> Response:
        form = await checked_form(request)
        member = require_member(request)
        lang = lang_of(request)
        item = await queue_item(member, submission_id)
        body: dict[str, Any] = {"state": _str(form, "state")}
        reason = _opt(form, "reason")
        if reason:
            body["reason"] = reason
        try:
            await api.groups.post(
                f"/v1/submissions/{submission_id}/state", json=body, token=member["token"]
            )
        except ApiError as exc:
            if exc.status not in (409, 422):
                raise
            errors = field_errors(exc, lang) or {
                "reason": exc.message or text.field_message("reason", lang)
            }
            if exc.status == 409 or "reason" not in errors:
                errors = {"state": exc.message, **errors}
            return render(request, "member_item.html", 422, item=item, errors=errors, values=form)
        flash(request, "decided")
        return redirect(f"/czlonkowie/uwagi/{submission_id}")

    @app.get("/czlonkowie/trendy", response_class=HTMLResponse)
    async def member_trends(request: Request) -> HTMLResponse:
        member = require_member(request)
        lang = lang_of(request)
        trends = await api.groups.get(
            f"/v1/groups/{member['group']['id']}/trends", token=member["token"]
        )
        report = trends.get("report") or {}
        charts = trend_charts(report, lang, "g")
        items = (await queue(member, {}))["items"]
        localities = Counter(item.get("locality") or "—" for item in items)
        if localities:
            charts.append(
                bar_chart(
                    "Uwagi według miejscowości" if lang == "pl" else "Submissions by locality",
                    [(name, [n]) for name, n in localities.most_common(12)],
                    chart_id="g-loc",
                )
            )
        return render(
            request, "member_trends.html", trends=trends, charts=charts, localities=localities
        )

    @app.get("/czlonkowie/rekomendacje", response_class=HTMLResponse)
    async def member_recommendations(request: Request) -> HTMLResponse:
        member = require_member(request)
        return await recommendations_page(request, member, {}, {})

    async def recommendations_page(
        request: Request,
        member: dict[str, Any],
        values: Mapping[str, Any],
        errors: dict[str, str],
        status_code: int = 200,
    ) -> HTMLResponse:
        group_id = member["group"]["id"]
        drafts = await api.groups.get(
            f"/v1/groups/{group_id}/recommendations", token=member["token"]
        )
        items = (await queue(member, {}))["items"]
        return render(
            request,
            "member_recommendations.html",
            status_code,
            recommendations=drafts,
            items=items,
            values=values,
            errors=errors,
        )

    @app.post("/czlonkowie/rekomendacje", response_class=HTMLResponse)
    async def member_draft(request: Request) -> Response:
        form = await checked_form(request)
        member = require_member(request)
        lang = lang_of(request)
        body = {
            "title": _str(form, "title"),
            "body": _str(form, "body"),
            "submission_ids": [v for v in form.getlist("submission_ids") if isinstance(v, str)],
        }
        try:
            await api.groups.post(
                f"/v1/groups/{member['group']['id']}/recommendations",
                json=body,
                token=member["token"],
            )
        except ApiError as exc:
            if exc.status != 422:
                raise
            errors = {k.split(".")[0]: v for k, v in field_errors(exc, lang).items()}
            return await recommendations_page(request, member, form, errors, 422)
        flash(request, "drafted")
        return redirect("/czlonkowie/rekomendacje")

    @app.post("/czlonkowie/rekomendacje/{recommendation_id}/publikuj")
    async def member_publish(request: Request, recommendation_id: str) -> Response:
        await checked_form(request)
        member = require_member(request)
        if not _is_uuid(recommendation_id):
            raise StarletteHTTPException(404)
        await api.groups.post(
            f"/v1/recommendations/{recommendation_id}/publish", token=member["token"]
        )
        flash(request, "published")
        return redirect("/czlonkowie/rekomendacje")

    # --- news, alerts, subscriptions ------------------------------------------------

    @app.get("/aktualnosci", response_class=HTMLResponse)
    async def news_list(request: Request, strona: int = 1, tag: str | None = None) -> HTMLResponse:
        page_number = max(1, min(strona, 1000))
        params: dict[str, Any] = {"limit": 10, "offset": (page_number - 1) * 10}
        if tag:
            params["tag"] = tag
        found, down = await attempt(api.news.get("/v1/articles", params=params))
        if down:
            raise ServiceDown(down)
        return render(request, "news.html", page=found, page_number=page_number, tag=tag)

    @app.get("/aktualnosci/kanal.atom")
    async def news_feed() -> Response:
        try:
            response = await api.news.http.get("/feeds/articles.atom")
        except Exception as exc:
            raise ServiceDown("news") from exc
        if response.status_code != 200:
            raise ServiceDown("news")
        return Response(response.content, media_type="application/atom+xml")

    @app.get("/aktualnosci/{slug}", response_class=HTMLResponse)
    async def article(request: Request, slug: str) -> HTMLResponse:
        """An article by its id, or by the slug news puts in its links (title plus 8 hex
        of the id): the API looks articles up by id, so the published list is searched."""
        article: Any = None
        if _is_uuid(slug):
            article = await api.news.get(f"/v1/articles/{slug}")
        else:
            offset, total = 0, 1
            while article is None and offset < min(total, 2000):
                found = await api.news.get("/v1/articles", params={"limit": 200, "offset": offset})
                total = int(found.get("total", 0))
                article = next((a for a in found["items"] if a.get("slug") == slug), None)
                offset += 200
        if article is None:
            raise StarletteHTTPException(404)
        return render(request, "article.html", article=article)

    @app.get("/ostrzezenia", response_class=HTMLResponse)
    async def alerts(request: Request) -> HTMLResponse:
        found, down = await attempt(api.news.get("/v1/alerts/active"))
        if down:
            raise ServiceDown(down)
        return render(request, "alerts.html", alerts=found)

    @app.get("/ostrzezenia/{alert_id}.cap")
    async def alert_cap(alert_id: str) -> Response:
        if not _is_uuid(alert_id):
            raise StarletteHTTPException(404)
        try:
            response = await api.news.http.get(f"/v1/alerts/{alert_id}.cap")
        except Exception as exc:
            raise ServiceDown("news") from exc
        if response.status_code == 404:
            raise StarletteHTTPException(404)
        if response.status_code != 200:
            raise ServiceDown("news")
        return Response(response.content, media_type="application/cap+xml")

    @app.get("/ostrzezenia/{alert_id}", response_class=HTMLResponse)
    async def alert_page(request: Request, alert_id: str) -> HTMLResponse:
        if not _is_uuid(alert_id):
            raise StarletteHTTPException(404)
        found = await api.news.get(f"/v1/alerts/{alert_id}")
        return render(request, "alert.html", alert=found)

    @app.get("/subskrypcje", response_class=HTMLResponse)
    async def subscribe_page(request: Request) -> HTMLResponse:
        return render(request, "subscribe.html", values={}, errors={}, sent=False)

    @app.post("/subskrypcje", response_class=HTMLResponse)
    async def subscribe(request: Request) -> HTMLResponse:
        form = await checked_form(request)
        lang = lang_of(request)
        body: dict[str, Any] = {
            "email": _str(form, "email"),
            "topics": [t for t in form.getlist("topics") if t in TOPICS],
            "locale": lang,
        }
        level = _str(form, "min_level")
        if level in ("1", "2", "3"):
            body["min_level"] = int(level)
        try:
            await api.notifications.post("/v1/subscriptions", json=body)
        except ApiError as exc:
            if route_missing(exc):
                raise ServiceDown("notifications") from exc
            if exc.status != 422:
                raise
            return render(
                request,
                "subscribe.html",
                422,
                values=form,
                errors=field_errors(exc, lang),
                sent=False,
            )
        return render(request, "subscribe.html", values={}, errors={}, sent=True)

    async def subscription_call(method: str, api_path: str, body: dict[str, Any]) -> Any:
        """Call notifications' subscription API; ApiError for a rejected link or form."""
        try:
            return await api.notifications.request(
                method, f"/v1/subscriptions/{api_path}", json=body
            )
        except ApiError as exc:
            if route_missing(exc):
                raise ServiceDown("notifications") from exc
            raise

    def invalid_link(request: Request, kind: str) -> HTMLResponse:
        return render(request, "token_result.html", ok=False, kind=kind, result=None)

    for page, template, path_ in (
        (Page.SUBSCRIPTION_CONFIRM, "token_subscription_confirm.html", "confirm"),
        (Page.UNSUBSCRIBE, "token_unsubscribe.html", "unsubscribe"),
    ):

        def make(page: Page, template: str, api_path: str) -> None:
            async def show(request: Request, token: str | None = None) -> HTMLResponse:
                return token_page(request, template, token, action=page)

            async def act(request: Request) -> HTMLResponse:
                form = await checked_form(request)
                token = _str(form, "token").strip()
                try:
                    result = await subscription_call("POST", api_path, {"token": token})
                except ApiError as exc:
                    if exc.status not in (404, 409, 422):
                        raise
                    return invalid_link(request, f"subscription-{api_path}")
                return render(
                    request,
                    "token_result.html",
                    ok=True,
                    kind=f"subscription-{api_path}",
                    result=result,
                )

            app.add_api_route(page.value, show, methods=["GET"], response_class=HTMLResponse)
            app.add_api_route(page.value, act, methods=["POST"], response_class=HTMLResponse)

        make(page, template, path_)

    @app.get(Page.SUBSCRIPTION_MANAGE.value, response_class=HTMLResponse)
    async def manage_page(request: Request, token: str | None = None) -> HTMLResponse:
        """The manage link (reusable, read-only here) opens the current settings."""
        token = (token or "").strip()
        if not token:
            return token_page(request, "token_manage.html", token, action=Page.SUBSCRIPTION_MANAGE)
        try:
            current = await subscription_call("POST", "manage", {"token": token})
        except ApiError as exc:
            if exc.status not in (404, 409, 422):
                raise
            return invalid_link(request, "subscription-manage")
        if current.get("status") == "unsubscribed":
            return invalid_link(request, "subscription-manage")
        values = {
            "topics": current.get("topics", []),
            "min_level": str(current.get("min_level", 1)),
        }
        return render(
            request,
            "token_manage.html",
            token=token,
            action=Page.SUBSCRIPTION_MANAGE,
            values=values,
            errors={},
            email=current.get("email", ""),
        )

    @app.post(Page.SUBSCRIPTION_MANAGE.value, response_class=HTMLResponse)
    async def manage_change(request: Request) -> HTMLResponse:
        form = await checked_form(request)
        token = _str(form, "token").strip()
        lang = lang_of(request)
        body: dict[str, Any] = {
            "token": token,
            "topics": [t for t in form.getlist("topics") if t in TOPICS],
            "locale": lang,
        }
        level = _str(form, "min_level")
        if level in ("1", "2", "3"):
            body["min_level"] = int(level)
        if not body["topics"]:
            # Saving no topic at all is unsubscribing: say so next to the field.
            return render(
                request,
                "token_manage.html",
                422,
                token=token,
                action=Page.SUBSCRIPTION_MANAGE,
                values=form,
                errors={"topics": text.field_message("topics", lang)},
                email="",
            )
        try:
            result = await subscription_call("PUT", "manage", body)
        except ApiError as exc:
            if exc.status not in (404, 409, 422):
                raise
            return invalid_link(request, "subscription-manage")
        return render(
            request, "token_result.html", ok=True, kind="subscription-manage", result=result
        )

    # --- clerk desk ------------------------------------------------------------------

    @app.get("/urzednik/logowanie", response_class=HTMLResponse)
    async def clerk_sign_in_page(request: Request) -> HTMLResponse:
        return render(request, "clerk_sign_in.html", errors={})

    @app.post("/urzednik/logowanie", response_class=HTMLResponse)
    async def clerk_sign_in(request: Request) -> Response:
        form = await checked_form(request)
        expected = clerk_token()
        sent = _str(form, "token").strip()
        if not expected or not secrets.compare_digest(expected.encode(), sent.encode()):
            lang = lang_of(request)
            return render(
                request,
                "clerk_sign_in.html",
                401,
                errors={
                    "token": "The token is not valid."
                    if lang == "en"
                    else "Token jest nieprawidłowy."
                },
            )
        lang = lang_of(request)
        request.session.clear()
        request.session["clerk"] = True
        request.session["lang"] = lang
        return redirect("/urzednik")

    @app.post("/urzednik/wyloguj")
    async def clerk_sign_out(request: Request) -> Response:
        await checked_form(request)
        request.session.pop("clerk", None)
        return redirect("/")

    @app.exception_handler(NotClerk)
    async def not_clerk(request: Request, exc: NotClerk) -> Response:
        return redirect("/urzednik/logowanie")

    def require_clerk(request: Request) -> None:
        if not request.session.get("clerk"):
            raise NotClerk

    async def clerk_desk(
        request: Request,
        *,
        values: Mapping[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        volunteer_values: Mapping[str, Any] | None = None,
        volunteer_errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
        lang = lang_of(request)
        found = await api.intake.get("/v1/consultations", params={"limit": 200})
        open_ = [annotate(c, lang) for c in found if c["phase"] == "open"]
        return render(
            request,
            "clerk.html",
            status_code,
            consultations=open_,
            values=dict(values or {}),
            errors=errors or {},
            volunteer_values=dict(volunteer_values or {}),
            volunteer_errors=volunteer_errors or {},
            idempotency_key=_str(values or {}, "idempotency_key") or str(uuid.uuid4()),
            localities=profile.localities.villages,
            today=clock().astimezone(zone).date().isoformat(),
            themes=sorted({t for c in open_ for t in c["themes"]}),
        )

    @app.get("/urzednik", response_class=HTMLResponse)
    async def clerk_home(request: Request) -> HTMLResponse:
        require_clerk(request)
        return await clerk_desk(request)

    @app.post("/urzednik/uwagi", response_class=HTMLResponse)
    async def clerk_submit(request: Request) -> Response:
        form = await checked_form(request)
        require_clerk(request)
        lang = lang_of(request)
        consultation_id = _str(form, "consultation_id")
        if not _is_uuid(consultation_id):
            return await clerk_desk(
                request,
                values=form,
                errors={"consultation_id": "Wybierz konsultację." if lang == "pl" else "Choose."},
                status_code=422,
            )
        consultation = await consultation_or_404(consultation_id)
        body = submission_body(form, _str(form, "language") or "pl")
        body["channel"] = _str(form, "channel")
        received_on = _opt(form, "received_on")
        if body["channel"] == "paper" and received_on:
            body["received_on"] = received_on
        errors = precheck_submission(body, lang)
        if errors:
            return await clerk_desk(request, values=form, errors=errors, status_code=422)
        try:
            accepted = await api.intake.post(
                f"/v1/consultations/{consultation_id}/submissions",
                json=body,
                headers={"Idempotency-Key": idempotency_key(form)},
                token=clerk_token(),
            )
        except ApiError as exc:
            if exc.status not in (409, 422):
                raise
            errors = field_errors(exc, lang)
            if exc.status == 409:
                errors = {"received_on": exc.message}
            return await clerk_desk(request, values=form, errors=errors, status_code=422)
        keep_receipt(
            request,
            accepted,
            {"title": consultation["title"], "email": bool(_opt(form, "submitter.email"))},
        )
        return redirect(f"/konsultacje/{consultation_id}/potwierdzenie/{accepted['id']}")

    @app.post("/urzednik/wolontariusze", response_class=HTMLResponse)
    async def clerk_volunteer(request: Request) -> Response:
        form = await checked_form(request)
        require_clerk(request)
        lang = lang_of(request)
        consultation_id = _str(form, "consultation_id")
        if not _is_uuid(consultation_id):
            return await clerk_desk(
                request,
                volunteer_values=form,
                volunteer_errors={"consultation_id": "Wybierz konsultację."},
                status_code=422,
            )
        consultation = await consultation_or_404(consultation_id)
        themes = ranked_themes(form, 4)
        body = volunteer_body(form, themes, lang)
        body["channel"] = "phone"
        try:
            result = await api.groups.post(
                f"/v1/consultations/{consultation_id}/volunteers", json=body, token=clerk_token()
            )
        except ApiError as exc:
            if exc.status != 422:
                raise
            return await clerk_desk(
                request,
                volunteer_values=form,
                volunteer_errors=field_errors(exc, lang),
                status_code=422,
            )
        return render(request, "volunteer_done.html", result=result, consultation=consultation)

    # --- static pages ------------------------------------------------------------------

    @app.get("/deklaracja-dostepnosci", response_class=HTMLResponse)
    async def accessibility(request: Request) -> HTMLResponse:
        return render(request, "accessibility.html")

    @app.get("/favicon.ico")
    async def favicon() -> Response:
        return Response(status_code=204)

    return app
