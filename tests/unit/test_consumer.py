"""The consumer's batch: what it handles, and where it leaves the offsets of what it does not."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition
from faststream.kafka.message import KafkaAckableMessage
from faststream.kafka.parser import AioKafkaBatchParser
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel
from rcm_contracts.collections import PaymentPlanRequested
from rcm_contracts.payments import PatientPaymentReceived, PaymentMethod
from rcm_shared.aggregates import Decision, InMemoryAggregates, Outcome, handling
from rcm_shared.envelope import Envelope
from rcm_shared.errors import TransientError
from rcm_shared.kafka import UNAPPLIED, BatchRewound, Consumer, Topics, _parse_any_bytes
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


# --- hostile and broken records ------------------------------------------------------


class DeadLetters:
    """The broker as the consumer uses it: publishing, here to a list."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def publish(self, body: Any, *, topic: str, key: bytes | None, headers: Any) -> None:
        self.sent.append({"body": body, "topic": topic, "key": key, "headers": headers})

    def reasons(self) -> list[str]:
        return [letter["headers"]["dlq_exception_message"] for letter in self.sent]


class Answers:
    def __init__(self) -> None:
        self.given: dict[str, object] = {}

    async def answer(self, request_id: str, outcome: object) -> None:
        self.given[request_id] = outcome


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counter(name: str, labels: list[str]) -> Counter:
    return Counter(name, "test", labels, registry=CollectorRegistry())


def consumer_of(broker: DeadLetters, **options: Any) -> Consumer:
    ownership = Ownership(partitions=6)
    ownership.owned = frozenset(range(6))
    return Consumer(broker=broker, topics=Topics(), group_id="g", ownership=ownership, **options)  # type: ignore[arg-type]


def batch_of(*records: Any) -> Any:
    return SimpleNamespace(raw_message=records, consumer=Positions())


def sample(counter: Counter, **labels: str) -> float:
    return counter.labels(**labels)._value.get()


def test_faststream_parses_records_whose_headers_are_null_or_not_utf8() -> None:
    """FastStream's own batch parser decodes every header and would fail before our code:
    the batch would be neither handled nor rewound, and the next commit would skip it."""
    broken = record(0, 3, "ep-a")
    broken.headers = [*broken.headers, ("x-note", b"\xff\xfe"), ("x-empty", None)]
    records = (consumer_record(record(0, 2, "ep-a")), consumer_record(broken))
    parser = AioKafkaBatchParser(msg_class=KafkaAckableMessage, regex=None)
    with pytest.raises((UnicodeDecodeError, AttributeError)):
        asyncio.run(parser.parse_batch(records))

    message = asyncio.run(_parse_any_bytes(records, parser.parse_batch))

    assert message.raw_message == records  # the records as they came, for our code
    assert message.batch_headers[1]["x-note"] == "\ufffd\ufffd"


def consumer_record(namespace: Any) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=namespace.topic,
        partition=namespace.partition,
        offset=namespace.offset,
        timestamp=0,
        timestamp_type=0,
        key=namespace.key,
        value=namespace.value,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=namespace.headers,
    )


async def test_unreadable_bytes_are_dead_lettered_with_a_reason_and_the_flow_goes_on() -> None:
    broker = DeadLetters()
    consumer = consumer_of(broker)
    handled: list[str] = []

    async def count(envelope: Envelope[PatientPaymentReceived]) -> None:
        handled.append(envelope.data.payment_id)

    consumer.on(PatientPaymentReceived)(count)
    not_utf8, null_header, null_key, null_value, good = (record(0, n, f"ep-{n}") for n in range(5))
    not_utf8.headers.append(("ce_source", b"rcm/\xffpayments"))
    null_header.headers.append(("traceparent", None))
    null_key.key = None
    null_value.value = None

    await consumer._consume_batch(batch_of(not_utf8, null_header, null_key, null_value, good))  # type: ignore[arg-type]

    assert len(handled) == 1
    letters = {letter["headers"]["dlq_original_offset"]: letter for letter in broker.sent}
    assert sorted(letters) == ["0", "1", "2", "3"]
    assert "is not UTF-8" in letters["0"]["headers"]["dlq_exception_message"]
    assert letters["0"]["headers"]["ce_source"] == "rcm/\ufffdpayments"
    assert letters["0"]["headers"]["dlq_replaced_headers"] == "ce_source"
    assert "has no value" in letters["1"]["headers"]["dlq_exception_message"]
    assert letters["1"]["headers"]["dlq_replaced_headers"] == "traceparent"
    assert "no key" in letters["2"]["headers"]["dlq_exception_message"]
    assert "Invalid JSON" in letters["3"]["headers"]["dlq_exception_message"]
    assert letters["3"]["body"] is None
    assert letters["3"]["key"] == b"ep-3"
    assert all(letter["topic"] == f"{TOPIC}.dlq" for letter in broker.sent)


