"""The dunning job: each round asks (through their owner) the accounts whose next dunning
date has come to do what is due: the next statement, a missed installment's default, the
agency placement after the final notice.

Accounts are found day by day with an indexed equality on `next_dunning_on`, from the day
after the last one finished through today; a decision never sets a day before its own,
so a finished day gains no accounts later. Today stays unfinished until tomorrow.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Protocol

from rcm_contracts.collections import DunningRequested
from rcm_shared.clock import Clock, utc_now
from rcm_shared.errors import Refusal
from rcm_shared.requests import Reply

from .domain import DUNNING_JOB

log = logging.getLogger(__name__)

Ask = Callable[[DunningRequested, str | None], Awaitable[Reply]]


class DunningStore(Protocol):  # store.Accounts
    async def dunning_due_on(self, day: date, limit: int) -> list[str]: ...
    async def dunning_swept_through(self) -> date | None: ...
    async def record_dunning_swept(self, day: date) -> None: ...


class DunningJob:
    def __init__(
        self, accounts: DunningStore, ask: Ask, clock: Clock = utc_now, batch: int = 500
    ) -> None:
        self.accounts = accounts
        self.ask = ask
        self.clock = clock
        self.batch = batch

    async def run_once(self) -> int:
        """One round: returns how many accounts were asked."""
        today = self.clock().date()
        swept = await self.accounts.dunning_swept_through()
        # A new database has no account with a date yet: start from yesterday.
        day = (swept or today - timedelta(days=2)) + timedelta(days=1)
        asked = 0
        while day <= today:
            finished, count = await self._sweep(day, today)
            asked += count
            if not finished:
                break  # more than a batch: the next round goes on with this day
            if day < today:
                await self.accounts.record_dunning_swept(day)
            day += timedelta(days=1)
        return asked

    async def _sweep(self, day: date, today: date) -> tuple[bool, int]:
        """Ask a batch of the accounts due that day; whether that was all of them."""
        due = await self.accounts.dunning_due_on(day, self.batch)
        for episode_id in due:
            request = DunningRequested(episode_id=episode_id, requested_by=DUNNING_JOB, as_of=today)
            # Keyed by the day acted on: a round repeated before the owner answers asks
            # once; the account's next step has another day, so another key.
            try:
                await self.ask(request, f"dunning-{episode_id}-{day.isoformat()}")
            except Refusal as refusal:  # e.g. gone meanwhile: the others still go
                log.info("dunning %s refused: %s", episode_id, refusal)
        return len(due) < self.batch, len(due)
