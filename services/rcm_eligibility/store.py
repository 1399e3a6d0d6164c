"""The eligibility service's collections: one verification per episode, and a counter of
interchange control numbers."""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from rcm_shared.service import Service
from rcm_shared.store import AggregateStore

VERIFICATIONS = "verifications"
COUNTERS = "counters"
MAX_CONTROL_NUMBER = 999_999_999  # ISA13 is 9 digits


def verifications(service: Service) -> AggregateStore:
    return service.store(VERIFICATIONS)


class ControlNumbers:
    """ISA13/GS06 numbers, unique across processes: one atomic `$inc` on a counter
    document (FerretDB has no sequences)."""

    def __init__(self, database: AsyncDatabase[dict[str, Any]], name: str = "interchange") -> None:
        self.collection = database[COUNTERS]
        self.name = name

    async def next(self) -> int:
        counter = await self.collection.find_one_and_update(
            {"_id": self.name},
            {"$inc": {"value": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert counter is not None  # upsert with AFTER always returns the document
        return control_number(int(counter["value"]))


def control_number(counter: int) -> int:
    """The counter's value as a 9-digit control number: 1, 2, ..., 999999999, 1, ..."""
    return (counter - 1) % MAX_CONTROL_NUMBER + 1
