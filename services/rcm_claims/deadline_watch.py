"""The deadline watch: a job that asks the owner to raise deadline-approaching for each
claim whose timely-filing or appeal deadline is within the warning days, and to flag each
appeal the payer left unanswered past its answer deadline (back in the biller's queue).

It reads the episodes with open work, unsent claims or unanswered appeals (indexed flags:
the only claims whose deadlines still matter, see domain/deadlines.py), bounded per
round, one equality per flag: FerretDB serves an equality from an index and an `$or`
by reading every episode (27 s with 10,000 stored). The owner decides again on its own
state, once per claim and kind, and once per sending of an appeal.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from rcm_contracts import Request
from rcm_contracts.claims import AppealOverdueRequested, DeadlineAlertRequested
from rcm_shared.clock import Clock, utc_now
from rcm_shared.errors import Refusal
from rcm_shared.requests import Reply

from .domain.deadlines import DeadlineTable, due_alerts, overdue_appeals
from .store import ClaimsStore

log = logging.getLogger(__name__)
WATCHER = "deadline-watch"
WATCHED_FLAGS = ("has_work", "has_unsent", "has_pending_appeal")


class DeadlineWatch:
    def __init__(
        self,
        store: ClaimsStore,
        ask: Callable[[Request, str | None], Awaitable[Reply]],
        table: DeadlineTable,
        limit: int = 10_000,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.ask = ask
        self.table = table
        self.limit = limit
        self.clock = clock

    async def run_once(self) -> int:
        """Alerts and overdue appeals asked for in this round."""
        today = self.clock().date()
        asked = 0
        async for episode in self.store.watched_episodes(WATCHED_FLAGS, self.limit):
            requests: list[tuple[Request, str]] = [
                (
                    DeadlineAlertRequested(
                        episode_id=episode.episode_id,
                        requested_by=WATCHER,
                        claim_id=claim_id,
                        kind=kind,
                    ),
                    f"{WATCHER}:{claim_id}:{kind.value}",
                )
                for claim_id, kind in due_alerts(episode, self.table, today)
            ]
            requests += [
                (
                    AppealOverdueRequested(
                        episode_id=episode.episode_id,
                        requested_by=WATCHER,
                        claim_id=claim_id,
                        appeal_id=appeal.appeal_id,
                    ),
                    f"{WATCHER}:{appeal.appeal_id}:overdue:{appeal.sends}",
                )
                for claim_id, appeal in overdue_appeals(episode, self.table, today)
            ]
            for request, key in requests:
                try:
                    await self.ask(request, key)
                except Refusal as refusal:  # the state moved on since it was read
                    log.info("deadline watch: %s not applied: %s", key, refusal.message)
                    continue
                asked += 1
        return asked
