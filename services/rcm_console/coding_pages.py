"""The coders' worklist pages: physician queries, a lead's reassignments and reviews,
coders' specialties and productivity. Each asks the coding service with the signed-in
person's token; the coding service checks the roles again (docs/roles.md)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from rcm_shared.auth import Role

from .session import Viewer
from .upstream import Upstream
from .worklists import CODERS, Page, Render

LEADS = frozenset({Role.CODING_LEAD})
QUERIES = Page("/coding/queries", "Physician queries", "Coders", CODERS)
REVIEWS = Page("/coding/reviews", "Audit reviews", "Coding leads", LEADS)
PRODUCTIVITY = Page("/coding/productivity", "Coder productivity", "Coding leads", LEADS)
CODER_PROFILES = Page("/coding/coders", "Coders' specialties", "Coding leads", LEADS)
CASE_COMMANDS = Page("/cases", "Coding case", "Coders", CODERS)
PAGES = (QUERIES, REVIEWS, PRODUCTIVITY, CODER_PROFILES)

# The coding service's fixed lists (rcm_contracts.coding.QueryReason, its specialties).
QUERY_REASONS = (
    "documentation-incomplete",
    "diagnosis-unclear",
    "procedure-unclear",
    "laterality",
    "other",
)
SPECIALTIES = (
    "evaluation-management",
    "surgery",
    "anesthesia",
    "radiology",
    "pathology-lab",
    "medicine",
    "unclassified",
)


def register(
    app: FastAPI,
    upstream: Upstream,
    render: Render,
    open_page: Callable[[Request, Page], Awaitable[Viewer]],
    form_of: Callable[[Request], Awaitable[dict[str, str]]],
) -> None:
    def back(path: str) -> RedirectResponse:
        return RedirectResponse(path, status_code=303)

    def case_path(case_id: str) -> str:
        return f"/cases/{quote(case_id)}"

    def key(fields: dict[str, str]) -> str:
        # The form's own key makes a double submit one command; else a fresh one.
        return fields.get("idempotency_key") or str(uuid.uuid4())

    @app.get("/coding", response_class=HTMLResponse)
    async def coding_home(request: Request) -> Response:
        viewer = await open_page(request, QUERIES)
        pages = [page for page in PAGES if viewer.may(page.roles)]
        return render(request, "coding_home.html", viewer, coding_pages=pages)

    # ---------------------------------------------------------------- on the case page

    @app.post("/cases/{case_id}/queries")
    async def raise_query(request: Request, case_id: str) -> Response:
        viewer = await open_page(request, CASE_COMMANDS)
        fields = await form_of(request)
        body = {"reason": fields.get("reason", ""), "question": fields.get("question", "")}
        path = f"{case_path(case_id)}/queries"
        await upstream.post(viewer, "coding", path, body, idempotency_key=key(fields))
        return back(case_path(case_id))

    @app.post("/cases/{case_id}/queries/{query_id}/answer")
    async def answer_query(request: Request, case_id: str, query_id: str) -> Response:
        viewer = await open_page(request, CASE_COMMANDS)
        fields = await form_of(request)
        path = f"{case_path(case_id)}/queries/{quote(query_id)}/answer"
        body = {"answer": fields.get("answer", "")}
        await upstream.post(viewer, "coding", path, body, idempotency_key=key(fields))
        return back(QUERIES.path if fields.get("back") == "queries" else case_path(case_id))

    @app.post("/cases/{case_id}/reassign")
    async def reassign(request: Request, case_id: str) -> Response:
        viewer = await open_page(request, REVIEWS)  # a lead's command
        fields = await form_of(request)
        body = {"coder_id": fields.get("coder_id", "").strip()}
        path = f"{case_path(case_id)}/reassign"
        await upstream.post(viewer, "coding", path, body, idempotency_key=key(fields))
        return back(case_path(case_id))

    @app.post("/cases/{case_id}/review")
    async def review(request: Request, case_id: str) -> Response:
        viewer = await open_page(request, REVIEWS)
        fields = await form_of(request)
        agreed = fields.get("agreed") == "yes"
        body: dict[str, Any] = {"agreed": agreed}
        if not agreed:
            body["diagnoses"] = fields.get("diagnoses", "").split()
            body["lines"] = [
                _line(text) for text in fields.get("lines", "").splitlines() if text.strip()
            ]
        path = f"{case_path(case_id)}/review"
        await upstream.post(viewer, "coding", path, body, idempotency_key=key(fields))
        return back(REVIEWS.path)

    # ---------------------------------------------------------------- lists

    @app.get(QUERIES.path, response_class=HTMLResponse)
    async def queries(request: Request) -> Response:
        viewer = await open_page(request, QUERIES)
        rows = await upstream.get(viewer, "coding", "/queries", status="open")
        return render(request, "coding_queries.html", viewer, rows=rows or [])

    @app.get(REVIEWS.path, response_class=HTMLResponse)
    async def reviews(request: Request) -> Response:
        viewer = await open_page(request, REVIEWS)
        rows = await upstream.get(viewer, "coding", "/reviews", status="open")
        return render(request, "coding_reviews.html", viewer, rows=rows or [])

    @app.get(PRODUCTIVITY.path, response_class=HTMLResponse)
    async def productivity(request: Request, day: str = "") -> Response:
        viewer = await open_page(request, PRODUCTIVITY)
        try:
            chosen = date.fromisoformat(day) if day else datetime.now(UTC).date()
        except ValueError:
            raise HTTPException(422, "day: a date, YYYY-MM-DD") from None
        found = await upstream.get(viewer, "coding", "/productivity", day=chosen.isoformat())
        return render(
            request,
            "coding_productivity.html",
            viewer,
            day=chosen.isoformat(),
            rows=(found or {}).get("coders") or [],
        )

    @app.get(CODER_PROFILES.path, response_class=HTMLResponse)
    async def coders(request: Request) -> Response:
        viewer = await open_page(request, CODER_PROFILES)
        rows = await upstream.get(viewer, "coding", "/coders")
        return render(
            request, "coding_coders.html", viewer, rows=rows or [], specialties=SPECIALTIES
        )

    @app.post(CODER_PROFILES.path)
    async def set_coder(request: Request) -> Response:
        viewer = await open_page(request, CODER_PROFILES)
        fields = await form_of(request)
        form = await request.form()
        chosen = [value for value in form.getlist("specialties") if isinstance(value, str)]
        coder_id = fields.get("coder_id", "").strip()
        if not coder_id:
            raise HTTPException(422, "coder_id: name the coder")
        await upstream.put(
            viewer,
            "coding",
            f"/coders/{quote(coder_id)}",
            {"specialties": chosen},
            idempotency_key=str(uuid.uuid4()),
        )
        return back(CODER_PROFILES.path)


def _line(text: str) -> dict[str, Any]:
    """`CODE MODIFIERS UNITS POINTERS` as the case page's codes form reads it."""
    parts = text.split()
    if len(parts) != 4:
        raise HTTPException(422, f"{text.strip()!r}: CODE MODIFIERS UNITS POINTERS")
    code, modifiers, units, pointers = parts
    try:
        return {
            "procedure_code": code,
            "modifiers": [] if modifiers == "-" else modifiers.split(","),
            "units": int(units),
            "diagnosis_pointers": [int(p) for p in pointers.split(",")],
        }
    except ValueError:
        raise HTTPException(422, f"{text.strip()!r}: units and pointers are numbers") from None