async def test_dead_letter_reasons_say_the_class_and_place_not_the_message() -> None:
    broker = DeadLetters()
    consumer = consumer_of(broker)

    async def leak(envelope: Envelope[PatientPaymentReceived]) -> None:
        raise RuntimeError("patient Zebulon Quixote born 1931-07-14")

    consumer.on(PatientPaymentReceived)(leak)
    await consumer._consume_batch(batch_of(record(0, 1, "ep-a")))  # type: ignore[arg-type]

    (reason,) = broker.reasons()
    assert reason.startswith("RuntimeError at test_consumer.py:")
    assert "Zebulon" not in reason


async def test_a_record_failing_transiently_is_parked_after_max_deliveries() -> None:
    broker = DeadLetters()
    parked = counter("parked", ["topic", "group", "error"])
    clock = Clock()
    consumer = consumer_of(broker, retries=0, max_deliveries=3, parked=parked, clock=clock)
    handled: list[str] = []

    async def post(envelope: Envelope[PatientPaymentReceived]) -> None:
        if envelope.data.episode_id == "ep-stuck":
            raise TransientError("always busy for this one")
        handled.append(envelope.data.episode_id)

    consumer.on(PatientPaymentReceived)(post)
    batch = batch_of(record(0, 7, "ep-stuck"), record(0, 8, "ep-fine"))
    for delivery in (1, 2):
        # Rewound, the batch comes again; the other record goes through each time.
        with pytest.raises(BatchRewound, match="TransientError at "):
            await consumer._consume_batch(batch)  # type: ignore[arg-type]
        assert consumer.redeliveries[(TOPIC, 0, 7)].count == delivery
        clock.now += 1

    await consumer._consume_batch(batch)  # type: ignore[arg-type]  # the third: parked

    (letter,) = broker.sent
    assert letter["headers"]["dlq_original_offset"] == "7"
    assert letter["headers"]["dlq_parked_deliveries"] == "3"
    assert letter["headers"]["dlq_exception_class"] == "rcm_shared.kafka.Parked"
    assert (
        "parked after 3 deliveries failing transiently"
        in letter["headers"]["dlq_exception_message"]
    )
    assert "always busy" not in letter["headers"]["dlq_exception_message"]
    assert sample(parked, topic=TOPIC, group="g", error="TransientError") == 1
    assert consumer.redeliveries == {}
    assert handled == ["ep-fine"] * 3  # redelivered with its batch; idempotent handlers


async def test_an_outage_parks_nothing_until_the_age_limit() -> None:
    """When nothing gets through, the failure is not the record's: it waits, up to an age."""
    broker = DeadLetters()
    clock = Clock()
    consumer = consumer_of(
        broker, retries=0, max_deliveries=2, max_redelivery_age_s=60, clock=clock
    )

    async def down(envelope: Envelope[PatientPaymentReceived]) -> None:
        raise TransientError("database unreachable")

    consumer.on(PatientPaymentReceived)(down)
    batch = batch_of(record(0, 1, "ep-a"), record(1, 1, "ep-b"))
    for _ in range(5):
        with pytest.raises(BatchRewound, match="TransientError at "):
            await consumer._consume_batch(batch)  # type: ignore[arg-type]
        clock.now += 10
    assert broker.sent == []

    clock.now += 20  # a minute since each first failed
    await consumer._consume_batch(batch)  # type: ignore[arg-type]
    assert sorted(letter["key"] for letter in broker.sent) == [b"ep-a", b"ep-b"]


