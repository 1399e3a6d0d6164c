"""Which aggregates and singleton jobs this process owns: Kafka's group coordinator decides.

Every replica of a service is one member of the service's consumer group, subscribed to
the same topics, which all have the same number of partitions. The range assignor gives
partition p of every topic to the same member, and every message that changes an
aggregate is keyed by its id, so one member owns an aggregate: its events, the commands
sent to it (rcm_shared.requests) and its outbox. A singleton job (a batch sender, a
mailbox reader) belongs to whoever owns the partition its name hashes to.

The hand-over is clean: when partitions are revoked, the member first stops taking work
for them and then waits until the work in flight is done, before Kafka gives them to
another member. Membership is a lease: a member that stops heartbeating for the session
timeout (a crash, SIGKILL) loses its partitions to the others.

What a member keeps in memory about the aggregates it owns (rcm_shared.store's copies
of their documents) is dropped when their partition is revoked (`on_revoked`), and
`generation` changes at every revocation and assignment, so a read begun under one
ownership is not kept under the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.partitioner import murmur2

log = logging.getLogger(__name__)


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives this key (murmur2, as in Java)."""
    return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class Ownership(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.owned: frozenset[int] = frozenset()  # partition numbers, the same on every topic
        self.on_assigned: list[Callable[[], None]] = []  # e.g. sweeps for what was left
        # Called with the partitions given up, once the work in flight on them is done
        # (awaited before Kafka may give them to another member).
        self.on_revoked: list[Callable[[frozenset[int]], Awaitable[None] | None]] = []
        self.generation = 0  # changes whenever what this process owns changes
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def owns(self, key: str) -> bool:
        """Whether the aggregate with this id (the messages' key) is this process's."""
        return partition_of(key, self.partitions) in self.owned

    def holds(self, job: str) -> bool:
        """Whether this process runs the singleton job of that name now."""
        return zlib.crc32(job.encode()) % self.partitions in self.owned

    @contextlib.asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        """Work on owned partitions; a revocation waits until it is done."""
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        lost = self.owned | {partition.partition for partition in revoked}
        self.owned = frozenset()  # no new work from here on, then finish what runs
        self.generation += 1
        await self._idle.wait()
        for listener in self.on_revoked:
            done = listener(lost)
            if done is not None:
                await done

    async def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        self.generation += 1
        self.owned = frozenset(partition.partition for partition in assigned)
        log.info("owning partitions %s", sorted(self.owned))
        for listener in self.on_assigned:
            listener()
