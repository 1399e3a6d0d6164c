"""The accounts (one aggregate per episode) and the queries of people's list views."""

from __future__ import annotations

from datetime import date
from typing import Any

from pymongo import ASCENDING, IndexModel
from rcm_shared.service import Service
from rcm_shared.store import HIDDEN, Document, MongoAggregates

from .domain import Account

INDEXES = [
    IndexModel([("state", ASCENDING)]),
    IndexModel([("has_open_statement", ASCENDING)]),
    IndexModel([("has_credit_balance", ASCENDING)]),
    IndexModel([("next_dunning_on", ASCENDING)]),
]
TOTAL_FIELDS = (
    "charges_cents",
    "payer_paid_cents",
    "adjustments_cents",
    "patient_paid_cents",
    "written_off_cents",
    "balance_cents",
)
DUNNING_PROGRESS = "dunning"
STATE_ONLY = {**HIDDEN, "applied": 0}


class Accounts:
    """The aggregates and the list views' queries on their collection (scans on FerretDB,
    so bounded, and never on an event's or request's path)."""

    def __init__(self, service: Service) -> None:
        self.aggregates: MongoAggregates[Account] = service.aggregates("accounts", Account, INDEXES)
        self.collection = self.aggregates.collection
        self.progress = service.database["dunning_progress"]

    async def _listed(self, query: Document, limit: int) -> list[Account]:
        cursor = self.collection.find(query, STATE_ONLY).sort("_id", ASCENDING).limit(limit)
        return [Account.model_validate(document) async for document in cursor]

    async def with_open_statement(self, limit: int) -> list[Account]:
        return await self._listed({"has_open_statement": True}, limit)

    async def with_credit_balance(self, limit: int) -> list[Account]:
        return await self._listed({"has_credit_balance": True}, limit)

    async def with_statements(self, limit: int) -> list[Account]:
        return await self._listed({"statements.0": {"$exists": True}}, limit)

    async def dunning_due_on(self, day: date, limit: int) -> list[str]:
        """The episodes whose next dunning date is that day: an indexed equality (a range
        reads every account on FerretDB, whose GIN twins serve only equality, §18)."""
        cursor = self.collection.find({"next_dunning_on": day.isoformat()}, {"_id": 1}).limit(limit)
        return [str(document["_id"]) async for document in cursor]

    async def dunning_swept_through(self) -> date | None:
        """The last day the dunning job finished (only the job writes it)."""
        document = await self.progress.find_one({"_id": DUNNING_PROGRESS})
        return None if document is None else date.fromisoformat(document["swept_through"])

    async def record_dunning_swept(self, day: date) -> None:
        await self.progress.update_one(
            {"_id": DUNNING_PROGRESS}, {"$set": {"swept_through": day.isoformat()}}, upsert=True
        )

    async def summary(self, state: str | None, limit: int) -> dict[str, Any]:
        """Counts and summed totals (the stored derived fields only) of at most `limit`
        accounts; `complete` says whether that was all of them.

        Added up here, not by the database: FerretDB 1.24 returns 0 for `$sum` over a
        nested field and computes only the first accumulator of a `$group` (decisions §13).
        """
        match: Document = {} if state is None else {"state": state}
        totals = dict.fromkeys(TOTAL_FIELDS, 0)
        accounts = with_credit = breaking = 0
        complete = True
        projection = {"totals": 1, "invariant_holds": 1}
        async for account in self.collection.find(match, projection).limit(limit + 1):
            if accounts == limit:  # one more than asked: there are others
                complete = False
                break
            accounts += 1
            figures = account.get("totals") or {}
            for name in TOTAL_FIELDS:
                totals[name] += int(figures.get(name, 0))
            with_credit += figures.get("balance_cents", 0) < 0
            breaking += account.get("invariant_holds") is False
        return {
            "accounts": accounts,
            "totals": totals,
            "accounts_with_credit": with_credit,
            "accounts_breaking_invariant": breaking,
            "complete": complete,
        }
