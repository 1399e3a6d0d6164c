"""Replicas of a service: Kafka gives each aggregate, and each singleton job, to one of them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from rcm_contracts.payments import PatientPaymentReceived, PaymentMethod
from rcm_shared.envelope import Envelope
from rcm_shared.kafka import Consumer, EventPublisher, Topics, ensure_topics, make_broker
from rcm_shared.ownership import Ownership

from tests.conftest import Infra

from .helpers import eventually

pytestmark = pytest.mark.integration

PARTITIONS = 6
EPISODES = 12
PAYMENTS_EACH = 15


class Replica:
    """One process's worth of consumer, counting payments with a read, a pause and a write:
    two writers of one episode at once would lose counts."""

    def __init__(self, infra: Infra, topics: Topics, group: str, counts: Any) -> None:
        self.broker = make_broker(infra.kafka, f"replica-{uuid.uuid4().hex[:6]}")
        self.ownership = Ownership(PARTITIONS)
        self.consumer = Consumer(self.broker, topics, group, ownership=self.ownership)
        self.counts = counts
        self.consumer.on(PatientPaymentReceived)(self.count)

    async def count(self, envelope: Envelope[PatientPaymentReceived]) -> None:
        episode = envelope.data.episode_id
        current = await self.counts.find_one({"_id": episode}) or {"count": 0, "seen": []}
        if envelope.id in current["seen"]:
            return  # a redelivery after a hand-over
        await asyncio.sleep(0.005)
        await self.counts.update_one(
            {"_id": episode},
            {"$set": {"count": current["count"] + 1}, "$push": {"seen": envelope.id}},
            upsert=True,
        )

    async def start(self) -> None:
        self.consumer.start()
        await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()


def payment(episode: str) -> Envelope[PatientPaymentReceived]:
    return Envelope(
        data=PatientPaymentReceived(
            episode_id=episode,
            payment_id=f"pay-{uuid.uuid4().hex[:8]}",
            amount_cents=100,
            method=PaymentMethod.CARD,
            received_at=datetime.now(UTC),
        ),
        source="rcm/test",
    )


async def test_replicas_own_disjoint_partitions_and_hand_over_cleanly(
    infra: Infra, topics: Topics, database: Any
) -> None:
    counts = database["counts"]
    await ensure_topics(infra.kafka, [topics.of(PatientPaymentReceived)], PARTITIONS, 1)
    group = f"{topics.prefix}payments"
    first = Replica(infra, topics, group, counts)
    second = Replica(infra, topics, group, counts)
    publisher_broker = make_broker(infra.kafka, "test-publisher")
    await publisher_broker.start()
    publisher = EventPublisher(publisher_broker, topics)
    episodes = [f"ep-own-{n}" for n in range(EPISODES)]

    async def publish_round() -> None:
        for episode in episodes:
            await publisher.publish(payment(episode))

    async def owns_all(replica: Replica) -> bool:
        return replica.ownership.owned == set(range(PARTITIONS))

    await first.start()
    try:
        await eventually(lambda: owns_all(first), timeout_s=60)
        for _ in range(PAYMENTS_EACH // 3):
            await publish_round()
        await second.start()  # joins mid-stream: partitions move while payments flow

        async def split() -> bool:
            return bool(first.ownership.owned) and bool(second.ownership.owned)

        await eventually(split, timeout_s=60)
        assert first.ownership.owned.isdisjoint(second.ownership.owned)
        assert first.ownership.owned | second.ownership.owned == set(range(PARTITIONS))
        assert [first.ownership.holds("job"), second.ownership.holds("job")].count(True) == 1
        for _ in range(PAYMENTS_EACH // 3):
            await publish_round()
        await first.stop()  # leaves mid-stream: the other takes everything over
        for _ in range(PAYMENTS_EACH - 2 * (PAYMENTS_EACH // 3)):
            await publish_round()

        async def all_counted() -> bool:
            found = {d["_id"]: d["count"] async for d in counts.find({})}
            return found == dict.fromkeys(episodes, PAYMENTS_EACH)

        await eventually(all_counted, timeout_s=90)
        assert second.ownership.owned == set(range(PARTITIONS))
        assert second.ownership.holds("job")
    finally:
        await second.stop()
        await first.stop()
        await publisher_broker.stop()
