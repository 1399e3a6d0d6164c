"""Events of the claims service: an X12 837P claim's life from submission to paid."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from .base import (
    Contract,
    EpisodeEvent,
    EpisodeRequest,
    Id,
    NonNegativeCents,
    UtcDatetime,
    event,
)
from .coding import EditHit
from .registration import CoverageRank


class ClaimFrequency(StrEnum):
    """CLM05-3: original, replacement (corrected) or void."""

    ORIGINAL = "1"
    REPLACEMENT = "7"
    VOID = "8"


class SubmittedLine(Contract):
    line_id: Id
    procedure_code: str
    modifiers: list[str] = Field(default_factory=list, max_length=4)
    units: int = Field(ge=1)
    charge_cents: NonNegativeCents


MAX_LINE_CHARGE_CENTS = 100_000_000  # $1,000,000.00 for one service line


class LineChange(Contract):
    """What a biller may change on one line of a claim: at least one of these."""

    line_id: Id
    modifiers: list[Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2}$")]] | None = Field(
        default=None, max_length=4, description="The line's modifiers, all of them."
    )
    units: int | None = Field(default=None, ge=1, le=99)
    charge_cents: NonNegativeCents | None = Field(default=None, le=MAX_LINE_CHARGE_CENTS)

    @model_validator(mode="after")
    def _changes_something(self) -> LineChange:
        if self.modifiers is None and self.units is None and self.charge_cents is None:
            raise ValueError("a line change changes modifiers, units or charge_cents")
        return self


class ClaimChanges(Contract):
    """What a biller changes in a corrected claim; the rest comes from the coding."""

    lines: list[LineChange] = Field(default_factory=list, max_length=50)
    prior_authorization: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9-]{1,50}$", description="REF*G1."
    )

    @model_validator(mode="after")
    def _one_change_per_line(self) -> ClaimChanges:
        ids = [line.line_id for line in self.lines]
        if len(set(ids)) != len(ids):
            raise ValueError("a line is changed at most once")
        if not self.lines and self.prior_authorization is None:
            raise ValueError("changes name at least one line or the prior authorization")
        return self


@event("rcm.claims.claim-submitted.v1")
class ClaimSubmitted(EpisodeEvent):
    claim_id: Id = Field(description="Patient control number (CLM01); 835 CLP01 matches it.")
    payer_id: Id
    rank: CoverageRank
    frequency: ClaimFrequency
    total_charge_cents: NonNegativeCents
    lines: list[SubmittedLine] = Field(min_length=1, max_length=50)
    interchange_control_number: str = Field(pattern=r"^\d{9}$")
    submitted_at: UtcDatetime
    edit_pack_version: str | None = Field(
        default=None, max_length=64, description="The edit pack the claim was scrubbed with."
    )


@event("rcm.claims.claim-edit-failed.v1")
class ClaimEditFailed(EpisodeEvent):
    """The scrub before sending found hard edits: the claim is held in the billers' work
    queue (a rejection at stage scrub) instead of being sent."""

    claim_id: Id
    payer_id: Id
    edit_pack_version: str = Field(max_length=64)
    hits: list[EditHit] = Field(min_length=1, max_length=200)
    failed_at: UtcDatetime


class AckStage(StrEnum):
    CLEARINGHOUSE = "999"
    PAYER = "277CA"


@event("rcm.claims.claim-accepted.v1")
class ClaimAccepted(EpisodeEvent):
    claim_id: Id
    stage: AckStage
    payer_claim_control_number: str | None = None
    accepted_at: UtcDatetime


@event("rcm.claims.claim-rejected.v1")
class ClaimRejected(EpisodeEvent):
    """Front-end rejection: the claim never reached adjudication; billers correct it."""

    claim_id: Id
    stage: AckStage
    status_codes: list[str] = Field(min_length=1, description="999 IK3/IK4 or 277CA STC codes.")
    message: str = Field(max_length=300)
    rejected_at: UtcDatetime


class DenialCategory(StrEnum):
    CODING = "coding"
    ELIGIBILITY = "eligibility"
    AUTHORIZATION = "authorization"
    DOCUMENTATION = "documentation"
    DUPLICATE = "duplicate"
    OTHER = "other"


class ReasonCategory(StrEnum):
    """The CARC list's category of a denial (rcm_codes), finer than DenialCategory, whose
    v1 values stay as they were: the new kinds are `other` there."""

    CODING = "coding"
    ELIGIBILITY = "eligibility"
    AUTHORIZATION = "authorization"
    DOCUMENTATION = "documentation"
    DUPLICATE = "duplicate"
    TIMELY_FILING = "timely-filing"
    CONTRACTUAL = "contractual"
    PATIENT_RESPONSIBILITY = "patient-responsibility"
    COORDINATION_OF_BENEFITS = "coordination-of-benefits"
    OTHER = "other"

    @property
    def v1(self) -> DenialCategory:
        try:
            return DenialCategory(self.value)
        except ValueError:
            return DenialCategory.OTHER


class DeniedReason(Contract):
    group_code: str = Field(pattern=r"^(CO|PR|OA|PI)$")
    reason_code: str = Field(min_length=1, max_length=5, description="CARC.")
    amount_cents: int
    description: str | None = Field(
        default=None, max_length=300, description="The CARC's description from the code list."
    )
    reason_category: ReasonCategory | None = Field(
        default=None, description="The CARC's category in the code list."
    )


class Remark(Contract):
    """A remittance advice remark code (RARC) and what the code list says of it."""

    code: str = Field(min_length=1, max_length=10)
    description: str | None = Field(default=None, max_length=300)


@event("rcm.claims.claim-denied.v1")
class ClaimDenied(EpisodeEvent):
    claim_id: Id
    payer_id: Id
    category: DenialCategory
    reasons: list[DeniedReason] = Field(min_length=1)
    denied_at: UtcDatetime
    reason_category: ReasonCategory | None = Field(
        default=None, description="The routing category from the CARC list (finer)."
    )
    remarks: list[Remark] = Field(default_factory=list, description="The 835's RARCs.")


@event("rcm.claims.line-denied.v1")
class LineDenied(EpisodeEvent):
    """A payer paid the claim but denied one of its lines (e.g. CO-97 on one procedure)."""

    claim_id: Id
    payer_id: Id
    line_id: Id | None = None
    procedure_code: str = Field(min_length=1, max_length=48)
    category: DenialCategory
    reasons: list[DeniedReason] = Field(min_length=1)
    posting_id: Id
    denied_at: UtcDatetime


@event("rcm.claims.claim-resubmitted.v1")
class ClaimResubmitted(EpisodeEvent):
    """A corrected (frequency 7) or voided (8) claim replaces an earlier one."""

    claim_id: Id
    replaces_claim_id: Id
    frequency: ClaimFrequency
    payer_claim_control_number: str | None = None
    reason: str = Field(max_length=300)
    resubmitted_at: UtcDatetime
    changed: list[str] = Field(
        default_factory=list,
        description="What a biller changed (field names, never values), e.g. lines[2].units.",
    )
    total_charge_cents: NonNegativeCents | None = Field(
        default=None, description="The new claim's total charge (CLM02)."
    )


class AppealDocument(Contract):
    """A document sent with an appeal: kept in the claims service's document archive,
    named by its id and checked by its digest; never its content."""

    document_id: Id
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_type: str = Field(max_length=100)
    size_bytes: int = Field(ge=1)
    title: str | None = Field(default=None, max_length=120)


@event("rcm.claims.claim-appealed.v1")
class ClaimAppealed(EpisodeEvent):
    claim_id: Id
    appeal_id: Id
    reason: str = Field(max_length=300)
    appealed_at: UtcDatetime
    payer_id: Id | None = None
    line_id: Id | None = Field(default=None, description="The denied line appealed, if one.")
    documents: list[AppealDocument] = Field(default_factory=list, max_length=10)
    authorization_number: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9-]{1,50}$", description="A prior authorization."
    )
    timely_filing_proof: bool = Field(
        default=False, description="A document proves the claim was filed in time."
    )
    deadline: date | None = Field(default=None, description="The appeal's filing deadline.")


class AppealOutcome(StrEnum):
    OVERTURNED = "overturned"  # the payer reprocesses the claim: its 835 follows
    UPHELD = "upheld"  # the denial stands: the claim is the biller's again


@event("rcm.claims.appeal-decided.v1")
class AppealDecided(EpisodeEvent):
    """The payer's answer to an appeal."""

    claim_id: Id
    appeal_id: Id
    payer_id: Id
    outcome: AppealOutcome
    reason: str = Field(max_length=300, description="The payer's decision letter, in short.")
    decided_at: UtcDatetime


