"""The coding cases, stored under their episode id, and the queries people make of them."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from rcm_shared.service import Service
from rcm_shared.store import Document, MongoAggregates

from .domain import Case, CaseSummary, CoderProfile, ReviewStatus, Status

CASES = "cases"
CODERS = "coders"
# A physician query's words and the answer, by query id: people's text, kept out of the
# case's events (and so out of Kafka), shown with the case.
QUERY_TEXTS = "query_texts"
# The productivity read model: one fact per coding, query and review (domain.work_facts).
WORK = "work"
# case id -> episode id: people name a case by its id, the store keys it by its episode.
CASE_IDS = "case_ids"
SUMMARY = {field: 1 for field in CaseSummary.model_fields}
OLDEST_FIRST = [("opened_at", ASCENDING), ("_id", ASCENDING)]
BY_PRIORITY = [("priority", ASCENDING), ("_id", ASCENDING)]
PROFILE_TTL_S = 10.0


class CaseStore:
    def __init__(
        self,
        cases: MongoAggregates[Case],
        case_ids: AsyncCollection[Document],
        coders: MongoAggregates[CoderProfile] | None = None,
        query_texts: AsyncCollection[Document] | None = None,
        work: AsyncCollection[Document] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cases = cases
        self.case_ids = case_ids
        self.coders = coders
        self.query_texts = query_texts
        self.work = work
        self._profiles: dict[str, tuple[float, CoderProfile | None]] = {}
        self.monotonic = monotonic

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
        """Cases in the work queue, oldest first: one equality per status, because
        FerretDB serves an equality from an index and reads every case for an `$in`."""
        found: list[CaseSummary] = []
        for status in statuses:
            query: Document = {"status": status.value}
            if coder_id is not None:
                query["coder_id"] = coder_id
            found += await self._summaries(query, limit)
        found.sort(key=lambda case: (str(case.opened_at or ""), case.case_id))
        return found[:limit]

    async def workable(
        self, coder_id: str, limit: int, specialties: Sequence[str] = ()
    ) -> list[CaseSummary]:
        """The coder's case in progress if they hold one, else the open cases of their
        specialties (any, when they list none), highest priority first; a bounded read
        on the (status, specialty, priority) index."""
        held = await self._summaries({"status": Status.IN_PROGRESS.value, "coder_id": coder_id}, 1)
        if held:
            return held
        query: Document = {"status": Status.OPEN.value}
        if specialties:
            query["specialty"] = {"$in": list(specialties)}
        return await self._summaries(query, limit, BY_PRIORITY)

    async def on_hold(self, limit: int) -> list[CaseSummary]:
        """Cases waiting for a physician's answer, the longest waiting first."""
        return await self._summaries({"status": Status.ON_HOLD.value}, limit)

    async def in_review(self, limit: int) -> list[CaseSummary]:
        """Sampled cases the coding lead has not reviewed yet."""
        return await self._summaries({"review.status": ReviewStatus.OPEN.value}, limit)

    async def _summaries(
        self, query: Document, limit: int, order: list[tuple[str, int]] = OLDEST_FIRST
    ) -> list[CaseSummary]:
        # On the collection, not the port: the queue is ordered, which `find` is not.
        cursor = self.cases.collection.find(query, SUMMARY).sort(order).limit(limit)
        found: list[dict[str, Any]] = [document async for document in cursor]
        return [CaseSummary.model_validate(document) for document in found]

    # -- coders

    async def coder(self, coder_id: str) -> CoderProfile | None:
        """A coder's profile, read at most every PROFILE_TTL_S per coder: every pull asks
        for it, and a lead's change may take that long to be seen."""
        if self.coders is None:
            return None
        now = self.monotonic()
        known = self._profiles.get(coder_id)
        if known is not None and known[0] > now:
            return known[1]
        profile = await self.coders.get(coder_id)
        self._profiles[coder_id] = (now + PROFILE_TTL_S, profile)
        return profile

    async def coder_profiles(self, limit: int) -> list[CoderProfile]:
        if self.coders is None:
            return []
        cursor = self.coders.collection.find({}).sort([("_id", ASCENDING)]).limit(limit)
        found = [document async for document in cursor]
        return [CoderProfile.model_validate(document) for document in found]

    # -- query texts

    def _texts(self) -> AsyncCollection[Document]:
        if self.query_texts is None:
            raise RuntimeError("no query texts collection")
        return self.query_texts

    async def keep_question(self, query_id: str, case_id: str, question: str) -> None:
        """Idempotent: a retried hold writes the same words under the same id."""
        await self._texts().update_one(
            {"_id": query_id},
            {"$setOnInsert": {"case_id": case_id, "question": question, "answer": None}},
            upsert=True,
        )

    async def forget_question(self, query_id: str) -> None:
        await self._texts().delete_one({"_id": query_id})

    async def keep_answer(self, query_id: str, answer: str) -> None:
        """The first answer stands: a retry (or a second person) does not overwrite it."""
        await self._texts().update_one(
            {"_id": query_id, "answer": None}, {"$set": {"answer": answer}}
        )

    async def texts_of(self, query_ids: Sequence[str]) -> dict[str, Document]:
        if not query_ids or self.query_texts is None:
            return {}
        cursor = self.query_texts.find({"_id": {"$in": list(query_ids)}})
        return {str(document["_id"]): document async for document in cursor}

    # -- productivity

    async def record(self, facts: list[dict[str, Any]]) -> None:
        """Upserts by the facts' ids: the same facts again change nothing."""
        if not facts or self.work is None:
            return
        writes = [UpdateOne({"_id": fact["_id"]}, {"$set": fact}, upsert=True) for fact in facts]
        await self.work.bulk_write(writes, ordered=False)

    async def facts_of(self, day: str, limit: int) -> list[dict[str, Any]]:
        if self.work is None:
            return []
        return [fact async for fact in self.work.find({"day": day}).limit(limit)]


def case_store(service: Service) -> CaseStore:
    cases = service.aggregates(
        CASES,
        Case,
        [
            # The queue filters by status (and maybe coder) and sorts by age.
            IndexModel([("status", ASCENDING), ("opened_at", ASCENDING)]),
            # /queue/next: open cases of some specialties, by priority.
            IndexModel([("status", ASCENDING), ("specialty", ASCENDING), ("priority", ASCENDING)]),
            IndexModel([("status", ASCENDING), ("priority", ASCENDING)]),
            IndexModel([("review.status", ASCENDING)]),
        ],
    )
    coders = service.aggregates(CODERS, CoderProfile)
    query_texts = service.collection(QUERY_TEXTS)
    work = service.collection(WORK, [IndexModel([("day", ASCENDING)])])
    return CaseStore(cases, service.database[CASE_IDS], coders, query_texts, work)
