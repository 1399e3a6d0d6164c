"""HTTP for people: the unpostables work queue, remittances, patient payments.

Queries read (any replica); commands ask the owner of the aggregate they change. Both
commands move money, so both need an Idempotency-Key (rcm_shared.http).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field
from rcm_contracts.base import Id
from rcm_contracts.payments import (
    PatientPaymentRequested,
    PaymentMethod,
    UnpostableRetryRequested,
)
from rcm_shared.auth import Actor, Role, allow
from rcm_shared.errors import NotFound
from rcm_shared.http import (
    KEY_REQUIRED_RESPONSES,
    AmountCents,
    Body,
    RequiredIdempotencyKey,
    path_id,
)
from rcm_shared.service import Service

from . import domain
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