@event("rcm.claims.appeal-overdue.v1")
class AppealOverdue(EpisodeEvent):
    """The payer let its answer deadline pass without deciding an appeal: the claim is
    in the billers' work queue again (stage appeal-overdue), to resend or follow up.
    Once per sending of the appeal."""

    claim_id: Id
    appeal_id: Id
    payer_id: Id
    line_id: Id | None = Field(default=None, description="The denied line appealed, if one.")
    sent_at: UtcDatetime = Field(description="When the appeal was last sent.")
    answer_deadline: date = Field(description="The day by which the payer should have answered.")
    raised_at: UtcDatetime


@event("rcm.claims.appeal-resent.v1")
class AppealResent(EpisodeEvent):
    """A biller sent an unanswered appeal again: the same appeal id and documents."""

    claim_id: Id
    appeal_id: Id
    payer_id: Id
    line_id: Id | None = None
    sends: int = Field(ge=2, description="How often the appeal has been sent, this one included.")
    documents: list[AppealDocument] = Field(default_factory=list, max_length=10)
    answer_deadline: date = Field(description="The payer's answer is due by then.")
    resent_at: UtcDatetime


class DeadlineKind(StrEnum):
    TIMELY_FILING = "timely-filing"  # days from the date of service to the first claim
    APPEAL = "appeal"  # days from the denial to the appeal


