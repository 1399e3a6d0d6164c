"""The consumer's batch: what it handles, and where it leaves the offsets of what it does not."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from aiokafka.structs import TopicPartition
from rcm_contracts.payments import PatientPaymentReceived, PaymentMethod
from rcm_shared.envelope import Envelope
from rcm_shared.kafka import Consumer, Topics
from rcm_shared.ownership import Ownership

TOPIC = "rcm.payments.patient-payment-received.v1"


class Positions:
    """The few aiokafka consumer calls a batch makes: seeks move a partition's position."""

    def __init__(self) -> None:
        self.sought: dict[TopicPartition, int] = {}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.sought[partition] = offset


def record(partition: int, offset: int, episode: str) -> Any:
    envelope = Envelope(
        data=PatientPaymentReceived(
            episode_id=episode,
            payment_id=f"pay-{uuid.uuid4().hex[:8]}",
            amount_cents=100,
            method=PaymentMethod.CARD,
            received_at=datetime.now(UTC),
        ),
        source="rcm/test",
    )
    return SimpleNamespace(
        topic=TOPIC,
        partition=partition,
        offset=offset,
        key=episode.encode(),
        value=envelope.value(),
        headers=[(name, value.encode()) for name, value in envelope.headers().items()],
    )


async def test_records_of_revoked_partitions_are_rewound_not_skipped() -> None:
    ownership = Ownership(partitions=6)
    ownership.owned = frozenset({0})  # partition 1 was revoked after the batch was fetched
    consumer = Consumer(broker=None, topics=Topics(), group_id="g", ownership=ownership)  # type: ignore[arg-type]
    handled: list[str] = []

    async def count(envelope: Envelope[PatientPaymentReceived]) -> None:
        handled.append(envelope.data.episode_id)

    consumer.on(PatientPaymentReceived)(count)
    positions = Positions()
    batch = (
        record(0, 7, "ep-a"),
        record(1, 40, "ep-b"),
        record(1, 41, "ep-c"),
        record(0, 8, "ep-a"),
    )

    await consumer._consume_batch(SimpleNamespace(raw_message=batch, consumer=positions))  # type: ignore[arg-type]

    assert handled == ["ep-a", "ep-a"]
    # The ack that follows commits positions: partition 1's is back at its first record.
    assert positions.sought == {TopicPartition(TOPIC, 1): 40}
