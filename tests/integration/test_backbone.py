"""The event backbone on real Kafka and a real MongoDB wire protocol."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import textwrap
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel
from pymongo import AsyncMongoClient
from rcm_contracts.collections import PaymentPlanRequested
from rcm_contracts.payments import PatientPaymentReceived, PaymentMethod
from rcm_shared.aggregates import Decision, Outcome
from rcm_shared.envelope import Envelope
from rcm_shared.errors import PermanentError
from rcm_shared.kafka import Consumer, EventPublisher, Topics, ensure_topics, make_broker
from rcm_shared.ownership import Ownership
from rcm_shared.relay import OutboxRelay
from rcm_shared.requests import Replies, Reply, Requester
from rcm_shared.store import ControlNumbers, MongoAggregates, connect
from rcm_shared.telemetry import setup_tracing

from tests.conftest import REPO, Infra

from .helpers import eventually, headers_of, read_topic

pytestmark = pytest.mark.integration

PARTITIONS = 6  # the local broker's default for topics it creates


class Ledger(BaseModel):
    """A stand-in aggregate state for the store's tests."""

    paid: int = 0
    items: list[int] = []
    last: int | None = None


def payment(episode: str, cents: int = 1500) -> PatientPaymentReceived:
    return PatientPaymentReceived(
        episode_id=episode,
        payment_id=f"pay-{uuid.uuid4().hex[:8]}",
        amount_cents=cents,
        method=PaymentMethod.CARD,
        received_at=datetime.now(UTC),
    )


async def test_round_trip_keeps_headers_key_and_trace(infra: Infra, topics: Topics) -> None:
    provider = setup_tracing("test-producer", None)
    broker = make_broker(infra.kafka, "test-round-trip", provider)
    received: list[Envelope[PatientPaymentReceived]] = []
    consumer = Consumer(
        broker, topics, ownership=Ownership(PARTITIONS), group_id=f"{topics.prefix}g"
    )

    @consumer.on(PatientPaymentReceived)
    async def collect(envelope: Envelope[PatientPaymentReceived]) -> None:
        received.append(envelope)

    sent = Envelope(data=payment("ep-rt-1"), source="rcm/test")
    consumer.start()
    await broker.start()
    try:
        with provider.get_tracer("test").start_as_current_span("request") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            await EventPublisher(broker, topics).publish(sent)

        async def arrived() -> bool:
            return len(received) == 1

        await eventually(arrived)
    finally:
        await broker.stop()

    assert received[0] == sent
    (record,) = await read_topic(infra.kafka, topics.of(PatientPaymentReceived), 1)
    headers = headers_of(record)
    assert record.key == b"ep-rt-1"
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_id"] == sent.id
    assert headers["ce_type"] == "rcm.payments.patient-payment-received.v1"
    assert headers["ce_source"] == "rcm/test"
    assert headers["ce_subject"] == "ep-rt-1"
    assert headers["content-type"] == "application/json"
    assert headers["ce_time"].endswith("Z")
    version, traced_id, _span, _flags = headers["traceparent"].split("-")
    assert version == "00"
    assert traced_id == trace_id
    assert json.loads(record.value)["amount_cents"] == 1500


