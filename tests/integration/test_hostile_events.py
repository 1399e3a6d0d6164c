"""Hostile and broken records on real Kafka and FerretDB: none is lost, none stops the
flow, and nothing said about them repeats the patient values they carry."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import Counter as Tally
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel
from rcm_contracts.payments import PatientPaymentReceived, PaymentMethod
from rcm_shared.aggregates import Decision, Outcome, PayloadMismatch, handling
from rcm_shared.envelope import Envelope
from rcm_shared.kafka import Consumer, EventPublisher, Topics, ensure_topics, make_broker
from rcm_shared.ownership import Ownership
from rcm_shared.relay import OutboxRelay
from rcm_shared.store import PENDING, QUARANTINE, MongoAggregates, outbox_entry

from tests.conftest import Infra

from .helpers import eventually, read_topic

pytestmark = pytest.mark.integration

PARTITIONS = 6
EACH_KIND = 100
GOOD_AFTER = 100  # good records after every malformed one
# Made-up patient values, carried by malformed records: never to be seen again.
PATIENT_NAME = "Zebulon Quixote-Marchetti"
BIRTH_DATE = "1931-07-14"

Headers = list[tuple[str, bytes | None]]


class Ledger(BaseModel):
    paid: int = 0


def payment(episode: str, cents: int) -> Envelope[PatientPaymentReceived]:
    return Envelope(
        data=PatientPaymentReceived(
            episode_id=episode,
            payment_id=f"pay-{uuid.uuid4().hex[:8]}",
            amount_cents=cents,
            method=PaymentMethod.CARD,
            received_at=datetime.now(UTC),
        ),
        source="rcm/test",
    )


def headers_of(envelope: Envelope[Any], **changes: bytes | None) -> Headers:
    headers: dict[str, bytes | None] = {
        name: value.encode() for name, value in envelope.headers().items()
    }
    headers.update(changes)
    return list(headers.items())


def without(headers: Headers, *names: str) -> Headers:
    return [(name, value) for name, value in headers if name not in names]


def patient_payload(episode: str) -> bytes:
    """Schema-invalid: a patient's name and birth date where amount and method belong."""
    return json.dumps(
        {
            "episode_id": episode,
            "payment_id": "pay-1",
            "amount_cents": PATIENT_NAME,
            "method": BIRTH_DATE,
            "received_at": datetime.now(UTC).isoformat(),
            "patient": {"name": PATIENT_NAME, "birth_date": BIRTH_DATE},
        }
    ).encode()


# A record: (key, value, headers). Each kind builds one from a good envelope and says
# what its dead letter's reason must contain.
Record = tuple[bytes | None, bytes | None, Headers]
MALFORMED: dict[str, tuple[Callable[[Envelope[Any]], Record], str]] = {
    "non-UTF-8 header": (
        lambda e: (e.subject.encode(), e.value(), headers_of(e, ce_source=b"rcm/\xff\xfe")),
        "header 'ce_source' is not UTF-8",
    ),
    "null header value": (
        lambda e: (e.subject.encode(), e.value(), [*headers_of(e), ("x-origin", None)]),
        "header 'x-origin' has no value",
    ),
    "missing ce headers": (
        lambda e: (e.subject.encode(), e.value(), without(headers_of(e), "ce_id", "ce_time")),
        "missing header ce_id",
    ),
    "unknown ce_type": (
        lambda e: (
            e.subject.encode(),
            e.value(),
            headers_of(e, ce_type=b"rcm.payments.no-such-event.v1"),
        ),
        "unknown event type 'rcm.payments.no-such-event.v1'",
    ),
    "invalid JSON": (
        lambda e: (
            e.subject.encode(),
            f'{{"patient": "{PATIENT_NAME}", "birth_date": "{BIRTH_DATE}"'.encode(),
            headers_of(e),
        ),
        "Invalid JSON",
    ),
    "schema-invalid payload": (
        lambda e: (e.subject.encode(), patient_payload(e.subject), headers_of(e)),
        "amount_cents: Input should be a valid integer",
    ),
    "ce_subject mismatch": (
        lambda e: (e.subject.encode(), e.value(), headers_of(e, ce_subject=b"E-someone-else")),
        "ce_subject 'E-someone-else' does not match the event key",
    ),
    "oversize ce_id": (
        lambda e: (e.subject.encode(), e.value(), headers_of(e, ce_id=b"x" * 129)),
        "ce_id is longer than 128 characters",
    ),
    "null value": (
        lambda e: (e.subject.encode(), None, headers_of(e)),
        "Invalid JSON: EOF",
    ),
    "null key": (
        lambda e: (None, e.value(), headers_of(e)),
        "the record has no key",
    ),
}
SAME_ID_OTHER_PAYLOAD = "same ce_id, different payload"


