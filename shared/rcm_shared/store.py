"""Aggregates in MongoDB with the outbox inside the document.

The database may be FerretDB (no transactions), so every change of an aggregate is ONE
single-document write that at once:
  - sets the new state and bumps `version` (optimistic concurrency on MongoDB),
  - pushes the events it emits onto `outbox` (published later by the relay; when the
    owner knows the whole outbox, it sets it, without the entries already published),
  - pushes the id of the cause (consumed event or command) onto `applied`, so a
    redelivery changes nothing, and, when the cause is the message a consumer is
    handling, its payload's digest onto `digests` (rcm_shared.aggregates), so the same
    id with another payload is refused rather than taken for a redelivery.

`digests` holds one short string per cause, `<tag>:<digest>`: a 48-bit tag of the cause
id and the 96-bit payload digest (25 characters; the id itself is in `applied` already).
`applied` keeps plain ids, so documents written before digests existed, and readers
that look for an id there, need no migration; an applied id without a digest is a
duplicate whatever its payload, as it always was.

FerretDB applies an update by reading, then writing, so its version guard lets two
concurrent writers both win (decisions.md §12). Correctness does not rest on the guard:
one process owns each aggregate (rcm_shared.ownership) and handles one message of it at
a time; the guard still catches a stray writer on MongoDB.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, Generic

import bson
from bson.codec_options import CodecOptions
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from prometheus_client import Counter
from pydantic import SecretStr
from pymongo import AsyncMongoClient, ReturnDocument, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from rcm_contracts import Event

from . import aggregates
from .aggregates import A, Applied, PayloadMismatch, R, digest_of
from .aggregates import Outcome as Outcome
from .errors import TransientError
from .ownership import Ownership, partition_of
from .settings import TransportSettings

log = logging.getLogger(__name__)

Document = dict[str, Any]

# The trace an aggregate was created in. A change made outside any trace (an HTTP
# command) continues it, so one episode is one trace across services and people.
TRACE = "trace"
# What the adapter keeps beside an aggregate's state.
# `pending` marks an outbox with entries: the relay's sweep finds them by an indexed
# equality (a filter on the outbox itself would read every document on FerretDB).
PENDING = "pending"
DIGESTS = "digests"
# Outbox entries the relay could not publish (rcm_shared.relay): kept for people to see.
QUARANTINE = "quarantine"
BOOKKEEPING = frozenset(
    {"_id", "version", "applied", "outbox", PENDING, TRACE, DIGESTS, QUARANTINE}
)
HIDDEN = {"outbox": 0, PENDING: 0, TRACE: 0, DIGESTS: 0, QUARANTINE: 0}
tracer = trace.get_tracer(__name__)


@contextlib.contextmanager
def _traced(name: str, trace_parent: str | None) -> Iterator[None]:
    if trace.get_current_span().get_span_context().is_valid:
        yield  # a consumed event's span: its trace goes on by itself
        return
    parent = extract({"traceparent": trace_parent}) if trace_parent else None
    with tracer.start_as_current_span(name, context=parent):
        yield


def mongo_client_options(settings: TransportSettings) -> dict[str, Any]:
    """PyMongo keyword arguments for the settings' TLS. Credentials and tls=true ride in
    the URL, the one secret; a CA file given here turns TLS on by itself."""
    if settings.mongodb_tls_ca_file is None:
        return {}
    return {"tlsCAFile": str(settings.mongodb_tls_ca_file)}


class CommandCounter(monitoring.CommandListener):
    """Counts the commands a client sends, by collection and command name."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        collection = target if isinstance(target, str) else ""
        self.counter.labels(collection, event.command_name).inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def connect(
    url: str | SecretStr,
    settings: TransportSettings | None = None,
    commands: Counter | None = None,
) -> AsyncMongoClient[Document]:
    plain = url.get_secret_value() if isinstance(url, SecretStr) else url
    options = mongo_client_options(settings) if settings is not None else {}
    if commands is not None:
        options["event_listeners"] = [CommandCounter(commands)]
    return AsyncMongoClient(plain, serverSelectionTimeoutMS=5000, tz_aware=True, **options)


def outbox_entry(event: Event, source: str, event_id: str | None = None) -> Document:
    """An event as stored in an outbox: what the relay needs to publish it later."""

    carrier: dict[str, str] = {}
    inject(carrier)  # keeps the trace: the relay publishes in this context
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": event.event_type,
        "source": source,
        "time": to_bson(datetime.now(UTC)),  # as stored: what a read gives back
        "data": event.model_dump(mode="json"),
        "traceparent": carrier.get("traceparent"),
    }


