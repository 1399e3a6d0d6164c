"""The console's composition root: settings, sign-in, pages, and the uvicorn entry point.

Every page signs the person in from the token cookie, refuses (403) a page their roles do
not open, and asks the services with that same token. See README "Web console".
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict
from rcm_shared.auth import DevIssuer, KeySet, Role, Verifier, allow
from rcm_shared.settings import ServiceSettings, load_settings
from rcm_shared.topology import CONSOLE, SERVICES

from . import billing_pages, coding_pages, deadletters, session
from .audit import PAGE_SIZES, AuditQuery
from .session import CSRF_FIELD, Sessions, SignInNeeded, Viewer
from .upstream import Refused, Upstream
from .worklists import (
    ACCOUNT,
    BY_NAME,
    CASE,
    CLAIM,
    PAGES,
    TIMELINE_SOURCES,
    Page,
    cell,
    moments,
    pick,
    show,
)

HERE = Path(__file__).parent
NAVIGATION = (*PAGES, *billing_pages.PAGES, *coding_pages.PAGES)
log = logging.getLogger(__name__)


def local_service_urls() -> dict[str, str]:
    return {process.name: f"http://127.0.0.1:{process.http_port}" for process in SERVICES}


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(**{**ServiceSettings.model_config, "populate_by_name": True})

    service_name: str = CONSOLE.name
    service_urls: dict[str, str] = Field(
        default_factory=local_service_urls,
        validation_alias=AliasChoices("RCM_SERVICE_URLS"),
        description='JSON: each service\'s base URL, e.g. {"coding": "http://coding:8003"}.',
    )
    dev_signin: bool = Field(
        default=False,
        validation_alias=AliasChoices("RCM_CONSOLE_DEV_SIGNIN"),
        description="Offer a form that mints tokens with the dev issuer. Never in production.",
    )
    dev_issuer_dir: Path = Field(
        default=Path.home() / ".cache" / "rcm-platform" / "dev-issuer",
        validation_alias=AliasChoices("RCM_DEV_ISSUER_DIR"),
    )
    console_secret: str | None = Field(
        default=None,
        validation_alias=AliasChoices("RCM_CONSOLE_SECRET"),
        description="Signs the forms' CSRF tokens; random at each start when unset (forms "
        "rendered before a restart then ask to be reloaded).",
    )


DEV_ROLES = [role.value for role in Role]


def build(settings: Settings) -> FastAPI:
    upstream = Upstream({**local_service_urls(), **settings.service_urls})
    sessions = Sessions(
        Verifier(
            KeySet(settings.auth_jwks_url),
            settings.auth_issuer,
            settings.auth_audience,
            settings.auth_roles_claim,
        ),
        (settings.console_secret or secrets.token_hex(32)).encode(),
    )
    dev_issuer = DevIssuer(settings.dev_issuer_dir) if settings.dev_signin else None
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["show"] = show
    templates.env.globals.update(cell=cell, pick=pick)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("console ready on %s:%s", settings.http_host, settings.http_port)
        yield
        await upstream.close()

    app = FastAPI(
        title="rcm console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.state.verifier = sessions.verifier  # for `allow` on /metrics (Prometheus' token)
    registry = CollectorRegistry()
    answered = Counter(
        "rcm_console_responses",
        "Pages and forms answered, by status.",
        ["status"],
        registry=registry,
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        answered.labels(str(response.status_code)).inc()
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"  # pages hold what a role may see
        return response

    def render(
        request: Request, name: str, viewer: Viewer | None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        pages = [page for page in NAVIGATION if viewer is not None and viewer.may(page.roles)]
        return templates.TemplateResponse(
            request,
            name,
            {
                "viewer": viewer,
                "pages": pages,
                "csrf": sessions.csrf_token(request),
                "csrf_field": CSRF_FIELD,
                **context,
            },
            status_code=status,
        )

    async def open_page(request: Request, page: Page) -> Viewer:
        viewer = await sessions.viewer(request)
        if not viewer.may(page.roles):
            raise HTTPException(403, f"{page.title} is for {', '.join(sorted(page.roles))}")
        return viewer

    async def form_of(request: Request) -> dict[str, str]:
        form = await request.form()
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        sessions.check_form(request, fields.get(CSRF_FIELD))
        return fields

    def see_other(path: str) -> RedirectResponse:
        return RedirectResponse(path, status_code=303)

    # ------------------------------------------------------------------ errors

    @app.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, _: SignInNeeded) -> Response:
        if request.headers.get("hx-request"):
            response: Response = Response(status_code=204, headers={"HX-Redirect": "/sign-in"})
        else:
            target = quote(request.url.path) if request.method == "GET" else "/"
            response = see_other(f"/sign-in?next={target}")
        session.clear(response)
        return response

    @app.exception_handler(HTTPException)
    async def refused(request: Request, error: HTTPException) -> Response:
        viewer = None
        with contextlib.suppress(SignInNeeded, HTTPException):
            viewer = await sessions.viewer(request)
        return render(
            request,
            "error.html",
            viewer,
            status=error.status_code,
            status_code=error.status_code,
            detail=error.detail,
        )

    @app.exception_handler(Refused)
    async def command_refused(request: Request, error: Refused) -> Response:
        viewer = None
        with contextlib.suppress(SignInNeeded, HTTPException):
            viewer = await sessions.viewer(request)
        return render(
            request,
            "error.html",
            viewer,
            status=error.status,
            status_code=error.status,
            detail="; ".join(error.reasons),
        )

    # ------------------------------------------------------------------ health, sign-in

    @app.get("/health/live", include_in_schema=False)
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(allow(Role.OPS))])
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/health/ready", include_in_schema=False)
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.get("/sign-in", response_class=HTMLResponse)
    async def sign_in_page(request: Request, next: str = "/") -> Response:
        response = Response()
        session.ensure_pre_signin_cookie(request, response)
        page = render(
            request,
            "sign_in.html",
            None,
            next=_local(next),
            dev_signin=dev_issuer is not None,
            dev_roles=DEV_ROLES,
        )
        for cookie in response.headers.getlist("set-cookie"):
            page.headers.append("set-cookie", cookie)
        return page

    async def signed_in(request: Request, token: str, target: str) -> Response:
        try:
            actor = await sessions.verify(token)
        except HTTPException as error:
            if error.status_code != 401:
                raise
            raise HTTPException(401, "that token is not valid here: sign in again") from None
        log.info("signed in: %s", actor.subject)
        response = see_other(_local(target))
        session.set_token(response, request, token)
        return response

    @app.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        fields = await form_of(request)
        token = fields.get("token", "").strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        return await signed_in(request, token, fields.get("next", "/"))

    @app.post("/sign-in/dev")
    async def sign_in_dev(request: Request) -> Response:
        if dev_issuer is None:
            raise HTTPException(404, "dev sign-in is off (RCM_CONSOLE_DEV_SIGNIN)")
        fields = await form_of(request)
        user = fields.get("user", "").strip()
        role = fields.get("role", "")
        if not user or len(user) > 64 or role not in DEV_ROLES:
            raise HTTPException(422, "pick a user name (up to 64 characters) and a role")
        return await signed_in(request, dev_issuer.token(user, [role]), fields.get("next", "/"))

    @app.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        await form_of(request)
        response = see_other("/sign-in")
        session.clear(response)
        return response

    # ------------------------------------------------------------------ pages

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        viewer = await sessions.viewer(request)
        return render(request, "home.html", viewer)

    @app.get("/worklists/{name}", response_class=HTMLResponse)
    async def worklist(request: Request, name: str) -> Response:
        found = BY_NAME.get(name)
        if found is None:
            raise HTTPException(404, f"no worklist {name}")
        viewer = await open_page(request, found.page)
        body = await upstream.get(viewer, found.service, found.path, **found.params)
        return render(
            request,
            "worklist.html",
            viewer,
            worklist=found,
            rows=found.rows(body),
            notice=request.query_params.get("notice"),
        )

    @app.post("/cases/next")
    async def take_next(request: Request) -> Response:
        viewer = await open_page(request, CASE)
        await form_of(request)
        taken = await upstream.post(
            viewer, "coding", "/queue/next", idempotency_key=str(uuid.uuid4())
        )
        case_id = pick(taken, "case_id")
        if not case_id:
            return see_other("/worklists/coding?notice=No+open+case+to+take.")
        return see_other(f"/cases/{quote(str(case_id))}")

    async def case_page(
        request: Request, viewer: Viewer, case_id: str, refusals: list[str], status: int = 200
    ) -> Response:
        case = await upstream.get(viewer, "coding", f"/cases/{quote(case_id)}")
        suggestions = case.get("suggestions") or {}
        coding = pick(case, "coding.submitted") or {}
        diagnoses = coding.get("diagnoses") or [
            d.get("code") for d in suggestions.get("diagnoses") or []
        ]
        lines = coding.get("lines") or suggestions.get("lines") or []
        return render(
            request,
            "case.html",
            viewer,
            status=status,
            case=case,
            refusals=refusals,
            diagnoses_text="\n".join(str(code) for code in diagnoses if code),
            lines_text="\n".join(_line_text(line) for line in lines),
            mine=case.get("coder_id") == viewer.subject,
        )

    @app.get("/cases/{case_id}", response_class=HTMLResponse)
    async def case(request: Request, case_id: str) -> Response:
        viewer = await open_page(request, CASE)
        return await case_page(request, viewer, case_id, [])

    @app.post("/cases/{case_id}/codes")
    async def submit_codes(request: Request, case_id: str) -> Response:
        viewer = await open_page(request, CASE)
        fields = await form_of(request)
        try:
            body = {
                "diagnoses": _words(fields.get("diagnoses", "")),
                "lines": [
                    _line(text) for text in fields.get("lines", "").splitlines() if text.strip()
                ],
            }
        except ValueError as error:
            return await case_page(request, viewer, case_id, [str(error)], status=422)
        try:
            await upstream.post(
                viewer,
                "coding",
                f"/cases/{quote(case_id)}/codes",
                body,
                idempotency_key=fields.get("idempotency_key") or None,
            )
        except Refused as refusal:
            return await case_page(request, viewer, case_id, refusal.reasons, refusal.status)
        return see_other(f"/cases/{quote(case_id)}")

    @app.get("/claims/{claim_id}", response_class=HTMLResponse)
    async def claim(request: Request, claim_id: str) -> Response:
        viewer = await open_page(request, CLAIM)
        found = await upstream.get(viewer, "claims", f"/claims/{quote(claim_id)}")
        history = sorted(moments("claims", found), key=lambda moment: moment.at)
        return render(request, "claim.html", viewer, claim=found, history=history)

    @app.get("/accounts", response_class=HTMLResponse)
    async def accounts(request: Request) -> Response:
        page = next(p for p in PAGES if p.path == "/accounts")
        viewer = await open_page(request, page)
        summary = await upstream.get(viewer, "collections", "/accounts")
        listed: list[dict[str, Any]] = []
        if viewer.may(BY_NAME["statements"].roles):
            statements = BY_NAME["statements"]
            listed = statements.rows(
                await upstream.get(viewer, "collections", statements.path, **statements.params)
            )
        return render(
            request,
            "accounts.html",
            viewer,
            summary=summary,
            listed=listed,
            columns=BY_NAME["statements"].columns,
        )

    async def account_page(
        request: Request, viewer: Viewer, episode_id: str, refusals: list[str], status: int = 200
    ) -> Response:
        account = await upstream.get(viewer, "collections", f"/accounts/{quote(episode_id)}")
        return render(
            request,
            "account.html",
            viewer,
            status=status,
            account=account,
            refusals=refusals,
            refund_key=str(uuid.uuid4()),
        )

    @app.get("/accounts/{episode_id}", response_class=HTMLResponse)
    async def account(request: Request, episode_id: str) -> Response:
        viewer = await open_page(request, ACCOUNT)
        return await account_page(request, viewer, episode_id, [])

    @app.post("/accounts/{episode_id}/refunds")
    async def approve_refund(request: Request, episode_id: str) -> Response:
        viewer = await open_page(request, ACCOUNT)
        fields = await form_of(request)
        key = fields.get("idempotency_key", "")
        try:
            amount_cents = _cents(fields.get("amount", ""))
        except ValueError as error:
            return await account_page(request, viewer, episode_id, [str(error)], 422)
        body = {
            "amount_cents": amount_cents,
            "recipient": fields.get("recipient", ""),
            "reason": fields.get("reason", ""),
        }
        try:
            await upstream.post(
                viewer, "collections", f"/accounts/{quote(episode_id)}/refunds", body, key
            )
        except Refused as refusal:
            return await account_page(request, viewer, episode_id, refusal.reasons, refusal.status)
        return see_other(f"/accounts/{quote(episode_id)}")

    @app.get("/kpis", response_class=HTMLResponse)
    async def kpis(request: Request) -> Response:
        page = next(p for p in PAGES if p.path == "/kpis")
        viewer = await open_page(request, page)
        params = {
            k: v for k, v in request.query_params.items() if k in ("from", "to", "payer") and v
        }
        report = await upstream.get(viewer, "kpis", "/kpis", **params)
        return render(request, "kpis.html", viewer, report=report, params=params)

    @app.get("/audit", response_class=HTMLResponse)
    async def audit_trail(request: Request) -> Response:
        page = next(p for p in PAGES if p.path == "/audit")
        viewer = await open_page(request, page)
        query = AuditQuery.of(request.query_params)
        try:
            found = await upstream.get(viewer, "audit", "/records", **query.upstream_params())
        except Refused as refusal:  # a filter the audit service cannot take: say which
            return render(
                request,
                "audit.html",
                viewer,
                status=422,
                query=query,
                page_sizes=PAGE_SIZES,
                refusals=refusal.reasons,
            )
        fetched = list((found or {}).get("records") or [])
        return render(
            request,
            "audit.html",
            viewer,
            query=query,
            records=query.shown(fetched),
            older=query.older(fetched) if (found or {}).get("more") else None,
            page_sizes=PAGE_SIZES,
            refusals=[],
        )

    @app.get("/episodes", response_class=HTMLResponse)
    async def episode_search(request: Request, episode_id: str = "") -> Response:
        page = next(p for p in PAGES if p.path == "/episodes")
        viewer = await open_page(request, page)
        if episode_id.strip():
            return see_other(f"/episodes/{quote(episode_id.strip())}")
        return render(request, "timeline.html", viewer, episode_id="", timeline=None)

    @app.get("/episodes/{episode_id}", response_class=HTMLResponse)
    async def episode(request: Request, episode_id: str) -> Response:
        page = next(p for p in PAGES if p.path == "/episodes")
        viewer = await open_page(request, page)
        found: list[Any] = []
        answers: dict[str, str] = {}
        for source in TIMELINE_SOURCES:
            service = source.service
            path = source.path_for(viewer.actor.roles, quote(episode_id))
            if path is None:
                answers[service] = "not for your role"
                continue
            try:
                document = await upstream.get(viewer, service, path)
            except HTTPException as error:
                answers[service] = {403: "not for your role", 404: "knows nothing of it"}.get(
                    error.status_code, str(error.detail)
                )
                continue
            found += moments(service, document)
            answers[service] = "answered"
        found.sort(key=lambda moment: moment.at)
        return render(
            request, "timeline.html", viewer, episode_id=episode_id, timeline=found, answers=answers
        )

    @app.get("/dead-letters", response_class=HTMLResponse)
    async def dead_letters(request: Request) -> Response:
        page = next(p for p in PAGES if p.path == "/dead-letters")
        viewer = await open_page(request, page)
        rows = await deadletters.read(settings.kafka_bootstrap_servers, settings.topic_prefix)
        return render(request, "dead_letters.html", viewer, rows=rows)

    # The teams' worklist pages, with the same sign-in, roles, forms and rendering.
    billing_pages.register(app, upstream, render, open_page, form_of)
    coding_pages.register(app, upstream, render, open_page, form_of)
    return app


def _local(target: str) -> str:
    """Only a path of ours: `next` must not send anyone to another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _words(text: str) -> list[str]:
    return [word for word in text.replace(",", " ").split() if word]


