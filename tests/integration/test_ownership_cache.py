"""The owner's copies of its aggregates across hand-overs: a partition that moves to
another replica and back is read again, never served from the copy kept before."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import Counter
from pydantic import BaseModel
from rcm_contracts.payments import PatientPaymentReceived
from rcm_shared.aggregates import Decision
from rcm_shared.envelope import Envelope
from rcm_shared.kafka import Consumer, EventPublisher, Topics, ensure_topics, make_broker
from rcm_shared.ownership import Ownership, partition_of
from rcm_shared.store import MongoAggregates, connect

from tests.conftest import Infra

from .helpers import eventually
from .test_ownership import payment

pytestmark = pytest.mark.integration

PARTITIONS = 6


class Tally(BaseModel):
    payments: int = 0


def count_one(tally: Tally | None) -> Decision[Tally, None]:
    return Decision(Tally(payments=(tally.payments if tally else 0) + 1))


def how_many(tally: Tally | None) -> Decision[Tally, int]:
    """A decision that changes nothing and answers from the state (a retried request)."""
    return Decision(result=tally.payments if tally else 0)


class Replica:
    """One process's worth: a consumer, its ownership and its aggregates with copies."""

    def __init__(self, infra: Infra, topics: Topics, group: str, database: str) -> None:
        self.broker = make_broker(infra.kafka, f"replica-{uuid.uuid4().hex[:6]}")
        self.ownership = Ownership(PARTITIONS)
        self.consumer = Consumer(self.broker, topics, group, ownership=self.ownership)
        self.commands = Counter("db", "commands", ["collection", "command"], registry=None)
        self.client = connect(infra.mongodb_url, commands=self.commands)
        self.tallies = MongoAggregates(
            self.client[database], "tallies", "rcm/test", Tally, self.ownership, cache_size=100
        )
        self.consumer.on(PatientPaymentReceived)(self.count)

    async def count(self, envelope: Envelope[PatientPaymentReceived]) -> None:
        await self.tallies.apply(envelope.data.episode_id, count_one, cause=envelope.id)

    def finds(self) -> float:
        return sum(
            sample.value
            for metric in self.commands.collect()
            for sample in metric.samples
            if sample.name.endswith("_total") and sample.labels["command"] == "find"
        )

    async def start(self) -> None:
        self.consumer.start()
        await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()


def one_episode_per_partition() -> list[str]:
    found: dict[int, str] = {}
    n = 0
    while len(found) < PARTITIONS:
        found.setdefault(partition_of(f"ep-cache-{n}", PARTITIONS), f"ep-cache-{n}")
        n += 1
    return [found[p] for p in range(PARTITIONS)]


async def test_a_partition_that_moved_away_and_back_is_read_again(
    infra: Infra, topics: Topics, database: Any
) -> None:
    await ensure_topics(infra.kafka, [topics.of(PatientPaymentReceived)], PARTITIONS, 1)
    group = f"{topics.prefix}payments"
    first = Replica(infra, topics, group, database.name)
    second = Replica(infra, topics, group, database.name)
    publisher_broker = make_broker(infra.kafka, "test-publisher")
    await publisher_broker.start()
    publisher = EventPublisher(publisher_broker, topics)
    episodes = one_episode_per_partition()
    stored = database["tallies"]

    def counted(expected: int) -> Callable[[], Any]:
        async def check() -> bool:
            found = {d["_id"]: d["payments"] async for d in stored.find({})}
            return found == dict.fromkeys(episodes, expected)

        return check

    try:
        await first.start()

        async def first_owns_all() -> bool:
            return first.ownership.owned == set(range(PARTITIONS))

        await eventually(first_owns_all, timeout_s=60)
        for _ in range(3):
            for episode in episodes:
                await publisher.publish(payment(episode))
        await eventually(counted(3), timeout_s=60)
        # The copies are used: reading every tally again asks the database nothing.
        finds = first.finds()
        assert [await first.tallies.get(e) for e in episodes] == [Tally(payments=3)] * 6
        assert first.finds() == finds

        await second.start()  # takes some partitions over

        async def split() -> bool:
            return bool(first.ownership.owned) and bool(second.ownership.owned)

        await eventually(split, timeout_s=60)
        moved = [e for e in episodes if partition_of(e, PARTITIONS) in second.ownership.owned]
        assert moved
        for _ in range(2):
            for episode in episodes:
                await publisher.publish(payment(episode))
        await eventually(counted(5), timeout_s=60)

        await second.stop()  # the moved partitions come back to the first
        await eventually(first_owns_all, timeout_s=60)
        for episode in moved:
            assert await first.tallies.get(episode) == Tally(payments=5)
            assert (await first.tallies.apply(episode, how_many)).result == 5
        for episode in episodes:
            await publisher.publish(payment(episode))
        await eventually(counted(6), timeout_s=60)
        assert [await first.tallies.get(e) for e in episodes] == [Tally(payments=6)] * 6
    finally:
        await second.stop()
        await first.stop()
        await publisher_broker.stop()
        await first.client.close()
        await second.client.close()
