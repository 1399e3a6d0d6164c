"""HTTP for people: the unpostables work queue, remittances, patient payments.

Queries read (any replica); commands ask the owner of the aggregate they change. Both
commands move money, so both need an Idempotency-Key (rcm_shared.http).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import Field
from rcm_contracts.base import Id
from rcm_contracts.payments import (
    PatientPaymentRequested,
    PaymentMethod,
    UnpostableRetryRequested,
)
from rcm_shared.archive_lookup import find_archived, read_archived
from rcm_shared.auth import Actor, Role, allow
from rcm_shared.clearinghouse import X12Archive
from rcm_shared.errors import Invalid, NotFound
from rcm_shared.http import (
    KEY_REQUIRED_RESPONSES,
    AmountCents,
    Body,
    RequiredIdempotencyKey,
    path_id,
)
from rcm_shared.service import Service

from . import domain
from .mailbox import UnreadableUpload, post_transactions, read_upload
from .store import PaymentsStore

BILLERS = allow(Role.BILLER)
Biller = Annotated[Actor, Depends(BILLERS)]
Cashier = Annotated[Actor, Depends(allow(Role.FRONT_DESK, Role.COLLECTOR))]


class PatientPaymentRequest(Body):
    payment_id: Id = Field(description="The caller's idempotency key for this payment.")
    episode_id: Id
    amount_cents: AmountCents
    method: PaymentMethod


def router(service: Service, store: PaymentsStore) -> APIRouter:
    api = APIRouter(tags=["payments"])

    @api.post("/patient-payments", status_code=201, responses=KEY_REQUIRED_RESPONSES)
    async def receive_patient_payment(
        body: PatientPaymentRequest, cashier: Cashier, idempotency_key: RequiredIdempotencyKey
    ) -> Any:
        """201 for a new payment; 200 with the stored one when it is sent again; 409 for
        another payment under a used payment_id. A retry under the same Idempotency-Key
        (e.g. after a 503) is the same request: answered as it was, 201 if it recorded it."""
        request = PatientPaymentRequested(
            requested_by=cashier.subject,
            payment_id=body.payment_id,
            episode_id=body.episode_id,
            amount_cents=body.amount_cents,
            method=body.method,
        )
        reply = await service.ask(request, idempotency_key)
        return reply.response()

    @api.get("/unpostables", dependencies=[Depends(BILLERS)])
    async def open_unpostables(
        limit: int = Query(1000, ge=1, le=10_000, description="Most remittances read."),
    ) -> list[dict[str, Any]]:
        """Open unpostables, oldest first, each with the reason it was not posted."""
        remittances, unreadable = await store.open_unpostables(limit)
        return domain.open_unpostable_views(remittances, unreadable)

    @api.post("/unpostables/{unpostable_id}/retry", responses=KEY_REQUIRED_RESPONSES)
    async def retry_unpostable(
        unpostable_id: str, biller: Biller, idempotency_key: RequiredIdempotencyKey
    ) -> Any:
        """200 with the posting; 404 for no such unpostable; 409 with why it cannot be
        posted (still unknown, or a rule it breaks)."""
        found = await store.find_unpostable(path_id(unpostable_id, "unpostable"))
        if found is None:
            raise NotFound("no such unpostable")
        request = UnpostableRetryRequested(
            requested_by=biller.subject, unpostable_id=found.entry.id, holder_id=found.holder_id
        )
        reply = await service.ask(request, idempotency_key)
        return reply.body

    @api.get("/remittances/{remittance_id}", dependencies=[Depends(BILLERS)])
    async def remittance(remittance_id: str) -> dict[str, Any]:
        """The remittance's postings and unpostables: ids and money only."""
        found = await store.remittances.get(path_id(remittance_id, "remittance"))
        if found is None:
            raise NotFound(f"no remittance {remittance_id}")
        return domain.remittance_view(found)

    return api


# --- 835 files billers upload, and the payers' re-sent copies ---------------------------

# The body is read as it is, whatever its content type (application/edi-x12 too); the
# schema names text/plain, which API tools (and the fuzz test) know how to send.
X12_BODY = {
    "requestBody": {"required": True, "content": {"text/plain": {"schema": {"type": "string"}}}}
}


def remittance_files_router(
    service: Service, store: PaymentsStore, archive: X12Archive
) -> APIRouter:
    api = APIRouter(tags=["payments"])

    @api.post(
        "/remittance-files",
        dependencies=[Depends(BILLERS)],
        responses={**KEY_REQUIRED_RESPONSES, 422: {"description": "Not a readable 835."}},
        openapi_extra=X12_BODY,
    )
    async def upload_remittance_file(
        http: Request, idempotency_key: RequiredIdempotencyKey
    ) -> dict[str, Any]:
        """An 835 a biller got from a payer portal, posted as the mailbox reader posts
        one: archived, read, one posting request per transaction. 200 with what each
        transaction came to (posted, unbalanced, copy, trace-reused); 422 with where when
        it is not a readable 835 (nothing kept). The same file again is answered as it
        was: the document is named by its content, not by the Idempotency-Key."""
        try:
            text = (await http.body()).decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid("the file is not UTF-8 text") from None
        try:
            document_id, transactions = read_upload(text)
        except UnreadableUpload as error:
            raise Invalid(f"not a readable 835: {error}") from None
        archive.keep("received", "835", document_id, text)
        answers = await post_transactions(service.ask, document_id, transactions)
        return {"document_id": document_id, "transactions": answers}

    @api.get("/remittance-copies", dependencies=[Depends(BILLERS)])
    async def remittance_copies(
        limit: int = Query(100, ge=1, le=1000, description="Most remittances read."),
    ) -> list[dict[str, Any]]:
        """Remittances a payer sent again (new interchange, same payer and trace), with
        where each copy came from; none of them was posted twice. Oldest first."""
        return [domain.copies_view(r) for r in await store.remittances_with_copies(limit)]

    @api.get(
        "/claims/{claim_id}/documents/{remittance_id}",
        dependencies=[Depends(BILLERS)],
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {}}, "description": "The 835's X12 text."}},
    )
    async def claim_remittance_document(claim_id: str, remittance_id: str) -> PlainTextResponse:
        """The archived 835 that carried a posting of the claim (claims' history names it
        by remittance id). Patient data: billers only, every fetch is in the audit trail
        under the claim and the remittance."""
        claim_id = path_id(claim_id, "claim")
        remittance = await store.remittances.get(path_id(remittance_id, "remittance"))
        if remittance is None or not any(p.claim_id == claim_id for p in remittance.postings):
            raise NotFound(f"no remittance {remittance_id} posted for claim {claim_id}")
        path = find_archived(
            archive.root.parent,
            archive.root.name,
            "received",
            "835",
            remittance.document_id,
            [remittance.received_at],
        )
        if path is None:
            raise NotFound(f"the 835 of remittance {remittance_id} is not in this archive")
        return PlainTextResponse(read_archived(path))

    return api
