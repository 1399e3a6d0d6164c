"""The deadline watch: a job that asks the owner to raise deadline-approaching for each
claim whose timely-filing or appeal deadline is within the warning days.

It reads the episodes with open work or unsent claims (indexed flags: the only claims
whose deadlines still matter, see domain/deadlines.py), bounded per round; the owner
decides again on its own state, once per claim and kind.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from rcm_contracts.claims import DeadlineAlertRequested
from rcm_shared.clock import Clock, utc_now
from rcm_shared.errors import Refusal
from rcm_shared.requests import Reply

from .domain import Episode
from .domain.deadlines import DeadlineTable, due_alerts
from .store import STATE_ONLY, ClaimsStore

log = logging.getLogger(__name__)
WATCHER = "deadline-watch"


class DeadlineWatch:
    def __init__(
        self,
        store: ClaimsStore,
        ask: Callable[[DeadlineAlertRequested, str | None], Awaitable[Reply]],
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
        """Alerts asked for in this round."""
        today = self.clock().date()
        query = {"$or": [{"has_work": True}, {"has_unsent": True}]}
        cursor = self.store.episodes.collection.find(query, STATE_ONLY).limit(self.limit)
        asked = 0
        async for document in cursor:
            episode = Episode.model_validate(document)
            for claim_id, kind in due_alerts(episode, self.table, today):
                request = DeadlineAlertRequested(
                    episode_id=episode.episode_id,
                    requested_by=WATCHER,
                    claim_id=claim_id,
                    kind=kind,
                )
                try:
                    await self.ask(request, f"{WATCHER}:{claim_id}:{kind.value}")
                except Refusal as refusal:  # the state moved on since it was read
                    log.info("deadline alert for %s not raised: %s", claim_id, refusal.message)
                    continue
                asked += 1
        return asked
