"""The dunning job's rounds: day by day from where it stopped, a batch at a time, today
never marked done, a refusal not stopping the others."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from rcm_collections.jobs import DunningJob
from rcm_contracts.collections import DunningRequested
from rcm_shared.errors import Conflict
from rcm_shared.requests import Reply

TODAY = date(2025, 6, 10)


class Store:
    """Accounts by next dunning day; asking moves an account 30 days on, as the owner's
    decision would."""

    def __init__(self, due: dict[str, date]) -> None:
        self.due = due
        self.swept: date | None = None
        self.queries: list[date] = []

    async def dunning_due_on(self, day: date, limit: int) -> list[str]:
        self.queries.append(day)
        return sorted(e for e, d in self.due.items() if d == day)[:limit]

    async def dunning_swept_through(self) -> date | None:
        return self.swept

    async def record_dunning_swept(self, day: date) -> None:
        self.swept = day


class Owner:
    def __init__(self, store: Store, refuse: frozenset[str] = frozenset()) -> None:
        self.store = store
        self.refuse = refuse
        self.asked: list[tuple[str, date, str | None]] = []

    async def __call__(self, request: DunningRequested, key: str | None) -> Reply:
        self.asked.append((request.episode_id, request.as_of, key))
        if request.episode_id in self.refuse:
            raise Conflict(f"episode {request.episode_id} refused")
        self.store.due[request.episode_id] += timedelta(days=30)
        return Reply(200, {})


def clock(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, tzinfo=UTC)


async def test_a_round_after_downtime_catches_up_day_by_day_and_today_stays_open() -> None:
    store = Store(
        {
            "E00000000000a": TODAY - timedelta(days=5),
            "E00000000000b": TODAY,
            "E00000000000c": TODAY + timedelta(days=1),
        }
    )
    store.swept = TODAY - timedelta(days=8)
    owner = Owner(store)
    job = DunningJob(store, owner, lambda: clock(TODAY))
    assert await job.run_once() == 2
    assert [(e, key) for e, _, key in owner.asked] == [
        ("E00000000000a", f"dunning-E00000000000a-{TODAY - timedelta(days=5)}"),
        ("E00000000000b", f"dunning-E00000000000b-{TODAY}"),
    ]
    assert all(as_of == TODAY for _, as_of, _ in owner.asked)
    assert store.queries == [TODAY - timedelta(days=n) for n in range(7, -1, -1)]
    assert store.swept == TODAY - timedelta(days=1)
    # the next round of the same day asks only about today again
    store.queries.clear()
    assert await job.run_once() == 0
    assert store.queries == [TODAY]


async def test_a_new_database_starts_from_yesterday() -> None:
    store = Store({"E00000000000a": TODAY - timedelta(days=1)})
    owner = Owner(store)
    assert await DunningJob(store, owner, lambda: clock(TODAY)).run_once() == 1
    assert store.queries == [TODAY - timedelta(days=1), TODAY]


async def test_more_than_a_batch_goes_on_next_round_and_a_refusal_stops_nothing() -> None:
    day = TODAY - timedelta(days=1)
    store = Store({f"E0000000000{n:02d}": day for n in range(5)})
    store.swept = day - timedelta(days=1)
    owner = Owner(store, refuse=frozenset({"E000000000000"}))
    job = DunningJob(store, owner, lambda: clock(TODAY), batch=3)
    assert await job.run_once() == 3
    assert store.swept == day - timedelta(days=1)  # the day is not done
    assert await job.run_once() == 3  # the refused one again, and the last two
    assert await job.run_once() == 1  # a full batch was read: one more look finds the rest
    assert store.swept == day
    moved = {e for e, d in store.due.items() if d > day}
    assert moved == {f"E0000000000{n:02d}" for n in range(1, 5)}
