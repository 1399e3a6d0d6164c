"""One method for every consumed event: record the episode's facts, then add the rollup
changes they made to the counters.

Two writes, so the changes wait inside the episode (`uncounted`; `pending` is the store's
own field) until the counters have them: a crash in between leaves them there, the event
comes again (its offset was not committed), the episode's write is a duplicate and the
uncounted changes are added now.
Each counter remembers the change ids it added (the port's applied causes), so a change
is added once however often this runs. Counters are keyed by the episode's partition,
so the owner of the episode is the one writer of the counters it touches (decisions §17).

The changes this process has added leave the episode with its next write, not with a
write of their own; the process remembers them for its most recent episodes only. An
episode it forgot (or a new owner after a hand-over) keeps them a little longer and adds
them once more, which the counters' applied ids turn into nothing.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from rcm_contracts.claims import (
    ClaimAccepted,
    ClaimClosed,
    ClaimDenied,
    ClaimPaid,
    ClaimRejected,
    ClaimResubmitted,
    ClaimSubmitted,
)
from rcm_contracts.eligibility import EligibilityVerified
from rcm_contracts.payments import PatientPaymentReceived
from rcm_contracts.registration import (
    AppointmentCancelled,
    AppointmentScheduled,
    CoverageUpdated,
    EncounterCompleted,
)
from rcm_shared.aggregates import Aggregates, Decision
from rcm_shared.envelope import Envelope
from rcm_shared.ownership import partition_of
from rcm_shared.service import Subscriptions

from . import domain
from .domain import EpisodeFacts, Rollup

log = logging.getLogger(__name__)

# Episodes whose added changes are remembered until their next write.
REMEMBERED_EPISODES = 10_000


class Handlers:
    def __init__(
        self,
        episodes: Aggregates[EpisodeFacts],
        rollups: Aggregates[Rollup],
        partitions: int,
    ) -> None:
        self.episodes = episodes
        self.rollups = rollups
        self.partitions = partitions
        self.counted: OrderedDict[str, set[str]] = OrderedDict()  # episode -> change ids

    async def record(self, envelope: Envelope[Any]) -> None:
        episode_id = envelope.subject
        partition = partition_of(episode_id, self.partitions)
        counted = self.counted.get(episode_id, set())
        applied = await self.episodes.apply(
            episode_id,
            lambda facts: domain.record(
                facts, episode_id, partition, envelope.data, envelope.id, counted
            ),
            cause=envelope.id,
        )
        log.debug("%s %s for %s: %s", envelope.type, envelope.id, episode_id, applied.outcome)
        if applied.state is not None:
            await self.count(episode_id, applied.state.uncounted)

    async def count(self, episode_id: str, uncounted: list[domain.Delta]) -> None:
        """Add the episode's pending changes to their counters, and remember them until
        the episode's next write drops them."""
        counted = self.counted.pop(episode_id, set()) & {delta.id for delta in uncounted}
        for delta in uncounted:
            if delta.id not in counted:
                await self.rollups.apply(delta.key, adding(delta), cause=delta.id)
                counted.add(delta.id)
        if counted:
            self.counted[episode_id] = counted
            while len(self.counted) > REMEMBERED_EPISODES:
                self.counted.popitem(last=False)


def adding(delta: domain.Delta) -> Callable[[Rollup | None], Decision[Rollup, None]]:
    return lambda rollup: domain.add_to_rollup(rollup, delta)


SUBSCRIPTIONS: Subscriptions[Handlers] = {
    AppointmentScheduled: Handlers.record,
    AppointmentCancelled: Handlers.record,
    CoverageUpdated: Handlers.record,
    EncounterCompleted: Handlers.record,
    EligibilityVerified: Handlers.record,
    ClaimSubmitted: Handlers.record,
    ClaimAccepted: Handlers.record,
    ClaimRejected: Handlers.record,
    ClaimResubmitted: Handlers.record,
    ClaimDenied: Handlers.record,
    ClaimPaid: Handlers.record,
    ClaimClosed: Handlers.record,
    PatientPaymentReceived: Handlers.record,
}
