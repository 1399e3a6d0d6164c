"""HTTP for people: what eligibility knows about an episode (no demographics)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from rcm_shared.aggregates import Aggregates
from rcm_shared.auth import Role, allow
from rcm_shared.errors import NotFound
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

    return api
