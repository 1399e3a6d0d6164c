"""Events of the registration service: scheduling, patients, coverage, encounters.

These stay inside the clinical and administrative core (eligibility, coding, claims),
which needs demographics to build X12 270 and 837P; nothing here is for public topics.
The requests at the end are the front desk's commands; only registration consumes them.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import Field

from .base import Contract, EpisodeEvent, EpisodeRequest, Id, Npi, UtcDatetime, event


class Sex(StrEnum):
    FEMALE = "F"
    MALE = "M"
    UNKNOWN = "U"


class CoverageRank(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


class Relationship(StrEnum):
    """Patient's relationship to the subscriber (X12 individual relationship codes)."""

    SELF = "18"
    SPOUSE = "01"
    CHILD = "19"
    OTHER = "G8"


class Address(Contract):
    line1: str = Field(min_length=1, max_length=55)
    line2: str | None = Field(default=None, max_length=55)
    city: str = Field(min_length=2, max_length=30)
    state: str = Field(pattern=r"^[A-Z]{2}$")
    postal_code: str = Field(pattern=r"^\d{5}(\d{4})?$")


class Person(Contract):
    first_name: str = Field(min_length=1, max_length=35)
    last_name: str = Field(min_length=1, max_length=60)
    birth_date: date
    sex: Sex
    address: Address


class Coverage(Contract):
    coverage_id: Id
    rank: CoverageRank
    payer_id: Id = Field(description="Payer's id at the clearinghouse (X12 NM109 for PR).")
    payer_name: str = Field(min_length=1, max_length=60)
    member_id: str = Field(min_length=1, max_length=80)
    group_number: str | None = Field(default=None, max_length=50)
    relationship: Relationship = Relationship.SELF
    subscriber: Person | None = Field(
        default=None, description="The subscriber when not the patient (relationship != 18)."
    )
    prior_authorization: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9-]{1,50}$",
        description="The payer's prior authorization for the visit's services (837P REF*G1).",
    )


@event("rcm.registration.appointment-scheduled.v1")
class AppointmentScheduled(EpisodeEvent):
    """Opens the episode."""

    appointment_id: Id
    patient_id: Id
    scheduled_start: UtcDatetime
    rendering_provider_npi: Npi
    visit_type: str = Field(min_length=1, max_length=40, examples=["office-visit-established"])


@event("rcm.registration.appointment-cancelled.v1")
class AppointmentCancelled(EpisodeEvent):
    appointment_id: Id
    reason: str = Field(min_length=1, max_length=200)


@event("rcm.registration.patient-registered.v1")
class PatientRegistered(EpisodeEvent):
    patient_id: Id
    patient: Person
    guarantor_id: Id = Field(description="Who receives statements; collections sees only this id.")


@event("rcm.registration.coverage-updated.v1")
class CoverageUpdated(EpisodeEvent):
    """The episode's coverages as now known; an empty list means self-pay."""

    patient_id: Id
    coverages: list[Coverage] = Field(max_length=2)


@event("rcm.registration.patient-checked-in.v1")
class PatientCheckedIn(EpisodeEvent):
    appointment_id: Id
    checked_in_at: UtcDatetime


class DocumentedDiagnosis(Contract):
    description: str = Field(min_length=1, max_length=200)
    icd10_hint: str | None = Field(
        default=None, description="Code the EHR's problem list carries, if any; coders verify it."
    )


class DocumentedProcedure(Contract):
    description: str = Field(min_length=1, max_length=200)
    code_hint: str | None = Field(default=None, description="CPT/HCPCS from the order, if any.")
    units: int = Field(default=1, ge=1, le=99)


class ClinicalDocumentation(Contract):
    note: str = Field(max_length=20_000, description="The visit note the coder reads.")
    diagnoses: list[DocumentedDiagnosis] = Field(min_length=1, max_length=12)
    procedures: list[DocumentedProcedure] = Field(min_length=1, max_length=50)


@event("rcm.registration.encounter-completed.v1")
class EncounterCompleted(EpisodeEvent):
    encounter_id: Id
    patient_id: Id
    date_of_service: date
    place_of_service: str = Field(pattern=r"^\d{2}$", description="CMS place-of-service code.")
    rendering_provider_npi: Npi
    documentation: ClinicalDocumentation


# --- the front desk's commands ----------------------------------------------------------


class CoverageDraft(Contract):
    """A coverage as a person enters it: the id is optional (kept or made by registration)."""

    coverage_id: str | None = Field(default=None, pattern=r"^V[0-9a-f]{12}$")
    rank: CoverageRank
    payer_id: Id = Field(min_length=2)
    payer_name: str = Field(min_length=1, max_length=60)
    member_id: str = Field(min_length=2, max_length=80)
    group_number: str | None = Field(default=None, min_length=1, max_length=50)
    relationship: Relationship = Relationship.SELF
    subscriber: Person | None = None
    prior_authorization: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9-]{1,50}$",
        description="The payer's prior authorization for the visit's services (837P REF*G1).",
    )


@event("rcm.registration.appointment-requested.v1")
class AppointmentRequested(EpisodeRequest):
    """Opens the episode `episode_id`, an id the asker made (from its Idempotency-Key, if any)."""

    patient_id: Id | None = Field(default=None, description="A returning patient's id; else new.")
    scheduled_start: UtcDatetime
    rendering_provider_npi: Npi
    visit_type: str = Field(min_length=1, max_length=40)


@event("rcm.registration.registration-requested.v1")
class RegistrationRequested(EpisodeRequest):
    """Records the patient, guarantor and coverages of the episode (the front desk's entry)."""

    patient: Person
    guarantor_id: Id | None = Field(default=None, description="Else the one on file or a new one.")
    coverages: list[CoverageDraft] = Field(default_factory=list, max_length=2)


@event("rcm.registration.coverage-update-requested.v1")
class CoverageUpdateRequested(EpisodeRequest):
    """Replaces the registered episode's coverages; an empty list means self-pay."""

    coverages: list[CoverageDraft] = Field(default_factory=list, max_length=2)


@event("rcm.registration.check-in-requested.v1")
class CheckInRequested(EpisodeRequest):
    """The patient arrived for the episode's appointment."""


@event("rcm.registration.encounter-completion-requested.v1")
class EncounterCompletionRequested(EpisodeRequest):
    """The checked-in patient's visit is documented, ready for coding."""

    place_of_service: str = Field(pattern=r"^\d{2}$")
    rendering_provider_npi: Npi | None = Field(
        default=None, description="Defaults to the appointment's provider."
    )
    documentation: ClinicalDocumentation


@event("rcm.registration.authorization-recording-requested.v1")
class AuthorizationRecordingRequested(EpisodeRequest):
    """A prior authorization the front desk obtained or found after registration, for
    one of the episode's coverages (the billers look it up on a CO-197 denial)."""

    coverage_id: Id
    number: str = Field(pattern=r"^[A-Za-z0-9-]{1,50}$")


@event("rcm.registration.cancellation-requested.v1")
class CancellationRequested(EpisodeRequest):
    """Cancels the appointment, as long as no encounter is completed."""

    reason: str = Field(min_length=1, max_length=200)
