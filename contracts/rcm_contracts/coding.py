"""Events of the coding service: the codes and priced charge lines of an episode, and
the coders' commands."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import Field

from .base import (
    Contract,
    EpisodeEvent,
    EpisodeRequest,
    Id,
    NonNegativeCents,
    Request,
    UtcDatetime,
    event,
)

Icd10Code = str  # validated by the coding service against the official release


class ProcedureCodeSet(StrEnum):
    CPT = "CPT"
    HCPCS = "HCPCS"


class ChargeLine(Contract):
    line_number: int = Field(ge=1, le=50)
    line_id: Id = Field(description="Stable id of the line; X12 REF*6R in 837P and 835.")
    code_set: ProcedureCodeSet
    procedure_code: str = Field(pattern=r"^([0-9]{4}[0-9A-Z]|[A-V][0-9]{4})$")
    modifiers: list[str] = Field(default_factory=list, max_length=4)
    units: int = Field(ge=1, le=99)
    charge_cents: NonNegativeCents = Field(description="Line charge: unit price x units.")
    diagnosis_pointers: list[int] = Field(min_length=1, max_length=4)
    service_date: date


class CodedEpisode(Contract):
    coding_case_id: Id
    diagnoses: list[Icd10Code] = Field(
        min_length=1, max_length=12, description="ICD-10-CM, principal first, no dot."
    )
    charge_lines: list[ChargeLine] = Field(min_length=1, max_length=50)
    total_charge_cents: NonNegativeCents
    place_of_service: str = Field(pattern=r"^\d{2}$")
    rendering_provider_npi: str = Field(pattern=r"^\d{10}$")
    coder_id: Id
    edit_pack_version: str | None = Field(
        default=None, max_length=64, description="The edit pack the codes were checked with."
    )


@event("rcm.coding.coding-completed.v1")
class CodingCompleted(EpisodeEvent, CodedEpisode):
    completed_at: UtcDatetime


class RecodeReason(StrEnum):
    CODING_DENIAL = "coding-denial"
    EDIT_FAILURE = "edit-failure"
    AUDIT = "audit"


@event("rcm.coding.coding-corrected.v1")
class CodingCorrected(EpisodeEvent, CodedEpisode):
    """Replaces the episode's earlier coding, e.g. after a coding denial."""

    reason: RecodeReason
    corrected_at: UtcDatetime


# Coders' commands, applied by the replica that owns the episode's case.


@event("rcm.coding.case-assignment-requested.v1")
class CaseAssignmentRequested(EpisodeRequest):
    """A coder takes the episode's coding case (`requested_by` is the coder)."""


class CodedLine(Contract):
    # Only types and sizes: the coding rules are checked by the coding service, which
    # reports every problem at once instead of stopping at the first.
    procedure_code: str = Field(max_length=40)
    modifiers: list[str] = Field(default_factory=list, max_length=20)
    units: int = 1
    diagnosis_pointers: list[int] = Field(max_length=20)


@event("rcm.coding.codes-submission-requested.v1")
class CodesSubmissionRequested(EpisodeRequest):
    """A coder submits the codes of the episode's case (`requested_by` is the coder),
    as typed: validated and normalized by the coding service."""

    diagnoses: list[str] = Field(max_length=100)
    lines: list[CodedLine] = Field(max_length=200)


# Edits: NCCI PTP pairs, MUEs and the scrubber's own rules (rcm_edits packs).


class EditHit(Contract):
    """One edit a set of codes breaks. Codes and rule names only: no patient values."""

    rule: str = Field(
        max_length=40, description="ptp, mue, or a scrubber rule, e.g. em-modifier-25."
    )
    severity: Literal["error", "warning"] = Field(
        description="error: coding refuses the codes, claims holds the claim; warning: shown."
    )
    codes: list[str] = Field(
        max_length=4, description="The procedure codes involved (PTP: column 1, column 2)."
    )
    line_numbers: list[int] = Field(
        max_length=50, description="The lines it is about (1-based); the line to change first."
    )
    allowed_modifiers: list[str] = Field(
        default_factory=list,
        max_length=40,
        description="Modifiers that satisfy the edit when documented; empty: none does.",
    )
    message: str = Field(max_length=300)


