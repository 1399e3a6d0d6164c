"""The biller's HTTP API: work queues, corrections, accepted denials, claim views, stats.

Queries read the store; commands ask the episode's owner (rcm_shared.requests).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from pydantic import Field
from rcm_contracts.base import Id
from rcm_contracts.claims import (
    AppealDocument,
    AppealRequested,
    AppealResendRequested,
    ClaimChanges,
    ClaimCloseRequested,
    ClaimCorrectionRequested,
    ClaimVoidRequested,
    DenialAcceptanceRequested,
)
from rcm_shared.auth import Actor, Role, allow
from rcm_shared.clock import utc_now
from rcm_shared.errors import Invalid, NotFound
from rcm_shared.flow import flow_view
from rcm_shared.http import Body, RequiredIdempotencyKey, path_id
from rcm_shared.service import Service

from . import billing, domain
from .appeal_client import AppealFiling, AppealSender, Upload
from .documents import DocumentArchive, describe
from .domain.deadlines import DeadlineTable, deadlines_view
from .handlers import episode_of
from .store import ClaimsStore

BILLERS = allow(Role.BILLER)
Biller = Annotated[Actor, Depends(BILLERS)]
IdempotencyKey = Annotated[
    str | None,
    Header(min_length=1, max_length=200, description="A retried command is applied once."),
]


class BillerAction(Body):
    note: str = Field(min_length=1, max_length=300)


class Correction(BillerAction):
    changes: ClaimChanges | None = None


class Void(Body):
    reason: str = Field(min_length=1, max_length=300)


def _claim(claim_id: str) -> tuple[str, str]:
    """The claim id and its episode id; a path id no claim can have is not found."""
    valid = path_id(claim_id, "claim")
    return valid, episode_of(valid)


def router(
    service: Service,
    store: ClaimsStore,
    work_queue_limit: int,
    stats_limit: int,
    deadlines: DeadlineTable | None = None,
) -> APIRouter:
    api = APIRouter(tags=["claims"])
    table = deadlines or DeadlineTable()

    api.include_router(billing.router(service, store, table))

    @api.get("/work-queue", dependencies=[Depends(BILLERS)])
    async def work_queue(
        kind: Literal["rejection", "denial"] | None = Query(default=None),
        limit: int = Query(
            default=work_queue_limit, ge=1, le=work_queue_limit, description="Most episodes read."
        ),
        assigned_to: Id | None = Query(
            default=None, description="Only the items assigned to this biller."
        ),
        unassigned: bool = Query(default=False, description="Only the items nobody has."),
    ) -> dict[str, Any]:
        """Open rejections and denials, oldest first (of at most `limit` episodes, in id
        order); each names the biller it is assigned to, if any."""
        items: list[dict[str, Any]] = []
        today = utc_now().date()
        for episode in await store.with_work(limit):
            items += _with_deadlines(episode, domain.work_items(episode, kind), table, today)
        if assigned_to is not None:
            items = [item for item in items if item.get("assigned_to") == assigned_to]
        elif unassigned:
            items = [item for item in items if item.get("assigned_to") is None]
        items.sort(key=lambda item: str(item["opened_at"]))
        return {"kind": kind, "count": len(items), "items": items}

    @api.post("/claims/{claim_id}/corrections", status_code=202)
    async def correct(
        claim_id: str,
        body: Correction,
        biller: Biller,
        idempotency_key: IdempotencyKey = None,
    ) -> Any:
        """A rejected claim goes again as a new original claim; a denied one is replaced
        by a corrected claim (frequency 7). The old claim closes as replaced. `changes`
        (line modifiers, units, charges; the prior authorization) are billed with it."""
        claim_id, episode_id = _claim(claim_id)
        request = ClaimCorrectionRequested(
            episode_id=episode_id,
            requested_by=biller.subject,
            claim_id=claim_id,
            note=body.note,
            changes=body.changes,
        )
        reply = await service.ask(request, idempotency_key)
        return reply.response()

    @api.post("/claims/{claim_id}/void", status_code=202)
    async def void(
        claim_id: str, body: Void, biller: Biller, idempotency_key: RequiredIdempotencyKey
    ) -> Any:
        """A frequency-8 claim voids a submitted, accepted or paid claim; the payer takes
        back what it paid. Money moves: the Idempotency-Key is required."""
        claim_id, episode_id = _claim(claim_id)
        request = ClaimVoidRequested(
            episode_id=episode_id,
            requested_by=biller.subject,
            claim_id=claim_id,
            reason=body.reason,
        )
        reply = await service.ask(request, idempotency_key)
        return reply.response()

    @api.post("/claims/{claim_id}/close")
    async def close(
        claim_id: str, body: BillerAction, biller: Biller, idempotency_key: IdempotencyKey = None
    ) -> Any:
        """Closes what the payer will not pay further: a partial payment (paid), a
        denial (denial-accepted), a crossover, a void that is never answered."""
        claim_id, episode_id = _claim(claim_id)
        request = ClaimCloseRequested(
            episode_id=episode_id, requested_by=biller.subject, claim_id=claim_id, note=body.note
        )
        reply = await service.ask(request, idempotency_key)
        return reply.response()

    @api.post("/claims/{claim_id}/accept-denial")
    async def accept_denial(
        claim_id: str, body: BillerAction, biller: Biller, idempotency_key: IdempotencyKey = None
    ) -> Any:
        claim_id, episode_id = _claim(claim_id)
        request = DenialAcceptanceRequested(
            episode_id=episode_id, requested_by=biller.subject, claim_id=claim_id, note=body.note
        )
        return (await service.ask(request, idempotency_key)).body

    @api.get("/claims/{claim_id}", dependencies=[Depends(BILLERS)])
    async def claim(claim_id: str) -> dict[str, Any]:
        claim_id, episode_id = _claim(claim_id)
        episode = await store.episodes.get(episode_id)
        if episode is None:
            raise NotFound(f"claim {claim_id} not found")
        claim = episode.claim(claim_id)
        view = claim.view(episode_id)
        view["deadlines"] = deadlines_view(episode, claim, table, utc_now().date())
        return view

    @api.get(
        "/episodes/{episode_id}/claims",
        dependencies=[Depends(allow(Role.BILLER, Role.COLLECTOR))],
    )
    async def episode_claims(episode_id: str) -> dict[str, Any]:
        episode = await store.episodes.get(path_id(episode_id, "episode"))
        if episode is None:
            raise NotFound(f"episode {episode_id} not found")
        return domain.episode_view(episode)

    @api.get("/episodes/{episode_id}/claims/flow", dependencies=[Depends(allow(Role.OPS))])
    async def episode_claims_flow(episode_id: str) -> dict[str, Any]:
        """Ops' view of the episode's claims: ids, times and statuses, no codes or notes."""
        episode = await store.episodes.get(path_id(episode_id, "episode"))
        if episode is None:
            raise NotFound(f"episode {episode_id} not found")
        return flow_view(domain.episode_view(episode))

    @api.get("/stats", dependencies=[Depends(allow(Role.BILLER, Role.OPS))])
    async def stats(
        limit: int = Query(default=stats_limit, ge=1, le=stats_limit, description="Most read."),
    ) -> dict[str, Any]:
        """Claims that reached each milestone, statuses now, closings by outcome (of at
        most `limit` episodes)."""
        claims: list[domain.Claim] = []
        async for batch in store.all_claims(limit):
            claims += [domain.Claim.model_validate(claim) for claim in batch]
        return domain.count(claims)

    return api


def _with_deadlines(
    episode: domain.Episode, items: list[dict[str, Any]], table: DeadlineTable, today: date
) -> list[dict[str, Any]]:
    for item in items:
        claim = episode.claim(item["claim_id"])
        item["deadlines"] = deadlines_view(episode, claim, table, today)
    return items


# --- appeals ---------------------------------------------------------------------------

MAX_UPLOAD_BASE64 = 700_000  # a 512 KiB document in base64, under the 1 MB body limit


class UploadedDocument(Body):
    content_type: Literal["application/pdf", "text/plain"]
    content_base64: str = Field(min_length=4, max_length=MAX_UPLOAD_BASE64)
    title: str | None = Field(default=None, max_length=120)


class AppealBody(Body):
    reason: str = Field(min_length=1, max_length=300)
    line_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    documents: list[UploadedDocument] = Field(default_factory=list, max_length=3)
    document_ids: list[Annotated[str, Field(pattern=r"^DOC-[0-9a-f]{32}$")]] = Field(
        default_factory=list, max_length=10, description="Documents in the archive already."
    )
    authorization_number: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,50}$")
    timely_filing_proof: bool = Field(
        default=False, description="A document attached proves the claim was filed in time."
    )


def _documents(
    body: AppealBody, archive: DocumentArchive
) -> tuple[list[Upload], list[AppealDocument]]:
    """The uploads, checked and not kept yet, and every document of the appeal."""
    uploads: list[Upload] = []
    for upload in body.documents:
        try:
            content = base64.b64decode(upload.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("a document is not valid base64") from None
        uploads.append(Upload(content, describe(content, upload.content_type, upload.title)))
    kept = [u.document for u in uploads]
    for document_id in body.document_ids:
        found = archive.find(document_id)
        if found is None:
            raise NotFound(f"document {document_id} not found")
        kept.append(found)
    unique = {d.document_id: d for d in kept}
    return uploads, list(unique.values())


def appeal_router(service: Service, store: ClaimsStore, sender: AppealSender) -> APIRouter:
    api = APIRouter(tags=["claims", "appeals"])
    filing = AppealFiling(service.ask, store.episodes.get, sender)

    @api.post("/claims/{claim_id}/appeals", status_code=201)
    async def appeal(
        claim_id: str, body: AppealBody, biller: Biller, idempotency_key: RequiredIdempotencyKey
    ) -> dict[str, Any]:
        """Appeals a denied claim (or a denied line, `line_id`) with documents (PDF or
        text, base64, at most 512 KiB each, kept in the document archive once the appeal
        is taken) or the ids of documents kept before. Refused past the payer's appeal
        deadline (422, nothing kept). The appeal goes to the payer, whose decision is
        recorded and answered: overturned (its 835 pays the claim) or upheld (the denial
        is back in the work queue). A retry with the same Idempotency-Key finishes an
        appeal left half done."""
        claim_id, episode_id = _claim(claim_id)
        uploads, documents = _documents(body, sender.archive)
        digest = hashlib.sha256(f"{claim_id}|{idempotency_key}".encode()).hexdigest()
        request = AppealRequested(
            episode_id=episode_id,
            requested_by=biller.subject,
            claim_id=claim_id,
            appeal_id=f"AP-{digest[:24]}",
            reason=body.reason,
            line_id=body.line_id,
            documents=documents,
            authorization_number=body.authorization_number,
            timely_filing_proof=body.timely_filing_proof,
        )
        return await filing.file(request, uploads, idempotency_key)

    @api.get("/claims/{claim_id}/appeals", dependencies=[Depends(BILLERS)])
    async def appeals(claim_id: str) -> dict[str, Any]:
        claim_id, episode_id = _claim(claim_id)
        episode = await store.episodes.get(episode_id)
        if episode is None:
            raise NotFound(f"claim {claim_id} not found")
        claim = episode.claim(claim_id)
        items = [a.model_dump(mode="json") for a in claim.appeals]
        return {"claim_id": claim_id, "count": len(items), "items": items}

    @api.post("/claims/{claim_id}/appeals/{appeal_id}/resend")
    async def resend_appeal(
        claim_id: str, appeal_id: str, biller: Biller, idempotency_key: RequiredIdempotencyKey
    ) -> dict[str, Any]:
        """Sends an appeal the payer has not answered again (an overdue one, say): the
        same appeal id and documents, recorded once per Idempotency-Key on the appeal's
        history (appeal-resent). Answered with the appeal as recorded, with the payer's
        decision if it gave one; an answered appeal is not resent (409)."""
        claim_id, episode_id = _claim(claim_id)
        request = AppealResendRequested(
            episode_id=episode_id,
            requested_by=biller.subject,
            claim_id=claim_id,
            appeal_id=path_id(appeal_id, "appeal"),
        )
        return await filing.resend(request, idempotency_key)

    return api
