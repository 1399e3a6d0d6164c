"""HTTP for people: what eligibility knows about an episode (no demographics)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from rcm_shared.aggregates import Aggregates
from rcm_shared.auth import Role, allow
from rcm_shared.errors import NotFound
from rcm_shared.flow import flow_view
from rcm_shared.http import path_id

from .domain import Verification, VerificationView


def router(verifications: Aggregates[Verification]) -> APIRouter:
    api = APIRouter(tags=["eligibility"])

    @api.get(
        "/verifications/{episode_id}",
        dependencies=[Depends(allow(Role.FRONT_DESK, Role.BILLER))],
    )
    async def verification(episode_id: str) -> VerificationView:
        """Waiting for inputs, checking, or checked, with the newest check's results."""
        found = await verifications.get(path_id(episode_id, "verification"))
        if found is None:
            raise NotFound("no verification for this episode")
        return found.view()

    @api.get("/verifications/{episode_id}/flow", dependencies=[Depends(allow(Role.OPS))])
    async def flow(episode_id: str) -> dict[str, Any]:
        """Ops' view of the verification: ids, times and statuses, no benefits."""
        found = await verifications.get(path_id(episode_id, "verification"))
        if found is None:
            raise NotFound("no verification for this episode")
        return flow_view(found.view().model_dump(mode="json"))

    return api