CRASHING_WRITER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from datetime import UTC, datetime
    from pymongo import AsyncMongoClient
    from rcm_contracts.payments import PatientPaymentReceived, PaymentMethod
    from pydantic import BaseModel
    from rcm_shared.aggregates import Decision
    from rcm_shared.store import MongoAggregates

    class Ledger(BaseModel):
        paid: int = 0

    async def main() -> None:
        url, database, episode = sys.argv[1:4]
        client = AsyncMongoClient(url, tz_aware=True)
        store = MongoAggregates(client[database], "accounts", "rcm/test", Ledger)
        event = PatientPaymentReceived(
            episode_id=episode, payment_id="pay-crash", amount_cents=2500,
            method=PaymentMethod.CASH, received_at=datetime.now(UTC),
        )
        await store.apply(episode, lambda _: Decision(Ledger(paid=2500), [event]))
        os.kill(os.getpid(), signal.SIGKILL)  # dies after the write, before any publish

    asyncio.run(main())
    """
)


async def test_crash_between_write_and_publish_loses_no_event(
    infra: Infra, topics: Topics, database: Any
) -> None:
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-c", CRASHING_WRITER, infra.mongodb_url, database.name, "ep-crash"),
        cwd=REPO,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await writer.communicate()
    assert writer.returncode == -signal.SIGKILL, stderr.decode()
    document = await database["accounts"].find_one({"_id": "ep-crash"})
    assert document["paid"] == 2500
    assert len(document["outbox"]) == 1  # written, not yet published

    broker = make_broker(infra.kafka, "test-relay")
    await broker.start()
    try:
        store = MongoAggregates(database, "accounts", "rcm/test", Ledger)
        relay = OutboxRelay([store], EventPublisher(broker, topics))
        assert await relay.drain() == 1
        assert await relay.drain() == 0
    finally:
        await broker.stop()

    (record,) = await read_topic(infra.kafka, topics.of(PatientPaymentReceived), 1)
    assert json.loads(record.value)["payment_id"] == "pay-crash"
    assert (await database["accounts"].find_one({"_id": "ep-crash"}))["outbox"] == []


async def test_duplicate_delivery_applies_once(infra: Infra, topics: Topics, database: Any) -> None:
    broker = make_broker(infra.kafka, "test-duplicates")
    store = MongoAggregates(database, "ledgers", "rcm/test", Ledger)
    consumer = Consumer(
        broker, topics, ownership=Ownership(PARTITIONS), group_id=f"{topics.prefix}ledger"
    )
    handled: list[Outcome] = []

    @consumer.on(PatientPaymentReceived)
    async def post(envelope: Envelope[PatientPaymentReceived]) -> None:
        def decide(ledger: Ledger | None) -> Decision[Ledger, None]:
            paid = (ledger.paid if ledger else 0) + envelope.data.amount_cents
            return Decision(Ledger(paid=paid))

        applied = await store.apply(envelope.data.episode_id, decide, cause=envelope.id)
        handled.append(applied.outcome)

    first = Envelope(data=payment("ep-dup", 1000), source="rcm/test")
    second = Envelope(data=payment("ep-dup", 700), source="rcm/test")
    publisher = EventPublisher(broker, topics)
    consumer.start()
    await broker.start()
    try:
        for envelope in (first, first, second, first):
            await publisher.publish(envelope)

        async def all_handled() -> bool:
            return len(handled) == 4

        await eventually(all_handled)
    finally:
        await broker.stop()

    assert handled == [Outcome.APPLIED, Outcome.DUPLICATE, Outcome.APPLIED, Outcome.DUPLICATE]
    assert await store.get("ep-dup") == Ledger(paid=1700)
    stored = await database["ledgers"].find_one({"_id": "ep-dup"})
    assert stored["applied"] == [first.id, second.id]


async def test_poison_messages_go_to_dead_letters_and_the_flow_goes_on(
    infra: Infra, topics: Topics
) -> None:
    broker = make_broker(infra.kafka, "test-poison")
    consumer = Consumer(
        broker, topics, ownership=Ownership(PARTITIONS), group_id=f"{topics.prefix}poison"
    )
    processed: list[str] = []

    @consumer.on(PatientPaymentReceived)
    async def post(envelope: Envelope[PatientPaymentReceived]) -> None:
        if envelope.data.amount_cents == 666:
            raise PermanentError("payment of 666 cents breaks a rule")
        processed.append(envelope.data.payment_id)

    topic = topics.of(PatientPaymentReceived)
    good = Envelope(data=payment("ep-p", 100), source="rcm/test")
    valid_headers = good.headers()
    wrong_type = {**valid_headers, "ce_type": "rcm.payments.no-such-event.v1"}
    consumer.start()
    await broker.start()
    try:
        await broker.publish(b"{not json", topic=topic, key=b"ep-p", headers=valid_headers)
        await broker.publish(good.value(), topic=topic, key=b"ep-p", headers=wrong_type)
        await broker.publish(
            b'{"episode_id": "ep-p"}', topic=topic, key=b"ep-p", headers=valid_headers
        )
        await EventPublisher(broker, topics).publish(
            Envelope(data=payment("ep-p", 666), source="rcm/test")
        )
        await EventPublisher(broker, topics).publish(good)

        async def flowed() -> bool:
            return processed == [good.data.payment_id]

        await eventually(flowed)
    finally:
        await broker.stop()

    dead = await read_topic(infra.kafka, f"{topic}.dlq", 4)
    reasons = [headers_of(record) for record in dead]
    assert [r["dlq_exception_class"].rsplit(".", 1)[-1] for r in reasons] == [
        "InvalidEnvelope",
        "InvalidEnvelope",
        "InvalidEnvelope",
        "PermanentError",
    ]
    assert "Invalid JSON" in reasons[0]["dlq_exception_message"]
    assert "unknown event type" in reasons[1]["dlq_exception_message"]
    assert "payment_id: Field required" in reasons[2]["dlq_exception_message"]
    # Not a Redacted error: its message may quote the event's values, so only its class
    # and place are said (rcm_shared.redact.describe).
    assert reasons[3]["dlq_exception_message"].startswith("PermanentError at test_backbone.py:")
    assert reasons[3]["dlq_exception_message"].endswith(" in post")
    assert "666" not in reasons[3]["dlq_exception_message"]
    originals = await read_topic(infra.kafka, topic, 5)
    for original, r in zip(originals, reasons, strict=False):
        assert r["dlq_original_topic"] == topic
        assert r["dlq_original_offset"] == str(original.offset)
        assert r["dlq_original_partition"] == str(original.partition)
        assert r["dlq_consumer_group"] == f"{topics.prefix}poison"
        datetime.fromisoformat(r["dlq_failed_at"])
    assert dead[0].value == b"{not json"
    assert all(record.key == b"ep-p" for record in dead)


class FlakyProxy:
    """A TCP proxy to MongoDB that refuses connections until `open()`: a real outage."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.is_open = False
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.is_open:
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            finally:
                sink.close()

        await asyncio.gather(
            pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_transient_database_error_is_retried_not_dead_lettered(
    infra: Infra, topics: Topics, database: Any
) -> None:
    host, port = infra.mongodb_url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    proxy = FlakyProxy(host, int(port))
    proxy_port = await proxy.start()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{proxy_port}/", serverSelectionTimeoutMS=300, tz_aware=True
    )
    store = MongoAggregates(client[database.name], "ledgers", "rcm/test", Ledger)
    broker = make_broker(infra.kafka, "test-transient")
    consumer = Consumer(
        broker,
        topics,
        ownership=Ownership(PARTITIONS),
        group_id=f"{topics.prefix}t",
        retries=2,
        backoff_s=0.1,
    )
    attempts = 0

    @consumer.on(PatientPaymentReceived)
    async def post(envelope: Envelope[PatientPaymentReceived]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 4:
            proxy.is_open = True  # the outage ends after one redelivery round
        await store.apply(
            envelope.data.episode_id,
            lambda _: Decision(Ledger(paid=envelope.data.amount_cents)),
            cause=envelope.id,
        )

    sent = Envelope(data=payment("ep-t", 4200), source="rcm/test")
    consumer.start()
    await broker.start()
    try:
        await EventPublisher(broker, topics).publish(sent)

        async def stored() -> bool:
            return await database["ledgers"].find_one({"_id": "ep-t"}) is not None

        await eventually(stored, timeout_s=60)
    finally:
        await broker.stop()
        await client.close()
        await proxy.stop()

    # 3 attempts (1 + 2 retries) failed in place, the message was sought back and
    # redelivered, and went through once the driver saw the database back (4th or later).
    assert attempts >= 4
    document = await database["ledgers"].find_one({"_id": "ep-t"})
    assert document["paid"] == 4200
    assert document["applied"] == [sent.id]
    assert not await _topic_exists(infra.kafka, f"{topics.of(PatientPaymentReceived)}.dlq")


async def _topic_exists(bootstrap: str, topic: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return topic in await admin.list_topics()
    finally:
        await admin.close()


async def test_concurrent_changes_of_one_aggregate_all_count(database: Any) -> None:
    """FerretDB lets two guarded updates both win; within the owner's process the store
    must not lose one of several changes to one aggregate made at once."""
    store = MongoAggregates(database, "counters_of_changes", "rcm/test", Ledger)

    def add(item: int) -> Callable[[Ledger | None], Decision[Ledger, None]]:
        def decide(current: Ledger | None) -> Decision[Ledger, None]:
            items = [*(current.items if current else []), item]
            return Decision(Ledger(items=items), [payment("ep-many", 100 + item)])

        return decide

    applied = await asyncio.gather(
        *(store.apply("ep-many", add(n), cause=f"e{n}") for n in range(12))
    )
    assert {a.outcome for a in applied} == {Outcome.APPLIED}
    document = await store.collection.find_one({"_id": "ep-many"})
    assert document is not None
    assert sorted(document["items"]) == list(range(12))
    assert sorted(document["applied"]) == sorted(f"e{n}" for n in range(12))
    assert len(document["outbox"]) == 12
    assert document["version"] == 12


async def test_control_numbers_are_unique_under_concurrency_and_wrap(database: Any) -> None:
    numbers = ControlNumbers(database, "isa13", maximum=999_999_999)
    drawn = await asyncio.gather(*(numbers.next() for _ in range(25)))
    assert sorted(drawn) == list(range(1, 26))

    small = ControlNumbers(database, "tiny", maximum=3)
    assert [await small.next() for _ in range(5)] == [1, 2, 3, 1, 2]


async def test_control_numbers_of_partitions_never_meet(database: Any) -> None:
    """Replicas own different partitions: each draws from its partition's own range."""
    numbers = ControlNumbers(database, "isa13", maximum=999_999_999, partitions=6)
    drawn = {p: [await numbers.next(p) for _ in range(3)] for p in range(6)}
    assert drawn[0] == [1, 2, 3]
    assert drawn[5] == [5 * 166_666_666 + n for n in (1, 2, 3)]
    assert len({n for numbers_of in drawn.values() for n in numbers_of}) == 18
    assert max(max(numbers_of) for numbers_of in drawn.values()) <= 999_999_999


async def test_changes_outside_a_trace_continue_the_aggregates_trace(
    infra: Infra, topics: Topics, database: Any
) -> None:
    """HTTP commands carry no trace: they continue the one the aggregate was created in,
    so an episode's events, command after command, form one trace."""
    setup_tracing("test-commands", None)
    store = MongoAggregates(database, "commands", "rcm/test", Ledger)

    def pay(cents: int) -> Callable[[Ledger | None], Decision[Ledger, None]]:
        return lambda _current: Decision(Ledger(last=cents), [payment("ep-tr", cents)])

    await store.apply("ep-tr", pay(100))  # opens the aggregate: a new trace
    await store.apply("ep-tr", pay(200))  # a later command: the same trace
    assert await store.get("ep-tr") == Ledger(last=200)
    stored = await database["commands"].find_one({"_id": "ep-tr"}, {"version": 1, "applied": 1})
    assert stored == {"_id": "ep-tr", "version": 2, "applied": []}

    broker = make_broker(infra.kafka, "test-commands")
    await broker.start()
    try:
        assert await OutboxRelay([store], EventPublisher(broker, topics)).drain() == 2
    finally:
        await broker.stop()
    records = await read_topic(infra.kafka, topics.of(PatientPaymentReceived), 2)
    traces = {headers_of(record)["traceparent"].split("-")[1] for record in records}
    spans = {headers_of(record)["traceparent"].split("-")[2] for record in records}
    assert len(traces) == 1
    assert len(spans) == 2


def owning_everything() -> Ownership:
    ownership = Ownership(PARTITIONS)
    ownership.owned = frozenset(range(PARTITIONS))
    return ownership


def commands_by_name(counter: Counter) -> dict[str, float]:
    found: dict[str, float] = {}
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                name = sample.labels["command"]
                found[name] = found.get(name, 0.0) + sample.value
    return found


async def test_an_owned_aggregate_changes_in_one_write_and_leaves_the_outbox_in_one_more(
    infra: Infra, topics: Topics, database: Any
) -> None:
    """The owner keeps its aggregates' documents: no read before a change, and the relay
    publishes what was just written without reading it back (decisions: the owner's copies)."""
    counter = Counter("db", "commands", ["collection", "command"], registry=CollectorRegistry())
    client = connect(infra.mongodb_url, commands=counter)
    store = MongoAggregates(
        client[database.name], "ledgers", "rcm/test", Ledger, owning_everything(), cache_size=10
    )
    broker = make_broker(infra.kafka, "test-one-write")
    await broker.start()
    relay = OutboxRelay([store], EventPublisher(broker, topics))
    try:

        def pay(cents: int) -> Callable[[Ledger | None], Decision[Ledger, None]]:
            def decide(ledger: Ledger | None) -> Decision[Ledger, None]:
                paid = (ledger.paid if ledger else 0) + cents
                return Decision(Ledger(paid=paid), [payment("ep-one", cents)])

            return decide

        for cents in range(101, 106):
            applied = await store.apply("ep-one", pay(cents), cause=f"cause-{cents}")
            assert applied.outcome is Outcome.APPLIED
            assert await relay.drain(sweep=False) == 1
        duplicate = await store.apply("ep-one", pay(1), cause="cause-101")
        assert duplicate.outcome is Outcome.DUPLICATE
        assert await store.get("ep-one") == Ledger(paid=515)
        assert await relay.drain(sweep=True) == 0  # nothing goes out twice
        # Each change took the entries published before it out of the stored outbox.
        stored = await database["ledgers"].find_one({"_id": "ep-one"})
        assert [entry["data"]["amount_cents"] for entry in stored["outbox"]] == [105]
        await relay.remove_published()  # as on stopping
        # The first change read (nothing there) and inserted; then one write per change,
        # and one for the last entry published.
        assert commands_by_name(counter) == {"find": 2, "insert": 1, "update": 5}
    finally:
        await broker.stop()
        await client.close()
    records = await read_topic(infra.kafka, topics.of(PatientPaymentReceived), 5)
    assert [json.loads(r.value)["amount_cents"] for r in records] == list(range(101, 106))
    stored = await database["ledgers"].find_one({"_id": "ep-one"})
    assert (stored["paid"], stored["outbox"], stored["pending"]) == (515, [], False)
    assert stored["version"] == 5


async def test_published_entries_leave_the_outbox_after_a_while_or_before_a_hand_over(
    infra: Infra, topics: Topics, database: Any
) -> None:
    ownership = owning_everything()
    store = MongoAggregates(database, "ledgers", "rcm/test", Ledger, ownership, cache_size=10)
    broker = make_broker(infra.kafka, "test-removals")
    await broker.start()
    relay = OutboxRelay([store], EventPublisher(broker, topics))

    async def outbox(aggregate_id: str) -> list[Any]:
        stored = await database["ledgers"].find_one({"_id": aggregate_id})
        return [entry["data"]["amount_cents"] for entry in stored["outbox"]]

    try:
        for episode, cents in (("ep-late", 7), ("ep-moving", 8)):
            await store.apply(episode, lambda _, c=cents: Decision(Ledger(), [payment("x", c)]))
        assert await relay.drain(sweep=False) == 2
        assert (await outbox("ep-late"), await outbox("ep-moving")) == ([7], [8])

        await store.remove_published_since(60.0)  # not due yet
        assert await outbox("ep-late") == [7]
        await store.remove_published_since(0.0)
        assert await outbox("ep-late") == []

        await store.apply("ep-moving", lambda _: Decision(Ledger(), [payment("x", 9)]))
        assert await relay.drain(sweep=False) == 1
        assert await outbox("ep-moving") == [9]  # 8 left with the change, 9 waits
        await ownership.on_partitions_revoked([SimpleNamespace(partition=p) for p in range(6)])
        assert await outbox("ep-moving") == []
        assert "ep-moving" not in store.owned
        assert not store.removals
        stored = await database["ledgers"].find_one({"_id": "ep-moving"})
        assert stored["pending"] is False
    finally:
        await broker.stop()
    records = await read_topic(infra.kafka, topics.of(PatientPaymentReceived), 3)
    assert sorted(json.loads(r.value)["amount_cents"] for r in records) == [7, 8, 9]


async def test_a_kept_copy_never_overwrites_a_document_changed_behind_it(database: Any) -> None:
    """A stray writer (one that lost its partition while stalled) changed the document:
    the version guard refuses the owner's write from its copy, which it then reads again."""
    store = MongoAggregates(
        database, "ledgers", "rcm/test", Ledger, owning_everything(), cache_size=10
    )

    def add(cents: int) -> Callable[[Ledger | None], Decision[Ledger, int]]:
        def decide(ledger: Ledger | None) -> Decision[Ledger, int]:
            paid = (ledger.paid if ledger else 0) + cents
            return Decision(Ledger(paid=paid), result=paid)

        return decide

    await store.apply("ep-stray", add(100), cause="c1")
    await database["ledgers"].update_one(
        {"_id": "ep-stray"},
        {"$set": {"paid": 900}, "$inc": {"version": 1}, "$push": {"applied": "c-stray"}},
    )
    applied = await store.apply("ep-stray", add(5), cause="c2")
    assert applied.result == 905
    again = await store.apply("ep-stray", add(5), cause="c-stray")
    assert again.outcome is Outcome.DUPLICATE
    stored = await database["ledgers"].find_one({"_id": "ep-stray"})
    assert (stored["paid"], stored["version"]) == (905, 3)
    assert stored["applied"] == ["c1", "c-stray", "c2"]


async def test_concurrent_changes_of_one_kept_aggregate_all_count(database: Any) -> None:
    store = MongoAggregates(
        database, "kept_changes", "rcm/test", Ledger, owning_everything(), cache_size=10
    )

    def add(item: int) -> Callable[[Ledger | None], Decision[Ledger, None]]:
        def decide(current: Ledger | None) -> Decision[Ledger, None]:
            items = [*(current.items if current else []), item]
            return Decision(Ledger(items=items), [payment("ep-many", 100 + item)])

        return decide

    await asyncio.gather(*(store.apply("ep-many", add(n), cause=f"e{n}") for n in range(12)))
    document = await store.collection.find_one({"_id": "ep-many"})
    assert document is not None
    assert sorted(document["items"]) == list(range(12))
    assert len(document["outbox"]) == 12
    assert document["version"] == 12


async def test_a_request_answered_in_the_asking_process_writes_no_reply(
    infra: Infra, topics: Topics, database: Any
) -> None:
    """One replica asks itself: the answer goes to the waiting asker in memory. An asker
    in another process (its own Replies) gets it through the database."""
    await ensure_topics(infra.kafka, [topics.of(PaymentPlanRequested)], PARTITIONS, 1)
    broker = make_broker(infra.kafka, "test-local-replies")
    ownership = Ownership(PARTITIONS)
    consumer = Consumer(broker, topics, f"{topics.prefix}collections", ownership=ownership)
    consumer.replies = Replies(database)
    answered_at: list[int] = []

    @consumer.on(PaymentPlanRequested)
    async def create(envelope: Envelope[PaymentPlanRequested]) -> object:
        answered_at.append(await database["replies"].count_documents({}))
        return Reply(201, {"installments": envelope.data.installments})

    publisher = EventPublisher(broker, topics)
    here = Requester(
        publisher, consumer.replies, database, "rcm/test", timeout_s=30, owns=ownership.owns
    )
    elsewhere = Requester(publisher, Replies(database), database, "rcm/test", timeout_s=30)
    consumer.start()
    await broker.start()
    try:

        async def assigned() -> bool:
            return bool(ownership.owned)

        await eventually(assigned, timeout_s=60)
        plan = PaymentPlanRequested(
            episode_id="E0000000000a1", requested_by="collector-1", installments=3
        )
        assert await here.ask(plan) == Reply(201, {"installments": 3})
        assert await database["replies"].count_documents({}) == 0
        other = plan.model_copy(update={"installments": 4})
        assert await elsewhere.ask(other) == Reply(201, {"installments": 4})
        assert await database["replies"].count_documents({}) == 0  # read once, then gone
    finally:
        await broker.stop()
    assert len(answered_at) == 2
