"""The biller's HTTP API: work queues, corrections, accepted denials, claim views, stats."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from . import domain
from .handlers import Handlers

BillerId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
]


class BillerAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    biller_id: BillerId
    note: str = Field(min_length=1, max_length=300)


def router(handlers: Handlers) -> APIRouter:
    api = APIRouter(tags=["claims"])

    @api.get("/work-queue")
    async def work_queue(
        kind: Literal["rejection", "denial"] | None = Query(default=None),
    ) -> dict[str, Any]:
        """Open rejections and denials, oldest first."""
        items = await handlers.work_queue(kind)
        return {"kind": kind, "count": len(items), "items": items}

    @api.post("/claims/{claim_id}/corrections", status_code=202)
    async def correct(claim_id: str, body: BillerAction) -> dict[str, Any]:
        """A rejected claim goes again as a new original claim; a denied one is replaced
        by a corrected claim (frequency 7). The old claim closes as replaced."""
        try:
            result = await handlers.correct(claim_id, body.biller_id, body.note)
        except domain.NotFound as error:
            raise HTTPException(404, str(error)) from None
        except domain.Conflict as error:
            raise HTTPException(409, str(error)) from None
        return {
            "claim_id": result.new_claim_id,
            "replaces_claim_id": result.claim_id,
            "frequency": result.frequency.value if result.frequency else None,
        }

    @api.post("/claims/{claim_id}/accept-denial")
    async def accept_denial(claim_id: str, body: BillerAction) -> dict[str, Any]:
        try:
            await handlers.accept_denial(claim_id, body.biller_id, body.note)
        except domain.NotFound as error:
            raise HTTPException(404, str(error)) from None
        except domain.Conflict as error:
            raise HTTPException(409, str(error)) from None
        return {"claim_id": claim_id, "outcome": "denial-accepted"}

    @api.get("/claims/{claim_id}")
    async def claim(claim_id: str) -> dict[str, Any]:
        try:
            return await handlers.claim(claim_id)
        except domain.NotFound as error:
            raise HTTPException(404, str(error)) from None

    @api.get("/episodes/{episode_id}/claims")
    async def episode_claims(episode_id: str) -> dict[str, Any]:
        try:
            return await handlers.episode(episode_id)
        except domain.NotFound as error:
            raise HTTPException(404, str(error)) from None

    @api.get("/stats")
    async def stats() -> dict[str, Any]:
        """Claims that reached each milestone, statuses now, closings by outcome."""
        return await handlers.stats()

    return api
