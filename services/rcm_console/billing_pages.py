"""The billers' pages: the A/R follow-up list with its bulk actions, a claim's history of
X12 documents (and one document's text), and the follow-up note form.

Like every page of the console, each asks the services with the signed-in person's own
token (claims; payments for an 835's text), so the services' role checks and audit trail
hold: opening a document is recorded by the service that serves it.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from .session import CSRF_FIELD, Sessions, SignInNeeded, Viewer
from .upstream import Refused, Upstream, reasons_of
from .worklists import BILLERS, PAGES, Page

AR_FOLLOWUP = Page("/billing/ar-followup", "A/R follow-up", "Billers", BILLERS)
HISTORY = Page("/billing/claims", "Claim history", "Billers", BILLERS)
FILTERS = ("payer_id", "min_age_days", "sort", "assigned_to")
BULK_ACTIONS = {"resubmit": "/bulk/resubmit", "reassign": "/bulk/reassign"}
CLAIMS_ARCHIVED = ("837P.", "999.", "277CA.")


def _dollars_to_cents(text: str) -> int | None:
    cleaned = text.strip().lstrip("$").replace(",", "")
    if not cleaned:
        return None
    whole, _, part = cleaned.partition(".")
    if not whole.isdigit() or (part and (not part.isdigit() or len(part) > 2)):
        raise HTTPException(422, "minimum dollars are dollars and cents, e.g. 250.00")
    return int(whole) * 100 + int(part.ljust(2, "0") or 0)


def router(upstream: Upstream, sessions: Sessions, templates: Jinja2Templates) -> APIRouter:
    pages = APIRouter(include_in_schema=False)

    def render(request: Request, name: str, viewer: Viewer, **context: Any) -> HTMLResponse:
        shown = [page for page in (*PAGES, AR_FOLLOWUP) if viewer.may(page.roles)]
        return templates.TemplateResponse(
            request,
            name,
            {
                "viewer": viewer,
                "pages": shown,
                "csrf": sessions.csrf_token(request),
                "csrf_field": CSRF_FIELD,
                **context,
            },
        )

    async def biller(request: Request, page: Page) -> Viewer:
        viewer = await sessions.viewer(request)
        if not viewer.may(page.roles):
            raise HTTPException(403, f"{page.title} is for {', '.join(sorted(page.roles))}")
        return viewer

    async def form_of(request: Request) -> tuple[dict[str, str], list[str]]:
        """The form's single fields and its ticked claim ids; the CSRF token checked."""
        form = await request.form()
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        sessions.check_form(request, fields.get(CSRF_FIELD))
        ticked = [value for value in form.getlist("claim_id") if isinstance(value, str)]
        return fields, ticked

    @pages.get("/billing/ar-followup", response_class=HTMLResponse)
    async def ar_followup(request: Request) -> Response:
        viewer = await biller(request, AR_FOLLOWUP)
        asked = {k: v for k, v in request.query_params.items() if k in FILTERS and v.strip()}
        minimum = _dollars_to_cents(request.query_params.get("min_dollars", ""))
        params: dict[str, Any] = dict(asked)
        if minimum is not None:
            params["min_outstanding_cents"] = minimum
        listed = await upstream.get(viewer, "claims", "/ar-followup", **params)
        rows = list((listed or {}).get("rows") or [])
        buckets: dict[str, dict[str, int]] = {}
        for row in rows:
            bucket = buckets.setdefault(row["bucket"], {"claims": 0, "outstanding_cents": 0})
            bucket["claims"] += 1
            bucket["outstanding_cents"] += int(row["outstanding_cents"])
        return render(
            request,
            "billing_ar_followup.html",
            viewer,
            rows=rows,
            buckets=buckets,
            filters={**asked, "min_dollars": request.query_params.get("min_dollars", "")},
            bulk_key=str(uuid.uuid4()),
            notice=request.query_params.get("notice"),
        )

    @pages.post("/billing/bulk", response_class=HTMLResponse)
    async def bulk(request: Request) -> Response:
        viewer = await biller(request, AR_FOLLOWUP)
        fields, ticked = await form_of(request)
        action = fields.get("action", "")
        path = BULK_ACTIONS.get(action)
        if path is None:
            raise HTTPException(422, "pick an action: resubmit or reassign")
        if not ticked:
            return RedirectResponse(
                "/billing/ar-followup?" + urlencode({"notice": "Tick the claims to act on."}),
                status_code=303,
            )
        body: dict[str, Any] = {"claim_ids": ticked}
        if action == "resubmit":
            body["note"] = fields.get("note", "").strip() or "resubmitted from the A/R list"
        else:
            body["assigned_to"] = fields.get("assigned_to", "").strip() or None
        answer = await upstream.post(
            viewer, "claims", path, body, idempotency_key=fields.get("idempotency_key") or None
        )
        return render(request, "billing_bulk.html", viewer, action=action, answer=answer)

    @pages.get("/billing/claims/{claim_id}/history", response_class=HTMLResponse)
    async def history(request: Request, claim_id: str) -> Response:
        viewer = await biller(request, HISTORY)
        asked = quote(claim_id)
        found = await upstream.get(viewer, "claims", f"/claims/{asked}/history")
        claim = await upstream.get(viewer, "claims", f"/claims/{asked}")
        return render(
            request,
            "billing_claim_history.html",
            viewer,
            claim=claim,
            history=found,
            follow_up_key=str(uuid.uuid4()),
            refusals=[],
            notice=request.query_params.get("notice"),
        )

    @pages.post("/billing/claims/{claim_id}/follow-ups")
    async def follow_up(request: Request, claim_id: str) -> Response:
        viewer = await biller(request, HISTORY)
        fields, _ = await form_of(request)
        body = {
            "note": fields.get("note", "").strip(),
            "next_action_on": fields.get("next_action_on", "").strip() or None,
        }
        asked = quote(claim_id)
        try:
            await upstream.post(
                viewer,
                "claims",
                f"/claims/{asked}/follow-ups",
                body,
                idempotency_key=fields.get("idempotency_key") or None,
            )
        except Refused as refusal:
            found = await upstream.get(viewer, "claims", f"/claims/{asked}/history")
            claim = await upstream.get(viewer, "claims", f"/claims/{asked}")
            page = render(
                request,
                "billing_claim_history.html",
                viewer,
                claim=claim,
                history=found,
                follow_up_key=fields.get("idempotency_key") or str(uuid.uuid4()),
                refusals=refusal.reasons,
                notice=None,
            )
            page.status_code = refusal.status
            return page
        notice = urlencode({"notice": "Follow-up recorded."})
        return RedirectResponse(f"/billing/claims/{asked}/history?{notice}", status_code=303)

    @pages.get("/billing/claims/{claim_id}/documents/{document_id}", response_class=HTMLResponse)
    async def document(request: Request, claim_id: str, document_id: str) -> Response:
        viewer = await biller(request, HISTORY)
        service = "claims" if document_id.startswith(CLAIMS_ARCHIVED) else "payments"
        path = f"/claims/{quote(claim_id)}/documents/{quote(document_id)}"
        text = await _text(upstream, viewer, service, path)
        return render(
            request,
            "billing_document.html",
            viewer,
            claim_id=claim_id,
            document_id=document_id,
            service=service,
            segments=text.replace("\r", "").replace("~", "~\n").splitlines(),
        )

    return pages


async def _text(upstream: Upstream, viewer: Viewer, service: str, path: str) -> str:
    """A text answer (an archived X12 document), refused as Upstream refuses JSON ones."""
    base = upstream.service_urls.get(service)
    if base is None:
        raise HTTPException(502, f"the console does not know where {service} is")
    try:
        response = await upstream.client.get(
            f"{base.rstrip('/')}{path}", headers={"Authorization": f"Bearer {viewer.token}"}
        )
    except httpx.HTTPError:
        raise HTTPException(502, f"{service} did not answer") from None
    if response.status_code == 200:
        return response.text
    if response.status_code == 401:
        raise SignInNeeded
    if response.status_code in (403, 404):
        try:
            reasons = reasons_of(response.json())
        except ValueError:
            reasons = []
        raise HTTPException(response.status_code, "; ".join(reasons) or "not found")
    raise HTTPException(502, f"{service} answered {response.status_code}")
