"""Events of the payments service.

`payment-posted` is the public contract for downstream systems (GL/ERP, warehouse,
patient portal): ids and money only, never names or diagnoses.
"""

from __future__ import annotations

import hashlib
from datetime import date
from enum import StrEnum

from pydantic import Field

from .base import (
    Cents,
    Contract,
    EpisodeEvent,
    Event,
    Id,
    NonNegativeCents,
    Request,
    UtcDatetime,
    event,
)
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


class PostedLine(Contract):
    """One adjudicated service line (SVC loop) of a posted claim."""

    line_id: Id | None = Field(default=None, description="REF*6R: the claim's line id.")
    procedure_code: str = Field(min_length=1, max_length=48, description="SVC01-2 as paid.")
    modifiers: list[str] = Field(default_factory=list, max_length=4)
    billed_procedure_code: str | None = Field(
        default=None, max_length=48, description="SVC06-2: as billed, when the payer recoded."
    )
    units_paid: int | None = Field(default=None, ge=0)
    charge_cents: Cents
    paid_cents: Cents
    allowed_cents: Cents | None = None
    adjustments: list[Adjustment] = Field(default_factory=list)
    remark_codes: list[str] = Field(default_factory=list, description="LQ*HE RARCs.")


class PostedClaimStatus(StrEnum):
    PAID = "paid"
    DENIED = "denied"
    REVERSED = "reversed"


