"""HTTP for people: the unpostables work queue, remittances, patient payments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field
from rcm_contracts.base import Id
from rcm_contracts.payments import PaymentMethod

from .domain import Conflict, NotFound
from .handlers import Payments


class PatientPaymentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_id: Id = Field(description="The caller's idempotency key for this payment.")
    episode_id: Id
    amount_cents: Annotated[int, Field(strict=True, gt=0, description="Integer cents, > 0.")]
    method: PaymentMethod


def router(payments: Payments) -> APIRouter:
    api = APIRouter(tags=["payments"])

    @api.post("/patient-payments", status_code=201)
    async def receive_patient_payment(
        request: PatientPaymentRequest, response: Response
    ) -> dict[str, Any]:
        """201 for a new payment; 200 with the stored one when it is sent again."""
        try:
            result = await payments.receive_patient_payment(
                request.payment_id, request.episode_id, request.amount_cents, request.method
            )
        except Conflict as error:
            raise HTTPException(409, str(error)) from None
        if not result.created:
            response.status_code = 200
        return result.payment

    @api.get("/unpostables")
    async def open_unpostables() -> list[dict[str, Any]]:
        """Open unpostables, oldest first, each with the reason it was not posted."""
        return await payments.open_unpostables()

    @api.post("/unpostables/{unpostable_id}/retry")
    async def retry_unpostable(unpostable_id: str) -> dict[str, Any]:
        try:
            return await payments.retry_unpostable(unpostable_id)
        except NotFound as error:
            raise HTTPException(404, str(error)) from None
        except Conflict as error:
            raise HTTPException(409, str(error)) from None

    @api.get("/remittances/{remittance_id}")
    async def remittance(remittance_id: str) -> dict[str, Any]:
        """The remittance's postings and unpostables: ids and money only."""
        try:
            return await payments.remittance(remittance_id)
        except NotFound as error:
            raise HTTPException(404, str(error)) from None

    return api
