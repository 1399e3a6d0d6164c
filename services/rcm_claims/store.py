"""The claims service's collections.

- episodes: the aggregates (claims inside, outbox inside), see domain/model.py. Besides
  the state, each document keeps the ids of its unsent claims (`unsent`) and of its claims
  in the biller's queue (`work`), for the sender's sweep and the work queue.
- interchanges: one document per 837P interchange sent or about to be: its text, the
  claims in it by transaction set and the partition of their episodes, so a 999 finds its
  claims, and a crashed send is finished with exactly the same bytes by whoever owns the
  partition now.
- counters: the interchange control numbers (ISA13, also GS06), one range per partition,
  see ControlNumbers.
- mailbox: the clearinghouse documents already processed (by document id).
- follow_up_notes: the text of billers' follow-up notes (by note id; the episode names
  the note, its events never carry the text).

FerretDB answers a query on any field but `_id` by reading the whole collection. Reads on
the paths of events, requests and send rounds are by id; the queries on other fields are
the sender's sweep (rare: at start, on assignment, every ~30 s) and people's list views
(bounded).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from rcm_shared.service import Service
from rcm_shared.store import ControlNumbers, Document, MongoAggregates

from .domain import Episode

MAX_CONTROL_NUMBER = 999_999_999
STATE_ONLY = {"outbox": 0, "applied": 0, "trace": 0}


def icn_key(interchange_control_number: int) -> str:
    return f"{interchange_control_number:09d}"


class ClaimsStore:
    def __init__(self, service: Service) -> None:
        self.episodes: MongoAggregates[Episode] = service.aggregates(
            "episodes",
            Episode,
            [
                IndexModel("has_unsent"),
                IndexModel("has_work"),
                IndexModel("has_open_ar"),
                IndexModel("has_pending_appeal"),
            ],
        )
        database = service.database
        self.interchanges: AsyncCollection[Document] = database["interchanges"]
        self.mailbox: AsyncCollection[Document] = database["mailbox"]
        self.follow_up_notes: AsyncCollection[Document] = database["follow_up_notes"]
        self.control_numbers = ControlNumbers(
            database,
            "interchange",
            MAX_CONTROL_NUMBER,
            partitions=service.settings.topic_partitions,
        )

    # --- episodes ---

    async def with_unsent_claims(self) -> list[str]:
        """The ids of the episodes with a claim to send (the sender's sweep)."""
        cursor = self.episodes.collection.find({"has_unsent": True}, {"_id": 1})
        return [str(document["_id"]) async for document in cursor]

    async def with_work(self, limit: int) -> list[Episode]:
        """Episodes with claims in the biller's queue (bounded: a list view)."""
        cursor = (
            self.episodes.collection.find({"has_work": True}, STATE_ONLY)
            .sort("_id", 1)
            .limit(limit)
        )
        return [Episode.model_validate(document) async for document in cursor]

    async def watched_episodes(self, flags: Sequence[str], limit: int) -> AsyncIterator[Episode]:
        """Episodes with any of these flags set, each once, at most `limit` per flag."""
        seen: set[str] = set()
        for flag in flags:
            cursor = self.episodes.collection.find({flag: True}, STATE_ONLY).limit(limit)
            async for document in cursor:
                if document["_id"] not in seen:
                    seen.add(document["_id"])
                    yield Episode.model_validate(document)

    async def all_claims(self, limit: int) -> AsyncIterator[list[Document]]:
        """The claims of every episode, episode by episode, for counting (a scan of at most
        `limit` episodes: a list view)."""
        cursor = self.episodes.collection.find(
            {"claims.0": {"$exists": True}}, {"claims": 1}
        ).limit(limit)
        async for document in cursor:
            yield document["claims"]

    async def ar_rows(self, limit: int) -> list[dict[str, Any]]:
        """The A/R follow-up rows of at most `limit` episodes with open insurance A/R (an
        indexed equality; only the rows are read: a list view)."""
        cursor = (
            self.episodes.collection.find({"has_open_ar": True}, {"ar_rows": 1})
            .sort("_id", 1)
            .limit(limit)
        )
        return [row async for document in cursor for row in document.get("ar_rows", [])]

    # --- follow-up notes ---

    async def keep_note(self, note_id: str, claim_id: str, text: str, by: str) -> None:
        """Kept by id, so a retry writes the same note again."""
        await self.follow_up_notes.update_one(
            {"_id": note_id},
            {
                "$set": {"claim_id": claim_id, "text": text, "by": by},
                "$setOnInsert": {"at": datetime.now(UTC)},
            },
            upsert=True,
        )

    async def notes(self, note_ids: list[str]) -> dict[str, str]:
        """The notes' text by id (a read by ids: the rows of one answer)."""
        if not note_ids:
            return {}
        cursor = self.follow_up_notes.find({"_id": {"$in": note_ids}}, {"text": 1})
        return {str(document["_id"]): str(document["text"]) async for document in cursor}

    # --- interchanges ---

    async def next_interchange_number(self, partition: int) -> int:
        """The next number of the partition's range: replicas never hand out the same."""
        return await self.control_numbers.next(partition)

    async def interchange(self, interchange_control_number: int) -> Document | None:
        return await self.interchanges.find_one({"_id": icn_key(interchange_control_number)})

    async def unfinished_interchanges(self, partitions: frozenset[int]) -> list[Document]:
        """Interchanges of these partitions whose claims' outcomes are not all recorded,
        and those written before interchanges had a partition (a scan of the interchanges:
        at start, on assignment and at each sweep)."""
        query = {
            "done": False,
            "$or": [{"partition": {"$in": sorted(partitions)}}, {"partition": None}],
        }
        cursor = self.interchanges.find(query).sort("created_at", 1)
        return [document async for document in cursor]

    async def add_interchange(
        self,
        interchange_control_number: int,
        partition: int,
        text: str,
        claims: list[dict[str, str]],
        state: str,
        error: str | None = None,
    ) -> Document:
        document: Document = {
            "_id": icn_key(interchange_control_number),
            "interchange_control_number": interchange_control_number,
            "partition": partition,  # of every episode whose claims it carries
            "state": state,  # prepared -> sent | refused
            "done": False,  # every claim's outcome recorded
            "text": text,
            "claims": claims,  # [{episode_id, claim_id, st}]
            "created_at": datetime.now(UTC),
            "batch_id": None,
            "error": error,
        }
        await self.interchanges.insert_one(document)
        return document

    async def update_interchange(self, interchange_control_number: int, **fields: Any) -> None:
        await self.interchanges.update_one(
            {"_id": icn_key(interchange_control_number)}, {"$set": fields}
        )

    async def finish_interchange(self, interchange_control_number: int) -> None:
        # The text stays in the X12 archive; the database keeps the claims map for 999s.
        await self.interchanges.update_one(
            {"_id": icn_key(interchange_control_number)},
            {"$set": {"done": True, "finished_at": datetime.now(UTC)}, "$unset": {"text": ""}},
        )

    # --- mailbox ---

    async def mailbox_done(self, document_id: str) -> bool:
        return await self.mailbox.find_one({"_id": document_id}) is not None

    async def mailbox_record(
        self, document_id: str, kind: str, outcome: str, error: str | None = None
    ) -> None:
        await self.mailbox.update_one(
            {"_id": document_id},
            {
                "$set": {
                    "kind": kind,
                    "outcome": outcome,
                    "error": error,
                    "processed_at": datetime.now(UTC),
                }
            },
            upsert=True,
        )
