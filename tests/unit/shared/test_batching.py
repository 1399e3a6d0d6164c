"""The coalescer: items submitted together are written together, at most 25 per call,
and each caller gets its own item's outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from rcm_shared.batching import Coalescer


class Refused(Exception):
    pass


class Writes:
    def __init__(self, refuse: frozenset[int] = frozenset(), fail: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.refuse = refuse
        self.fail = fail

    async def __call__(self, items: list[int]) -> Sequence[int | BaseException]:
        self.calls.append(items)
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("database away")
        return [Refused(item) if item in self.refuse else item * 10 for item in items]


async def test_items_submitted_together_are_one_write_each_with_its_result() -> None:
    writes = Writes()
    coalescer = Coalescer(writes)

    results = await asyncio.gather(*(coalescer.submit(n) for n in range(10)))

    assert results == [n * 10 for n in range(10)]
    assert writes.calls == [list(range(10))]
    assert coalescer.calls == 1


async def test_more_than_max_items_are_split() -> None:
    writes = Writes()
    coalescer = Coalescer(writes, max_items=25)

    await asyncio.gather(*(coalescer.submit(n) for n in range(60)))

    assert [len(call) for call in writes.calls] == [25, 25, 10]


async def test_items_submitted_one_after_another_are_written_one_by_one() -> None:
    writes = Writes()
    coalescer = Coalescer(writes)

    assert [await coalescer.submit(n) for n in range(3)] == [0, 10, 20]
    assert writes.calls == [[0], [1], [2]]


async def test_an_item_refused_fails_only_its_caller() -> None:
    coalescer = Coalescer(Writes(refuse=frozenset({2})))

    outcomes = await asyncio.gather(
        *(coalescer.submit(n) for n in range(4)), return_exceptions=True
    )

    assert outcomes[:2] == [0, 10]
    assert outcomes[3] == 30
    assert isinstance(outcomes[2], Refused)


async def test_a_failed_write_fails_every_caller_of_it_and_the_next_one_goes_on() -> None:
    writes = Writes(fail=True)
    coalescer = Coalescer(writes)

    outcomes = await asyncio.gather(
        *(coalescer.submit(n) for n in range(3)), return_exceptions=True
    )
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)

    writes.fail = False
    assert await coalescer.submit(7) == 70


async def test_a_write_that_answers_for_too_few_items_fails_them_all() -> None:
    async def short(items: list[int]) -> Sequence[int]:
        return items[:-1]

    coalescer = Coalescer(short)
    outcomes = await asyncio.gather(
        *(coalescer.submit(n) for n in range(3)), return_exceptions=True
    )
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)


def test_bulks_above_25_are_refused() -> None:
    with pytest.raises(ValueError, match="between 1 and 25"):
        Coalescer(Writes(), max_items=26)
