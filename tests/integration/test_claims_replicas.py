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


def spread_episodes(partitions: int, wave: int) -> list[str]:
    """Episode ids, EACH_PARTITION of every partition (so both replicas have work)."""
    chosen: dict[int, list[str]] = {p: [] for p in range(partitions)}
    n = 0
    while any(len(ids) < EACH_PARTITION for ids in chosen.values()):
        n += 1
        episode = f"E{0xE0000000000 * wave + n:012x}"
        ids = chosen[partition_of(episode, partitions)]
        if len(ids) < EACH_PARTITION:
            ids.append(episode)
    return sorted(episode for ids in chosen.values() for episode in ids)


async def test_two_replicas_send_each_claim_once_in_interchanges_that_never_collide(
    infra: Infra, topics: Topics, database: Any, tmp_path: Path
) -> None:
    """Both replicas send a first wave; then the second leaves and the first sends a
    second wave for every partition, its numbers going on in each partition's range."""
    async with (
        clearinghouse(Clearinghouse()) as stub,
        publishing(infra, topics) as publisher,
        contextlib.AsyncExitStack() as stack,
    ):
        first = claims_service(infra, topics, database, stub, tmp_path / "first")
        second = claims_service(infra, topics, database, stub, tmp_path / "second")
        client = await stack.enter_async_context(running(first))
        partitions = first.settings.topic_partitions
        episodes: list[str] = []

        async def all_accepted() -> bool:
            stats = (await client.get("/stats")).json()
            return bool(stats["accepted"] == len(episodes))

        async def send_wave(wave: int) -> None:
            new = spread_episodes(partitions, wave)
            episodes.extend(new)
            for episode in new:
                await publish(publisher, *episode_inputs(episode, secondary=False))
            # Accepted by the payer (277CA): sent, submitted, and both acknowledgments
            # applied by each episode's owner at the mailbox reader's request.
            await eventually(all_accepted, timeout_s=120)

        async with running(second):

            async def split() -> bool:
                mine, theirs = first.ownership.owned, second.ownership.owned
                return bool(mine) and bool(theirs) and mine | theirs == set(range(partitions))

            await eventually(split, timeout_s=60)
            assert first.ownership.owned.isdisjoint(second.ownership.owned)
            seconds = second.ownership.owned
            await send_wave(1)
            senders = {
                "first" if document["partition"] in first.ownership.owned else "second"
                async for document in database["interchanges"].find({})
            }
            assert senders == {"first", "second"}  # both replicas sent their own

        async def took_over() -> bool:
            return first.ownership.owned == set(range(partitions))

        await eventually(took_over, timeout_s=60)
        await send_wave(2)
        later = [
            document
            async for document in database["interchanges"].find(
                {"partition": {"$in": sorted(seconds)}}
            )
        ]
        assert len(later) > len(seconds)  # the first sent for the second's partitions too

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
        assert sent == Counter({f"{episode}-1": 1 for episode in episodes})
        numbers = [parse_837p(text).envelope.control_number for text in stub.batches]
        assert len(numbers) == len(set(numbers))

        # One partition per interchange, numbered from that partition's range.
        span = MAX_CONTROL_NUMBER // partitions
        async for document in database["interchanges"].find({}):
            partition = document["partition"]
            icn = document["interchange_control_number"]
            assert partition * span < icn <= (partition + 1) * span
            assert {partition_of(c["episode_id"], partitions) for c in document["claims"]} == {
                partition
            }
            assert document["done"]
            assert document["state"] == "sent"

    assert await topic_size(infra, topics.of(ClaimSubmitted)) == len(episodes)
