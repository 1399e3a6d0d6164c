"""Handlers on the in-memory aggregate port: redeliveries, any order, and a crash between
the episode's write and the counters' write count each fact once."""

from __future__ import annotations

import random
from typing import Any

import pytest
from rcm_contracts import Event
from rcm_contracts.claims import DenialCategory
from rcm_kpis import domain
from rcm_kpis.domain import EpisodeFacts, Rollup
from rcm_kpis.handlers import SUBSCRIPTIONS, Handlers
from rcm_shared.aggregates import InMemoryAggregates
from rcm_shared.envelope import Envelope
from rcm_shared.ownership import partition_of
from rcm_shared.store import BOOKKEEPING

from .support import (
    DAY,
    T0,
    accepted,
    at,
    coverage,
    denied,
    patient_paid,
    scheduled,
    submitted,
    verified,
)

ACME = "ACME01"
PARTITIONS = 6


def envelope(data: Event) -> Envelope[Any]:
    return Envelope(data=data, source="rcm/test")


def episode_events(episode_id: str) -> list[Envelope[Any]]:
    return [
        envelope(event)
        for event in (
            scheduled(episode_id, at(0, 6)),
            coverage(episode_id, ACME),
            verified(episode_id, ACME, at(-1)),
            submitted(episode_id, f"{episode_id}-1", ACME, 10_000, T0),
            accepted(episode_id, f"{episode_id}-1", at(0, 1)),
            denied(episode_id, f"{episode_id}-1", ACME, DenialCategory.CODING, at(0, 2)),
            patient_paid(episode_id, "PAY-1", 2_500, at(0, 3)),
        )
    ]


def handlers() -> tuple[Handlers, InMemoryAggregates[EpisodeFacts], InMemoryAggregates[Rollup]]:
    episodes = InMemoryAggregates(EpisodeFacts)
    rollups = InMemoryAggregates(Rollup)
    return Handlers(episodes, rollups, PARTITIONS), episodes, rollups


async def handle(target: Handlers, message: Envelope[Any]) -> None:
    await SUBSCRIPTIONS[type(message.data)](target, message)


def totals(rollups: InMemoryAggregates[Rollup]) -> dict[str, Any]:
    return domain.summed(rollups.states.values())["totals"]


EXPECTED = {
    "claims_submitted": 1,
    "claims_clean": 1,
    "gross_charges_cents": 10_000,
    "claims_adjudicated": 1,
    "adjudicated_cents": 10_000,
    "claims_denied": 1,
    "denied_cents": 10_000,
    "denied:coding": 1,
    "denied_cents:coding": 10_000,
    "patient_payments": 1,
    "patient_paid_cents": 2_500,
    "pos_payments": 1,
    "pos_paid_cents": 2_500,
    "episodes_scheduled": 1,
    "verified_before_day": 1,
    "verified_before_visit": 1,
}


def counts(rollups: InMemoryAggregates[Rollup]) -> dict[str, int]:
    summed: dict[str, int] = {}
    for rollup in rollups.states.values():
        for name, value in rollup.counts.items():
            summed[name] = summed.get(name, 0) + value
    return {name: value for name, value in summed.items() if value}


async def test_an_episode_counts_once_in_the_counter_of_its_partition() -> None:
    target, episodes, rollups = handlers()
    for message in episode_events("E000000000001"):
        await handle(target, message)
    assert counts(rollups) == EXPECTED
    partition = partition_of("E000000000001", PARTITIONS)
    counting = {key for key, rollup in rollups.states.items() if any(rollup.counts.values())}
    # Scheduled before its coverage was known: counted as `unknown`, then moved to ACME01.
    assert counting == {f"{DAY.isoformat()}|{ACME}|p{partition}"}
    # Every change is in the counters; the last ones leave the episode with its next write.
    left = {delta.id for delta in episodes.states["E000000000001"].uncounted}
    assert left
    assert left <= target.counted["E000000000001"]


async def test_changes_a_process_forgot_it_added_are_added_once_more_as_nothing() -> None:
    target, episodes, rollups = handlers()
    messages = episode_events("E000000000001")
    for message in messages:
        await handle(target, message)
    target.counted.clear()  # a new owner after a hand-over, or the episode forgotten
    await handle(target, messages[-1])  # a redelivery: the pending changes are added again
    assert counts(rollups) == EXPECTED
    left = {delta.id for delta in episodes.states["E000000000001"].uncounted}
    assert left <= target.counted["E000000000001"]  # remembered again


async def test_redelivered_events_change_nothing() -> None:
    target, _, rollups = handlers()
    messages = episode_events("E000000000001")
    for message in messages + messages + messages[::-1]:
        await handle(target, message)
    assert counts(rollups) == EXPECTED


@pytest.mark.parametrize("seed", range(8))
async def test_events_in_any_order_end_at_the_same_counters(seed: int) -> None:
    target, _, rollups = handlers()
    messages = episode_events("E000000000001") + episode_events("E000000000002")
    random.Random(seed).shuffle(messages)
    for message in messages:
        await handle(target, message)
    assert counts(rollups) == {name: 2 * value for name, value in EXPECTED.items()}
    assert totals(rollups)["denial_rate"]["rate"] == 1.0


class Crash(Exception):
    pass


class CrashingOnce(InMemoryAggregates[Rollup]):
    """Fails the n-th apply once, as a process dying before (or after) that write."""

    def __init__(self, fail_at: int, after_write: bool) -> None:
        super().__init__(Rollup)
        self.calls = 0
        self.fail_at = fail_at
        self.after_write = after_write

    async def apply(self, aggregate_id: str, decide: Any, cause: str | None = None) -> Any:
        self.calls += 1
        if self.calls == self.fail_at and not self.after_write:
            raise Crash
        applied = await super().apply(aggregate_id, decide, cause)
        if self.calls == self.fail_at:
            raise Crash
        return applied


@pytest.mark.parametrize("after_write", [False, True])
async def test_a_crash_between_the_episode_and_its_counters_is_made_good_by_the_redelivery(
    after_write: bool,
) -> None:
    episodes = InMemoryAggregates(EpisodeFacts)
    rollups = CrashingOnce(fail_at=4, after_write=after_write)
    target = Handlers(episodes, rollups, PARTITIONS)
    messages = episode_events("E000000000001")
    crashed = None
    for number, message in enumerate(messages):
        try:
            await handle(target, message)
        except Crash:
            crashed = number
            break
    assert crashed is not None
    assert episodes.states["E000000000001"].uncounted  # the change waits in the episode
    for message in messages[crashed:]:  # the offset was not committed: it comes again
        await handle(target, message)
    assert counts(rollups) == EXPECTED
    left = {delta.id for delta in episodes.states["E000000000001"].uncounted}
    assert left <= target.counted["E000000000001"]


@pytest.mark.parametrize("model", [EpisodeFacts, Rollup])
def test_no_field_of_the_read_model_is_one_the_store_keeps_for_itself(model: type[Any]) -> None:
    # A field named like the store's bookkeeping (`pending`, `version`...) is dropped on
    # load: the in-memory port would not notice, FerretDB would.
    assert not set(model.model_fields) & BOOKKEEPING