@dataclass
class Change:
    """What a decision does to the stored document: new field values and events."""

    set: Document = field(default_factory=dict)
    events: Sequence[Event] = ()


RawDecide = Callable[[Document | None], tuple[Document | None, Sequence[Event], Any]]


def to_bson(value: Any) -> Any:
    """A model dump as BSON stores it: times to the millisecond (so the state a write
    returns is the state a read finds), dates as ISO strings, enums as their values."""
    if isinstance(value, dict):
        return {key: to_bson(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_bson(item) for item in value]
    if isinstance(value, Enum):
        return to_bson(value.value)
    if isinstance(value, datetime):
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _state(document: Document) -> Document:
    return {key: value for key, value in document.items() if key not in BOOKKEEPING}


def _tag(cause: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(cause.encode()).digest()[:6]).decode()


def _digest_entry(cause: str, digest: str) -> str:
    return f"{_tag(cause)}:{digest}"


def _applied_with_another_payload(document: Document, cause: str, digest: str | None) -> bool:
    if digest is None:
        return False
    prefix = f"{_tag(cause)}:"
    known = [entry for entry in document.get(DIGESTS, ()) if entry.startswith(prefix)]
    return bool(known) and _digest_entry(cause, digest) not in known


class OwnedDocuments:
    """Copies of the stored documents of aggregates this process owns, as it last read
    or wrote them, so that `apply` and the relay need not read them again.

    The owner of an aggregate is its only writer (rcm_shared.ownership), so its copy is
    what is stored. A copy is kept only while its partition is owned: a revoked
    partition's copies are dropped (`forget`), and a read begun before ownership changed
    is not kept (`generation`). A write that fails or finds another version drops the
    copy, so the next change reads the document again; the version guard stays on every
    write, so a stale copy cannot overwrite a newer document. Copies are kept as BSON,
    so each use decodes its own objects (a decision that changes what it was given in
    place changes nothing kept) and finds exactly what a read would. The least recently
    used copy goes first beyond `capacity`; without ownership nothing is kept.
    """

    def __init__(
        self,
        ownership: Ownership | None,
        capacity: int,
        codec_options: CodecOptions[Document],
    ) -> None:
        self.ownership = ownership
        self.capacity = capacity if ownership is not None else 0
        self.codec_options = codec_options
        self._copies: OrderedDict[str, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._copies)

    def __contains__(self, aggregate_id: object) -> bool:
        return aggregate_id in self._copies

    @property
    def generation(self) -> int:
        return self.ownership.generation if self.ownership is not None else 0

    def get(self, aggregate_id: str) -> Document | None:
        copy = self._copies.get(aggregate_id)
        if copy is None:
            return None
        self._copies.move_to_end(aggregate_id)
        return bson.decode(copy, self.codec_options)

    def keep(self, aggregate_id: str, document: Document, generation: int) -> None:
        """Keep this document as the aggregate's, if it is still owned as it was at
        `generation` (when the read or write that gave it began); else drop any copy."""
        ownership = self.ownership
        if (
            ownership is None
            or not self.capacity
            or generation != ownership.generation
            or not ownership.owns(aggregate_id)
        ):
            self.drop(aggregate_id)
            return
        self._copies[aggregate_id] = bson.encode(document, codec_options=self.codec_options)
        self._copies.move_to_end(aggregate_id)
        while len(self._copies) > self.capacity:
            self._copies.popitem(last=False)

    def replace(self, aggregate_id: str, document: Document) -> None:
        """Update a copy that is kept (and only then)."""
        if aggregate_id in self._copies:
            self._copies[aggregate_id] = bson.encode(document, codec_options=self.codec_options)

    def drop(self, aggregate_id: str) -> None:
        self._copies.pop(aggregate_id, None)

    def of(self, aggregate_ids: Iterable[str], partitions: frozenset[int]) -> list[str]:
        """Those of these aggregates that are in these partitions."""
        if self.ownership is None:
            return []
        count = self.ownership.partitions
        return [a for a in aggregate_ids if partition_of(a, count) in partitions]

    def forget(self, partitions: frozenset[int]) -> None:
        """Drop the copies of these partitions' aggregates (they were revoked)."""
        for aggregate_id in self.of(list(self._copies), partitions):
            del self._copies[aggregate_id]


class Outboxed:
    """One collection of aggregates with `version`, `applied` and `outbox` fields.

    The in-process lock keeps the relay's removal of published entries and a handler's
    write to the same document apart: FerretDB applies neither atomically. Handlers of
    one aggregate never race each other (one owner, one handler at a time per key).
    With `ownership`, the documents of owned aggregates are kept in memory
    (`OwnedDocuments`): a change is then one write, and the relay publishes the entries
    just written without reading them. Their removal from the stored outbox waits
    (`removals`): the aggregate's next change sets the outbox without them in its own
    write, and what no change took within `REMOVAL_DELAY_S` is removed by a write of its
    own (`remove_published`), as it is before a revoked partition is given up. A crash
    before that publishes those entries again: at least once, as ever.
    """

    MAX_CONFLICT_RETRIES = 10
    REMOVAL_DELAY_S = 1.0

    def __init__(
        self,
        database: AsyncDatabase[Document],
        name: str,
        source: str,
        ownership: Ownership | None = None,
        cache_size: int = 0,
    ) -> None:
        self.collection: AsyncCollection[Document] = database[name]
        self.source = source
        self.on_change: Callable[[str], None] = lambda aggregate_id: None
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.owned = OwnedDocuments(ownership, cache_size, self.collection.codec_options)
        # Published entries still in the stored outbox, by aggregate: since when, which.
        self.removals: dict[str, tuple[float, list[Document]]] = {}
        if ownership is not None and self.owned.capacity:
            ownership.on_revoked.append(self._revoked)

    async def _revoked(self, partitions: frozenset[int]) -> None:
        """Before a partition goes: remove what was published of it, drop its copies."""
        try:
            await self.remove_published(self.owned.of(list(self.removals), partitions))
        except Exception as error:  # its new owner publishes those entries once more
            log.warning("%s: published entries left in outboxes: %s", self.collection.name, error)
        self.owned.forget(partitions)

    @contextlib.asynccontextmanager
    async def locked(self, aggregate_id: str) -> AsyncIterator[None]:
        lock = self._locks.get(aggregate_id)
        if lock is None:
            lock = self._locks[aggregate_id] = asyncio.Lock()
        async with lock:
            yield

    async def _current(self, aggregate_id: str) -> Document | None:
        """The stored document (without its quarantine): the copy kept here, else read."""
        generation = self.owned.generation
        current = self.owned.get(aggregate_id)
        if current is None:
            current = await self.collection.find_one({"_id": aggregate_id}, {QUARANTINE: 0})
            if current is not None:
                self.owned.keep(aggregate_id, current, generation)
        return current

    async def _apply(
        self, aggregate_id: str, decide: RawDecide, cause: str | None
    ) -> tuple[Outcome, Document | None, Any]:
        """Load, decide, save as one guarded write; returns the outcome, the document
        after it and the decision's result."""
        async with self.locked(aggregate_id):
            for _ in range(self.MAX_CONFLICT_RETRIES):
                generation = self.owned.generation
                current = await self._current(aggregate_id)
                applied = current["applied"] if current is not None else ()
                if current is not None and cause is not None and cause in applied:
                    if _applied_with_another_payload(current, cause, digest_of(cause)):
                        raise PayloadMismatch(cause)
                    return Outcome.DUPLICATE, current, None
                values, events, result = decide(current)
                if values is None and not events:
                    return Outcome.UNCHANGED, current, result
                change = Change(set=values or {}, events=events)
                trace_parent = current.get(TRACE) if current is not None else None
                try:
                    with _traced(f"{self.collection.name} change", trace_parent):
                        written = await self._write(aggregate_id, current, change, cause)
                except BaseException:
                    self.owned.drop(aggregate_id)  # written or not: read it next time
                    raise
                if written is None:  # another version is stored: decide again on it
                    self.owned.drop(aggregate_id)
                    continue
                self.owned.keep(aggregate_id, written, generation)
                self.on_change(aggregate_id)
                return Outcome.APPLIED, written, result
        raise TransientError(f"{self.collection.name}/{aggregate_id}: too many write conflicts")

    async def _write(
        self, aggregate_id: str, current: Document | None, change: Change, cause: str | None
    ) -> Document | None:
        """The change as one guarded write; the document as stored after it, or None when
        another version was found."""
        entries = [outbox_entry(event, self.source) for event in change.events]
        applied = [cause] if cause else []
        digest = digest_of(cause)
        digests = [_digest_entry(cause, digest)] if cause and digest else []
        if current is None:
            carrier: dict[str, str] = {}
            inject(carrier)
            document = {
                **change.set,
                "_id": aggregate_id,
                "version": 1,
                "applied": applied,
                **({DIGESTS: digests} if digests else {}),
                "outbox": entries,
                PENDING: bool(entries),
                TRACE: carrier.get("traceparent"),
            }
            try:
                await self.collection.insert_one(document)
            except DuplicateKeyError:
                return None  # created concurrently: decide again on what is there
            return document
        guard: Document = {"_id": aggregate_id, "version": current["version"]}
        update: Document = {"$set": dict(change.set), "$inc": {"version": 1}}
        after: Document = {**current, **change.set, "version": current["version"] + 1}
        pushes: Document = {}
        removal = self.removals.get(aggregate_id)
        if removal is not None and "outbox" in current:
            # The whole outbox is known here: without what was published, with the new.
            gone = {entry["id"] for entry in removal[1]}
            outbox = [entry for entry in current["outbox"] if entry["id"] not in gone]
            outbox += entries
            update["$set"].update({"outbox": outbox, PENDING: bool(outbox)})
            after.update({"outbox": outbox, PENDING: bool(outbox)})
        elif entries:
            pushes["outbox"] = {"$each": entries}
            update["$set"][PENDING] = True
            after["outbox"] = [*current.get("outbox", ()), *entries]
            after[PENDING] = True
        if applied:
            guard["applied"] = {"$ne": cause}
            pushes["applied"] = cause
            after["applied"] = [*current.get("applied", ()), cause]
        if digests:
            pushes[DIGESTS] = digests[0]
            after[DIGESTS] = [*current.get(DIGESTS, ()), digests[0]]
        if pushes:
            update["$push"] = pushes
        if not update["$set"]:
            del update["$set"]
        result = await self.collection.update_one(guard, update)
        if result.modified_count != 1:
            return None
        if removal is not None and "outbox" in current:
            del self.removals[aggregate_id]
        return after

    async def pending(self) -> list[Document]:
        """Aggregates whose outbox still holds unpublished events (for sweeps)."""
        cursor = self.collection.find({PENDING: True}, {"outbox": 1})
        return [document async for document in cursor if document["outbox"]]

    async def pending_of(self, aggregate_ids: list[str]) -> list[Document]:
        """Those of these aggregates whose outbox holds unpublished events: from the
        copies kept here, the others read by id."""
        kept = {id_: self.owned.get(id_) for id_ in aggregate_ids}
        found = await asyncio.gather(
            *(
                self.collection.find_one({"_id": id_}, {"outbox": 1})
                for id_, document in kept.items()
                if document is None
            )
        )
        documents = [*(d for d in kept.values() if d is not None), *found]
        pending = []
        for document in documents:
            if not document:
                continue
            sent = {entry["id"] for entry in self.removals.get(document["_id"], (0, []))[1]}
            outbox = [entry for entry in document.get("outbox", ()) if entry["id"] not in sent]
            if outbox:
                pending.append({"_id": document["_id"], "outbox": outbox})
        return pending

    async def mark_published(
        self,
        aggregate_id: str,
        entries: list[Document],
        quarantined: Sequence[tuple[Document, str]] = (),
    ) -> None:
        """Take the published entries out of the outbox and move the quarantined ones,
        with why, to `quarantine`: one write, now; or, for an aggregate whose copy is
        kept, the published ones later (`removals`)."""
        if not entries and not quarantined:
            return
        async with self.locked(aggregate_id):
            if not quarantined and aggregate_id in self.owned:
                since, waiting = self.removals.get(aggregate_id, (time.monotonic(), []))
                self.removals[aggregate_id] = (since, [*waiting, *entries])
                return
            await self._remove(aggregate_id, entries, quarantined)

    async def remove_published(self, aggregate_ids: Iterable[str] | None = None) -> None:
        """Remove now the published entries waiting (of these aggregates, or all)."""
        for aggregate_id in list(self.removals if aggregate_ids is None else aggregate_ids):
            async with self.locked(aggregate_id):
                if aggregate_id in self.removals:
                    await self._remove(aggregate_id, [], ())

    async def remove_published_since(self, older_than_s: float) -> None:
        """Remove the published entries that have waited `older_than_s` or longer."""
        due = time.monotonic() - older_than_s
        await self.remove_published([a for a, (since, _) in self.removals.items() if since <= due])

    async def _remove(
        self,
        aggregate_id: str,
        entries: list[Document],
        quarantined: Sequence[tuple[Document, str]],
    ) -> None:
        """Within the aggregate's lock: one write."""
        waiting = self.removals.pop(aggregate_id, (0.0, []))[1]
        leaving = [*waiting, *entries, *(entry for entry, _ in quarantined)]
        # The whole entries as stored: FerretDB's $pull matches exact values only.
        kept = self.owned.get(aggregate_id)
        current = kept
        if current is None:
            current = await self.collection.find_one({"_id": aggregate_id}, {"outbox": 1})
        rest = [entry for entry in (current or {}).get("outbox", []) if entry not in leaving]
        update: Document = {"$pullAll": {"outbox": leaving}, "$set": {PENDING: bool(rest)}}
        if quarantined:
            now = datetime.now(UTC)
            put_aside = [{"entry": entry, "reason": why, "at": now} for entry, why in quarantined]
            update["$push"] = {QUARANTINE: {"$each": put_aside}}
        try:
            await self.collection.update_one({"_id": aggregate_id}, update)
        except BaseException:
            self.owned.drop(aggregate_id)
            if waiting:  # still to remove: the next round tries again
                self.removals[aggregate_id] = (0.0, waiting)
            raise
        if kept is not None:
            self.owned.replace(aggregate_id, {**kept, "outbox": rest, PENDING: bool(rest)})

    async def quarantined(self, limit: int = 100) -> list[Document]:
        """Aggregates with outbox entries the relay gave up on, for people (a bounded scan)."""
        cursor = self.collection.find(
            {f"{QUARANTINE}.0": {"$exists": True}}, {QUARANTINE: 1}
        ).limit(limit)
        return [document async for document in cursor]


class MongoAggregates(Outboxed, Generic[A]):
    """The aggregate port (rcm_shared.aggregates) on MongoDB or FerretDB."""

    def __init__(
        self,
        database: AsyncDatabase[Document],
        name: str,
        source: str,
        model: type[A],
        ownership: Ownership | None = None,
        cache_size: int = 0,
    ) -> None:
        super().__init__(database, name, source, ownership, cache_size)
        self.model = model

    def _load(self, document: Document | None) -> A | None:
        return None if document is None else self.model.model_validate(_state(document))

    async def get(self, aggregate_id: str) -> A | None:
        kept = self.owned.get(aggregate_id)
        if kept is not None:
            return self._load(kept)
        return self._load(await self.collection.find_one({"_id": aggregate_id}, HIDDEN))

    async def find(self, where: Mapping[str, object], limit: int = 100) -> list[A]:
        cursor = self.collection.find(dict(where), HIDDEN).limit(limit)
        return [self.model.model_validate(_state(document)) async for document in cursor]

    async def apply(
        self, aggregate_id: str, decide: aggregates.Decide[A, R], cause: str | None = None
    ) -> Applied[A, R]:
        def raw(document: Document | None) -> tuple[Document | None, Sequence[Event], Any]:
            decision = decide(self._load(document))
            values = None if decision.state is None else to_bson(decision.state.model_dump())
            return values, decision.events, decision.result

        outcome, document, result = await self._apply(aggregate_id, raw, cause)
        return Applied(outcome, self._load(document), result)


class ControlNumbers:
    """Numbers that must never repeat (X12 ISA13/GS06/ST02), one counter per partition.

    The numbers are split into one range per partition and a partition's counter is
    written only by the process that owns that partition, serialised within it: FerretDB's
    `$inc` is not atomic across writers. So replicas never hand out the same number.
    """

    def __init__(
        self, database: AsyncDatabase[Document], name: str, maximum: int, partitions: int = 1
    ) -> None:
        self.collection: AsyncCollection[Document] = database["counters"]
        self.name = name
        self.partitions = partitions
        self.span = maximum // partitions
        self._lock = asyncio.Lock()

    async def next(self, partition: int = 0) -> int:
        """In partition p's range: p*span + 1, ..., p*span + span, then round again."""
        name = f"{self.name}:{partition}"
        async with self._lock:
            try:
                counter = await self._increment(name)
            except DuplicateKeyError:  # created at the same moment by a former owner
                counter = await self._increment(name)
        return partition * self.span + (int(counter["value"]) - 1) % self.span + 1

    async def _increment(self, name: str) -> Document:
        counter = await self.collection.find_one_and_update(
            {"_id": name},
            {"$inc": {"value": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        if counter is None:  # upsert with AFTER always returns the document
            raise TransientError(f"counter {name} missing after upsert")
        return counter
