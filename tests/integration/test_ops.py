"""The ops engineers' tools on real Kafka (and the raw baselines on the real database)."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from rcm_contracts.claims import ClaimClosed, ClaimOutcome
from rcm_contracts.collections import EpisodeClosed, LedgerTotals
from rcm_contracts.payments import PatientPaymentReceived, PaymentMethod
from rcm_ops.preload import IdRewriter, clone_id, insert_copies, pending_outboxes, read_sources
from rcm_ops.rawbench import kafka_baseline, mongo_baseline
from rcm_ops.timeline import read_episode
from rcm_shared.envelope import Envelope
from rcm_shared.errors import PermanentError
from rcm_shared.kafka import Consumer, EventPublisher, Topics, make_broker
from rcm_shared.ownership import Ownership
from rcm_shared.telemetry import setup_tracing

from tests.conftest import REPO, Infra

from .helpers import eventually, headers_of, read_topic

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC).replace(microsecond=0)


async def rcm(infra: Infra, *args: str) -> tuple[int, str, str]:
    """The real command line, as an ops engineer runs it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rcm_ops.cli",
        *args,
        "--bootstrap",
        infra.kafka,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def payment(episode: str, cents: int) -> PatientPaymentReceived:
    return PatientPaymentReceived(
        episode_id=episode,
        payment_id=f"pay-{uuid.uuid4().hex[:8]}",
        amount_cents=cents,
        method=PaymentMethod.CARD,
        received_at=T0,
    )


def claim_closed(episode: str) -> ClaimClosed:
    return ClaimClosed(
        episode_id=episode,
        claim_id=f"{episode}-1",
        payer_id="ACME01",
        outcome=ClaimOutcome.PAID,
        open_claims=0,
        sequence=1,
        posting_ids=["R1-1"],
        closed_at=T0,
    )


def episode_closed(episode: str) -> EpisodeClosed:
    totals = LedgerTotals(
        charges_cents=10000,
        payer_paid_cents=7000,
        adjustments_cents=2000,
        patient_paid_cents=1000,
        written_off_cents=0,
        balance_cents=0,
    )
    return EpisodeClosed(episode_id=episode, totals=totals, closed_at=T0)


async def test_timeline_orders_one_episode_across_topics(infra: Infra, topics: Topics) -> None:
    provider = setup_tracing("test-ops", None)
    broker = make_broker(infra.kafka, "test-ops-timeline", provider)
    publisher = EventPublisher(broker, topics)
    mine, other = "E00000000000a", "E00000000000b"
    # Published out of time order, on three topics, mixed with another episode.
    sent = [
        Envelope(
            data=episode_closed(mine), source="rcm/collections", time=T0 + timedelta(seconds=3)
        ),
        Envelope(data=claim_closed(other), source="rcm/claims", time=T0 + timedelta(seconds=1)),
        Envelope(data=payment(mine, 1000), source="rcm/payments", time=T0 + timedelta(seconds=2)),
        Envelope(data=claim_closed(mine), source="rcm/claims", time=T0 + timedelta(seconds=1)),
        Envelope(data=episode_closed(other), source="rcm/collections", time=T0),
    ]
    await broker.start()
    try:
        with provider.get_tracer("test").start_as_current_span("episode") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            for envelope in sent:
                await publisher.publish(envelope)
    finally:
        await broker.stop()

    code, out, err = await rcm(
        infra, "episode", "timeline", mine, "--prefix", topics.prefix, "--json"
    )
    assert code == 0, err
    entries = json.loads(out)
    assert [e["type"] for e in entries] == [
        "rcm.claims.claim-closed.v1",
        "rcm.payments.patient-payment-received.v1",
        "rcm.collections.episode-closed.v1",
    ]
    assert [e["event_id"] for e in entries] == [sent[3].id, sent[2].id, sent[0].id]
    assert [e["source"] for e in entries] == ["rcm/claims", "rcm/payments", "rcm/collections"]
    assert {e["trace_id"] for e in entries} == {trace_id}
    assert entries[1]["summary"].endswith("$10.00 by card")
    assert entries[2]["data"]["totals"]["balance_cents"] == 0

    code, out, _ = await rcm(infra, "episode", "timeline", mine, "--prefix", topics.prefix)
    assert code == 0
    assert "claim-closed" in out
    assert "payment-posted" not in out
    assert trace_id in out
    code, _, _ = await rcm(infra, "episode", "timeline", "E999", "--prefix", topics.prefix)
    assert code == 1  # nothing found


