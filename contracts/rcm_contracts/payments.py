"""Events of the payments service.

`payment-posted` is the public contract for downstream systems (GL/ERP, warehouse,
patient portal): ids and money only, never names or diagnoses.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .base import Cents, Contract, EpisodeEvent, Event, Id, NonNegativeCents, UtcDatetime, event
from .registration import CoverageRank


class AdjustmentGroup(StrEnum):
    """CAS01 claim adjustment group code."""

    CONTRACTUAL = "CO"
    PATIENT_RESPONSIBILITY = "PR"
    OTHER = "OA"
    PAYER_INITIATED = "PI"


class Adjustment(Contract):
    group: AdjustmentGroup
    reason_code: str = Field(min_length=1, max_length=5, description="CARC, e.g. 45, 1, 2, 3.")
    amount_cents: Cents = Field(description="Negative on reversals.")
    line_id: Id | None = Field(default=None, description="None for claim-level adjustments.")


class PatientResponsibility(Contract):
    deductible_cents: Cents = 0
    coinsurance_cents: Cents = 0
    copay_cents: Cents = 0
    other_cents: Cents = 0


class PostedClaimStatus(StrEnum):
    PAID = "paid"
    DENIED = "denied"
    REVERSED = "reversed"


@event("rcm.payments.payment-posted.v1")
class PaymentPosted(EpisodeEvent):
    """A payer's adjudication of one claim, posted from an 835.

    charge = paid + sum(adjustments), to the cent; the patient-responsibility
    adjustments (group PR) are also summarised in `patient_responsibility`.
    """

    posting_id: Id = Field(description="Unique per posted 835 claim (CLP); idempotency key.")
    claim_id: Id
    payer_id: Id
    rank: CoverageRank
    remittance_id: Id
    payment_trace_number: str = Field(description="TRN02: check or EFT trace number.")
    payer_claim_control_number: str | None = Field(
        default=None, description="CLP07: the payer's claim number (REF*F8 of a correction)."
    )
    status: PostedClaimStatus
    charge_cents: Cents
    paid_cents: Cents
    allowed_cents: Cents | None = None
    adjustments: list[Adjustment]
    patient_responsibility: PatientResponsibility
    posted_at: UtcDatetime


@event("rcm.payments.remittance-processed.v1")
class RemittanceProcessed(Event):
    """An 835 was received and every claim in it posted or sent to unpostables.

    For cash reconciliation (the deposit, incl. provider-level PLB adjustments that
    belong to no episode). Keyed by remittance id: a remittance spans many episodes.
    """

    remittance_id: Id
    payer_id: Id
    payment_trace_number: str
    payment_cents: Cents
    claims_posted: int = Field(ge=0)
    claims_unpostable: int = Field(ge=0)
    provider_adjustments_cents: Cents = Field(description="Sum of PLB amounts.")
    processed_at: UtcDatetime

    @property
    def key(self) -> str:
        return self.remittance_id


class PaymentMethod(StrEnum):
    CARD = "card"
    CASH = "cash"
    CHECK = "check"
    PORTAL = "portal"


@event("rcm.payments.patient-payment-received.v1")
class PatientPaymentReceived(EpisodeEvent):
    payment_id: Id
    amount_cents: NonNegativeCents
    method: PaymentMethod
    received_at: UtcDatetime


class RefundRecipient(StrEnum):
    PATIENT = "patient"
    PAYER = "payer"


@event("rcm.payments.refund-issued.v1")
class RefundIssued(EpisodeEvent):
    refund_id: Id
    amount_cents: NonNegativeCents
    recipient: RefundRecipient
    reason: str = Field(max_length=200)
    issued_at: UtcDatetime
