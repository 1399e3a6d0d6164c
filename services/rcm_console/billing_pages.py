"""The billers' pages: the A/R follow-up list with its bulk actions, a claim's history of
X12 documents (and one document's text), and the follow-up note form.

Like every page of the console, each asks the services with the signed-in person's own
token (claims; payments for an 835's text), so the services' role checks and audit trail
hold: opening a document is recorded by the service that serves it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .session import Viewer
from .upstream import Refused, Upstream
from .worklists import BILLERS, Page, Render

AR_FOLLOWUP = Page("/billing/ar-followup", "A/R follow-up", "Billers", BILLERS)
HISTORY = Page("/billing/claims", "Claim history", "Billers", BILLERS)
PAGES = (AR_FOLLOWUP,)
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


def register(
    app: FastAPI,
    upstream: Upstream,
    render: Render,
    open_page: Callable[[Request, Page], Awaitable[Viewer]],
    form_of: Callable[[Request], Awaitable[dict[str, str]]],
) -> None:
    async def ticked(request: Request) -> list[str]:
        form = await request.form()  # read once by form_of; Starlette keeps it
        return [value for value in form.getlist("claim_id") if isinstance(value, str)]

    @app.get("/billing/ar-followup", response_class=HTMLResponse)
    async def ar_followup(request: Request) -> Response:
        viewer = await open_page(request, AR_FOLLOWUP)
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

    @app.post("/billing/bulk", response_class=HTMLResponse)
    async def bulk(request: Request) -> Response:
        viewer = await open_page(request, AR_FOLLOWUP)
        fields = await form_of(request)
        chosen = await ticked(request)
        action = fields.get("action", "")
        path = BULK_ACTIONS.get(action)
        if path is None:
            raise HTTPException(422, "pick an action: resubmit or reassign")
        if not chosen:
            return RedirectResponse(
                "/billing/ar-followup?" + urlencode({"notice": "Tick the claims to act on."}),
                status_code=303,
            )
        body: dict[str, Any] = {"claim_ids": chosen}
        if action == "resubmit":
            body["note"] = fields.get("note", "").strip() or "resubmitted from the A/R list"
        else:
            body["assigned_to"] = fields.get("assigned_to", "").strip() or None
        answer = await upstream.post(
            viewer, "claims", path, body, idempotency_key=fields.get("idempotency_key") or None
        )
        return render(request, "billing_bulk.html", viewer, action=action, answer=answer)

    @app.get("/billing/claims/{claim_id}/history", response_class=HTMLResponse)
    async def history(request: Request, claim_id: str) -> Response:
        viewer = await open_page(request, HISTORY)
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

    @app.post("/billing/claims/{claim_id}/follow-ups")
    async def follow_up(request: Request, claim_id: str) -> Response:
        viewer = await open_page(request, HISTORY)
        fields = await form_of(request)
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
            return render(
                request,
                "billing_claim_history.html",
                viewer,
                status=refusal.status,
                claim=claim,
                history=found,
                follow_up_key=fields.get("idempotency_key") or str(uuid.uuid4()),
                refusals=refusal.reasons,
                notice=None,
            )
        notice = urlencode({"notice": "Follow-up recorded."})
        return RedirectResponse(f"/billing/claims/{asked}/history?{notice}", status_code=303)

    @app.get("/billing/claims/{claim_id}/documents/{document_id}", response_class=HTMLResponse)
    async def document(request: Request, claim_id: str, document_id: str) -> Response:
        viewer = await open_page(request, HISTORY)
        service = "claims" if document_id.startswith(CLAIMS_ARCHIVED) else "payments"
        path = f"/claims/{quote(claim_id)}/documents/{quote(document_id)}"
        text = await upstream.text(viewer, service, path)
        return render(
            request,
            "billing_document.html",
            viewer,
            claim_id=claim_id,
            document_id=document_id,
            service=service,
            segments=text.replace("\r", "").replace("~", "~\n").splitlines(),
        )
