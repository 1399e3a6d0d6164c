"""The coding cases collection: one document per episode, outbox inside."""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import ASCENDING, IndexModel
from rcm_shared.service import Service
from rcm_shared.store import AggregateStore, Document

from .domain import Status

CASES = "cases"
HIDDEN = {"outbox": 0, "applied": 0, "version": 0}
SUMMARY = {
    "case_id": 1,
    "episode_id": 1,
    "status": 1,
    "coder_id": 1,
    "date_of_service": 1,
    "opened_at": 1,
    "updated_at": 1,
    "recode": 1,
}


class CaseStore:
    def __init__(self, aggregates: AggregateStore) -> None:
        self.aggregates = aggregates

    async def get(self, case_id: str) -> Document | None:
        """A case as people see it (not a stub waiting for its encounter)."""
        case = await self.aggregates.collection.find_one({"_id": case_id}, HIDDEN)
        if case is None or case["status"] == Status.AWAITING_ENCOUNTER:
            return None
        case.pop("_id")
        return case

    async def queue(
        self, statuses: Sequence[Status], coder_id: str | None, limit: int
    ) -> list[Document]:
        """Cases in the work queue, oldest first."""
        query: Document = {"status": {"$in": [status.value for status in statuses]}}
        if coder_id is not None:
            query["coder_id"] = coder_id
        cursor = (
            self.aggregates.collection.find(query, SUMMARY)
            .sort([("opened_at", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        cases = []
        async for case in cursor:
            case.pop("_id")
            cases.append(case)
        return cases

    async def workable(self, coder_id: str, limit: int) -> list[Document]:
        """The coder's cases in progress, then open cases, oldest first (one query)."""
        query = {
            "$or": [
                {"status": Status.IN_PROGRESS.value, "coder_id": coder_id},
                {"status": Status.OPEN.value},
            ]
        }
        cursor = self.aggregates.collection.find(query, SUMMARY).sort(
            [("opened_at", ASCENDING), ("_id", ASCENDING)]
        )
        cases = [case async for case in cursor]
        cases.sort(key=lambda case: case["status"] != Status.IN_PROGRESS.value)  # stable
        return cases[:limit]


def cases_store(service: Service) -> CaseStore:
    return CaseStore(
        service.store(
            CASES,
            # One index: the queue filters by status (and maybe coder) and sorts by age.
            [IndexModel([("status", ASCENDING), ("opened_at", ASCENDING)])],
        )
    )
