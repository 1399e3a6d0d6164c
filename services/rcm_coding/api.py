"""The coders' work queue over HTTP: queries read the store, commands ask the case's owner."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import ConfigDict, Field
from rcm_contracts.base import Id
from rcm_contracts.coding import CaseAssignmentRequested, CodedLine, CodesSubmissionRequested
from rcm_shared.auth import Actor, Role, allow
from rcm_shared.errors import Conflict, NotFound
from rcm_shared.http import Body, path_id
from rcm_shared.service import Service

from . import domain
from .domain import Status
from .store import CaseStore

# Open cases tried per pull: enough that coders pulling together each find one.
NEXT_CANDIDATES = 10

IdempotencyKey = Header(
    default=None, description="The same command sent again (a retry) is applied once."
)

CODERS = allow(Role.CODER, Role.CODING_LEAD)
Coder = Annotated[Actor, Depends(CODERS)]


class Line(CodedLine):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Codes(Body):
    # Only types here: the coding rules are checked by the domain, which reports every
    # problem at once instead of stopping at the first.
    diagnoses: list[str] = Field(max_length=100)
    lines: list[Line] = Field(max_length=200)


def router(service: Service, cases: CaseStore, queue_limit: int) -> APIRouter:
    api = APIRouter(tags=["coding"])

    async def episode_of(case_id: str) -> str:
        episode_id = await cases.episode_of(path_id(case_id, "coding case"))
        if episode_id is None:
            raise NotFound(f"no coding case {case_id}")
        return episode_id

    @api.get("/queue", dependencies=[Depends(CODERS)])
    async def queue(
        status: Literal["open", "in-progress", "done"] | None = None,
        coder_id: Id | None = None,
        limit: int = Query(default=queue_limit, ge=1, le=queue_limit),
    ) -> list[dict[str, Any]]:
        """Coding cases, oldest first; all of them unless filtered."""
        statuses = [Status(status)] if status is not None else list(domain.QUEUE_STATUSES)
        return [case.model_dump() for case in await cases.queue(statuses, coder_id, limit)]

    @api.post("/queue/next", responses={204: {"description": "The queue is empty."}})
    async def take_next(coder: Coder, idempotency_key: str | None = IdempotencyKey) -> Response:
        """Pull work: the coder's case in progress, else the oldest open case, assigned.
        Coders pulling at once get different cases: the owner of a case assigns it once,
        and a case another coder took a moment ago is skipped."""
        for candidate in await cases.workable(coder.subject, NEXT_CANDIDATES):
            request = CaseAssignmentRequested(
                episode_id=candidate.episode_id, requested_by=coder.subject
            )
            # One key per candidate: a retried pull asks each case the same once.
            key = None if idempotency_key is None else f"{idempotency_key}:{candidate.case_id}"
            try:
                reply = await service.ask(request, key)
            except Conflict:
                continue  # taken by another coder meanwhile
            return reply.response()
        return Response(status_code=204)

    @api.get("/cases/{case_id}", dependencies=[Depends(CODERS)])
    async def case(case_id: str) -> dict[str, Any]:
        """The documentation, suggested codes, state, coding and audit trail of a case."""
        found = await cases.get(path_id(case_id, "coding case"))
        if found is None:
            raise NotFound(f"no coding case {case_id}")
        return found.model_dump()

    @api.post("/cases/{case_id}/assign")
    async def assign(
        case_id: str, coder: Coder, idempotency_key: str | None = IdempotencyKey
    ) -> Any:
        """Take the case; 409 when another coder holds it."""
        request = CaseAssignmentRequested(
            episode_id=await episode_of(case_id), requested_by=coder.subject
        )
        return (await service.ask(request, idempotency_key)).body

    @api.post("/cases/{case_id}/codes")
    async def codes(
        case_id: str, body: Codes, coder: Coder, idempotency_key: str | None = IdempotencyKey
    ) -> Any:
        """Submit the codes: 422 lists every problem; valid codes are priced and sent on."""
        request = CodesSubmissionRequested(
            episode_id=await episode_of(case_id),
            requested_by=coder.subject,
            diagnoses=body.diagnoses,
            lines=list(body.lines),
        )
        return (await service.ask(request, idempotency_key)).body

    return api
