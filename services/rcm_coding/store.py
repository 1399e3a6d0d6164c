"""The coding cases, stored under their episode id, and the queries people make of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from rcm_shared.service import Service
from rcm_shared.store import Document, MongoAggregates

from .domain import Case, CaseSummary, Status

CASES = "cases"
# case id -> episode id: people name a case by its id, the store keys it by its episode.
CASE_IDS = "case_ids"
SUMMARY = {field: 1 for field in CaseSummary.model_fields}
OLDEST_FIRST = [("opened_at", ASCENDING), ("_id", ASCENDING)]


class CaseStore:
    def __init__(self, cases: MongoAggregates[Case], case_ids: AsyncCollection[Document]) -> None:
        self.cases = cases
        self.case_ids = case_ids

    async def episode_of(self, case_id: str) -> str | None:
        found = await self.case_ids.find_one({"_id": case_id})
        return None if found is None else str(found["episode_id"])

    async def remember(self, case_id: str, episode_id: str) -> None:
        """Idempotent: every delivery of an encounter writes the same entry."""
        await self.case_ids.update_one(
            {"_id": case_id}, {"$set": {"episode_id": episode_id}}, upsert=True
        )

    async def get(self, case_id: str) -> Case | None:
        """A case as people see it (not a stub waiting for its encounter)."""
        episode_id = await self.episode_of(case_id)
        case = None if episode_id is None else await self.cases.get(episode_id)
        if case is None or case.status == Status.AWAITING_ENCOUNTER:
            return None
        return case

    async def queue(
        self, statuses: Sequence[Status], coder_id: str | None, limit: int
    ) -> list[CaseSummary]:
        """Cases in the work queue, oldest first."""
        query: Document = {"status": {"$in": [status.value for status in statuses]}}
        if coder_id is not None:
            query["coder_id"] = coder_id
        return await self._summaries(query, limit)

    async def workable(self, coder_id: str, limit: int) -> list[CaseSummary]:
        """The coder's case in progress if they hold one, else the oldest open cases."""
        held = await self._summaries({"status": Status.IN_PROGRESS.value, "coder_id": coder_id}, 1)
        return held or await self._summaries({"status": Status.OPEN.value}, limit)

    async def _summaries(self, query: Document, limit: int) -> list[CaseSummary]:
        # On the collection, not the port: the queue is ordered by age, which `find` is not.
        cursor = self.cases.collection.find(query, SUMMARY).sort(OLDEST_FIRST).limit(limit)
        found: list[dict[str, Any]] = [document async for document in cursor]
        return [CaseSummary.model_validate(document) for document in found]


def case_store(service: Service) -> CaseStore:
    cases = service.aggregates(
        CASES,
        Case,
        # The queue filters by status (and maybe coder) and sorts by age.
        [IndexModel([("status", ASCENDING), ("opened_at", ASCENDING)])],
    )
    return CaseStore(cases, service.database[CASE_IDS])
