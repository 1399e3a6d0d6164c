"""Events of the collections service: the episode's patient account, and the requests
people make of it."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import Field

from .base import (
    Cents,
    Contract,
    EpisodeEvent,
    EpisodeRequest,
    Id,
    NonNegativeCents,
    UtcDatetime,
    event,
)
from .payments import RefundRecipient


class DunningLevel(StrEnum):
    FIRST_STATEMENT = "first-statement"
    SECOND_NOTICE = "second-notice"
    FINAL_NOTICE = "final-notice"


@event("rcm.collections.statement-issued.v1")
class StatementIssued(EpisodeEvent):
    statement_id: Id
    guarantor_id: Id
    sequence: int = Field(ge=1, description="1 for the first statement of the episode.")
    amount_due_cents: NonNegativeCents
    due_date: date
    issued_at: UtcDatetime
    dunning_level: DunningLevel | None = Field(
        default=None, description="First statement, second notice or final notice."
    )


@event("rcm.collections.payment-plan-created.v1")
class PaymentPlanCreated(EpisodeEvent):
    plan_id: Id
    total_cents: NonNegativeCents
    installments: int = Field(ge=2, le=60)
    installment_cents: NonNegativeCents
    first_due_date: date
    created_at: UtcDatetime


class WriteOffReason(StrEnum):
    SMALL_BALANCE = "small-balance"
    CHARITY = "charity"
    BAD_DEBT = "bad-debt"
    ADMINISTRATIVE = "administrative"


@event("rcm.collections.balance-written-off.v1")
class BalanceWrittenOff(EpisodeEvent):
    write_off_id: Id
    amount_cents: NonNegativeCents
    reason: WriteOffReason
    written_off_at: UtcDatetime


class LedgerTotals(Contract):
    """charges = payer_paid + adjustments + patient_paid + written_off + balance."""

    charges_cents: Cents
    payer_paid_cents: Cents
    adjustments_cents: Cents
    patient_paid_cents: Cents
    written_off_cents: Cents
    balance_cents: Cents


@event("rcm.collections.episode-closed.v1")
class EpisodeClosed(EpisodeEvent):
    """The episode's balance is exactly zero; nothing more is owed by anyone."""

    totals: LedgerTotals
    closed_at: UtcDatetime


@event("rcm.collections.payment-plan-requested.v1")
class PaymentPlanRequested(EpisodeRequest):
    """Split what the open statement's episode owes into installments (once per episode)."""

    installments: int = Field(ge=2, le=60)


@event("rcm.collections.write-off-requested.v1")
class WriteOffRequested(EpisodeRequest):
    """Forgive part or all of the balance once billing is over; `requested_by` is the user."""

    amount_cents: int = Field(ge=1, description="1 up to the balance, in cents.")
    reason: WriteOffReason
    write_off_id: Id | None = Field(
        default=None, description="The same write-off sent twice counts once."
    )


@event("rcm.collections.refund-approved.v1")
class RefundApproved(EpisodeEvent):
    """A credit balance is to be paid back; payments issues it (refund-issued, same id)."""

    refund_id: Id
    amount_cents: int = Field(strict=True, ge=1, description="Money in integer US cents.")
    recipient: RefundRecipient
    reason: str = Field(min_length=1, max_length=200)
    approved_by: Id = Field(description="The signed-in user who approved it.")
    approved_at: UtcDatetime


@event("rcm.collections.refund-requested.v1")
class RefundRequested(EpisodeRequest):
    """A collector or biller approves paying back part or all of a credit balance
    (`requested_by` is the user); refused above the credit or while one is pending."""

    amount_cents: int = Field(strict=True, ge=1, description="1 up to the credit, in cents.")
    recipient: RefundRecipient
    reason: str = Field(min_length=1, max_length=200)


# --- estimates, dunning, plans tracked, agency placement (issue 11) ----------------------