async def test_a_parked_request_is_answered() -> None:
    broker = DeadLetters()
    clock = Clock()
    consumer = consumer_of(
        broker, retries=0, max_deliveries=1, max_redelivery_age_s=30, clock=clock
    )
    consumer.replies = Answers()  # type: ignore[assignment]

    async def busy(envelope: Envelope[PaymentPlanRequested]) -> None:
        raise TransientError("busy")

    consumer.on(PaymentPlanRequested)(busy)
    request = Envelope(
        data=PaymentPlanRequested(episode_id="ep-r", requested_by="u-1", installments=3),
        source="rcm/test",
    )
    with pytest.raises(BatchRewound, match="TransientError at "):
        await consumer._consume_batch(batch_of(as_record(request, 0, 5)))  # type: ignore[arg-type]
    clock.now += 30
    await consumer._consume_batch(batch_of(as_record(request, 0, 5)))  # type: ignore[arg-type]

    assert consumer.replies.given == {request.id: UNAPPLIED}  # type: ignore[attr-defined]
    assert len(broker.sent) == 1


async def test_same_id_with_another_payload_is_dead_lettered_not_applied() -> None:
    broker = DeadLetters()
    mismatches = counter("mismatches", ["topic", "group"])
    consumer = consumer_of(broker, payload_mismatches=mismatches)
    ledgers = InMemoryAggregates(Ledger)
    outcomes: list[Outcome] = []

    async def post(envelope: Envelope[PatientPaymentReceived]) -> None:
        paid = envelope.data.amount_cents
        applied = await ledgers.apply(
            envelope.data.episode_id,
            lambda ledger: Decision(Ledger(paid=(ledger.paid if ledger else 0) + paid)),
            cause=envelope.id,
        )
        outcomes.append(applied.outcome)

    consumer.on(PatientPaymentReceived)(post)
    first = record(0, 1, "ep-m")
    again = record(0, 2, "ep-m")
    again.headers, again.value = first.headers, first.value
    forged = record(0, 3, "ep-m")
    forged.headers = first.headers  # the same ce_id, another payment

    await consumer._consume_batch(batch_of(first, again, forged))  # type: ignore[arg-type]

    assert outcomes == [Outcome.APPLIED, Outcome.DUPLICATE]
    (reason,) = broker.reasons()
    assert "same ce_id, different payload" in reason
    assert sample(mismatches, topic=TOPIC, group="g") == 1
    assert await ledgers.get("ep-m") == Ledger(paid=100)


async def test_an_id_applied_without_a_digest_stays_a_duplicate() -> None:
    """Causes applied before digests were kept (or outside a consumer) are ids alone."""
    ledgers = InMemoryAggregates(Ledger)
    await ledgers.apply("ep-o", lambda _: Decision(Ledger(paid=1)), cause="e-1")
    event = PatientPaymentReceived(
        episode_id="ep-o",
        payment_id="pay-1",
        amount_cents=5,
        method=PaymentMethod.CARD,
        received_at=datetime.now(UTC),
    )
    with handling("e-1", event):
        applied = await ledgers.apply("ep-o", lambda _: Decision(Ledger(paid=9)), cause="e-1")
    assert applied.outcome is Outcome.DUPLICATE


def as_record(envelope: Envelope[Any], partition: int, offset: int) -> Any:
    return SimpleNamespace(
        topic=f"{envelope.type}",
        partition=partition,
        offset=offset,
        key=envelope.subject.encode(),
        value=envelope.value(),
        headers=[(name, value.encode()) for name, value in envelope.headers().items()],
    )


class Ledger(BaseModel):
    paid: int = 0
