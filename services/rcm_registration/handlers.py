"""Registration commands: load the episode, decide, save (state and events in one write).

Ids and the clock are made here, outside the pure decisions. A decision may run more than
once (another writer won the race); only the write that succeeds counts.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

from rcm_contracts.registration import ClinicalDocumentation, Person
from rcm_shared.store import AggregateStore, Change, Document, Outcome

from . import domain
from .domain import Appointment, CoverageDraft, Episode
from .store import find


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def fresh_ids(prefix: str) -> Iterator[str]:
    while True:
        yield new_id(prefix)


def episode_id_for(idempotency_key: str) -> str:
    """The same key always names the same episode: a resubmitted request finds it."""
    return "E" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]


class Registration:
    def __init__(self, episodes: AggregateStore) -> None:
        self.episodes = episodes

    async def _apply(
        self, episode_id: str, decide: Callable[[Document | None], Change | None]
    ) -> Outcome:
        return await self.episodes.apply(episode_id, decide)

    async def get(self, episode_id: str) -> Episode:
        return await find(self.episodes, episode_id)

    async def schedule(
        self,
        scheduled_start: datetime,
        rendering_provider_npi: str,
        visit_type: str,
        patient_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[Episode, bool]:
        """Opens an episode; returns it and whether it is new (False: a resubmission)."""
        episode_id = episode_id_for(idempotency_key) if idempotency_key else new_id("E")
        appointment = Appointment(
            appointment_id=new_id("A"),
            patient_id=patient_id or new_id("P"),
            scheduled_start=scheduled_start.astimezone(UTC),
            rendering_provider_npi=rendering_provider_npi,
            visit_type=visit_type,
        )
        outcome = await self._apply(
            episode_id,
            lambda current: domain.schedule(
                current, episode_id, appointment, patient_given=patient_id is not None
            ),
        )
        return await self.get(episode_id), outcome is Outcome.APPLIED

    async def register(
        self,
        episode_id: str,
        patient: Person,
        guarantor_id: str | None,
        coverages: Sequence[CoverageDraft],
    ) -> Episode:
        new_guarantor_id = new_id("G")
        coverage_ids = fresh_ids("V")
        await self._apply(
            episode_id,
            lambda current: domain.register(
                current, patient, guarantor_id, coverages, new_guarantor_id, coverage_ids
            ),
        )
        return await self.get(episode_id)

    async def update_coverages(
        self, episode_id: str, coverages: Sequence[CoverageDraft]
    ) -> Episode:
        coverage_ids = fresh_ids("V")
        await self._apply(
            episode_id,
            lambda current: domain.update_coverages(current, coverages, coverage_ids),
        )
        return await self.get(episode_id)

    async def check_in(self, episode_id: str) -> Episode:
        now = datetime.now(UTC)
        await self._apply(episode_id, lambda current: domain.check_in(current, now))
        return await self.get(episode_id)

    async def complete_encounter(
        self,
        episode_id: str,
        place_of_service: str,
        rendering_provider_npi: str | None,
        documentation: ClinicalDocumentation,
    ) -> Episode:
        encounter_id = new_id("N")
        now = datetime.now(UTC)
        await self._apply(
            episode_id,
            lambda current: domain.complete_encounter(
                current, encounter_id, place_of_service, rendering_provider_npi, documentation, now
            ),
        )
        return await self.get(episode_id)

    async def cancel(self, episode_id: str, reason: str) -> Episode:
        now = datetime.now(UTC)
        await self._apply(episode_id, lambda current: domain.cancel(current, reason, now))
        return await self.get(episode_id)