class EstimateKind(StrEnum):
    INSURED = "insured"  # from the verified benefits and the contracted fee schedule
    SELF_PAY = "self-pay"  # a good-faith estimate from the chargemaster's prices


class EstimatedProcedure(Contract):
    code: str = Field(pattern=r"^[A-Z0-9]{5}$", description="CPT or HCPCS code.")
    units: int = Field(strict=True, ge=1, le=99)


@event("rcm.collections.estimate-requested.v1")
class EstimateRequested(EpisodeRequest):
    """Estimate what the patient will owe for the scheduled services, and keep it on the
    account for point-of-service collection."""

    procedures: list[EstimatedProcedure] = Field(min_length=1, max_length=30)


@event("rcm.collections.patient-estimated.v1")
class PatientEstimated(EpisodeEvent):
    """An estimate (not a bill) recorded on the account; totals only."""

    estimate_id: Id
    kind: EstimateKind
    payer_id: Id | None = None
    charges_cents: NonNegativeCents = Field(description="At the chargemaster's prices.")
    allowed_cents: NonNegativeCents = Field(
        description="What the payer allows (self-pay: charges)."
    )
    patient_cents: NonNegativeCents = Field(description="What the patient is estimated to owe.")
    insurance_cents: NonNegativeCents
    estimated_at: UtcDatetime


@event("rcm.collections.dunning-requested.v1")
class DunningRequested(EpisodeRequest):
    """The dunning job asks the account's owner to do what is due on `as_of`: the next
    statement, a missed installment's default, an agency placement."""

    as_of: date


@event("rcm.collections.payment-plan-defaulted.v1")
class PaymentPlanDefaulted(EpisodeEvent):
    plan_id: Id
    installment: int = Field(ge=1, description="The installment missed.")
    due_date: date
    paid_cents: NonNegativeCents = Field(description="Paid toward the plan before it defaulted.")
    remaining_cents: NonNegativeCents
    defaulted_at: UtcDatetime


@event("rcm.collections.payment-plan-completed.v1")
class PaymentPlanCompleted(EpisodeEvent):
    plan_id: Id
    paid_cents: NonNegativeCents
    completed_at: UtcDatetime


@event("rcm.collections.agency-placement-requested.v1")
class AgencyPlacementRequested(EpisodeRequest):
    """A collector places the patient balance with a collection agency now."""

    agency_id: Id


@event("rcm.collections.collection-hold-requested.v1")
class CollectionHoldRequested(EpisodeRequest):
    """A collector holds (or releases) automatic agency placement of the account."""

    hold: bool
    reason: str = Field(default="", max_length=200)


@event("rcm.collections.agency-recall-requested.v1")
class AgencyRecallRequested(EpisodeRequest):
    """Take the account back from the agency; dunning does not resume by itself."""

    reason: str = Field(default="", max_length=200)


@event("rcm.collections.agency-return-requested.v1")
class AgencyReturnRequested(EpisodeRequest):
    """The agency returned the account as uncollectable: the balance goes to bad debt."""


@event("rcm.collections.account-placed-with-agency.v1")
class AccountPlacedWithAgency(EpisodeEvent):
    """Moves no money: the balance stays on the ledger while the agency works it."""

    placement_id: Id
    agency_id: Id
    balance_cents: NonNegativeCents
    automatic: bool = Field(description="True when the dunning job placed it, not a person.")
    placed_at: UtcDatetime


@event("rcm.collections.account-recalled-from-agency.v1")
class AccountRecalledFromAgency(EpisodeEvent):
    placement_id: Id
    agency_id: Id
    balance_cents: NonNegativeCents
    recalled_at: UtcDatetime


@event("rcm.collections.account-returned-by-agency.v1")
class AccountReturnedByAgency(EpisodeEvent):
    """Returned uncollectable; the write-off to bad debt is its own balance-written-off."""

    placement_id: Id
    agency_id: Id
    balance_cents: NonNegativeCents
    returned_at: UtcDatetime