async def test_a_flood_of_malformed_records_is_dead_lettered_and_the_good_ones_go_through(
    infra: Infra, topics: Topics, database: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    topic = topics.of(PatientPaymentReceived)
    await ensure_topics(infra.kafka, [topic, f"{topic}.dlq"], PARTITIONS, 1)
    ledgers = MongoAggregates(database, "ledgers", "rcm/test", Ledger)
    broker = make_broker(infra.kafka, "test-hostile")
    registry = CollectorRegistry()
    dead_letters = Counter("dl", "-", ["topic", "group", "reason"], registry=registry)
    mismatches = Counter("mm", "-", ["topic", "group"], registry=registry)
    ownership = Ownership(PARTITIONS)
    consumer = Consumer(
        broker,
        topics,
        f"{topics.prefix}hostile",
        ownership=ownership,
        dead_letters=dead_letters,
        payload_mismatches=mismatches,
    )
    outcomes: list[Outcome] = []

    @consumer.on(PatientPaymentReceived)
    async def post(envelope: Envelope[PatientPaymentReceived]) -> None:
        cents = envelope.data.amount_cents
        applied = await ledgers.apply(
            envelope.data.episode_id,
            lambda ledger: Decision(Ledger(paid=(ledger.paid if ledger else 0) + cents)),
            cause=envelope.id,
        )
        outcomes.append(applied.outcome)

    # Good records and, after each, one malformed record of every kind: the record
    # under the same id with another payload follows its original on the same key.
    sequence: list[tuple[str, Record]] = []
    good: dict[str, int] = {}
    for n in range(EACH_KIND):
        original = payment(f"E-h{n:04d}", 1000 + n)
        good[original.subject] = original.data.amount_cents
        sequence.append(
            ("good", (original.subject.encode(), original.value(), headers_of(original)))
        )
        forged = Envelope(
            data=original.data.model_copy(update={"amount_cents": 1}),
            source="rcm/test",
            id=original.id,
        )
        sequence.append(
            (SAME_ID_OTHER_PAYLOAD, (forged.subject.encode(), forged.value(), headers_of(forged)))
        )
        for kind, (build, _) in MALFORMED.items():
            sequence.append((kind, build(payment(f"E-m{n:04d}-{len(sequence)}", 500))))
    for n in range(GOOD_AFTER):
        after = payment(f"E-a{n:04d}", 2000 + n)
        good[after.subject] = after.data.amount_cents
        sequence.append(("good", (after.subject.encode(), after.value(), headers_of(after))))

    consumer.start()
    await broker.start()
    started = time.monotonic()
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sending = [
            await producer.send(topic, value, key=key, headers=headers)
            for _, (key, value, headers) in sequence
        ]
        positions = [(sent.partition, sent.offset) for sent in await asyncio.gather(*sending)]
        kinds = {position: kind for position, (kind, _) in zip(positions, sequence, strict=True)}
        bad = {position for position, kind in kinds.items() if kind != "good"}
        assert len(bad) == EACH_KIND * (len(MALFORMED) + 1)

        async def all_handled() -> bool:
            return sum(value.get() for value in _values(dead_letters)) >= len(
                bad
            ) and outcomes.count(Outcome.APPLIED) == len(good)

        await eventually(all_handled, timeout_s=50)
    finally:
        await producer.stop()
        await broker.stop()
    elapsed = time.monotonic() - started

    dead = await read_topic(infra.kafka, f"{topic}.dlq", len(bad))
    where = {
        (int(_header(r, "dlq_original_partition")), int(_header(r, "dlq_original_offset"))): r
        for r in dead
    }
    assert set(where) == bad  # every malformed record, and none of the good ones
    expected = {kind: reason for kind, (_, reason) in MALFORMED.items()}
    expected[SAME_ID_OTHER_PAYLOAD] = SAME_ID_OTHER_PAYLOAD
    for position, record in where.items():
        assert expected[kinds[position]] in _header(record, "dlq_exception_message"), kinds[
            position
        ]
        for name, value in record.headers:
            text = f"{name}={(value or b'').decode(errors='replace')}"
            assert PATIENT_NAME not in text
            assert BIRTH_DATE not in text
    # Everything a service logs at its level (INFO), and all of ours and FastStream's.
    # (aiokafka's DEBUG trace of the producer prints whole records: off in services.)
    said = "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.INFO or record.name.startswith(("rcm", "faststream"))
    )
    assert PATIENT_NAME not in said
    assert BIRTH_DATE not in said

    for episode, cents in good.items():  # the forged ones changed nothing
        assert await ledgers.get(episode) == Ledger(paid=cents)
    assert mismatches.labels(topic, f"{topics.prefix}hostile")._value.get() == EACH_KIND
    assert elapsed < 60


