"""Registration rules: one episode's appointment, patient, coverages, check-in and encounter.

Pure: ids and clocks come in as arguments. Every command is idempotent by state: a command
that would not change the episode decides no change (no write, no event); a command that
does not fit the episode's state raises `Conflict`, one on no episode `NotFound`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field
from rcm_contracts.base import Event, Npi
from rcm_contracts.registration import (
    AppointmentCancelled,
    AppointmentScheduled,
    ClinicalDocumentation,
    Coverage,
    CoverageDraft,
    CoverageRank,
    CoverageUpdated,
    EncounterCompleted,
    PatientCheckedIn,
    PatientRegistered,
    Person,
    Relationship,
)
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Conflict, NotFound
from rcm_x12 import npi_check_digit_ok

Status = Literal["scheduled", "registered", "checked-in", "completed", "cancelled"]

RANK_ORDER = {CoverageRank.PRIMARY: 0, CoverageRank.SECONDARY: 1}
PATIENT_ID = r"^P[0-9a-f]{12}$"
GUARANTOR_ID = r"^G[0-9a-f]{12}$"
EPISODE_ID = r"^E[0-9a-f]{12}$"

# What survives an X12 element: printable ASCII, no blank at either end, no delimiter.
_X12_TEXT = re.compile(r"^[!-~](?:[ -~]*[!-~])?$")
_X12_DELIMITERS = frozenset("*^:~")


# --- input rules (the API turns each problem into a 422) -------------------------------


def npi_problem(npi: str) -> str | None:
    if not npi_check_digit_ok(npi):
        return "must be a 10-digit NPI with a valid check digit (Luhn)"
    return None


def text_problem(value: str) -> str | None:
    """Names, addresses and member ids travel in X12 270 and 837P segments."""
    if not _X12_TEXT.fullmatch(value):
        return "must be printable ASCII without leading or trailing blanks"
    if _X12_DELIMITERS & set(value):
        return "must not contain the X12 delimiters * ^ : ~"
    return None


def person_problems(person: Person, today: date) -> list[str]:
    texts = {
        "first_name": person.first_name,
        "last_name": person.last_name,
        "address.line1": person.address.line1,
        "address.line2": person.address.line2,
        "address.city": person.address.city,
    }
    problems = [
        f"{name}: {problem}"
        for name, value in texts.items()
        if value is not None and (problem := text_problem(value))
    ]
    if person.birth_date > today:
        problems.append("birth_date: must not be in the future")
    return problems


def coverage_problems(draft: CoverageDraft, today: date) -> list[str]:
    texts = {
        "payer_name": draft.payer_name,
        "member_id": draft.member_id,
        "group_number": draft.group_number,
    }
    problems = [
        f"{name}: {problem}"
        for name, value in texts.items()
        if value is not None and (problem := text_problem(value))
    ]
    if draft.relationship is Relationship.SELF and draft.subscriber is not None:
        problems.append("subscriber: only for a relationship other than self (18)")
    if draft.relationship is not Relationship.SELF and draft.subscriber is None:
        problems.append(f"subscriber: required when relationship is {draft.relationship.value}")
    if draft.subscriber is not None:
        problems += [f"subscriber.{p}" for p in person_problems(draft.subscriber, today)]
    return problems


def coverage_list_problems(drafts: Sequence[CoverageDraft], today: date) -> list[str]:
    problems = [
        f"[{index}].{problem}"
        for index, draft in enumerate(drafts)
        for problem in coverage_problems(draft, today)
    ]
    if len(drafts) > 2:
        problems.append("at most 2 coverages (primary and secondary)")
    ranks = [draft.rank for draft in drafts]
    for rank in sorted(set(ranks), key=RANK_ORDER.__getitem__):
        if ranks.count(rank) > 1:
            problems.append(f"at most one {rank.value} coverage")
    ids = [draft.coverage_id for draft in drafts if draft.coverage_id is not None]
    if len(set(ids)) != len(ids):
        problems.append("coverage_id: each coverage needs its own id")
    return problems


# --- the episode -------------------------------------------------------------------------


def instant(moment: datetime) -> datetime:
    """A time as the store keeps it (BSON: milliseconds), so that the answer, the event and
    every later read of the episode say the same time."""
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)


class Appointment(BaseModel):
    model_config = ConfigDict(frozen=True)

    appointment_id: str
    patient_id: str
    scheduled_start: datetime
    rendering_provider_npi: Npi
    visit_type: str


class Encounter(BaseModel):
    model_config = ConfigDict(frozen=True)

    encounter_id: str
    date_of_service: date
    place_of_service: str
    rendering_provider_npi: Npi
    documentation: ClinicalDocumentation
    completed_at: datetime


class Cancellation(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: str
    cancelled_at: datetime


class Authorization(BaseModel):
    """A payer's prior authorization recorded after registration, for one coverage."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    coverage_id: str
    payer_id: str
    number: str
    recorded_at: datetime


