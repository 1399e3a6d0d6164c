"""Publishes the events waiting in aggregates' outboxes, then removes them.

Publish first, remove after: a crash in between publishes an event twice, never zero
times; consumers are idempotent. Entries of one aggregate go out in order, and a
failure stops that aggregate until the next round so the order holds.

A write in this process names its aggregate, and the relay publishes that one at once
(a read by id). A full sweep of the collections, which FerretDB answers by reading every
document, runs at start, when this process is given partitions and every
`sweep_interval_s`: it finds what a crash left. It publishes only the aggregates this
process owns: their owner is the only writer of their documents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from opentelemetry import context as otel_context
from opentelemetry.propagate import extract
from rcm_contracts import CATALOG

from .envelope import Envelope
from .kafka import EventPublisher
from .store import Document, Outboxed

log = logging.getLogger(__name__)

MAX_CONCURRENT_AGGREGATES = 32


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
    ) -> None:
        self.stores = stores
        self.owns = owns
        self.publisher = publisher
        self.interval_s = interval_s
        self.sweep_interval_s = sweep_interval_s
        self.published = 0
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
            except Exception:  # the next round retries; the outbox keeps everything
                log.exception("outbox relay round failed")
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
                counts = await asyncio.gather(
                    *(self._relay(store, document) for document in documents)
                )
                sent += sum(counts)
                del todo[store]
        finally:
            for store, ids in todo.items():  # not done: kept for the next round
                self._changed.setdefault(store, set()).update(ids)
            self.published += sent
            self.backlog = sum(len(ids) for ids in self._changed.values())
        return sent

    async def _relay(self, store: Outboxed, document: Document) -> int:
        """One aggregate's entries, in order; then they leave its outbox in one write."""
        async with self._concurrency:
            for entry in document["outbox"]:
                await self._publish(entry)
            await store.mark_published(document["_id"], document["outbox"])
        return len(document["outbox"])

    async def _publish(self, entry: Document) -> None:
        carrier = {"traceparent": entry["traceparent"]} if entry.get("traceparent") else {}
        token = otel_context.attach(extract(carrier))
        try:
            await self.publisher.publish(envelope_of(entry))
        finally:
            otel_context.detach(token)
