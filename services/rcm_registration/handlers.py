"""The front desk's commands, applied by the replica that owns the episode.

Ids and the clock are made here, outside the pure decisions. A decision may run more than
once (another writer won the race); only the write that succeeds counts.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import TypeVar

from rcm_contracts.base import EpisodeRequest
from rcm_contracts.registration import (
    AppointmentRequested,
    AuthorizationRecordingRequested,
    CancellationRequested,
    CheckInRequested,
    CoverageUpdateRequested,
    EncounterCompletionRequested,
    RegistrationRequested,
)
from rcm_shared.aggregates import Aggregates, Decide, Outcome
from rcm_shared.clock import Clock, utc_now
from rcm_shared.envelope import Envelope
from rcm_shared.requests import Reply
from rcm_shared.service import Subscriptions

from . import domain
from .domain import Appointment, AppointmentCreated, Episode

R = TypeVar("R", bound=EpisodeRequest)


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def fresh_ids(prefix: str) -> Iterator[str]:
    while True:
        yield new_id(prefix)


def episode_id_for(idempotency_key: str) -> str:
    """The same key always names the same episode: a resubmitted request finds it."""
    return "E" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]


class Handlers:
    def __init__(self, episodes: Aggregates[Episode], clock: Clock = utc_now) -> None:
        self.episodes = episodes
        self.clock = clock

    async def _apply(self, envelope: Envelope[R], decide: Decide[Episode, None]) -> Episode:
        """Applies the decision once per request; a repeat is answered from the episode."""
        applied = await self.episodes.apply(envelope.data.episode_id, decide, cause=envelope.id)
        return domain.existing(applied.state)

    async def appointment_requested(self, envelope: Envelope[AppointmentRequested]) -> Reply:
        request = envelope.data
        appointment = Appointment(
            appointment_id=new_id("A"),
            patient_id=request.patient_id or new_id("P"),
            scheduled_start=request.scheduled_start,
            rendering_provider_npi=request.rendering_provider_npi,
            visit_type=request.visit_type,
        )
        # No cause: a key's request id is the same for another appointment under that key,
        # which must be a conflict; the episode's state tells a retry (200) from it.
        applied = await self.episodes.apply(
            request.episode_id,
            lambda current: domain.schedule(
                current, request.episode_id, appointment, request.patient_id is not None
            ),
        )
        created = AppointmentCreated.of(domain.existing(applied.state))
        return Reply(201 if applied.outcome is Outcome.APPLIED else 200, created)

    async def registration_requested(self, envelope: Envelope[RegistrationRequested]) -> Episode:
        request = envelope.data
        new_guarantor_id = new_id("G")
        coverage_ids = fresh_ids("V")
        return await self._apply(
            envelope,
            lambda current: domain.register(
                current,
                request.patient,
                request.guarantor_id,
                request.coverages,
                new_guarantor_id,
                coverage_ids,
            ),
        )

    async def coverage_update_requested(
        self, envelope: Envelope[CoverageUpdateRequested]
    ) -> Episode:
        coverages = envelope.data.coverages
        coverage_ids = fresh_ids("V")
        return await self._apply(
            envelope, lambda current: domain.update_coverages(current, coverages, coverage_ids)
        )

    async def check_in_requested(self, envelope: Envelope[CheckInRequested]) -> Episode:
        now = self.clock()
        return await self._apply(envelope, lambda current: domain.check_in(current, now))

    async def encounter_completion_requested(
        self, envelope: Envelope[EncounterCompletionRequested]
    ) -> Episode:
        request = envelope.data
        encounter_id = new_id("N")
        now = self.clock()
        return await self._apply(
            envelope,
            lambda current: domain.complete_encounter(
                current,
                encounter_id,
                request.place_of_service,
                request.rendering_provider_npi,
                request.documentation,
                now,
            ),
        )

    async def authorization_recording_requested(
        self, envelope: Envelope[AuthorizationRecordingRequested]
    ) -> Episode:
        request = envelope.data
        now = self.clock()
        return await self._apply(
            envelope,
            lambda current: domain.record_authorization(
                current, request.coverage_id, request.number, now
            ),
        )

    async def cancellation_requested(self, envelope: Envelope[CancellationRequested]) -> Episode:
        reason = envelope.data.reason
        now = self.clock()
        return await self._apply(envelope, lambda current: domain.cancel(current, reason, now))


SUBSCRIPTIONS: Subscriptions[Handlers] = {
    AppointmentRequested: Handlers.appointment_requested,
    RegistrationRequested: Handlers.registration_requested,
    CoverageUpdateRequested: Handlers.coverage_update_requested,
    CheckInRequested: Handlers.check_in_requested,
    EncounterCompletionRequested: Handlers.encounter_completion_requested,
    CancellationRequested: Handlers.cancellation_requested,
    AuthorizationRecordingRequested: Handlers.authorization_recording_requested,
}