class Episode(BaseModel):
    """The aggregate, as stored and as the API shows it (with its status)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    episode_id: str
    appointment: Appointment
    patient: Person | None = None
    guarantor_id: str | None = None
    coverages: list[Coverage] | None = None  # None until registered; [] means self-pay
    checked_in_at: datetime | None = None
    encounter: Encounter | None = None
    cancellation: Cancellation | None = None
    authorizations: list[Authorization] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def patient_id(self) -> str:
        return self.appointment.patient_id

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> Status:
        if self.cancellation is not None:
            return "cancelled"
        if self.encounter is not None:
            return "completed"
        if self.checked_in_at is not None:
            return "checked-in"
        if self.patient is not None:
            return "registered"
        return "scheduled"


class AppointmentCreated(BaseModel):
    """The answer to scheduling: the ids the front desk goes on with."""

    episode_id: str
    appointment_id: str
    patient_id: str

    @classmethod
    def of(cls, episode: Episode) -> AppointmentCreated:
        return cls(
            episode_id=episode.episode_id,
            appointment_id=episode.appointment.appointment_id,
            patient_id=episode.patient_id,
        )


EpisodeDecision = Decision[Episode, None]
UNCHANGED: EpisodeDecision = Decision()


def existing(episode: Episode | None) -> Episode:
    if episode is None:
        raise NotFound("no such episode")
    return episode


def _open(episode: Episode | None) -> Episode:
    episode = existing(episode)
    if episode.cancellation is not None:
        raise Conflict("the appointment is cancelled")
    return episode


# --- commands ----------------------------------------------------------------------------


def schedule(
    current: Episode | None, episode_id: str, appointment: Appointment, patient_given: bool
) -> EpisodeDecision:
    """Opens the episode. Scheduling it again (same idempotency key) with the same request
    changes nothing; a different request under an existing episode id is a conflict."""
    if current is not None:
        if not same_request(current.appointment, appointment, patient_given):
            raise Conflict("this idempotency key was used for a different appointment")
        return UNCHANGED
    appointment = appointment.model_copy(
        update={"scheduled_start": instant(appointment.scheduled_start)}
    )
    event = AppointmentScheduled(
        episode_id=episode_id,
        appointment_id=appointment.appointment_id,
        patient_id=appointment.patient_id,
        scheduled_start=appointment.scheduled_start,
        rendering_provider_npi=appointment.rendering_provider_npi,
        visit_type=appointment.visit_type,
    )
    return Decision(Episode(episode_id=episode_id, appointment=appointment), [event])


def same_request(existing: Appointment, requested: Appointment, patient_given: bool) -> bool:
    fields = ["rendering_provider_npi", "visit_type"]
    if patient_given:
        fields.append("patient_id")
    return instant(existing.scheduled_start) == instant(requested.scheduled_start) and all(
        getattr(existing, name) == getattr(requested, name) for name in fields
    )


def with_id(draft: CoverageDraft, coverage_id: str) -> Coverage:
    return Coverage.model_validate({**draft.model_dump(), "coverage_id": coverage_id})


def resolve_coverages(
    existing: Sequence[Coverage], drafts: Sequence[CoverageDraft], fresh_ids: Iterator[str]
) -> list[Coverage]:
    """Gives every draft its id: its own, else that of the same payer and member on file
    (so entering the same coverages twice is no change), else a new one. Primary first."""
    on_file = {(c.payer_id, c.member_id): c.coverage_id for c in existing}
    resolved = []
    for draft in sorted(drafts, key=lambda d: RANK_ORDER[d.rank]):
        coverage_id = draft.coverage_id or on_file.get((draft.payer_id, draft.member_id))
        resolved.append(with_id(draft, coverage_id or next(fresh_ids)))
    return resolved


def _coverage_event(episode: Episode) -> CoverageUpdated:
    return CoverageUpdated(
        episode_id=episode.episode_id,
        patient_id=episode.patient_id,
        coverages=list(episode.coverages or []),
    )


def register(
    current: Episode | None,
    patient: Person,
    guarantor_id: str | None,
    drafts: Sequence[CoverageDraft],
    new_guarantor_id: str,
    fresh_coverage_ids: Iterator[str],
) -> EpisodeDecision:
    """Records the patient, guarantor and coverages; emits only what changed (the first
    registration emits both events, so eligibility learns of a self-pay episode too).
    Without a guarantor id the one on file stays; the first time, the patient gets a new one.
    """
    episode = _open(current)
    guarantor = guarantor_id or episode.guarantor_id or new_guarantor_id
    coverages = resolve_coverages(episode.coverages or [], drafts, fresh_coverage_ids)
    updated = episode.model_copy(
        update={"patient": patient, "guarantor_id": guarantor, "coverages": coverages}
    )
    events: list[Event] = []
    if (episode.patient, episode.guarantor_id) != (patient, guarantor):
        events.append(
            PatientRegistered(
                episode_id=episode.episode_id,
                patient_id=episode.patient_id,
                patient=patient,
                guarantor_id=guarantor,
            )
        )
    if episode.coverages != coverages:
        events.append(_coverage_event(updated))
    return Decision(updated, events) if events else UNCHANGED


def update_coverages(
    current: Episode | None, drafts: Sequence[CoverageDraft], fresh_ids: Iterator[str]
) -> EpisodeDecision:
    episode = _open(current)
    if episode.patient is None:
        raise Conflict("register the patient before changing coverages")
    coverages = resolve_coverages(episode.coverages or [], drafts, fresh_ids)
    if coverages == episode.coverages:
        return UNCHANGED
    updated = episode.model_copy(update={"coverages": coverages})
    return Decision(updated, [_coverage_event(updated)])


def record_authorization(
    current: Episode | None, coverage_id: str, number: str, now: datetime
) -> EpisodeDecision:
    """Keeps an authorization obtained after registration beside the coverage it is for;
    the coverage itself (and eligibility's checks of it) does not change. The same
    number again is no change."""
    episode = _open(current)
    coverage = next((c for c in episode.coverages or [] if c.coverage_id == coverage_id), None)
    if coverage is None:
        raise NotFound(f"episode {episode.episode_id} has no coverage {coverage_id}")
    if any(a.coverage_id == coverage_id and a.number == number for a in episode.authorizations):
        return UNCHANGED
    recorded = Authorization(
        coverage_id=coverage_id, payer_id=coverage.payer_id, number=number, recorded_at=instant(now)
    )
    updated = episode.model_copy(update={"authorizations": [*episode.authorizations, recorded]})
    return Decision(updated, [])


def check_in(current: Episode | None, now: datetime) -> EpisodeDecision:
    episode = _open(current)
    if episode.checked_in_at is not None:
        return UNCHANGED
    now = instant(now)
    event = PatientCheckedIn(
        episode_id=episode.episode_id,
        appointment_id=episode.appointment.appointment_id,
        checked_in_at=now,
    )
    return Decision(episode.model_copy(update={"checked_in_at": now}), [event])


def complete_encounter(
    current: Episode | None,
    encounter_id: str,
    place_of_service: str,
    rendering_provider_npi: str | None,
    documentation: ClinicalDocumentation,
    now: datetime,
) -> EpisodeDecision:
    """The visit is documented; coding takes it from here. The date of service is the
    appointment's (UTC) date, the same date eligibility was checked for."""
    episode = _open(current)
    npi = rendering_provider_npi or episode.appointment.rendering_provider_npi
    if episode.encounter is not None:
        done = episode.encounter
        if (done.place_of_service, done.rendering_provider_npi, done.documentation) == (
            place_of_service,
            npi,
            documentation,
        ):
            return UNCHANGED
        raise Conflict("the encounter is already completed")
    if episode.patient is None:
        raise Conflict("register the patient before completing the encounter")
    if episode.checked_in_at is None:
        raise Conflict("check the patient in before completing the encounter")
    encounter = Encounter(
        encounter_id=encounter_id,
        date_of_service=episode.appointment.scheduled_start.astimezone(UTC).date(),
        place_of_service=place_of_service,
        rendering_provider_npi=npi,
        documentation=documentation,
        completed_at=instant(now),
    )
    event = EncounterCompleted(
        episode_id=episode.episode_id,
        encounter_id=encounter_id,
        patient_id=episode.patient_id,
        date_of_service=encounter.date_of_service,
        place_of_service=place_of_service,
        rendering_provider_npi=npi,
        documentation=documentation,
    )
    return Decision(episode.model_copy(update={"encounter": encounter}), [event])


def cancel(current: Episode | None, reason: str, now: datetime) -> EpisodeDecision:
    episode = existing(current)
    if episode.cancellation is not None:
        return UNCHANGED
    if episode.encounter is not None:
        raise Conflict("the encounter is completed; the appointment can no longer be cancelled")
    cancellation = Cancellation(reason=reason, cancelled_at=instant(now))
    event = AppointmentCancelled(
        episode_id=episode.episode_id,
        appointment_id=episode.appointment.appointment_id,
        reason=reason,
    )
    return Decision(episode.model_copy(update={"cancellation": cancellation}), [event])
