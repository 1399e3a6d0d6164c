"""The dunning job: each round, every account whose indexed next-dunning date has come is
asked (through its owner) to do what is due: the next statement, a missed installment's
default, the agency placement after the final notice."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from rcm_contracts.collections import DunningRequested
from rcm_shared.clock import Clock, utc_now
from rcm_shared.errors import Refusal
from rcm_shared.requests import Reply

from .domain import DUNNING_JOB
from .store import Accounts

log = logging.getLogger(__name__)

Ask = Callable[[DunningRequested, str | None], Awaitable[Reply]]


class DunningJob:
    def __init__(
        self, accounts: Accounts, ask: Ask, clock: Clock = utc_now, batch: int = 500
    ) -> None:
        self.accounts = accounts
        self.ask = ask
        self.clock = clock
        self.batch = batch

    async def run_once(self) -> int:
        """One round: returns how many accounts were asked."""
        as_of = self.clock().date()
        due = await self.accounts.dunning_due(as_of, self.batch)
        for episode_id, due_on in due:
            request = DunningRequested(episode_id=episode_id, requested_by=DUNNING_JOB, as_of=as_of)
            # Keyed by the date acted on: a round repeated before the owner answers asks
            # the same thing once; the next step has another date, so another key.
            try:
                await self.ask(request, f"dunning-{episode_id}-{due_on}")
            except Refusal as refusal:  # e.g. closed meanwhile: the others still go
                log.info("dunning %s refused: %s", episode_id, refusal)
        return len(due)
