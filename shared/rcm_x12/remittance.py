"""835 remittance models and the money rules that every remittance must satisfy."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator, model_validator

from rcm_x12.common import (
    Account,
    Address,
    Adjustment,
    Code,
    CompanyId,
    ControlNumber,
    DfiId,
    FacilityCode,
    IdCode,
    Identifier,
    Name35,
    Name60,
    Npi,
    Procedure,
    RevenueCode,
    TaxId,
    X12Model,
    npi_check_digit_ok,
    unique_control_numbers,
)
from rcm_x12.contact import Contact
from rcm_x12.envelope import Envelope

ClaimStatus = Literal["1", "2", "3", "4", "19", "20", "21", "22", "23", "25"]
FilingIndicator = Literal[
    "12", "13", "14", "15", "16", "17", "AM", "CH", "DS", "HM", "LM", "MA", "MB", "MC", "OF",
    "TV", "VA", "WC", "ZZ",
]  # fmt: skip
ProviderAdjustmentReason = Literal[
    "50", "51", "72", "90", "AH", "AM", "AP", "B2", "B3", "BD", "BN", "C5", "CR", "CS", "CT",
    "CV", "CW", "DM", "E3", "FB", "FC", "GO", "HM", "IP", "IR", "IS", "J1", "L3", "L6", "LE",
    "LS", "OA", "OB", "PI", "PL", "RA", "RE", "SL", "TL", "WO", "WU",
]  # fmt: skip
RemarkCode = Code
PartyIdQualifier = Literal[
    "34", "HN", "II", "MI", "MR", "FI", "XX", "BD", "BS", "MC", "PC", "SL", "UP"
]  # fmt: skip


class RemittanceParty(X12Model):
    """NM1 in loop 2100: patient (QC), insured (IL) or rendering provider (82)."""

    entity_type: Literal["1", "2"] = "1"
    last_name: Name60 | None = None
    first_name: Name35 | None = None
    middle_name: Name35 | None = None
    id_qualifier: PartyIdQualifier | None = None
    identifier: IdCode | None = None

    @model_validator(mode="after")
    def _id_pairs(self) -> RemittanceParty:
        if (self.id_qualifier is None) != (self.identifier is None):
            raise ValueError("id_qualifier and identifier go together")
        if self.id_qualifier == "XX" and not npi_check_digit_ok(self.identifier or ""):
            raise ValueError("identifier is not a valid NPI")
        return self


class CrossoverCarrier(X12Model):
    """NM1*TT: the payer the claim was forwarded to (e.g. Medicare to a Medigap plan)."""

    name: Name60
    id_qualifier: Literal["AD", "FI", "NI", "PI", "PP", "XV"] = "PI"
    identifier: IdCode


class OutpatientAdjudication(X12Model):
    """MOA."""

    reimbursement_rate: Decimal | None = Field(default=None, ge=0, le=1)
    hcpcs_payable_cents: int | None = None
    remark_codes: list[RemarkCode] = Field(default_factory=list, max_length=5)
    esrd_payment_cents: int | None = None
    nonpayable_professional_cents: int | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> OutpatientAdjudication:
        amounts = (self.hcpcs_payable_cents, self.esrd_payment_cents)
        others = (self.reimbursement_rate, self.nonpayable_professional_cents)
        if not self.remark_codes and all(v is None for v in (*amounts, *others)):
            raise ValueError("MOA needs at least one value")
        return self


class InpatientAdjudication(X12Model):
    """MIA (the elements this platform uses)."""

    covered_days: Decimal = Field(ge=0, max_digits=15, decimal_places=3)
    pps_operating_outlier_cents: int | None = None
    lifetime_psychiatric_days: Decimal | None = Field(default=None, ge=0, decimal_places=3)
    drg_amount_cents: int | None = None
    remark_codes: list[RemarkCode] = Field(default_factory=list, max_length=5)


class RemittanceLine(X12Model):
    """Loop 2110: one adjudicated service line."""

    procedure: Procedure
    charge_cents: int
    paid_cents: int
    revenue_code: RevenueCode | None = None
    units_paid: Decimal | None = Field(default=None, max_digits=15, decimal_places=3)
    # SVC06: the procedure as billed when the payer adjudicated a different one.
    original_procedure: Procedure | None = None
    original_units: Decimal | None = Field(default=None, max_digits=15, decimal_places=3)
    service_date: date | None = None
    service_start: date | None = None
    service_end: date | None = None
    adjustments: list[Adjustment] = Field(default_factory=list)
    line_control_number: Identifier | None = None
    allowed_cents: int | None = None
    remark_codes: list[RemarkCode] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_kind_of_date(self) -> RemittanceLine:
        if self.service_date is not None and (self.service_start or self.service_end):
            raise ValueError("give service_date (DTM*472) or a start/end period, not both")
        return self

    def adjustment_total_cents(self) -> int:
        return sum(a.amount_cents for a in self.adjustments)


class RemittanceClaim(X12Model):
    """Loop 2100: CLP and what hangs off it."""

    patient_control_number: Identifier = Field(max_length=38)
    status: ClaimStatus
    charge_cents: int
    paid_cents: int
    patient_responsibility_cents: int | None = None
    filing_indicator: FilingIndicator
    payer_claim_control_number: Identifier = Field(max_length=50)
    facility_type_code: FacilityCode | None = None
    frequency_code: Literal["1", "7", "8"] | None = None
    adjustments: list[Adjustment] = Field(default_factory=list)
    patient: RemittanceParty
    insured: RemittanceParty | None = None
    rendering_provider: RemittanceParty | None = None
    crossover_carrier: CrossoverCarrier | None = None
    inpatient: InpatientAdjudication | None = None
    outpatient: OutpatientAdjudication | None = None
    statement_start: date | None = None
    statement_end: date | None = None
    lines: list[RemittanceLine] = Field(default_factory=list, max_length=999)

    @property
    def is_reversal(self) -> bool:
        return self.status == "22"

    @property
    def is_denied(self) -> bool:
        return self.status == "4"

    def adjustment_total_cents(self) -> int:
        claim = sum(a.amount_cents for a in self.adjustments)
        return claim + sum(line.adjustment_total_cents() for line in self.lines)


class ProviderAdjustment(X12Model):
    """One PLB adjustment: positive takes money back, negative (e.g. L6 interest) adds."""

    provider_id: Identifier = Field(max_length=50)
    fiscal_period_date: date
    reason: ProviderAdjustmentReason
    reference: Identifier | None = Field(default=None, max_length=50)
    amount_cents: int


class EftDetails(X12Model):
    """BPR05-BPR15 for an ACH payment."""

    payment_format: Literal["CCP", "CTX"] = "CCP"
    sender_dfi_qualifier: Literal["01", "04"] = "01"
    sender_dfi_id: DfiId
    sender_account: Account
    originating_company_id: CompanyId
    receiver_dfi_qualifier: Literal["01", "04"] = "01"
    receiver_dfi_id: DfiId
    receiver_account_qualifier: Literal["DA", "SG"] = "DA"
    receiver_account: Account


class RemittancePayer(X12Model):
    name: Name60
    identifier: IdCode | None = None  # N104 with qualifier XV
    address: Address
    technical_contact: Contact


class RemittancePayee(X12Model):
    name: Name60
    npi: Npi
    address: Address | None = None
    tax_id: TaxId | None = None  # REF*TJ


class Remittance(X12Model):
    """One 835 transaction set: one payment (or notice) from one payer to one payee."""

    control_number: ControlNumber
    handling: Literal["C", "D", "H", "I", "P", "U", "X"] = "I"
    payment_cents: int = Field(ge=0)
    credit_debit: Literal["C", "D"] = "C"
    payment_method: Literal["ACH", "BOP", "CHK", "FWT", "NON"]
    eft: EftDetails | None = None
    payment_date: date
    trace_number: Identifier = Field(max_length=50)
    payer_trace_id: CompanyId
    production_date: date | None = None
    payer: RemittancePayer
    payee: RemittancePayee
    claims: list[RemittanceClaim] = Field(default_factory=list)
    provider_adjustments: list[ProviderAdjustment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _eft_only_for_ach(self) -> Remittance:
        if (self.payment_method == "ACH") != (self.eft is not None):
            raise ValueError("eft details are required for ACH and only for ACH")
        return self


class RemittanceDocument(X12Model):
    envelope: Envelope
    transactions: list[Remittance] = Field(min_length=1)

    _unique = field_validator("transactions")(unique_control_numbers)


class Imbalance(X12Model):
    """One failed 835 money rule, located by transaction, claim and line."""

    rule: Literal["line", "claim", "transaction"]
    transaction_control_number: str
    patient_control_number: str | None = None
    claim_index: int | None = None  # 0-based among the transaction's claims
    line_number: int | None = None  # 1-based among the claim's SVC lines
    expected_cents: int
    actual_cents: int

    def describe(self) -> str:
        place = f"transaction {self.transaction_control_number}"
        if self.patient_control_number is not None:
            place += f" claim {self.patient_control_number!r}"
        if self.line_number is not None:
            place += f" line {self.line_number}"
        what = {
            "line": "SVC03 paid should be SVC02 charge minus line CAS",
            "claim": "CLP04 paid should be CLP03 charge minus claim and line CAS",
            "transaction": "BPR02 should be the sum of CLP04 minus the sum of PLB",
        }[self.rule]
        return (
            f"{place}: {what}: expected {self.expected_cents} cents, got {self.actual_cents} cents"
        )


def check_835_balance(remittance: Remittance | RemittanceDocument) -> list[Imbalance]:
    """Every failed money rule; an empty list means the remittance balances."""
    if isinstance(remittance, RemittanceDocument):
        return [i for t in remittance.transactions for i in check_835_balance(t)]
    found: list[Imbalance] = []
    tcn = remittance.control_number
    for index, claim in enumerate(remittance.claims):
        pcn = claim.patient_control_number
        for number, line in enumerate(claim.lines, start=1):
            expected = line.charge_cents - line.adjustment_total_cents()
            if expected != line.paid_cents:
                found.append(
                    Imbalance(
                        rule="line",
                        transaction_control_number=tcn,
                        patient_control_number=pcn,
                        claim_index=index,
                        line_number=number,
                        expected_cents=expected,
                        actual_cents=line.paid_cents,
                    )
                )
        expected = claim.charge_cents - claim.adjustment_total_cents()
        if expected != claim.paid_cents:
            found.append(
                Imbalance(
                    rule="claim",
                    transaction_control_number=tcn,
                    patient_control_number=pcn,
                    claim_index=index,
                    expected_cents=expected,
                    actual_cents=claim.paid_cents,
                )
            )
    expected = sum(c.paid_cents for c in remittance.claims) - sum(
        p.amount_cents for p in remittance.provider_adjustments
    )
    if expected != remittance.payment_cents:
        found.append(
            Imbalance(
                rule="transaction",
                transaction_control_number=tcn,
                expected_cents=expected,
                actual_cents=remittance.payment_cents,
            )
        )
    return found