@event("rcm.claims.deadline-approaching.v1")
class DeadlineApproaching(EpisodeEvent):
    """A claim's filing or appeal deadline is near and its work is not done: once per
    claim and kind."""

    claim_id: Id
    payer_id: Id
    kind: DeadlineKind
    deadline: date
    days_left: int
    raised_at: UtcDatetime


@event("rcm.claims.claim-paid.v1")
class ClaimPaid(EpisodeEvent):
    """The payer adjudicated the claim with a payment; the claim is done with that payer."""

    claim_id: Id
    payer_id: Id
    rank: CoverageRank
    paid_cents: int
    patient_responsibility_cents: NonNegativeCents
    paid_at: UtcDatetime


class ClaimOutcome(StrEnum):
    PAID = "paid"
    DENIAL_ACCEPTED = "denial-accepted"  # billers decided not to pursue the denial
    REPLACED = "replaced"  # a corrected claim took its place
    VOIDED = "voided"


@event("rcm.claims.claim-closed.v1")
class ClaimClosed(EpisodeEvent):
    """A claim needs no more work; says how much of the episode's billing is still open.

    Events of different topics may arrive in any order, so the episode-level fields let a
    consumer (collections) know that payer billing is over: the closing with the highest
    `sequence` says how many claims are still open, and `posting_ids` lists every
    payment posting the claims service had applied to the episode by then.
    """

    claim_id: Id
    payer_id: Id
    outcome: ClaimOutcome
    open_claims: int = Field(ge=0, description="The episode's claims still open after this.")
    sequence: int = Field(ge=1, description="Orders the episode's closings; highest is newest.")
    posting_ids: list[Id] = Field(description="Postings applied to the episode so far.")
    closed_at: UtcDatetime


# --- requests: applied by the replica that owns the episode ------------------------------


@event("rcm.claims.claim-correction-requested.v1")
class ClaimCorrectionRequested(EpisodeRequest):
    """A biller corrects a rejected or denied claim (`requested_by` is the biller): it goes
    again as a new claim, and the old one closes as replaced."""

    claim_id: Id
    note: str = Field(min_length=1, max_length=300)
    changes: ClaimChanges | None = Field(
        default=None, description="A biller's changes to the claim's data (a denied claim)."
    )


