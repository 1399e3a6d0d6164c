"""The clearinghouse protocol over HTTP (see rcm_shared.clearinghouse), plus reference data
and counts for the run summary."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from rcm_shared.clearinghouse import Kind
from rcm_x12 import X12Error

from .appeals import AppealRequest, Received
from .payers import PAYERS
from .simulator import Simulator

EDI = "application/edi-x12"


async def _x12_body(request: Request) -> str:
    try:
        return (await request.body()).decode("ascii")
    except UnicodeDecodeError as error:
        raise HTTPException(400, f"X12 must be ASCII: {error}") from None


def router(simulator: Simulator) -> APIRouter:
    api = APIRouter()

    @api.get("/payers", tags=["reference"])
    async def payers() -> list[dict[str, str]]:
        return [{"payer_id": p.payer_id, "name": p.name} for p in PAYERS.values()]

    @api.post("/x12/realtime", tags=["clearinghouse"], response_class=Response)
    async def realtime(request: Request) -> Response:
        """A 270 in, its 271 out."""
        text = await _x12_body(request)
        try:
            answer = simulator.answer_270(text)
        except X12Error as error:
            raise HTTPException(400, f"not a valid 270: {error}") from None
        return Response(answer, media_type=EDI)

    @api.post("/x12/batches", status_code=202, tags=["clearinghouse"])
    async def batches(request: Request) -> dict[str, str]:
        """An 837P batch in; the 999 is in the mailbox at once, 277CA and 835 follow."""
        text = await _x12_body(request)
        try:
            batch_id = simulator.receive_837(text, time.monotonic())
        except X12Error as error:
            raise HTTPException(400, f"not a valid 837P: {error}") from None
        return {"batch_id": batch_id}

    @api.get("/mailbox/{partner}", tags=["clearinghouse"])
    async def waiting(
        partner: str, kind: list[Kind] | None = Query(default=None)
    ) -> list[dict[str, str]]:
        return [{"id": d.id, "kind": d.kind} for d in simulator.mailbox.waiting(partner, kind)]

    @api.get("/mailbox/{partner}/{document_id}", tags=["clearinghouse"], response_class=Response)
    async def fetch(partner: str, document_id: str) -> Response:
        document = simulator.mailbox.get(partner, document_id)
        if document is None:
            raise HTTPException(404, f"no document {document_id} for {partner}")
        return Response(document.text, media_type=EDI)

    @api.delete("/mailbox/{partner}/{document_id}", status_code=204, tags=["clearinghouse"])
    async def acknowledge(partner: str, document_id: str) -> Response:
        if not simulator.mailbox.remove(partner, document_id):
            raise HTTPException(404, f"no document {document_id} for {partner}")
        return Response(status_code=204)

    @api.post("/appeals", tags=["clearinghouse"])
    async def appeal(request: AppealRequest, response: Response) -> dict[str, str]:
        """An appeal of a denied claim, or of a denied line (`line_id`), with its
        documents; the payer's decision letter (appeals.py), or 202 when it is received
        and not decided. Overturned: an 835 reprocessing the claim follows."""
        decision = simulator.appeal(request, time.monotonic())
        if decision is None:
            raise HTTPException(404, f"no denial for appeal {request.appeal_id}")
        if isinstance(decision, Received):
            response.status_code = 202
            return {"appeal_id": decision.appeal_id, "status": "received"}
        return decision.as_dict()

    @api.get("/stats", tags=["operations"])
    async def stats() -> dict[str, Any]:
        return {**simulator.stats.as_dict(), "mailbox_waiting": len(simulator.mailbox)}

    return api
