"""The accounts collection (one document per episode) and its queries."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from rcm_shared.service import Service
from rcm_shared.store import AggregateStore, Document

TOTAL_FIELDS = (
    "charges_cents",
    "payer_paid_cents",
    "adjustments_cents",
    "patient_paid_cents",
    "written_off_cents",
    "balance_cents",
)


class Accounts:
    def __init__(self, service: Service) -> None:
        self.aggregates: AggregateStore = service.store(
            "accounts",
            [IndexModel([("state", ASCENDING)]), IndexModel([("open_statement_id", ASCENDING)])],
        )
        self.collection = self.aggregates.collection

    async def get(self, episode_id: str) -> Document | None:
        return await self.aggregates.get(episode_id)

    async def with_open_statement(self, limit: int) -> list[Document]:
        cursor = (
            self.collection.find({"open_statement_id": {"$ne": None}}, {"outbox": 0, "applied": 0})
            .sort("_id", ASCENDING)
            .limit(limit)
        )
        return [document async for document in cursor]

    async def with_statements(self, limit: int) -> list[Document]:
        cursor = (
            self.collection.find({"statements.0": {"$exists": True}}, {"outbox": 0, "applied": 0})
            .sort("_id", ASCENDING)
            .limit(limit)
        )
        return [document async for document in cursor]

    async def summary(self, state: str | None) -> dict[str, Any]:
        """Counts and summed totals, added up by the database."""
        match: Document = {} if state is None else {"state": state}
        totals = {name: await self._sum(match, f"$totals.{name}") for name in TOTAL_FIELDS}
        return {
            "accounts": await self.collection.count_documents(match),
            "totals": totals,
            "accounts_with_credit": await self.collection.count_documents(
                {**match, "totals.balance_cents": {"$lt": 0}}
            ),
            "accounts_breaking_invariant": await self.collection.count_documents(
                {**match, "invariant_holds": False}
            ),
        }

    async def _sum(self, match: Document, field: str) -> int:
        # One accumulator per $group: FerretDB 1.24 computes only the first one of a
        # $group and returns 0 for the others, without an error.
        pipeline = [{"$match": match}, {"$group": {"_id": None, "sum": {"$sum": field}}}]
        rows = [row async for row in await self.collection.aggregate(pipeline)]
        return int(rows[0]["sum"]) if rows else 0
