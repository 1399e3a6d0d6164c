"""Bulk actions: one person's command over many aggregates, each item its own request.

Each item is asked of its owner with an Idempotency-Key derived from the bulk's key and
the item's id, so a retry of the whole bulk applies each item once, and an item refused
or unanswered the first time is asked again. The answer lists every item's outcome; the
one audit record of the call names every item (`audit_resources`, see audit.py).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal

from fastapi import Request
from pydantic import BaseModel, Field
from rcm_contracts.base import Id

from .errors import Refusal, TransientError
from .requests import Reply

MAX_BULK_ITEMS = 200
CONCURRENCY = 8  # the owners apply one at a time anyway; this bounds what waits on them

BulkIds = Annotated[
    list[Id], Field(min_length=1, max_length=MAX_BULK_ITEMS, description="At most 200 ids.")
]


OUTCOMES = ("done", "refused", "unanswered")


class ItemOutcome(BaseModel):
    id: str
    outcome: Literal["done", "refused", "unanswered"]
    status: int
    reason: str | None = None
    answer: Any = None


def item_key(bulk_key: str, item_id: str) -> str:
    """The item's own Idempotency-Key: the same for every retry of the same bulk."""
    digest = hashlib.sha256(f"{bulk_key}\x1f{item_id}".encode()).hexdigest()
    return f"bulk-{digest[:40]}"


def unique(ids: Sequence[str]) -> list[str]:
    """The ids in their order, each once: an id twice in one bulk is one item."""
    return list(dict.fromkeys(ids))


def name_resources(http: Request, ids: Sequence[str]) -> None:
    """The call's audit record names every item."""
    http.state.audit_resources = list(ids)


async def run_bulk(
    ids: Sequence[str],
    bulk_key: str,
    ask_one: Callable[[str, str], Awaitable[Reply]],
) -> dict[str, Any]:
    """Asks `ask_one(item_id, item_key)` for every id and says how each ended: done (the
    owner's answer), refused (its reason: ids and rules only) or unanswered (retry the
    bulk with the same key)."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(item_id: str) -> ItemOutcome:
        async with gate:
            try:
                reply = await ask_one(item_id, item_key(bulk_key, item_id))
            except Refusal as refusal:
                reason = "; ".join(map(str, refusal.reasons)) or refusal.message
                return ItemOutcome(
                    id=item_id, outcome="refused", status=refusal.http_status, reason=reason
                )
            except TransientError:
                return ItemOutcome(
                    id=item_id,
                    outcome="unanswered",
                    status=503,
                    reason="no answer yet: retry the bulk with the same Idempotency-Key",
                )
            return ItemOutcome(id=item_id, outcome="done", status=reply.status, answer=reply.body)

    outcomes = await asyncio.gather(*(one(item_id) for item_id in ids))
    counts = {kind: sum(o.outcome == kind for o in outcomes) for kind in OUTCOMES}
    return {
        "count": len(outcomes),
        **counts,
        "items": [o.model_dump(mode="json", exclude_none=True) for o in outcomes],
    }
