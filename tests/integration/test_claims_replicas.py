"""Two claims replicas on one database and one consumer group: each sends the claims of
the episodes it owns, one interchange per owned partition, numbered from that partition's
range; the one mailbox reader asks each episode's owner to apply the acknowledgments."""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rcm_claims.store import MAX_CONTROL_NUMBER
from rcm_contracts.claims import ClaimSubmitted
from rcm_shared.kafka import Topics
from rcm_shared.ownership import partition_of
from rcm_x12 import parse_837p

from tests.conftest import Infra

from .helpers import eventually
from .services import running
from .test_claims import (
    Clearinghouse,
    claims_service,
    clearinghouse,
    episode_inputs,
    publish,
    publishing,
    topic_size,
)

pytestmark = pytest.mark.integration

EACH_PARTITION = 2


def spread_episodes(partitions: int) -> list[str]:
    """Episode ids, EACH_PARTITION of every partition (so both replicas have work)."""
    chosen: dict[int, list[str]] = {p: [] for p in range(partitions)}
    n = 0
    while any(len(ids) < EACH_PARTITION for ids in chosen.values()):
        n += 1
        episode = f"E{0xE0000000000 + n:012x}"
        ids = chosen[partition_of(episode, partitions)]
        if len(ids) < EACH_PARTITION:
            ids.append(episode)
    return sorted(episode for ids in chosen.values() for episode in ids)


async def test_two_replicas_send_each_claim_once_in_interchanges_that_never_collide(
    infra: Infra, topics: Topics, database: Any, tmp_path: Path
) -> None:
    async with (
        clearinghouse(Clearinghouse()) as stub,
        publishing(infra, topics) as publisher,
        contextlib.AsyncExitStack() as stack,
    ):
        first = claims_service(infra, topics, database, stub, tmp_path / "first")
        second = claims_service(infra, topics, database, stub, tmp_path / "second")
        client = await stack.enter_async_context(running(first))
        await stack.enter_async_context(running(second))
        partitions = first.settings.topic_partitions

        async def split() -> bool:
            mine, theirs = first.ownership.owned, second.ownership.owned
            return bool(mine) and bool(theirs) and mine | theirs == set(range(partitions))

        await eventually(split, timeout_s=60)
        assert first.ownership.owned.isdisjoint(second.ownership.owned)

        episodes = spread_episodes(partitions)
        for episode in episodes:
            await publish(publisher, *episode_inputs(episode, secondary=False))
        claim_ids = {f"{episode}-1" for episode in episodes}

        async def all_accepted() -> bool:
            stats = (await client.get("/stats")).json()
            return bool(stats["accepted"] == len(episodes))

        # Accepted by the payer (277CA): sent, submitted, and both acknowledgments applied
        # by each episode's owner at the mailbox reader's request.
        await eventually(all_accepted, timeout_s=120)
        stats = (await client.get("/stats")).json()
        assert (stats["claims"], stats["submitted"]) == (len(episodes), len(episodes))
        assert stats["clearinghouse_accepted"] == len(episodes)
        assert stats["rejected"] == 0

        # Each claim went out once, in one interchange; no two interchanges share ISA13.
        sent = Counter(
            claim.patient_control_number
            for text in stub.batches
            for transaction in parse_837p(text).transactions
            for claim in transaction.claims
        )
        assert sent == Counter(dict.fromkeys(claim_ids, 1))
        numbers = [parse_837p(text).envelope.control_number for text in stub.batches]
        assert len(numbers) == len(set(numbers))

        # One partition per interchange, numbered from that partition's range.
        span = MAX_CONTROL_NUMBER // partitions
        senders = set()
        async for document in database["interchanges"].find({}):
            partition = document["partition"]
            icn = document["interchange_control_number"]
            assert partition * span < icn <= (partition + 1) * span
            assert {partition_of(c["episode_id"], partitions) for c in document["claims"]} == {
                partition
            }
            assert document["done"]
            assert document["state"] == "sent"
            senders.add("first" if partition in first.ownership.owned else "second")
        assert senders == {"first", "second"}  # both replicas sent their own

    assert await topic_size(infra, topics.of(ClaimSubmitted)) == len(episodes)