def _values(counter: Counter) -> list[Any]:
    return [child._value for child in counter._metrics.values()]


def _header(record: Any, name: str) -> str:
    return dict(record.headers)[name].decode()


async def test_digests_sit_beside_plain_applied_ids(database: Any) -> None:
    """Documents written before digests hold plain ids: a redelivery is still a duplicate."""
    ledgers = MongoAggregates(database, "ledgers", "rcm/test", Ledger)
    old = payment("E-old", 700)
    await database["ledgers"].insert_one(
        {"_id": "E-old", "version": 1, "applied": [old.id], "outbox": [], PENDING: False, "paid": 7}
    )
    changed = old.data.model_copy(update={"amount_cents": 9})
    with handling(old.id, changed):
        again = await ledgers.apply("E-old", lambda _: Decision(Ledger(paid=99)), cause=old.id)
    assert again.outcome is Outcome.DUPLICATE

    new = payment("E-old", 300)

    def add(ledger: Ledger | None) -> Decision[Ledger, None]:
        return Decision(Ledger(paid=(ledger.paid if ledger else 0) + 300))

    with handling(new.id, new.data):
        assert (await ledgers.apply("E-old", add, cause=new.id)).outcome is Outcome.APPLIED
        assert (await ledgers.apply("E-old", add, cause=new.id)).outcome is Outcome.DUPLICATE
    forged = new.data.model_copy(update={"amount_cents": 1})
    with handling(new.id, forged), pytest.raises(PayloadMismatch):
        await ledgers.apply("E-old", add, cause=new.id)

    stored = await database["ledgers"].find_one({"_id": "E-old"})
    assert stored["applied"] == [old.id, new.id]
    assert len(stored["digests"]) == 1
    assert len(stored["digests"][0]) == 25
    assert await ledgers.get("E-old") == Ledger(paid=307)


async def test_an_unpublishable_outbox_entry_is_quarantined_in_its_document(
    infra: Infra, topics: Topics, database: Any
) -> None:
    def entry(cents: int) -> dict[str, Any]:
        return outbox_entry(payment("E-q", cents).data, "rcm/test")

    unreadable = {**entry(1), "type": "rcm.payments.retired-event.v1"}
    await database["ledgers"].insert_one(
        {
            "_id": "E-q",
            "version": 1,
            "applied": [],
            "outbox": [entry(100), unreadable, entry(200)],
            PENDING: True,
        }
    )
    ledgers = MongoAggregates(database, "ledgers", "rcm/test", Ledger)
    broker = make_broker(infra.kafka, "test-quarantine")
    await broker.start()
    try:
        relay = OutboxRelay([ledgers], EventPublisher(broker, topics))
        assert await relay.drain() == 2
        assert await relay.drain() == 0
    finally:
        await broker.stop()

    records = await read_topic(infra.kafka, topics.of(PatientPaymentReceived), 2)
    assert sorted(json.loads(r.value)["amount_cents"] for r in records) == [100, 200]
    stored = await database["ledgers"].find_one({"_id": "E-q"})
    assert stored["outbox"] == []
    assert stored[PENDING] is False
    (kept,) = stored[QUARANTINE]
    assert kept["entry"]["type"] == "rcm.payments.retired-event.v1"
    assert kept["reason"].startswith("Unreadable: KeyError at relay.py:")
    (listed,) = await ledgers.quarantined()
    assert listed["_id"] == "E-q"
    assert await ledgers.get("E-q") == Ledger()  # bookkeeping, not state
    assert Tally(r.key for r in records) == {b"E-q": 2}
