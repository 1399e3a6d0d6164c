"""The outbox relay's failures are per entry: one that can never be published is set
aside, and nothing else waits for it."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from prometheus_client import CollectorRegistry, Counter
from rcm_contracts.payments import PatientPaymentReceived, PaymentMethod
from rcm_shared.envelope import Envelope
from rcm_shared.relay import OutboxRelay
from rcm_shared.store import Document, outbox_entry


def entry(episode: str, payment_id: str) -> Document:
    event = PatientPaymentReceived(
        episode_id=episode,
        payment_id=payment_id,
        amount_cents=100,
        method=PaymentMethod.CARD,
        received_at=datetime.now(UTC),
    )
    return outbox_entry(event, "rcm/test")


class Outboxes:
    """The store as the relay uses it, in memory: outboxes by aggregate id."""

    def __init__(self, outboxes: dict[str, list[Document]]) -> None:
        self.collection = SimpleNamespace(name="ledgers")
        self.outboxes = outboxes
        self.quarantine: dict[str, list[tuple[Document, str]]] = {}
        self.writes = 0
        self.on_change = lambda aggregate_id: None

    async def pending(self) -> list[Document]:
        return [{"_id": key, "outbox": list(box)} for key, box in self.outboxes.items() if box]

    async def pending_of(self, ids: list[str]) -> list[Document]:
        return [document for document in await self.pending() if document["_id"] in ids]

    async def mark_published(
        self, aggregate_id: str, entries: list[Document], quarantined: Any = ()
    ) -> None:
        self.writes += 1
        leaving = [*entries, *(kept for kept, _ in quarantined)]
        box = self.outboxes[aggregate_id]
        self.outboxes[aggregate_id] = [kept for kept in box if kept not in leaving]
        self.quarantine.setdefault(aggregate_id, []).extend(quarantined)


class Kafka:
    """Publishes to a list; refuses some payments for good, and others while `down`."""

    def __init__(self, too_large: set[str], unreachable: set[str]) -> None:
        self.too_large = too_large
        self.unreachable = unreachable
        self.sent: list[str] = []

    async def publish(self, envelope: Envelope[PatientPaymentReceived]) -> None:
        payment = envelope.data.payment_id
        if payment in self.too_large:
            raise MessageSizeTooLargeError("the record is larger than the broker takes")
        if payment in self.unreachable:
            raise KafkaConnectionError("broker unreachable")
        self.sent.append(payment)


async def test_an_entry_that_cannot_be_published_is_quarantined_and_the_rest_goes_on() -> None:
    unreadable = {**entry("ep-a", "pay-2"), "data": {"episode_id": "ep-a", "amount_cents": "x"}}
    store = Outboxes(
        {
            "ep-a": [
                entry("ep-a", "pay-1"),
                unreadable,
                entry("ep-a", "pay-3"),
                entry("ep-a", "pay-4"),
            ],
            "ep-b": [entry("ep-b", "pay-5")],
        }
    )
    kafka = Kafka(too_large={"pay-3"}, unreachable=set())
    quarantines = Counter("q", "test", ["collection", "error"], registry=CollectorRegistry())
    relay = OutboxRelay([store], kafka, quarantines=quarantines)  # type: ignore[list-item, arg-type]

    assert await relay.drain() == 3

    assert kafka.sent == ["pay-1", "pay-4", "pay-5"]  # in order, around the two set aside
    assert store.outboxes == {"ep-a": [], "ep-b": []}
    assert store.writes == 2  # one per aggregate
    reasons = [why for _, why in store.quarantine["ep-a"]]
    assert reasons[0].startswith("Unreadable: ValidationError: payment_id: Field required")
    assert reasons[1].startswith("MessageSizeTooLargeError at ")
    assert [kept["data"].get("payment_id") for kept, _ in store.quarantine["ep-a"]] == [
        None,
        "pay-3",
    ]
    assert relay.quarantined == 2
    assert quarantines.labels("ledgers", "ValidationError")._value.get() == 1
    assert quarantines.labels("ledgers", "MessageSizeTooLargeError")._value.get() == 1
    assert await relay.drain() == 0  # not retried


async def test_an_unreachable_broker_stops_only_that_aggregate_until_the_next_round() -> None:
    store = Outboxes(
        {
            "ep-a": [entry("ep-a", "pay-1"), entry("ep-a", "pay-2"), entry("ep-a", "pay-3")],
            "ep-b": [entry("ep-b", "pay-4")],
        }
    )
    kafka = Kafka(too_large=set(), unreachable={"pay-2"})
    relay = OutboxRelay([store], kafka)  # type: ignore[list-item, arg-type]

    assert await relay.drain() == 2
    assert kafka.sent == ["pay-1", "pay-4"]
    assert [e["data"]["payment_id"] for e in store.outboxes["ep-a"]] == ["pay-2", "pay-3"]
    assert store.quarantine == {"ep-a": [], "ep-b": []}
    assert relay.backlog == 1  # ep-a, for the next round

    kafka.unreachable.clear()
    assert await relay.drain(sweep=False) == 2
    assert kafka.sent == ["pay-1", "pay-4", "pay-2", "pay-3"]
    assert relay.quarantined == 0
