"""Publishes the events waiting in aggregates' outboxes, then removes them.

Publish first, remove after: a crash in between publishes an event twice, never zero
times; consumers are idempotent. Entries of one aggregate go out in order, and a
failure stops that aggregate until the next round so the order holds.

Failures are per entry. An entry that can never be published (it no longer reads as its
event, or Kafka refuses the record itself, e.g. too large) is quarantined: moved, with
why, from the outbox to the document's `quarantine` (rcm_shared.store), counted, and
logged; the entries after it and the other aggregates go on. Any other failure (Kafka
unreachable) leaves the entry where it is, and its aggregate is tried again next round.

A write in this process names its aggregate, and the relay publishes that one at once:
from the copy of the document its owner keeps (rcm_shared.store), else read by id.
Published entries leave the stored outbox with the aggregate's next change, or by a
write of their own after a second (`Outboxed.removals`). A full sweep of the
collections, which FerretDB answers by reading every document, runs at start, when this
process is given partitions and every `sweep_interval_s`: it finds what a crash left.
It publishes only the aggregates this process owns: their owner is the only writer of
their documents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from opentelemetry import context as otel_context
from opentelemetry.propagate import extract
from prometheus_client import Counter
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError
from rcm_contracts import CATALOG

from .envelope import Envelope
from .kafka import EventPublisher
from .redact import Redacted, describe
from .store import Document, Outboxed

log = logging.getLogger(__name__)

MAX_CONCURRENT_AGGREGATES = 32


class Unreadable(Redacted, Exception):
    """An outbox entry that no longer reads as the event it stored."""


# Failures that are the entry's own: publishing it again cannot succeed.
ENTRY_AT_FAULT = (
    Unreadable,
    PydanticSerializationError,
    ValidationError,
    MessageSizeTooLargeError,  # Kafka refuses the record itself
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTopicError,
)


def envelope_of(entry: Document) -> Envelope:  # type: ignore[type-arg]
    time = entry["time"]
    return Envelope(
        data=CATALOG[entry["type"]].model_validate(entry["data"]),
        source=entry["source"],
        id=entry["id"],
        time=time if isinstance(time, datetime) else datetime.fromisoformat(time),
    )


class OutboxRelay:
    def __init__(
        self,
        stores: Sequence[Outboxed],
        publisher: EventPublisher,
        interval_s: float = 0.5,
        sweep_interval_s: float = 10.0,
        owns: Callable[[str], bool] = lambda aggregate_id: True,
        quarantines: Counter | None = None,
    ) -> None:
        self.stores = stores
        self.owns = owns
        self.publisher = publisher
        self.interval_s = interval_s
        self.sweep_interval_s = sweep_interval_s
        self.quarantines = quarantines
        self.published = 0
        self.quarantined = 0  # entries set aside since start
        self.backlog = 0  # aggregates whose events are waiting for the next round
        self._wake = asyncio.Event()
        self._sweep_now = False
        self._concurrency = asyncio.Semaphore(MAX_CONCURRENT_AGGREGATES)
        self._changed: dict[Outboxed, set[str]] = {}
        for store in stores:
            self.watch(store)

    def watch(self, store: Outboxed) -> None:
        """Publish this store's changes as they are written."""

        def changed(aggregate_id: str) -> None:
            self._changed.setdefault(store, set()).add(aggregate_id)
            self._wake.set()

        store.on_change = changed

    def sweep_soon(self) -> None:
        """Sweep at the next round (e.g. partitions were just given to this process)."""
        self._sweep_now = True
        self._wake.set()

    async def run(self) -> None:
        """Relay until cancelled: changed aggregates at once, a full sweep now and then."""
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while True:
            self._wake.clear()  # before draining: a write during the drain wakes the next round
            sweep = self._sweep_now or loop.time() >= next_sweep
            self._sweep_now = False
            try:
                await self.drain(sweep)
                if sweep:
                    next_sweep = loop.time() + self.sweep_interval_s
                for store in self.stores:  # what no change of its aggregate took along
                    await store.remove_published_since(store.REMOVAL_DELAY_S)
            except Exception as error:  # the next round retries; the outbox keeps everything
                log.warning("outbox relay round failed: %s", describe(error))
                next_sweep = loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)

    async def drain(self, sweep: bool = True) -> int:
        """Publish what changed since the last round (with sweep: everything pending that
        this process owns); returns how many events went out."""
        todo, self._changed = self._changed, {}
        if sweep:
            for store in self.stores:
                pending = {d["_id"] for d in await store.pending() if self.owns(d["_id"])}
                todo.setdefault(store, set()).update(pending)
        sent = 0
        try:
            for store in self.stores:
                ids = todo.get(store)
                if not ids:
                    continue
                documents = await store.pending_of(sorted(ids))
                relayed = await asyncio.gather(
                    *(self._relay(store, document) for document in documents),
                    return_exceptions=True,
                )
                del todo[store]
                for document, outcome in zip(documents, relayed, strict=True):
                    if isinstance(outcome, BaseException):
                        log.warning(
                            "outbox of %s/%s not relayed: %s",
                            store.collection.name,
                            document["_id"],
                            describe(outcome),
                        )
                        self._later(store, document["_id"])
                    else:
                        sent += outcome
        finally:
            for store, ids in todo.items():  # not done: kept for the next round
                self._changed.setdefault(store, set()).update(ids)
            self.published += sent
            self.backlog = sum(len(ids) for ids in self._changed.values())
        return sent

    async def remove_published(self) -> None:
        """Remove from the outboxes every entry published and not yet removed (on stopping)."""
        for store in self.stores:
            await store.remove_published()

    def _later(self, store: Outboxed, aggregate_id: str) -> None:
        self._changed.setdefault(store, set()).add(aggregate_id)

    async def _relay(self, store: Outboxed, document: Document) -> int:
        """One aggregate's entries, in order; then the published and the quarantined ones
        leave its outbox in one write. Returns how many were published."""
        async with self._concurrency:
            published: list[Document] = []
            quarantined: list[tuple[Document, str]] = []
            for entry in document["outbox"]:
                try:
                    await self._publish(entry)
                except Exception as error:
                    if not isinstance(error, ENTRY_AT_FAULT):
                        # Not the entry's fault (Kafka away): it and those after it wait.
                        log.warning(
                            "outbox of %s/%s waits: %s",
                            store.collection.name,
                            document["_id"],
                            describe(error),
                        )
                        self._later(store, document["_id"])
                        break
                    quarantined.append((entry, describe(error)))
                    self._quarantined(store, document["_id"], entry, error)
                else:
                    published.append(entry)
            await store.mark_published(document["_id"], published, quarantined)
        return len(published)

    def _quarantined(
        self, store: Outboxed, aggregate_id: str, entry: Document, error: BaseException
    ) -> None:
        log.error(
            "quarantined outbox entry %s of %s/%s: %s",
            entry.get("id"),
            store.collection.name,
            aggregate_id,
            describe(error),
        )
        self.quarantined += 1
        if self.quarantines is not None:
            cause = error.__cause__ if isinstance(error, Unreadable) else error
            self.quarantines.labels(store.collection.name, type(cause).__name__).inc()

    async def _publish(self, entry: Document) -> None:
        try:
            envelope = envelope_of(entry)
        except Exception as error:
            raise Unreadable(describe(error)) from error
        carrier = {"traceparent": entry["traceparent"]} if entry.get("traceparent") else {}
        token = otel_context.attach(extract(carrier))
        try:
            await self.publisher.publish(envelope)
        finally:
            otel_context.detach(token)