@event("rcm.coding.edit-hit.v1")
class CodingEditHit(EpisodeEvent):
    """Codes a coder submitted broke edits of the pack in force on the date of service:
    refused (an error among them) or sent on with warnings."""

    coding_case_id: Id
    coder_id: Id
    edit_pack_version: str = Field(max_length=64)
    action: Literal["refused", "warned"]
    hits: list[EditHit] = Field(min_length=1, max_length=200)
    found_at: UtcDatetime


# Worklists: holds with a physician query, lead reassignment, coder profiles, audit review.
# Ids, categories and who only: the query's words and the physician's answer stay in the
# coding service's store (they may name the patient's condition in the physician's terms).


class QueryReason(StrEnum):
    DOCUMENTATION_INCOMPLETE = "documentation-incomplete"
    DIAGNOSIS_UNCLEAR = "diagnosis-unclear"
    PROCEDURE_UNCLEAR = "procedure-unclear"
    LATERALITY = "laterality"
    OTHER = "other"


@event("rcm.coding.query-requested.v1")
class CodingQueryRequested(EpisodeRequest):
    """The coder holding the case puts it on hold with a query to the physician; the
    query's words were stored by the coding service under `query_id`, not sent here."""

    query_id: Id
    reason: QueryReason


@event("rcm.coding.query-answer-requested.v1")
class CodingQueryAnswerRequested(EpisodeRequest):
    """A coder or coding lead records the physician's answer (stored under `query_id`)."""

    query_id: Id


@event("rcm.coding.query-raised.v1")
class CodingQueryRaised(EpisodeEvent):
    coding_case_id: Id
    query_id: Id
    reason: QueryReason
    coder_id: Id = Field(description="Who raised it; the case returns to them when answered.")
    raised_at: UtcDatetime


@event("rcm.coding.query-answered.v1")
class CodingQueryAnswered(EpisodeEvent):
    coding_case_id: Id
    query_id: Id
    reason: QueryReason
    answered_by: Id
    coder_id: Id = Field(description="The coder the case went back to.")
    answered_at: UtcDatetime


@event("rcm.coding.case-reassignment-requested.v1")
class CaseReassignmentRequested(EpisodeRequest):
    """A coding lead gives the case to another coder (`requested_by` is the lead)."""

    coder_id: Id


@event("rcm.coding.case-reassigned.v1")
class CodingCaseReassigned(EpisodeEvent):
    coding_case_id: Id
    from_coder_id: Id | None = None
    to_coder_id: Id
    reassigned_by: Id
    reassigned_at: UtcDatetime


@event("rcm.coding.coder-profile-requested.v1")
class CoderProfileRequested(Request):
    """A coding lead sets which specialties a coder works; keyed by the coder."""

    coder_id: Id
    specialties: list[str] = Field(max_length=20)

    @property
    def key(self) -> str:
        return self.coder_id


@event("rcm.coding.review-requested.v1")
class CodingReviewRequested(EpisodeRequest):
    """A coding lead's audit review of a sampled case: agreed, or the codes it should
    have had (which send the case back to its coder for a recode)."""

    agreed: bool
    diagnoses: list[str] = Field(default_factory=list, max_length=100)
    lines: list[CodedLine] = Field(default_factory=list, max_length=200)


@event("rcm.coding.case-reviewed.v1")
class CodingCaseReviewed(EpisodeEvent):
    coding_case_id: Id
    coder_id: Id = Field(description="The coder whose coding was reviewed.")
    reviewed_by: Id
    agreed: bool
    reviewed_at: UtcDatetime
