"""Raw baselines for the benchmark: what Kafka and the database do on their own here.

Measured in the same run as the platform benchmark, on the same machine, so the
platform's figures can be read against them:

- Kafka: N small messages through one fresh topic (1 partition) with acks=all and the
  idempotent producer (as the relay publishes), consumed by a consumer running at the
  same time; in a burst (throughput) and one at a time (unloaded latency). Rate = N /
  (first send -> last receive). Latency per message = receive time - send time (one
  clock: the same process).
- Database: N single-document `update_one` calls like the outbox store's, each
  `$set` state, `$inc` version, `$push` an outbox entry and an applied event id, with
  the version guard, one at a time. Rate = N / total; latency per write = its round trip.

Both clean up after themselves (topic deleted, database dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient

from .transport import kafka_options, mongo_options

MESSAGE_SIZE = 200  # bytes: about a small event's JSON
DOCUMENTS_PER_WRITE = 20  # writes per aggregate: outbox/applied arrays stay small


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(seconds: Iterable[float]) -> dict[str, float | int]:
    """Count and p50/p95/p99/max in milliseconds."""
    values = list(seconds)
    ms = [v * 1000 for v in values]
    return {
        "count": len(values),
        "p50_ms": round(percentile(ms, 50), 3) if ms else math.nan,
        "p95_ms": round(percentile(ms, 95), 3) if ms else math.nan,
        "p99_ms": round(percentile(ms, 99), 3) if ms else math.nan,
        "max_ms": round(max(ms), 3) if ms else math.nan,
    }


@dataclass(frozen=True)
class Baseline:
    what: str
    operations: int
    seconds: float
    per_second: float
    latency: dict[str, float | int]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def kafka_baseline(
    bootstrap: str, messages: int = 5000, one_at_a_time: bool = False
) -> Baseline:
    """Produce -> consume through one topic; messages/s and end-to-end latency.

    In a burst (default) all messages are sent as fast as the producer takes them, so
    latency includes queueing; one at a time, each is sent when the previous arrived:
    the unloaded latency of one hop through Kafka.
    """
    topic = f"rcm-bench-raw-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **kafka_options()
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
            **kafka_options(),
        )
        await consumer.start()
        await producer.start()
        try:
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            padding = b"x" * (MESSAGE_SIZE - 8)
            latencies: list[float] = []

            async def receive(until: int) -> None:
                while len(latencies) < until:
                    batch = await consumer.getmany(partition, timeout_ms=500)
                    now = time.perf_counter()
                    for record in batch.get(partition, []):
                        (sent,) = struct.unpack_from("!d", record.value)
                        latencies.append(now - sent)

            def message() -> bytes:
                return struct.pack("!d", time.perf_counter()) + padding

            start = time.perf_counter()
            if one_at_a_time:
                for i in range(messages):
                    await producer.send_and_wait(topic, message(), key=str(i % 64).encode())
                    await asyncio.wait_for(receive(i + 1), timeout=30.0)
            else:
                receiving = asyncio.create_task(receive(messages))
                sends = [
                    await producer.send(topic, message(), key=str(i % 64).encode())
                    for i in range(messages)
                ]
                await asyncio.gather(*sends)
                await asyncio.wait_for(receiving, timeout=max(60.0, messages / 100))
            end = time.perf_counter()
        finally:
            await producer.stop()
            await consumer.stop()
        seconds = end - start
        return Baseline(
            what=f"kafka produce->consume, {'one at a time' if one_at_a_time else 'burst'} "
            f"(acks=all, idempotent, 1 partition, {MESSAGE_SIZE} B messages)",
            operations=messages,
            seconds=round(seconds, 3),
            per_second=round(messages / seconds, 1),
            latency=latency_summary(latencies),
        )
    finally:
        with contextlib.suppress(Exception):
            await admin.delete_topics([topic])
        await admin.close()


async def mongo_baseline(mongodb_url: str, writes: int = 2000) -> Baseline:
    """Single-document guarded updates with $set/$inc/$push, one at a time."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongodb_url, serverSelectionTimeoutMS=5000, tz_aware=True, **mongo_options()
    )
    name = f"rcm_bench_raw_{uuid.uuid4().hex[:10]}"
    try:
        collection = client[name]["aggregates"]
        documents = max(1, math.ceil(writes / DOCUMENTS_PER_WRITE))
        await collection.insert_many(
            [
                {"_id": f"agg-{i}", "version": 1, "state": "new", "applied": [], "outbox": []}
                for i in range(documents)
            ]
        )
        versions = [1] * documents
        latencies: list[float] = []
        start = time.perf_counter()
        for i in range(writes):
            document = i % documents
            event_id = str(uuid.uuid4())
            began = time.perf_counter()
            result = await collection.update_one(
                {
                    "_id": f"agg-{document}",
                    "version": versions[document],
                    "applied": {"$ne": event_id},
                },
                {
                    "$set": {"state": f"step-{i}", "total_cents": i * 100},
                    "$inc": {"version": 1},
                    "$push": {
                        "outbox": {
                            "id": str(uuid.uuid4()),
                            "type": "rcm.bench.raw.v1",
                            "time": datetime.now(UTC),
                            "data": {"episode_id": f"agg-{document}", "amount_cents": i},
                        },
                        "applied": event_id,
                    },
                },
            )
            latencies.append(time.perf_counter() - began)
            if result.modified_count != 1:
                raise RuntimeError(f"baseline write {i} did not apply")
            versions[document] += 1
        seconds = time.perf_counter() - start
        return Baseline(
            what="database update_one ($set/$inc/$push with version guard, sequential)",
            operations=writes,
            seconds=round(seconds, 3),
            per_second=round(writes / seconds, 1),
            latency=latency_summary(latencies),
        )
    finally:
        with contextlib.suppress(Exception):
            await client.drop_database(name)
        await client.close()
