"""The biller's HTTP API: work queues, corrections, accepted denials, claim views, stats.

Queries read the store; commands ask the episode's owner (rcm_shared.requests).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from pydantic import Field
from rcm_contracts.claims import (
    ClaimChanges,
    ClaimCloseRequested,
    ClaimCorrectionRequested,
    ClaimVoidRequested,
    DenialAcceptanceRequested,
)
from rcm_shared.auth import Actor, Role, allow
from rcm_shared.errors import NotFound
from rcm_shared.http import Body, RequiredIdempotencyKey, path_id
from rcm_shared.service import Service

from . import domain
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
    service: Service, store: ClaimsStore, work_queue_limit: int, stats_limit: int
) -> APIRouter:
    api = APIRouter(tags=["claims"])

    @api.get("/work-queue", dependencies=[Depends(BILLERS)])
    async def work_queue(
        kind: Literal["rejection", "denial"] | None = Query(default=None),
        limit: int = Query(
            default=work_queue_limit, ge=1, le=work_queue_limit, description="Most episodes read."
        ),
    ) -> dict[str, Any]:
        """Open rejections and denials, oldest first (of at most `limit` episodes, in id
        order)."""
        items: list[dict[str, Any]] = []
        for episode in await store.with_work(limit):
            items += domain.work_items(episode, kind)
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
        return episode.claim(claim_id).view(episode_id)

    @api.get(
        "/episodes/{episode_id}/claims",
        dependencies=[Depends(allow(Role.BILLER, Role.COLLECTOR))],
    )
    async def episode_claims(episode_id: str) -> dict[str, Any]:
        episode = await store.episodes.get(path_id(episode_id, "episode"))
        if episode is None:
            raise NotFound(f"episode {episode_id} not found")
        return domain.episode_view(episode)

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