def _filled(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _line_text(line: dict[str, Any]) -> str:
    modifiers = ",".join(line.get("modifiers") or []) or "-"
    pointers = ",".join(str(p) for p in line.get("diagnosis_pointers") or [])
    return f"{line.get('procedure_code', '')} {modifiers} {line.get('units', 1)} {pointers}"


def _line(text: str) -> dict[str, Any]:
    """`CODE MODIFIERS UNITS POINTERS`, e.g. `99213 25 1 1,2` (`-`: no modifier)."""
    parts = text.split()
    if len(parts) not in (3, 4) or not parts[2].isdigit():
        raise ValueError(f"a line is CODE MODIFIERS UNITS POINTERS, not {text.strip()[:40]!r}")
    modifiers = [] if parts[1] == "-" else parts[1].split(",")
    try:
        pointers = [int(p) for p in (parts[3] if len(parts) == 4 else "").split(",") if p]
    except ValueError:
        raise ValueError("pointers are numbers, e.g. 1,2") from None
    return {
        "procedure_code": parts[0],
        "modifiers": modifiers,
        "units": int(parts[2]),
        "diagnosis_pointers": pointers,
    }


def _cents(text: str) -> int:
    """Dollars as typed (`12.34`, `$1,200`) to integer cents, without floating point."""
    cleaned = text.strip().lstrip("$").replace(",", "")
    whole, _, part = cleaned.partition(".")
    if not whole.isdigit() or (part and (not part.isdigit() or len(part) > 2)):
        raise ValueError("an amount is dollars and cents, e.g. 12.34")
    return int(whole) * 100 + int(part.ljust(2, "0") or 0)


def main() -> None:
    settings = load_settings(Settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        build(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        lifespan="on",
    )
