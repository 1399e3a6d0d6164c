"""The coders' work queue over HTTP."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from rcm_contracts.base import Id
from rcm_shared.errors import TransientError

from . import domain
from .domain import Status
from .handlers import CodingHandlers
from .store import CaseStore


class Request(BaseModel):
    # Only types here: the coding rules are checked by the domain, which reports every
    # problem at once instead of stopping at the first.
    model_config = ConfigDict(extra="forbid")


class Assignment(Request):
    coder_id: Id


class Line(Request):
    procedure_code: str = Field(max_length=40)
    modifiers: list[str] = Field(default_factory=list, max_length=20)
    units: int = 1
    diagnosis_pointers: list[int] = Field(max_length=20)


class Codes(Request):
    coder_id: Id
    diagnoses: list[str] = Field(max_length=100)
    lines: list[Line] = Field(max_length=200)

    def coding(self) -> domain.Coding:
        return domain.Coding(
            diagnoses=tuple(self.diagnoses),
            lines=tuple(
                domain.LineInput(
                    procedure_code=line.procedure_code,
                    modifiers=tuple(line.modifiers),
                    units=line.units,
                    diagnosis_pointers=tuple(line.diagnosis_pointers),
                )
                for line in self.lines
            ),
        )


def refusal(error: domain.Refusal | TransientError) -> HTTPException:
    if isinstance(error, domain.InvalidCoding):
        return HTTPException(422, detail=error.reasons)
    if isinstance(error, domain.CaseNotFound):
        return HTTPException(404, detail=str(error))
    if isinstance(error, domain.CaseConflict):
        return HTTPException(409, detail=str(error))
    return HTTPException(503, detail="busy, try again")


def router(handlers: CodingHandlers, cases: CaseStore, queue_limit: int) -> APIRouter:
    api = APIRouter(tags=["coding"])

    @api.get("/queue")
    async def queue(
        status: Literal["open", "in-progress", "done"] | None = None,
        coder_id: Id | None = None,
        limit: int = Query(default=queue_limit, ge=1, le=queue_limit),
    ) -> list[dict[str, Any]]:
        """Coding cases, oldest first; all of them unless filtered."""
        statuses = [Status(status)] if status is not None else list(domain.QUEUE_STATUSES)
        return await cases.queue(statuses, coder_id, limit)

    @api.post("/queue/next", responses={204: {"description": "The queue is empty."}})
    async def take_next(body: Assignment) -> Response:
        """Pull work: the coder's case in progress, else the oldest open case, assigned."""
        try:
            case = await handlers.take_next(body.coder_id)
        except TransientError as error:
            raise refusal(error) from None
        if case is None:
            return Response(status_code=204)
        return JSONResponse(jsonable_encoder(case))

    @api.get("/cases/{case_id}")
    async def case(case_id: str) -> dict[str, Any]:
        """The documentation, suggested codes, state, coding and audit trail of a case."""
        found = await cases.get(case_id)
        if found is None:
            raise HTTPException(404, detail=f"no coding case {case_id}")
        return found

    @api.post("/cases/{case_id}/assign")
    async def assign(case_id: str, body: Assignment) -> dict[str, Any]:
        """Take the case; 409 when another coder holds it."""
        try:
            return await handlers.assign(case_id, body.coder_id)
        except (domain.Refusal, TransientError) as error:
            raise refusal(error) from None

    @api.post("/cases/{case_id}/codes")
    async def codes(case_id: str, body: Codes) -> dict[str, Any]:
        """Submit the codes: 422 lists every problem; valid codes are priced and sent on."""
        try:
            return await handlers.submit_codes(case_id, body.coder_id, body.coding())
        except (domain.Refusal, TransientError) as error:
            raise refusal(error) from None

    return api