@event("rcm.claims.denial-acceptance-requested.v1")
class DenialAcceptanceRequested(EpisodeRequest):
    """A biller accepts an open denial (`requested_by` is the biller): the claim closes."""

    claim_id: Id
    note: str = Field(min_length=1, max_length=300)


class ClaimVerdict(Contract):
    """A clearinghouse (999) or payer (277CA) verdict on one claim."""

    claim_id: Id
    accepted: bool
    status_codes: list[str] = Field(default_factory=list)
    message: str = Field(default="", max_length=300)
    payer_claim_control_number: str | None = Field(default=None, max_length=50)
    interchange_control_number: int | None = Field(
        default=None, ge=1, description="The interchange a 999 answers (None for a 277CA)."
    )


@event("rcm.claims.acknowledgment-requested.v1")
class AcknowledgmentRequested(EpisodeRequest):
    """The mailbox reader hands the owner of the episode what one 999 or 277CA document
    says about the episode's claims (`requested_by` is the reader)."""

    document_id: str = Field(min_length=1, max_length=200)
    stage: AckStage
    verdicts: list[ClaimVerdict] = Field(min_length=1)


@event("rcm.claims.claim-void-requested.v1")
class ClaimVoidRequested(EpisodeRequest):
    """A biller voids a claim the payer has (`requested_by` is the biller): a frequency-8
    claim names it (REF*F8) and the payer takes back what it paid."""

    claim_id: Id
    reason: str = Field(min_length=1, max_length=300)


@event("rcm.claims.appeal-requested.v1")
class AppealRequested(EpisodeRequest):
    """A biller appeals a denied claim or line (`requested_by` is the biller)."""

    claim_id: Id
    appeal_id: Id
    reason: str = Field(min_length=1, max_length=300)
    line_id: Id | None = None
    documents: list[AppealDocument] = Field(default_factory=list, max_length=10)
    authorization_number: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,50}$")
    timely_filing_proof: bool = False


@event("rcm.claims.appeal-decision-requested.v1")
class AppealDecisionRequested(EpisodeRequest):
    """The payer's answer to an appeal, for the owner to record (`requested_by` is who
    sent the appeal)."""

    claim_id: Id
    appeal_id: Id
    outcome: AppealOutcome
    reason: str = Field(min_length=1, max_length=300)


@event("rcm.claims.appeal-resend-requested.v1")
class AppealResendRequested(EpisodeRequest):
    """A biller sends an appeal the payer has not answered again (`requested_by` is the
    biller)."""

    claim_id: Id
    appeal_id: Id


@event("rcm.claims.appeal-overdue-requested.v1")
class AppealOverdueRequested(EpisodeRequest):
    """The deadline watch found an appeal past the payer's answer deadline (`requested_by`
    is the watch): the owner puts it in the billers' queue once per sending."""

    claim_id: Id
    appeal_id: Id


@event("rcm.claims.deadline-alert-requested.v1")
class DeadlineAlertRequested(EpisodeRequest):
    """The deadline watch found a deadline near on one of the episode's claims
    (`requested_by` is the watch): the owner raises deadline-approaching once."""

    claim_id: Id
    kind: DeadlineKind


@event("rcm.claims.claim-close-requested.v1")
class ClaimCloseRequested(EpisodeRequest):
    """A biller closes a claim the payer will not pay further (a partial payment, a
    denial, a crossover or a void that is never answered)."""

    claim_id: Id
    note: str = Field(min_length=1, max_length=300)


# --- billers' worklists: follow-ups and assignment --------------------------------------


@event("rcm.claims.follow-up-requested.v1")
class FollowUpRequested(EpisodeRequest):
    """A biller records a follow-up on a claim still with its payer. The note's text stays
    in the claims store (it may quote the patient or the payer): the event names it."""

    claim_id: Id
    note_id: Id = Field(description="The note kept in the claims store.")
    next_action_on: date | None = Field(default=None, description="When to act next.")


@event("rcm.claims.work-assignment-requested.v1")
class WorkAssignmentRequested(EpisodeRequest):
    """A claim's open work item (rejection or denial) is assigned to a biller, or
    unassigned (`assigned_to` None)."""

    claim_id: Id
    assigned_to: Id | None = None
