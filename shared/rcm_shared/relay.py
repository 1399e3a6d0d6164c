"""Publishes the events waiting in aggregates' outboxes, then removes them.

Publish first, remove after: a crash in between publishes an event twice, never zero
times; consumers are idempotent. Entries of one aggregate go out in order, and a
failure stops that aggregate until the next round so the order holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime

from opentelemetry import context as otel_context
from opentelemetry.propagate import extract
from rcm_contracts import CATALOG

from .envelope import Envelope
from .kafka import EventPublisher
from .store import AggregateStore, Document

log = logging.getLogger(__name__)


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
        stores: Sequence[AggregateStore],
        publisher: EventPublisher,
        interval_s: float = 0.5,
    ) -> None:
        self.stores = stores
        self.publisher = publisher
        self.interval_s = interval_s
        self.published = 0
        self._wake = asyncio.Event()
        for store in stores:
            store.on_change = self._wake.set

    async def run(self) -> None:
        """Relay until cancelled; wakes on local writes, polls for anything else."""
        while True:
            self._wake.clear()  # before draining: a write during the drain wakes the next round
            try:
                await self.drain()
            except Exception:  # the next round retries; the outbox keeps everything
                log.exception("outbox relay round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_s)

    async def drain(self) -> int:
        """Publish everything pending now; returns how many events went out."""
        sent = 0
        for store in self.stores:
            while documents := await store.pending():
                for document in documents:
                    for entry in document["outbox"]:
                        await self._publish(entry)
                        await store.mark_published(document["_id"], entry)
                        sent += 1
        self.published += sent
        return sent

    async def _publish(self, entry: Document) -> None:
        carrier = {"traceparent": entry["traceparent"]} if entry.get("traceparent") else {}
        token = otel_context.attach(extract(carrier))
        try:
            await self.publisher.publish(envelope_of(entry))
        finally:
            otel_context.detach(token)
