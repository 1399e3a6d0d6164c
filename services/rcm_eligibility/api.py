"""HTTP for people: what eligibility knows about an episode (no demographics)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from .handlers import Eligibility


def router(eligibility: Eligibility) -> APIRouter:
    api = APIRouter(tags=["eligibility"])

    @api.get("/verifications/{episode_id}")
    async def verification(episode_id: str) -> dict[str, Any]:
        """Waiting for inputs, checking, or checked, with the newest check's results."""
        found = await eligibility.get(episode_id)
        if found is None:
            raise HTTPException(404, "no verification for this episode")
        return found.view()

    return api
