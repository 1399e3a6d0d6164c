"""End to end: every service as two OS processes (replicas sharing the work), the payer
simulator, a few dozen episodes, and faults on the way: one replica killed with SIGKILL
mid-run (the other takes its episodes over) and restarted later, duplicated events and a
poison message. Every episode must still close at a balanced zero, and every adjudicated
claim the payers sent must be posted exactly once.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from rcm_contracts.payments import PaymentPosted
from rcm_ops.platform import InfraUrls, Platform, PlatformConfig, SimulatorKnobs
from rcm_ops.run import DriveOutcome, drive_episodes, fetch_accounts, ledger_problems
from rcm_shared.auth import Role
from rcm_shared.kafka import Topics
from rcm_x12 import parse_835

from tests.conftest import Infra, drop_topics
from tests.integration.helpers import eventually, read_topic

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

EPISODES = 30
SEED = 11
REPLICAS = 2
VICTIM = "payments-1"  # posts 835s: a crash there is where money could be posted twice
PORT_OFFSET = 900  # beside a `make run` on the default ports


def claims_posted_by_payers(archive: Path) -> int:
    """Claim adjudications (CLP) in every 835 the payer simulator sent."""
    count = 0
    for path in archive.glob("payer-simulator/*/*-sent-835-*.x12"):
        for remittance in parse_835(path.read_text()).transactions:
            count += len(remittance.claims)
    return count


async def paid_claims(platform: Platform) -> int:
    async with platform.client("claims", "e2e", Role.OPS, timeout_s=5.0) as client:
        try:
            stats = (await client.get("/stats")).json()
        except httpx.HTTPError:
            return 0
    counts = stats.get("counts", stats)
    return int(counts.get("paid", 0)) if isinstance(counts, dict) else 0


async def inject_duplicates_and_poison(infra: Infra, topics: Topics) -> int:
    """Publish again the first payment postings, byte for byte, and one poison message."""
    topic = topics.of(PaymentPosted)
    originals = (await read_topic(infra.kafka, topic, 3))[:3]  # it may read a few more
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka, enable_idempotence=True)
    await producer.start()
    try:
        for record in originals:
            await producer.send_and_wait(
                topic, record.value, key=record.key, headers=list(record.headers)
            )
        await producer.send_and_wait(
            topic,
            b"{not json",
            key=originals[0].key,
            headers=[("ce_type", PaymentPosted.event_type.encode())],
        )
    finally:
        await producer.stop()
    return len(originals)


async def test_every_episode_closes_balanced_through_a_crash(infra: Infra, tmp_path: Path) -> None:
    config = PlatformConfig(
        infra=InfraUrls(infra.kafka, infra.mongodb_url),
        port_offset=PORT_OFFSET,
        runs_dir=tmp_path,
        simulator=SimulatorKnobs(seed=SEED, ack_delay_s=0.3, remit_delay_s=1.0),
        extra_env={"RCM_RELAY_INTERVAL_S": "0.2", "RCM_MAILBOX_POLL_S": "0.3"},
        replicas=REPLICAS,
    )
    topics = Topics(config.topic_prefix)
    try:
        async with Platform(config) as platform:
            drive = asyncio.create_task(
                drive_episodes(
                    platform, EPISODES, seed=SEED, timeout_s=900, rate_per_s=3.0, stall_s=120
                )
            )

            async def some_claims_paid() -> bool:
                assert not drive.done(), drive
                return await paid_claims(platform) >= 3

            await eventually(some_claims_paid, timeout_s=600)
            platform.kill(VICTIM, signal.SIGKILL)
            duplicated = await inject_duplicates_and_poison(infra, topics)
            await asyncio.sleep(10)  # beyond the session timeout: the other replica owns it all
            await platform.restart(VICTIM)

            outcome: DriveOutcome = await drive
            assert not outcome.timed_out, outcome
            assert not outcome.stalled, outcome
            async with platform.client("collections", "e2e", Role.COLLECTOR) as collections:
                accounts = await fetch_accounts(collections, list(outcome.ledger.episode_ids()))

        # Every episode the front desk opened closed at a balanced zero.
        assert len(accounts) == EPISODES
        problems = {
            episode: ledger_problems(account) if account else ["no account"]
            for episode, account in accounts.items()
        }
        assert {episode: why for episode, why in problems.items() if why} == {}

        # Nothing posted twice, nothing lost: the ledgers hold each payer adjudication once.
        postings = Counter(
            posting["posting_id"]
            for account in accounts.values()
            if account
            for posting in account["postings"]
        )
        assert [posting for posting, times in postings.items() if times > 1] == []
        assert sum(postings.values()) == claims_posted_by_payers(config.run_dir / "x12")
        assert platform.restarts()[VICTIM] >= 1

        # The poison message went to the dead letters of both consumers; the flow went on.
        dead = await read_topic(infra.kafka, topics.of(PaymentPosted) + ".dlq", 2)
        groups = {dict(record.headers)["dlq_consumer_group"].decode() for record in dead}
        assert groups == {f"{topics.prefix}claims", f"{topics.prefix}collections"}
        assert duplicated == 3
    finally:
        await drop_topics(infra.kafka, topics.prefix)
