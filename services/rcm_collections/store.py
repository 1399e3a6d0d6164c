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
        group: Document = {"_id": None, "accounts": {"$sum": 1}}
        for name in TOTAL_FIELDS:
            group[name] = {"$sum": f"$totals.{name}"}
        rows = [
            row
            async for row in await self.collection.aggregate([{"$match": match}, {"$group": group}])
        ]
        totals = {name: int(rows[0][name]) if rows else 0 for name in TOTAL_FIELDS}
        accounts = int(rows[0]["accounts"]) if rows else 0
        broken = await self.collection.count_documents({**match, "invariant_holds": False})
        credit = await self.collection.count_documents(
            {**match, "totals.balance_cents": {"$lt": 0}}
        )
        return {
            "accounts": accounts,
            "totals": totals,
            "accounts_with_credit": credit,
            "accounts_breaking_invariant": broken,
        }
