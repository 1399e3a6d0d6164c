"""The KPI read model: per-episode facts and the daily rollup counters.

`episodes` holds one aggregate per episode (its facts, keyed by episode id). `rollups`
holds one counter per day, payer and Kafka partition (`<day>|<payer>|p<partition>`),
written only by that partition's owner; a query sums the few partition counters of
the days it asks for, one day at a time: FerretDB serves an equality on `day` from its
index and reads every counter for a range. Nothing here runs on an event's path but
the port's reads and writes by id. The aged A/R reads the episodes with an open claim
through the indexed `has_open_ar` flag (with PostgreSQL's GIN twins, decisions §18, an
index lookup), bounded by a limit.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from rcm_shared.service import Service
from rcm_shared.store import Document, MongoAggregates

from . import domain
from .domain import EpisodeFacts, OpenClaim, Rollup

EPISODE_INDEXES = [IndexModel([("has_open_ar", ASCENDING)])]
ROLLUP_INDEXES = [IndexModel([("day", ASCENDING)])]
ROLLUP_FIELDS = {"_id": 0, "day": 1, "payer": 1, "partition": 1, "counts": 1}


class KpiStore:
    def __init__(self, service: Service) -> None:
        self.episodes: MongoAggregates[EpisodeFacts] = service.aggregates(
            "episodes", EpisodeFacts, EPISODE_INDEXES
        )
        self.rollups: MongoAggregates[Rollup] = service.aggregates(
            "rollups", Rollup, ROLLUP_INDEXES
        )
        self._first_charge_day: date | None = None

    async def rollups_between(self, first: date, last: date, payer: str | None) -> list[Rollup]:
        """Every counter of the days first..last (and of one payer, when given)."""
        found: list[Rollup] = []
        for offset in range((last - first).days + 1):
            where: Document = {"day": (first + timedelta(days=offset)).isoformat()}
            if payer is not None:
                where["payer"] = payer
            cursor = self.rollups.collection.find(where, ROLLUP_FIELDS)
            found += [Rollup.model_validate(document) async for document in cursor]
        return found

    async def first_charge_day(self) -> date | None:
        """The first day any gross charges were billed: how much history there is. A
        scan of the counters until one is found; then kept, because charges are counted
        on the day they are billed, so no earlier day can appear later."""
        if self._first_charge_day is None:
            cursor = self.rollups.collection.find(
                {"counts.gross_charges_cents": {"$gt": 0}}, {"_id": 0, "day": 1}
            )
            days = [date.fromisoformat(document["day"]) async for document in cursor]
            self._first_charge_day = min(days, default=None)
        return self._first_charge_day

    async def open_claims(self, payer: str | None, limit: int) -> tuple[list[OpenClaim], bool]:
        """The open primary claims of at most `limit` episodes, and whether that was all."""
        cursor = self.episodes.collection.find({"has_open_ar": True}, {"_id": 0, "open_ar": 1})
        found: list[OpenClaim] = []
        episodes = 0
        async for document in cursor.limit(limit + 1):
            if episodes == limit:
                return found, False
            episodes += 1
            for item in document.get("open_ar") or ():
                claim = OpenClaim.model_validate(item)
                if payer is None or claim.payer == payer:
                    found.append(claim)
        return found, True

    async def report(
        self, first: date, last: date, payer: str | None, today: date, open_limit: int
    ) -> dict[str, Any]:
        """GET /kpis: the rates of first..last summed in total, per payer and per day;
        days in A/R and aged A/R as of `today`."""
        report = domain.summed(await self.rollups_between(first, last, payer))
        window_start, window_end = domain.history_window(today)
        first_charge = await self.first_charge_day()
        if first_charge is not None:
            window_start = max(window_start, first_charge)
        charges: dict[str, int] = defaultdict(int)
        for rollup in await self.rollups_between(window_start, window_end, payer):
            charges[rollup.payer] += rollup.counts.get("gross_charges_cents", 0)
        open_ar, complete = await self.open_claims(payer, open_limit)
        receivables = domain.receivables(open_ar, charges, first_charge, today)
        receivables["aged_ar"]["complete"] = complete
        return {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "payer": payer,
            **report,
            **receivables,
        }
