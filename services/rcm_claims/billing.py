"""The billers' worklists over HTTP: A/R follow-up, follow-up notes, a claim's history
and its archived X12 documents, and bulk actions (resubmit, reassign).

Included by api.router. Queries read the store (by id, or the bounded A/R rows);
commands ask the episode's owner, a bulk action one request per item (rcm_shared.bulk).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import Field
from rcm_contracts.base import Id
from rcm_contracts.claims import (
    ClaimCorrectionRequested,
    FollowUpRequested,
    WorkAssignmentRequested,
)
from rcm_shared.archive_lookup import find_archived, read_archived
from rcm_shared.auth import Actor, Role, allow
from rcm_shared.bulk import BulkIds, name_resources, run_bulk, unique
from rcm_shared.clock import utc_now
from rcm_shared.errors import NotFound
from rcm_shared.http import Body, RequiredIdempotencyKey, path_id
from rcm_shared.requests import Reply
from rcm_shared.service import Service

from .domain import followup, history
from .domain.deadlines import DeadlineTable
from .domain.model import Episode
from .handlers import episode_of
from .store import ClaimsStore

BILLERS = allow(Role.BILLER)
Biller = Annotated[Actor, Depends(BILLERS)]
IdempotencyKey = Annotated[
    str | None,
    Header(min_length=1, max_length=200, description="A retried command is applied once."),
]
AR_EPISODES_READ = 20_000  # the most episodes' rows one A/R list reads: a bound, not a page
MAX_AR_ROWS = 1000
X12_TEXT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {}}, "description": "The document's X12 text."}
}


class FollowUpNote(Body):
    note: str = Field(min_length=1, max_length=1000, description="Kept in claims' store only.")
    next_action_on: date | None = None


class BulkResubmit(Body):
    claim_ids: BulkIds
    note: str = Field(min_length=1, max_length=300)


class BulkReassign(Body):
    claim_ids: BulkIds
    assigned_to: Id | None = Field(default=None, description="None: back to everyone.")


def _claim(claim_id: str) -> tuple[str, str]:
    valid = path_id(claim_id, "claim")
    return valid, episode_of(valid)


def router(service: Service, store: ClaimsStore, table: DeadlineTable) -> APIRouter:
    api = APIRouter(tags=["claims", "worklists"])
    archive_root = Path(getattr(service.settings, "x12_archive_dir", "var/x12"))

    async def episode_with(claim_id: str) -> tuple[str, Episode]:
        claim_id, episode_id = _claim(claim_id)
        episode = await store.episodes.get(episode_id)
        if episode is None or episode.find(claim_id) is None:
            raise NotFound(f"claim {claim_id} not found")
        return claim_id, episode

    @api.get("/ar-followup", dependencies=[Depends(BILLERS)])
    async def ar_followup(
        payer_id: Id | None = Query(default=None),
        min_age_days: int = Query(default=0, ge=0, le=3650),
        min_outstanding_cents: int = Query(default=0, ge=0, le=1_000_000_000),
        assigned_to: Id | None = Query(default=None),
        sort: Literal["dollars", "age"] = Query(default="dollars"),
        limit: int = Query(default=100, ge=1, le=MAX_AR_ROWS),
    ) -> dict[str, Any]:
        """Open insurance A/R by claim: age since the first submission (a corrected claim
        keeps the original's), bucket, payer, dollars outstanding, status, last action,
        next deadline and the latest follow-up; largest balance (or oldest) first."""
        rows = await store.ar_rows(AR_EPISODES_READ)
        listed = followup.followup_list(
            rows,
            table,
            utc_now().date(),
            payer_id=payer_id,
            min_age_days=min_age_days,
            min_outstanding_cents=min_outstanding_cents,
            assigned_to=assigned_to,
            sort=sort,
            limit=limit,
        )
        notes = await store.notes([r["follow_up"]["note_id"] for r in listed if r["follow_up"]])
        for row in listed:
            if row["follow_up"]:
                row["follow_up"]["note"] = notes.get(row["follow_up"]["note_id"])
        return {"count": len(listed), "rows": listed}

    @api.post("/claims/{claim_id}/follow-ups", status_code=201)
    async def follow_up(
        claim_id: str,
        body: FollowUpNote,
        biller: Biller,
        idempotency_key: IdempotencyKey = None,
    ) -> Any:
        """Records a follow-up on an open claim: the note (kept in claims' store, never in
        an event or a log) and the date of the next action, shown on its A/R row."""
        claim_id, episode_id = _claim(claim_id)
        seed = idempotency_key or uuid.uuid4().hex
        note_id = "FU-" + hashlib.sha256(f"{claim_id}|{seed}".encode()).hexdigest()[:32]
        request = FollowUpRequested(
            episode_id=episode_id,
            requested_by=biller.subject,
            claim_id=claim_id,
            note_id=note_id,
            next_action_on=body.next_action_on,
        )
        reply = await service.ask(request, idempotency_key)
        # Once the owner took it (a refused one keeps nothing); a retry writes it again.
        await store.keep_note(note_id, claim_id, body.note, biller.subject)
        return reply.response()

    @api.get("/claims/{claim_id}/history", dependencies=[Depends(BILLERS)])
    async def claim_history(claim_id: str) -> dict[str, Any]:
        """Every X12 document about the claim and the claims that replaced or voided it
        (837P, 999, 277CA, 835), oldest first, each with the path of its text."""
        claim_id, episode = await episode_with(claim_id)
        return history.claim_history(episode, claim_id)

    @api.get(
        "/claims/{claim_id}/documents/{document_id}",
        dependencies=[Depends(BILLERS)],
        response_class=PlainTextResponse,
        responses=X12_TEXT,
    )
    async def claim_document(claim_id: str, document_id: str) -> PlainTextResponse:
        """The archived text of an 837P, 999 or 277CA of the claim's history (patient
        data: billers only, and every fetch is in the audit trail). An 835 is payments'
        (the same path there)."""
        claim_id, episode = await episode_with(claim_id)
        document_id = path_id(document_id, "document")
        seen = history.claim_history(episode, claim_id)
        if history.names_document(seen, document_id) is None:
            raise NotFound(f"claim {claim_id} has no document {document_id}")
        archived = history.archived_reference(document_id)
        if archived is None:
            raise NotFound(f"document {document_id} is an 835: payments serves it")
        kind, reference = archived
        direction: Literal["sent", "received"] = "sent" if kind == "837P" else "received"
        times = history.history_times(seen, document_id)
        path = find_archived(archive_root, "claims", direction, kind, reference, times)  # type: ignore[arg-type]
        if path is None:
            raise NotFound(f"document {document_id} is not in this archive")
        return PlainTextResponse(read_archived(path))

    @api.post("/bulk/resubmit")
    async def bulk_resubmit(
        http: Request, body: BulkResubmit, biller: Biller, idempotency_key: RequiredIdempotencyKey
    ) -> dict[str, Any]:
        """Corrects each rejected or denied claim without changes (a rejected one goes
        again, a denied one is replaced), each its own request: the answer says how each
        ended; a retry with the same key applies each once."""
        ids = unique(body.claim_ids)
        name_resources(http, ids)

        async def one(claim_id: str, key: str) -> Reply:
            request = ClaimCorrectionRequested(
                episode_id=episode_of(claim_id),
                requested_by=biller.subject,
                claim_id=claim_id,
                note=body.note,
            )
            return await service.ask(request, key)

        return await run_bulk(ids, idempotency_key, one)

    @api.post("/bulk/reassign")
    async def bulk_reassign(
        http: Request, body: BulkReassign, biller: Biller, idempotency_key: RequiredIdempotencyKey
    ) -> dict[str, Any]:
        """Assigns each claim's open work item to a biller (or to no one)."""
        ids = unique(body.claim_ids)
        name_resources(http, ids)

        async def one(claim_id: str, key: str) -> Reply:
            request = WorkAssignmentRequested(
                episode_id=episode_of(claim_id),
                requested_by=biller.subject,
                claim_id=claim_id,
                assigned_to=body.assigned_to,
            )
            return await service.ask(request, key)

        return await run_bulk(ids, idempotency_key, one)

    return api