@event("rcm.payments.payment-posted.v1")
class PaymentPosted(EpisodeEvent):
    """A payer's adjudication of one claim, posted from an 835.

    charge = paid + sum(adjustments), to the cent; the patient-responsibility
    adjustments (group PR) are also summarised in `patient_responsibility`.
    `payer_id` and `rank` are those of the payer whose adjudication this is: a crossover
    secondary's own 835 names our primary claim (`claim_id`) and is posted with the
    secondary's payer id and rank. `charge_cents` (CLP03) below `submitted_charge_cents`
    is a split or partial payment: the payer has not answered for the rest yet.
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
    lines: list[PostedLine] = Field(default_factory=list)
    remark_codes: list[str] = Field(default_factory=list, description="MOA/MIA RARCs.")
    crossover_payer_id: Id | None = Field(
        default=None, description="NM1*TT: the payer the claim was forwarded to."
    )
    crossover_payer_name: str | None = Field(default=None, max_length=60)
    submitted_charge_cents: Cents | None = Field(
        default=None, description="The claim's total charge as submitted."
    )


class ProviderAdjustmentKind(StrEnum):
    """What a PLB entry does to an episode's money. A claim's payment is set by its CLP
    loops (reversals and corrections included); a PLB only moves cash, except a
    recoupment of an overpayment that no CLP takes back."""

    RECOUPMENT = "recoupment"  # WO, 72: the payer takes back part of a claim's payment
    INTEREST = "interest"  # L6: money the payer adds
    # Moves no episode's money: FB (a balance carried between remittances), a WO or 72
    # collecting the cash of a reversal in the same 835, and every other reason.
    OTHER = "other"


@event("rcm.payments.provider-adjustment-posted.v1")
class ProviderAdjustmentPosted(Event):
    """One PLB adjustment of an 835, kept whole. Keyed by the episode of the claim it is
    tied to (a recoupment of that claim's payment), else by the remittance."""

    adjustment_id: Id = Field(description="<remittance id>-P<1-based PLB entry index>.")
    remittance_id: Id
    payer_id: Id
    provider_id: str = Field(min_length=1, max_length=50, description="PLB01.")
    fiscal_period_date: date = Field(description="PLB02.")
    reason_code: str = Field(min_length=2, max_length=2, description="PLB03-1, e.g. WO, L6.")
    reference: str | None = Field(default=None, max_length=50, description="PLB03-2.")
    amount_cents: Cents = Field(description="Positive: taken back; negative: added.")
    kind: ProviderAdjustmentKind
    episode_id: Id | None = None
    claim_id: Id | None = Field(default=None, description="The claim a recoupment recovers.")
    posted_at: UtcDatetime

    @property
    def key(self) -> str:
        return self.episode_id or self.remittance_id


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


# --- cash reconciliation: internal to payments ------------------------------------------
# A deposit and the 835 payments it carries meet in one aggregate keyed by the payment's
# trace number (TRN02), so every message that changes it is keyed by that trace.


@event("rcm.payments.deposit-record-requested.v1")
class DepositRecordRequested(Request):
    """A bank deposit to reconcile with the 835 whose trace number it carries (a biller's
    entry or one line of a bank file); idempotent on deposit_id."""

    deposit_id: Id
    trace_number: str = Field(min_length=1, max_length=50, description="TRN02 as deposited.")
    amount_cents: int = Field(strict=True, ge=1, description="Money in integer US cents.")
    deposit_date: date
    payer_id: Id | None = Field(default=None, description="Payer or originator, when known.")
    source: str = Field(min_length=1, max_length=200, description="api, or the bank file.")

    @property
    def key(self) -> str:
        return trace_key(self.trace_number)


@event("rcm.payments.remittance-deposit-expected.v1")
class RemittanceDepositExpected(Event):
    """An 835 payment (remittance-processed) that a deposit should match, re-keyed by its
    trace number for the reconciliation that owns it."""

    remittance_id: Id
    payer_id: Id
    trace_number: str = Field(min_length=1, max_length=50)
    payment_cents: Cents
    processed_at: UtcDatetime

    @property
    def key(self) -> str:
        return trace_key(self.trace_number)


def trace_key(trace_number: str) -> str:
    """The reconciliation's id: the trace number without case or blanks, made an Id (a
    digest when it holds other characters or is too long)."""
    normal = "".join(trace_number.split()).upper()
    if normal and len(normal) <= 60 and all(c.isalnum() or c in "._:-" for c in normal):
        return f"T-{normal}" if normal.isascii() else _digest_key(normal)
    return _digest_key(normal)


def _digest_key(normal: str) -> str:
    return "TH-" + hashlib.sha256(normal.encode()).hexdigest()[:40]


# --- internal to payments: consumed by payments only ----------------------------------------
# An 835 transaction as the mailbox reader parsed it, sent to the remittance's owner; and
# the choreography that posts an 835 claim whose claim-submitted came later.


class RemittedAdjustment(Contract):
    """One CAS adjustment of an 835 claim or service line, as remitted."""

    group: str = Field(min_length=1, max_length=2, description="CAS01, e.g. CO, PR, OA, PI.")
    reason_code: str = Field(min_length=1, max_length=5, description="CARC.")
    amount_cents: Cents
    line_id: str | None = Field(default=None, description="REF*6R; None at claim level.")


class RemittedLine(Contract):
    """One SVC loop of an 835 claim, as posting needs it."""

    line_id: str | None = Field(default=None, max_length=64, description="REF*6R.")
    procedure_code: str = Field(min_length=1, max_length=48, description="SVC01-2.")
    modifiers: list[str] = Field(default_factory=list, max_length=4)
    billed_procedure_code: str | None = Field(default=None, max_length=48, description="SVC06-2.")
    units_paid: int | None = None
    charge_cents: Cents
    paid_cents: Cents
    allowed_cents: Cents | None = None
    adjustments: list[RemittedAdjustment] = Field(default_factory=list)
    remark_codes: list[str] = Field(default_factory=list, description="LQ*HE.")


class RemittedProviderAdjustment(Contract):
    """One PLB adjustment (a reason/reference/amount triple), as remitted."""

    provider_id: str = Field(min_length=1, max_length=50, description="PLB01.")
    fiscal_period_date: date = Field(description="PLB02.")
    reason_code: str = Field(min_length=2, max_length=2, description="PLB03-1.")
    reference: str | None = Field(default=None, max_length=50, description="PLB03-2.")
    amount_cents: Cents


class RemittedClaim(Contract):
    """One CLP loop of an 835, as posting needs it: ids and money, never names."""

    index: int = Field(ge=1, description="The CLP's 1-based position in its transaction.")
    claim_id: str = Field(min_length=1, max_length=64, description="CLP01, as remitted.")
    payer_claim_control_number: str | None = None
    status_code: str = Field(min_length=1, max_length=2, description="CLP02.")
    charge_cents: Cents
    paid_cents: Cents
    allowed_cents: Cents | None = None
    adjustments: list[RemittedAdjustment]
    lines: list[RemittedLine] = Field(default_factory=list)
    remark_codes: list[str] = Field(default_factory=list, description="MOA/MIA remarks.")
    crossover_payer_id: str | None = Field(default=None, max_length=80, description="NM1*TT09.")
    crossover_payer_name: str | None = Field(default=None, max_length=60, description="NM1*TT03.")


class RemittanceTransaction(Contract):
    """One 835 transaction set (ST/SE), read and balance-checked."""

    remittance_id: Id
    document_id: str = Field(min_length=1, max_length=200)
    transaction_control_number: str
    payer_id: Id
    trace_number: str
    payment_cents: Cents
    provider_adjustments_cents: Cents
    claims: list[RemittedClaim]
    imbalances: list[str] = Field(description="Why it does not balance; empty when it does.")
    remitting_payer_id: str | None = Field(
        default=None, max_length=80, description="N104 (XV): the payer's platform id, if named."
    )
    payer_company_id: str | None = Field(
        default=None, max_length=80, description="TRN03 (else ISA06): half of the identity."
    )
    interchange_control_number: int | None = Field(default=None, description="ISA13.")
    content_digest: str | None = Field(
        default=None, max_length=64, description="What the payer sent, envelopes aside."
    )
    provider_adjustments: list[RemittedProviderAdjustment] = Field(default_factory=list)


@event("rcm.payments.remittance-posting-requested.v1")
class RemittancePostingRequested(Request):
    """The mailbox reader asks the remittance's owner to post one 835 transaction."""

    transaction: RemittanceTransaction

    @property
    def key(self) -> str:
        return self.transaction.remittance_id


@event("rcm.payments.unpostable-retry-requested.v1")
class UnpostableRetryRequested(Request):
    """A biller asks to post an unpostable now; keyed by what holds it: the remittance,
    or the unreadable mailbox document."""

    unpostable_id: Id
    holder_id: Id = Field(description="The remittance id, or the unreadable document's id.")

    @property
    def key(self) -> str:
        return self.holder_id


@event("rcm.payments.patient-payment-requested.v1")
class PatientPaymentRequested(Request):
    """A patient payment to record; keyed by payment_id, idempotent on it."""

    payment_id: Id
    episode_id: Id
    amount_cents: NonNegativeCents
    method: PaymentMethod

    @property
    def key(self) -> str:
        return self.payment_id


@event("rcm.payments.claim-awaited.v1")
class ClaimAwaited(EpisodeEvent):
    """A remittance holds an 835 claim of this episode whose claim-submitted is unknown."""

    claim_id: Id
    remittance_id: Id


@event("rcm.payments.awaited-claim-submitted.v1")
class AwaitedClaimSubmitted(Event):
    """The claim a remittance waits for is submitted: what posting needs of it."""

    remittance_id: Id
    claim_id: Id
    episode_id: Id
    payer_id: Id
    rank: CoverageRank
    total_charge_cents: Cents | None = None

    @property
    def key(self) -> str:
        return self.remittance_id