async def test_dead_letter_listed_replayed_once_and_applied(infra: Infra, topics: Topics) -> None:
    broker = make_broker(infra.kafka, "test-ops-dlq")
    consumer = Consumer(
        broker, topics, group_id=f"{topics.prefix}collections", ownership=Ownership(6)
    )
    applied: list[str] = []
    fixed = False

    @consumer.on(PatientPaymentReceived)
    async def post(envelope: Envelope[PatientPaymentReceived]) -> None:
        if envelope.data.amount_cents == 666 and not fixed:
            raise PermanentError("payment of 666 cents breaks a rule")
        applied.append(envelope.id)

    topic = topics.of(PatientPaymentReceived)
    poison = Envelope(data=payment("E00000000000c", 666), source="rcm/payments")
    good = Envelope(data=payment("E00000000000c", 100), source="rcm/payments")
    consumer.start()
    await broker.start()
    try:
        for envelope in (good, poison):
            await EventPublisher(broker, topics).publish(envelope)
        (dead,) = await read_topic(infra.kafka, f"{topic}.dlq", 1)

        code, out, err = await rcm(
            infra, "dead-letters", "list", "--prefix", topics.prefix, "--json"
        )
        assert code == 0, err
        (listed,) = json.loads(out)
        assert listed["original_topic"] == topic
        assert listed["original_offset"] == int(headers_of(dead)["dlq_original_offset"])
        assert listed["consumer_group"] == f"{topics.prefix}collections"
        assert listed["exception_class"] == "rcm_shared.errors.PermanentError"
        assert listed["exception_message"].startswith("PermanentError at test_ops.py:")
        assert "666" not in listed["exception_message"]  # the class and place, no values
        assert listed["event_id"] == poison.id
        assert listed["event_type"] == PatientPaymentReceived.event_type
        assert listed["replayed"] is None
        datetime.fromisoformat(listed["failed_at"])

        code, out, _ = await rcm(infra, "dead-letters", "replay", "--topic", topic, "--dry-run")
        assert code == 0
        assert f"would replay {poison.id}" in out

        fixed = True  # the rule was fixed; now the replay goes through
        code, out, err = await rcm(
            infra, "dead-letters", "replay", "--topic", topic, "--id", poison.id
        )
        assert code == 0, err
        assert f"replayed {poison.id}" in out

        async def replay_applied() -> bool:
            return applied == [good.id, poison.id]

        await eventually(replay_applied)

        code, out, _ = await rcm(
            infra, "dead-letters", "replay", "--topic", topic, "--id", poison.id
        )
        assert code == 1
        assert "already replayed" in out
    finally:
        await broker.stop()

    records = await read_topic(infra.kafka, topic, 3)
    assert len(records) == 3  # good, poison, one replay: the dry run and the refusal sent none
    replayed = headers_of(records[2])
    assert replayed["ce_id"] == poison.id
    assert replayed["replayed_from"] == f"{dead.topic}:{dead.partition}:{dead.offset}"
    assert not any(name.startswith("dlq_") for name in replayed)
    assert records[2].value == dead.value

    code, out, _ = await rcm(infra, "dead-letters", "list", "--topic", topic, "--json")
    (listed,) = json.loads(out)
    assert listed["replayed"]["replayed_to"].startswith(f"{topic}:")
    code, out, _ = await rcm(
        infra, "dead-letters", "replay", "--topic", topic, "--id", poison.id, "--force"
    )
    assert code == 0
    assert len(await read_topic(infra.kafka, topic, 4)) == 4

    entries = await read_episode(infra.kafka, "E00000000000c", topics.prefix, True)
    assert [e.dead_letter for e in entries].count(True) == 1


async def test_raw_baselines_give_rates_and_latencies(infra: Infra) -> None:
    results: list[Any] = [
        await kafka_baseline(infra.kafka, 50),
        await kafka_baseline(infra.kafka, 10, one_at_a_time=True),
        await mongo_baseline(infra.mongodb_url, 30),
    ]
    for result, count in zip(results, (50, 10, 30), strict=True):
        assert result.operations == count
        assert result.per_second > 0
        assert result.latency["count"] == count
        assert 0 <= result.latency["p50_ms"] <= result.latency["p95_ms"] <= result.latency["max_ms"]


async def test_preload_clones_every_document_with_new_episode_ids(infra: Infra) -> None:
    run = uuid.uuid4().hex[:8]
    databases = [f"preload_{run}_claims", f"preload_{run}_collections"]
    e1, e2 = "E00000000001a", "E00000000002b"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url)
    try:
        claims, collections = (client[name] for name in databases)
        await claims["episodes"].insert_many(
            [
                {"_id": e1, "claims": [{"claim_id": f"{e1}-1"}], "outbox": []},
                {"_id": e2, "claims": [{"claim_id": f"{e2}-1"}], "outbox": [{"id": "x"}]},
            ]
        )
        await claims["batches"].insert_one({"_id": "B1", "claim_ids": [f"{e1}-1", f"{e2}-1"]})
        await collections["accounts"].insert_one({"_id": e1, "episode_id": e1, "state": "closed"})
        assert await pending_outboxes(client, databases) == 1  # the preload waits for 0
        await claims["episodes"].update_one({"_id": e2}, {"$set": {"outbox": []}})
        assert await pending_outboxes(client, databases) == 0

        sources = await read_sources(client, [*databases, f"preload_{run}_absent"])
        assert sorted((s.database, s.collection, len(s.documents)) for s in sources) == [
            (databases[0], "batches", 1),
            (databases[0], "episodes", 2),
            (databases[1], "accounts", 1),
        ]
        done: list[int] = []
        result = await insert_copies(
            client, sources, IdRewriter([e1, e2]), 30, workers=3, on_progress=done.append
        )
        assert result.documents == sum(done) == 4 * 30
        assert max(done) <= 25
        assert dict(result.by_database) == {databases[0]: 90, databases[1]: 30}

        assert await claims["episodes"].count_documents({}) == 2 + 60
        copy = await claims["episodes"].find_one({"_id": clone_id(e2, 7)})
        assert copy is not None
        assert copy["claims"] == [{"claim_id": f"{clone_id(e2, 7)}-1"}]
        batch = await claims["batches"].find_one({"_id": "B1~preload-30"})
        assert batch is not None
        assert batch["claim_ids"] == [f"{clone_id(e1, 30)}-1", f"{clone_id(e2, 30)}-1"]
        account = await collections["accounts"].find_one({"episode_id": clone_id(e1, 12)})
        assert account == {
            "_id": clone_id(e1, 12),
            "episode_id": clone_id(e1, 12),
            "state": "closed",
        }
        assert await collections["accounts"].count_documents({"state": "closed"}) == 31
    finally:
        for name in databases:
            await client.drop_database(name)
        await client.close()
