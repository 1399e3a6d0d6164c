"""The coders' work queue over HTTP: queries read the store, commands ask the case's owner."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field
from rcm_contracts.base import Id
from rcm_contracts.coding import (
    CaseAssignmentRequested,
    CaseReassignmentRequested,
    CodedLine,
    CoderProfileRequested,
    CodesSubmissionRequested,
    CodingQueryAnswerRequested,
    CodingQueryRequested,
    CodingReviewRequested,
    QueryReason,
)
from rcm_shared.auth import Actor, Role, allow
from rcm_shared.errors import Conflict, NotFound, Refusal
from rcm_shared.http import Body, path_id
from rcm_shared.service import Service

from . import domain
from .domain import Case, QueryStatus, Status
from .store import CaseStore

# Open cases tried per pull: enough that coders pulling together each find one.
NEXT_CANDIDATES = 10

IdempotencyKey = Header(
    default=None, description="The same command sent again (a retry) is applied once."
)

CODERS = allow(Role.CODER, Role.CODING_LEAD)
Coder = Annotated[Actor, Depends(CODERS)]
LEADS = allow(Role.CODING_LEAD)
Lead = Annotated[Actor, Depends(LEADS)]
# Bounds of people's lists and of the facts one day's productivity reads.
LIST_LIMIT = 500
DAY_FACTS_LIMIT = 50_000


class Line(CodedLine):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Codes(Body):
    # Only types here: the coding rules are checked by the domain, which reports every
    # problem at once instead of stopping at the first.
    diagnoses: list[str] = Field(max_length=100)
    lines: list[Line] = Field(max_length=200)


class QueryBody(Body):
    reason: QueryReason
    question: str = Field(min_length=1, max_length=2000, description="Kept in coding only.")


class Answer(Body):
    answer: str = Field(
        min_length=1, max_length=4000, description="The physician's reply, as an addendum."
    )


class Reassignment(Body):
    coder_id: Id


class Profile(Body):
    specialties: list[str] = Field(max_length=20)


class ReviewBody(Body):
    agreed: bool
    diagnoses: list[str] = Field(default_factory=list, max_length=100)
    lines: list[Line] = Field(default_factory=list, max_length=200)


def query_id_for(case_id: str, idempotency_key: str | None) -> str:
    """A retried hold (same Idempotency-Key) names the same query."""
    if idempotency_key is None:
        return "Q" + uuid.uuid4().hex[:12]
    return "Q" + hashlib.sha256(f"{case_id}|{idempotency_key}".encode()).hexdigest()[:12]


def minutes_since(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round((now - moment).total_seconds() / 60, 1)


def router(service: Service, cases: CaseStore, queue_limit: int) -> APIRouter:
    api = APIRouter(tags=["coding"])

    async def episode_of(case_id: str) -> str:
        episode_id = await cases.episode_of(path_id(case_id, "coding case"))
        if episode_id is None:
            raise NotFound(f"no coding case {case_id}")
        return episode_id

    async def with_texts(case: Case) -> dict[str, Any]:
        """The case as people read it: each query with its words, each answer also as an
        addendum to the documentation."""
        view = case.model_dump()
        texts = await cases.texts_of([query.query_id for query in case.queries])
        for query in view["queries"]:
            text = texts.get(query["query_id"], {})
            query["question"] = text.get("question")
            query["answer"] = text.get("answer")
        view["addenda"] = [
            {
                "query_id": query["query_id"],
                "reason": query["reason"],
                "text": query["answer"],
                "recorded_by": query["answered_by"],
                "recorded_at": query["answered_at"],
            }
            for query in view["queries"]
            if query["status"] == QueryStatus.ANSWERED
        ]
        return view

    async def answered(reply_body: Any) -> Any:
        """A case the owner answered with, its queries' words joined as on GET."""
        if not isinstance(reply_body, dict) or "case_id" not in reply_body:
            return reply_body
        if not reply_body.get("queries"):
            return {**reply_body, "addenda": []}  # no words to read
        return jsonable_encoder(await with_texts(Case.model_validate(reply_body)))

    @api.get("/queue", dependencies=[Depends(CODERS)])
    async def queue(
        status: Literal["open", "in-progress", "on-hold", "done"] | None = None,
        coder_id: Id | None = None,
        limit: int = Query(default=queue_limit, ge=1, le=queue_limit),
    ) -> list[dict[str, Any]]:
        """Coding cases, oldest first; all of them unless filtered."""
        statuses = [Status(status)] if status is not None else list(domain.QUEUE_STATUSES)
        return [case.model_dump() for case in await cases.queue(statuses, coder_id, limit)]

    @api.post("/queue/next", responses={204: {"description": "The queue is empty."}})
    async def take_next(coder: Coder, idempotency_key: str | None = IdempotencyKey) -> Response:
        """Pull work: the coder's case in progress, else the highest-priority open case of
        their specialties (any, when their profile lists none), assigned. Coders pulling
        at once get different cases: the owner of a case assigns it once, and a case
        another coder took a moment ago is skipped."""
        profile = await cases.coder(coder.subject)
        specialties = [s.value for s in profile.specialties] if profile is not None else []
        for candidate in await cases.workable(coder.subject, NEXT_CANDIDATES, specialties):
            request = CaseAssignmentRequested(
                episode_id=candidate.episode_id, requested_by=coder.subject
            )
            # One key per candidate: a retried pull asks each case the same once.
            key = None if idempotency_key is None else f"{idempotency_key}:{candidate.case_id}"
            try:
                reply = await service.ask(request, key)
            except Conflict:
                continue  # taken by another coder meanwhile
            return JSONResponse(await answered(reply.body), status_code=reply.status)
        return Response(status_code=204)

    @api.get("/cases/{case_id}", dependencies=[Depends(CODERS)])
    async def case(case_id: str) -> dict[str, Any]:
        """The documentation, suggested codes, state, coding and audit trail of a case."""
        found = await cases.get(path_id(case_id, "coding case"))
        if found is None:
            raise NotFound(f"no coding case {case_id}")
        return await with_texts(found)

    @api.post("/cases/{case_id}/assign")
    async def assign(
        case_id: str, coder: Coder, idempotency_key: str | None = IdempotencyKey
    ) -> Any:
        """Take the case; 409 when another coder holds it."""
        request = CaseAssignmentRequested(
            episode_id=await episode_of(case_id), requested_by=coder.subject
        )
        return await answered((await service.ask(request, idempotency_key)).body)

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

    @api.post("/cases/{case_id}/queries")
    async def raise_query(
        case_id: str, body: QueryBody, coder: Coder, idempotency_key: str | None = IdempotencyKey
    ) -> Any:
        """Hold the case with a query to the physician: it leaves the workable queue until
        the answer is recorded, then comes back to its coder. The question stays here."""
        episode_id = await episode_of(case_id)
        query_id = query_id_for(case_id, idempotency_key)
        await cases.keep_question(query_id, case_id, body.question)
        request = CodingQueryRequested(
            episode_id=episode_id,
            requested_by=coder.subject,
            query_id=query_id,
            reason=body.reason,
        )
        try:
            reply = await service.ask(request, idempotency_key)
        except Refusal:
            # No query was raised: its words are not kept for nothing.
            await cases.forget_question(query_id)
            raise
        return {"query_id": query_id, **(await answered(reply.body))}

    @api.post("/cases/{case_id}/queries/{query_id}/answer")
    async def answer_query(
        case_id: str,
        query_id: str,
        body: Answer,
        coder: Coder,
        idempotency_key: str | None = IdempotencyKey,
    ) -> Any:
        """Record the physician's reply, an addendum to the documentation; the case goes
        back to its coder. A query answered already keeps its first answer."""
        found = await cases.get(path_id(case_id, "coding case"))
        query_id = path_id(query_id, "query")
        if found is None:
            raise NotFound(f"no coding case {case_id}")
        query = next((q for q in found.queries if q.query_id == query_id), None)
        if query is None:
            raise NotFound(f"no query {query_id} on coding case {case_id}")
        if query.status is QueryStatus.OPEN:
            await cases.keep_answer(query_id, body.answer)
        request = CodingQueryAnswerRequested(
            episode_id=found.episode_id, requested_by=coder.subject, query_id=query_id
        )
        return await answered((await service.ask(request, idempotency_key)).body)

    @api.get("/queries", dependencies=[Depends(CODERS)])
    async def queries(
        status: Literal["open"] = "open",
        limit: int = Query(default=LIST_LIMIT, ge=1, le=LIST_LIMIT),
    ) -> list[dict[str, Any]]:
        """Open physician queries, the longest waiting first, with their age in minutes."""
        now = datetime.now(UTC)
        found: list[dict[str, Any]] = []
        for case in await cases.on_hold(limit):
            for query in case.queries:
                if query.status is QueryStatus.OPEN:
                    found.append(
                        {
                            "case_id": case.case_id,
                            "episode_id": case.episode_id,
                            "query_id": query.query_id,
                            "reason": query.reason.value,
                            "coder_id": query.coder_id,
                            "raised_at": query.raised_at,
                            "age_minutes": minutes_since(query.raised_at, now),
                        }
                    )
        texts = await cases.texts_of([item["query_id"] for item in found])
        for item in found:
            item["question"] = texts.get(item["query_id"], {}).get("question")
        return sorted(found, key=lambda item: item["raised_at"])

    @api.post("/cases/{case_id}/reassign")
    async def reassign(
        case_id: str, body: Reassignment, lead: Lead, idempotency_key: str | None = IdempotencyKey
    ) -> Any:
        """A coding lead gives the case to another coder (on the case's audit trail)."""
        request = CaseReassignmentRequested(
            episode_id=await episode_of(case_id),
            requested_by=lead.subject,
            coder_id=body.coder_id,
        )
        return await answered((await service.ask(request, idempotency_key)).body)

    @api.get("/coders", dependencies=[Depends(CODERS)])
    async def coders(
        limit: int = Query(default=LIST_LIMIT, ge=1, le=LIST_LIMIT),
    ) -> list[dict[str, Any]]:
        """Coders' profiles: the specialties each works."""
        return [profile.model_dump(mode="json") for profile in await cases.coder_profiles(limit)]

    @api.put("/coders/{coder_id}")
    async def set_coder(
        coder_id: str, body: Profile, lead: Lead, idempotency_key: str | None = IdempotencyKey
    ) -> Any:
        """Which specialties the coder works (none listed: any)."""
        request = CoderProfileRequested(
            requested_by=lead.subject,
            coder_id=path_id(coder_id, "coder"),
            specialties=body.specialties,
        )
        return (await service.ask(request, idempotency_key)).body

    @api.get("/productivity", dependencies=[Depends(LEADS)])
    async def productivity(day: date) -> dict[str, Any]:
        """Per coder on one day (UTC): cases coded, lines, median minutes from assignment
        to submission, queries raised, and the audit reviews' accuracy (agreed/reviewed)."""
        facts = await cases.facts_of(day.isoformat(), DAY_FACTS_LIMIT)
        coders = domain.productivity(facts)
        return {"day": day.isoformat(), "coders": [coder.model_dump() for coder in coders]}

    @api.get("/reviews", dependencies=[Depends(LEADS)])
    async def reviews(
        status: Literal["open"] = "open",
        limit: int = Query(default=LIST_LIMIT, ge=1, le=LIST_LIMIT),
    ) -> list[dict[str, Any]]:
        """Sampled cases waiting for the coding lead's audit review, oldest first."""
        return [case.model_dump() for case in await cases.in_review(limit)]

    @api.post("/cases/{case_id}/review")
    async def review(
        case_id: str, body: ReviewBody, lead: Lead, idempotency_key: str | None = IdempotencyKey
    ) -> Any:
        """Agree with a sampled case's coding, or correct it: the case goes back to its
        coder for a recode with the corrected codes."""
        request = CodingReviewRequested(
            episode_id=await episode_of(case_id),
            requested_by=lead.subject,
            agreed=body.agreed,
            diagnoses=body.diagnoses,
            lines=list(body.lines),
        )
        return await answered((await service.ask(request, idempotency_key)).body)

    return api
