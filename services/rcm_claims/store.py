"""The claims service's collections.

- episodes: the aggregates (claims inside, outbox inside), see domain/model.py.
- interchanges: one document per 837P interchange sent or about to be: its text and the
  claims in it by transaction set, so a 999 finds its claims and a crashed send can be
  finished with exactly the same bytes.
- counters: the interchange control number (ISA13, also GS06), see ControlNumbers.
- mailbox: the clearinghouse documents already processed (by document id).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from rcm_shared.service import Service
from rcm_shared.store import AggregateStore, ControlNumbers, Document

MAX_CONTROL_NUMBER = 999_999_999


def icn_key(interchange_control_number: int) -> str:
    return f"{interchange_control_number:09d}"


class ClaimsStore:
    def __init__(self, service: Service) -> None:
        self.episodes: AggregateStore = service.store("episodes")
        database = service.database
        self.interchanges: AsyncCollection[Document] = database["interchanges"]
        self.mailbox: AsyncCollection[Document] = database["mailbox"]
        self.control_numbers = ControlNumbers(database, "interchange", MAX_CONTROL_NUMBER)

    # --- episodes ---

    async def episode(self, episode_id: str) -> Document | None:
        return await self.episodes.get(episode_id)

    async def with_unsent_claims(self, limit: int) -> list[Document]:
        cursor = self.episodes.collection.find(
            {"unsent.0": {"$exists": True}}, {"outbox": 0, "applied": 0}
        ).limit(limit)
        return [document async for document in cursor]

    async def with_work(self) -> list[Document]:
        cursor = self.episodes.collection.find(
            {"work.0": {"$exists": True}}, {"outbox": 0, "applied": 0}
        )
        return [document async for document in cursor]

    async def all_claims(self) -> AsyncIterator[list[Document]]:
        """The claims of every episode, episode by episode (for counting)."""
        cursor = self.episodes.collection.find({"claims.0": {"$exists": True}}, {"claims": 1})
        async for document in cursor:
            yield document["claims"]

    # --- interchanges ---

    async def next_interchange_number(self) -> int:
        return await self.control_numbers.next()

    async def interchange(self, interchange_control_number: int) -> Document | None:
        return await self.interchanges.find_one({"_id": icn_key(interchange_control_number)})

    async def unfinished_interchanges(self) -> list[Document]:
        cursor = self.interchanges.find({"done": False}).sort("created_at", 1)
        return [document async for document in cursor]

    async def add_interchange(
        self,
        interchange_control_number: int,
        text: str,
        claims: list[dict[str, str]],
        state: str,
        error: str | None = None,
    ) -> Document:
        document: Document = {
            "_id": icn_key(interchange_control_number),
            "interchange_control_number": interchange_control_number,
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
