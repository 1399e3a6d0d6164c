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
STATE_ONLY = {**HIDDEN, "applied": 0}


class Accounts:
    """The aggregates and the list views' queries on their collection (scans on FerretDB,
    so bounded, and never on an event's or request's path)."""

    def __init__(self, service: Service) -> None:
        self.aggregates: MongoAggregates[Account] = service.aggregates("accounts", Account, INDEXES)
        self.collection = self.aggregates.collection

    async def _listed(self, query: Document, limit: int) -> list[Account]:
        cursor = self.collection.find(query, STATE_ONLY).sort("_id", ASCENDING).limit(limit)
        return [Account.model_validate(document) async for document in cursor]

    async def with_open_statement(self, limit: int) -> list[Account]:
        return await self._listed({"has_open_statement": True}, limit)

    async def with_credit_balance(self, limit: int) -> list[Account]:
        return await self._listed({"has_credit_balance": True}, limit)

    async def with_statements(self, limit: int) -> list[Account]:
        return await self._listed({"statements.0": {"$exists": True}}, limit)

    async def dunning_due(self, as_of: date, limit: int) -> list[tuple[str, str]]:
        """(episode id, its next dunning date) of accounts with dunning due by `as_of`,
        earliest first: a range on the indexed date, not a read of every account."""
        cursor = (
            self.collection.find(
                {"next_dunning_on": {"$lte": as_of.isoformat()}}, {"next_dunning_on": 1}
            )
            .sort("next_dunning_on", ASCENDING)
            .limit(limit)
        )
        return [
            (str(document["_id"]), str(document["next_dunning_on"])) async for document in cursor
        ]

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
