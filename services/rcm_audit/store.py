"""The audit service's one collection, `records`: an append-only log, not aggregates.

A record never changes, decides nothing and emits nothing, so the aggregate port
(`service.aggregates`: version, applied causes, outbox, relay sweeps) would only add
bookkeeping to every record and a read before every write. A record is inserted under
its record id instead: the unique `_id` is the idempotence, so a redelivered record meets
a duplicate key error and changes nothing, with no read on the event's path. The records
a batch of events brings are inserted together (rcm_shared.batching), one command for up
to 25 of them; each handler still waits for its own record. Nothing here
updates, replaces or deletes, and the service has no other way to its database
(tests/unit/audit checks the code for such calls).

Reading is for auditors, never on an event's path. FerretDB does not use secondary
indexes, so a query there reads the whole collection (a filter on `_id` aside) and sorts
what matches; every query is therefore bounded (`RecordQuery.limit`, at most MAX_LIMIT
records come back). The indexes declared serve MongoDB: the newest first, and one
actor's trail.
"""

from __future__ import annotations

import re
from typing import Protocol

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, WriteError
from rcm_shared.batching import Coalescer
from rcm_shared.errors import TransientError
from rcm_shared.service import Service
from rcm_shared.store import Document

from .domain import AuditRecord, RecordPage, RecordQuery

RECORDS = "records"
DUPLICATE_KEY = 11000
NEWEST_FIRST = [("recorded_at", DESCENDING), ("_id", DESCENDING)]
INDEXES = [
    IndexModel(NEWEST_FIRST),
    IndexModel([("actor", ASCENDING), ("recorded_at", DESCENDING)]),
]


class Trail(Protocol):
    """Where the handler appends records (the port; unit tests keep them in a dict)."""

    async def append(self, record: AuditRecord) -> AuditRecord | None:
        """Keep `record` under its id: None when it is new, else the record kept before."""
        ...


class MongoRecords:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection
        self.inserts = Coalescer(self._insert)

    async def append(self, record: AuditRecord) -> AuditRecord | None:
        if await self.inserts.submit(record):
            return None
        kept = await self.collection.find_one({"_id": record.record_id})
        if kept is None:  # nothing deletes records: a read that lags the insert, retried
            raise TransientError(f"audit record {record.record_id} not found")
        return _record(kept)

    async def _insert(self, records: list[AuditRecord]) -> list[bool | BaseException]:
        """Each record: True when inserted, False when its id was kept before."""
        documents = [
            {"_id": record.record_id, **record.model_dump(exclude={"record_id"})}
            for record in records
        ]
        try:
            await self.collection.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            failed = {e["index"]: e for e in error.details.get("writeErrors", ())}
            if error.details.get("writeConcernErrors"):
                raise TransientError("audit records not acknowledged") from None
            return [_inserted(failed.get(index)) for index in range(len(documents))]
        return [True] * len(documents)

    async def find(self, query: RecordQuery) -> RecordPage:
        """The newest `query.limit` records that match, newest first (ties by id)."""
        cursor = self.collection.find(mongo_filter(query)).sort(NEWEST_FIRST)
        found = [_record(document) async for document in cursor.limit(query.limit + 1)]
        return RecordPage(records=found[: query.limit], more=len(found) > query.limit)


def mongo_filter(query: RecordQuery) -> Document:
    """The query as a MongoDB filter: equality for actor, service, action and status, a
    time range (since inclusive, until exclusive), and for the resource a whole part of
    the `name=value,...` list, as an id or as a pair."""
    where: Document = {
        name: value
        for name, value in (
            ("actor", query.actor),
            ("service", query.service),
            ("action", query.action),
            ("status", query.status),
        )
        if value is not None
    }
    if query.resource is not None:
        part = re.escape(query.resource)
        name = "" if "=" in query.resource else "(?:[^=,]*=)?"
        where["resource"] = {"$regex": f"(?:^|,){name}{part}(?:,|$)"}
    recorded: Document = {}
    if query.since is not None:
        recorded["$gte"] = query.since
    if query.until is not None:
        recorded["$lt"] = query.until
    if recorded:
        where["recorded_at"] = recorded
    return where


def _inserted(failure: Document | None) -> bool | BaseException:
    if failure is None:
        return True
    code = failure.get("code")
    if code == DUPLICATE_KEY:
        return False
    return WriteError(f"audit record not inserted (code {code})", code, None)


def _record(document: Document) -> AuditRecord:
    return AuditRecord.model_validate({**document, "record_id": document["_id"]})


def records(service: Service) -> MongoRecords:
    return MongoRecords(service.collection(RECORDS, INDEXES))
