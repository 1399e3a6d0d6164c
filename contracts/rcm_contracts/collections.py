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


@event("rcm.collections.statement-issued.v1")
class StatementIssued(EpisodeEvent):
    statement_id: Id
    guarantor_id: Id
    sequence: int = Field(ge=1, description="1 for the first statement of the episode.")
    amount_due_cents: NonNegativeCents
    due_date: date
    issued_at: UtcDatetime


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
