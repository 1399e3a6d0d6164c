"""Handlers on the in-memory aggregate port: a retried appointment books once, a refused
request changes nothing, a redelivered request is answered from the episode."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from rcm_contracts import CATALOG, Event, Request
from rcm_contracts.registration import (
    Address,
    AppointmentCancelled,
    AppointmentRequested,
    AppointmentScheduled,
    CancellationRequested,
    CheckInRequested,
    CoverageUpdated,
    PatientCheckedIn,
    PatientRegistered,
    Person,
    RegistrationRequested,
    Sex,
)
from rcm_registration.domain import AppointmentCreated, Episode
from rcm_registration.handlers import SUBSCRIPTIONS, Handlers, episode_id_for
from rcm_shared.aggregates import InMemoryAggregates
from rcm_shared.envelope import Envelope
from rcm_shared.errors import Conflict, NotFound

NOW = datetime(2026, 3, 2, 15, 0, 0, 123456, tzinfo=UTC)
NPI = "1234567893"
EPISODE = episode_id_for("front-desk-42")
PATIENT = Person(
    first_name="Ann",
    last_name="Lee",
    birth_date=date(1980, 5, 1),
    sex=Sex.FEMALE,
    address=Address(line1="1 Main St", city="Springfield", state="IL", postal_code="62701"),
)


def envelope(data: Event, envelope_id: str | None = None) -> Envelope[Any]:
    if envelope_id is None:
        return Envelope(data=data, source="rcm/test")
    return Envelope(data=data, source="rcm/test", id=envelope_id)


def appointment(visit_type: str = "office-visit-established") -> AppointmentRequested:
    return AppointmentRequested(
        episode_id=EPISODE,
        requested_by="api",
        scheduled_start=datetime(2026, 3, 2, 14, 30, tzinfo=UTC),
        rendering_provider_npi=NPI,
        visit_type=visit_type,
    )


def setup() -> tuple[InMemoryAggregates[Episode], Handlers]:
    episodes = InMemoryAggregates(Episode)
    return episodes, Handlers(episodes, clock=lambda: NOW)


async def scheduled(handlers: Handlers) -> AppointmentCreated:
    reply = await handlers.appointment_requested(envelope(appointment()))
    assert isinstance(reply.body, AppointmentCreated)
    return reply.body


def test_registration_handles_every_request_of_its_own() -> None:
    own = {
        model
        for name, model in CATALOG.items()
        if name.startswith("rcm.registration.") and issubclass(model, Request)
    }
    assert set(SUBSCRIPTIONS) == own


async def test_the_same_idempotency_key_books_once() -> None:
    episodes, handlers = setup()
    key_request_id = "request-of-front-desk-42"
    first = await handlers.appointment_requested(envelope(appointment(), key_request_id))
    again = await handlers.appointment_requested(envelope(appointment(), key_request_id))
    assert (first.status, again.status) == (201, 200)
    assert first.body == again.body
    assert isinstance(first.body, AppointmentCreated)
    assert first.body.episode_id == EPISODE
    assert [type(event) for event in episodes.emitted] == [AppointmentScheduled]

    with pytest.raises(Conflict, match="different appointment"):
        await handlers.appointment_requested(envelope(appointment("new-patient"), key_request_id))
    state = episodes.states[EPISODE]
    assert state.appointment.visit_type == "office-visit-established"
    assert len(episodes.emitted) == 1


async def test_a_refused_request_leaves_the_episode_as_it_was() -> None:
    episodes, handlers = setup()
    await scheduled(handlers)
    cancel = CancellationRequested(episode_id=EPISODE, requested_by="api", reason="called")
    await handlers.cancellation_requested(envelope(cancel))
    before = episodes.states[EPISODE]
    emitted = list(episodes.emitted)

    with pytest.raises(Conflict, match="cancelled"):
        await handlers.check_in_requested(
            envelope(CheckInRequested(episode_id=EPISODE, requested_by="api"))
        )
    assert episodes.states[EPISODE] == before
    assert episodes.emitted == emitted
    assert [type(event) for event in emitted] == [AppointmentScheduled, AppointmentCancelled]


async def test_a_request_for_no_episode_is_not_found_and_creates_nothing() -> None:
    episodes, handlers = setup()
    with pytest.raises(NotFound):
        await handlers.check_in_requested(
            envelope(CheckInRequested(episode_id="E000000000000", requested_by="api"))
        )
    assert episodes.states == {}
    assert episodes.emitted == []


async def test_a_redelivered_request_is_answered_from_the_episode() -> None:
    episodes, handlers = setup()
    await scheduled(handlers)
    register = envelope(
        RegistrationRequested(episode_id=EPISODE, requested_by="api", patient=PATIENT)
    )
    first = await handlers.registration_requested(register)
    again = await handlers.registration_requested(register)
    assert again == first
    assert first.guarantor_id is not None
    assert [type(event) for event in episodes.emitted[1:]] == [PatientRegistered, CoverageUpdated]


async def test_check_in_takes_the_clock_to_the_stored_millisecond() -> None:
    episodes, handlers = setup()
    await scheduled(handlers)
    episode = await handlers.check_in_requested(
        envelope(CheckInRequested(episode_id=EPISODE, requested_by="api"))
    )
    assert episode.checked_in_at == NOW.replace(microsecond=123000)
    (checked_in,) = [event for event in episodes.emitted if isinstance(event, PatientCheckedIn)]
    assert checked_in.checked_in_at == episode.checked_in_at
