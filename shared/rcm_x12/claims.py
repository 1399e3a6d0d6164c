"""837P professional claim models (005010X222A1)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from rcm_x12.common import (
    Address,
    Adjustment,
    ControlNumber,
    IdCode,
    Identifier,
    Name35,
    Name60,
    Npi,
    PositiveQuantity,
    Procedure,
    TaxId,
    X12Model,
    cas_segments,
    unique_control_numbers,
)
from rcm_x12.contact import Contact
from rcm_x12.envelope import Envelope, naive_minutes

# ICD-10-CM without the dot: letter, digit, then 1-5 letters or digits.
Icd10Code = Annotated[str, StringConstraints(pattern=r"^[A-Z][0-9][0-9A-Z]{1,5}$")]
PlaceOfService = Annotated[str, StringConstraints(pattern=r"^[0-9]{2}$")]
Taxonomy = Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{9}X$")]
ResponsibilityCode = Literal["P", "S", "T", "A", "B", "C", "D", "E", "F", "G", "H", "U"]
ClaimFilingCode = Literal[
    "11", "12", "13", "14", "15", "16", "17", "AM", "BL", "CH", "CI", "DS", "FI", "HM", "LM",
    "MA", "MB", "MC", "OF", "TV", "VA", "WC", "ZZ",
]  # fmt: skip
InsuranceTypeCode = Literal["12", "13", "14", "15", "16", "41", "42", "43", "47"]
_PROCEDURE_QUALIFIERS = ("ER", "HC", "IV", "WK")


def _professional_qualifier(procedure: Procedure) -> Procedure:
    if procedure.qualifier not in _PROCEDURE_QUALIFIERS:
        raise ValueError(f"837P procedure qualifier must be one of {_PROCEDURE_QUALIFIERS}")
    return procedure


def _fits_five_cas(adjustments: list[Adjustment]) -> list[Adjustment]:
    if len(cas_segments(adjustments)) > 5:
        raise ValueError("837P allows five CAS segments (six adjustments each, one group each)")
    return adjustments


class Submitter(X12Model):
    """Loop 1000A."""

    name: Name60
    identifier: IdCode
    contact: Contact

    @field_validator("contact")
    @classmethod
    def _reachable(cls, contact: Contact) -> Contact:
        if not contact.has_number() or contact.url is not None:
            raise ValueError("submitter contact needs a phone, email or fax (PER*IC)")
        return contact


class Receiver(X12Model):
    """Loop 1000B."""

    name: Name60
    identifier: IdCode


class BillingProvider(X12Model):
    """Loop 2010AA (an organisation)."""

    name: Name60
    npi: Npi
    tax_id: TaxId
    address: Address
    taxonomy: Taxonomy | None = None


Gender = Literal["F", "M", "U"]
# PAT01 of loop 2000C: spouse, child, employee, unknown, organ donor, cadaver donor, life
# partner, other relationship.
PatientRelationship = Literal["01", "19", "20", "21", "39", "40", "53", "G8"]


class Subscriber(X12Model):
    """Loops 2000B/2010BA. SBR02 is 18 when the subscriber is the patient; blank when the
    patient is someone else on their plan (a claim with a `patient`, loop 2000C)."""

    member_id: IdCode
    last_name: Name60
    first_name: Name35 | None = None
    middle_name: Name35 | None = None
    birth_date: date | None = None
    gender: Gender | None = None
    address: Address | None = None
    relationship: Literal["18"] | None = "18"
    payer_responsibility: ResponsibilityCode = "P"
    group_number: Identifier | None = Field(default=None, max_length=50)
    group_name: Name60 | None = None
    insurance_type: InsuranceTypeCode | None = None
    filing_indicator: ClaimFilingCode = "CI"

    @model_validator(mode="after")
    def _demographics(self) -> Subscriber:
        if (self.birth_date is None) != (self.gender is None):
            raise ValueError("DMG carries the birth date and the gender together")
        if self.relationship == "18" and self.birth_date is None:
            raise ValueError("DMG is required when the patient is the subscriber")
        return self


class Patient(X12Model):
    """Loops 2000C/2010CA: the patient when not the subscriber, known to the payer through
    the subscriber's member id (so NM1*QC carries no id of its own)."""

    relationship: PatientRelationship  # PAT01
    last_name: Name60
    first_name: Name35 | None = None
    middle_name: Name35 | None = None
    address: Address
    birth_date: date
    gender: Gender


class Payer(X12Model):
    """Loop 2010BB."""

    name: Name60
    payer_id: IdCode
    address: Address | None = None


class RenderingProvider(X12Model):
    """Loops 2310B / 2420A."""

    entity_type: Literal["1", "2"] = "1"
    last_name: Name60
    first_name: Name35 | None = None
    npi: Npi
    taxonomy: Taxonomy | None = None


class PriorPayer(X12Model):
    """Loops 2320/2330A/2330B: what an earlier payer did with this claim."""

    payer_responsibility: ResponsibilityCode = "P"
    relationship: Literal["01", "18", "19", "20", "21", "39", "40", "53", "G8"] = "18"
    group_number: Identifier | None = Field(default=None, max_length=50)
    insurance_type: InsuranceTypeCode | None = None
    filing_indicator: ClaimFilingCode | None = None
    adjustments: Annotated[list[Adjustment], Field(default_factory=list)]
    paid_cents: int | None = None  # AMT*D
    non_covered_cents: int | None = None  # AMT*A8
    remaining_patient_liability_cents: int | None = None  # AMT*EAF
    benefits_assignment: Literal["Y", "N", "W"] = "Y"
    release_of_information: Literal["I", "Y"] = "Y"
    subscriber_last_name: Name60
    subscriber_first_name: Name35 | None = None
    subscriber_member_id: IdCode
    payer_name: Name60
    payer_id: IdCode
    adjudication_date: date | None = None  # 2330B DTP*573
    payer_claim_control_number: Identifier | None = Field(default=None, max_length=50)

    _five_cas = field_validator("adjustments")(_fits_five_cas)


class LineAdjudication(X12Model):
    """Loop 2430: a prior payer's decision on one line."""

    payer_id: IdCode
    paid_cents: int
    procedure: Procedure
    paid_units: Decimal = Field(ge=0, max_digits=15, decimal_places=3)
    bundled_line_number: int | None = Field(default=None, ge=1, le=999_999)
    adjustments: list[Adjustment] = Field(default_factory=list)
    adjudication_date: date
    remaining_patient_liability_cents: int | None = None

    _five_cas = field_validator("adjustments")(_fits_five_cas)
    _qualifier = field_validator("procedure")(_professional_qualifier)


class ServiceLine(X12Model):
    """Loop 2400."""

    procedure: Procedure
    charge_cents: int = Field(ge=0)
    units: PositiveQuantity
    unit_basis: Literal["UN", "MJ"] = "UN"
    place_of_service: PlaceOfService | None = None
    diagnosis_pointers: list[Annotated[int, Field(ge=1, le=12)]] = Field(min_length=1, max_length=4)
    service_date: date
    service_date_end: date | None = None  # written as an RD8 range
    line_control_number: Identifier | None = Field(default=None, max_length=50)
    rendering_provider: RenderingProvider | None = None
    adjudications: list[LineAdjudication] = Field(default_factory=list, max_length=15)

    _qualifier = field_validator("procedure")(_professional_qualifier)

    @model_validator(mode="after")
    def _consistent(self) -> ServiceLine:
        if len(set(self.diagnosis_pointers)) != len(self.diagnosis_pointers):
            raise ValueError("diagnosis pointers repeat")
        if self.service_date_end is not None and self.service_date_end < self.service_date:
            raise ValueError("service_date_end is before service_date")
        return self


class ProfessionalClaim(X12Model):
    """Loop 2300 with the provider, subscriber and payer it is billed under."""

    billing_provider: BillingProvider
    subscriber: Subscriber
    patient: Patient | None = None  # loop 2000C: only when the subscriber is not the patient
    payer: Payer
    patient_control_number: Identifier = Field(max_length=38)
    total_charge_cents: int = Field(ge=0)
    place_of_service: PlaceOfService
    frequency_code: Literal["1", "7", "8"] = "1"
    payer_claim_control_number: Identifier | None = Field(default=None, max_length=50)
    provider_signature: Literal["Y", "N"] = "Y"
    assignment: Literal["A", "B", "C"] = "A"
    benefits_assignment: Literal["Y", "N", "W"] = "Y"
    release_of_information: Literal["I", "Y"] = "Y"
    prior_authorization: Identifier | None = Field(default=None, max_length=50)
    diagnoses: list[Icd10Code] = Field(min_length=1, max_length=12)
    rendering_provider: RenderingProvider | None = None
    prior_payers: list[PriorPayer] = Field(default_factory=list, max_length=10)
    lines: list[ServiceLine] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _claim_rules(self) -> ProfessionalClaim:
        line_total = sum(line.charge_cents for line in self.lines)
        if line_total != self.total_charge_cents:
            raise ValueError(
                f"CLM02 {self.total_charge_cents} must equal the sum of SV102 {line_total}"
            )
        replaces = self.frequency_code in ("7", "8")
        if replaces != (self.payer_claim_control_number is not None):
            raise ValueError(
                "payer_claim_control_number (REF*F8) is required for frequency 7/8 and only then"
            )
        for line in self.lines:
            if max(line.diagnosis_pointers) > len(self.diagnoses):
                raise ValueError(f"a diagnosis pointer exceeds the {len(self.diagnoses)} codes")
            for adjudication in line.adjudications:
                if adjudication.payer_id not in {p.payer_id for p in self.prior_payers}:
                    raise ValueError(f"2430 payer {adjudication.payer_id!r} has no 2320 loop")
        if (self.patient is None) != (self.subscriber.relationship == "18"):
            raise ValueError(
                "SBR02 is 18 exactly when the subscriber is the patient; otherwise SBR02 is "
                "blank and the patient has loop 2000C"
            )
        if self.subscriber.payer_responsibility != "P" and not self.prior_payers:
            raise ValueError("a non-primary claim needs the prior payer (loop 2320)")
        if len(set(self.diagnoses)) != len(self.diagnoses):
            raise ValueError("diagnosis codes repeat")
        return self


class ClaimSubmission(X12Model):
    """One 837P transaction set."""

    control_number: ControlNumber
    batch_id: Identifier = Field(max_length=50)  # BHT03
    created: datetime
    purpose: Literal["00", "18"] = "00"
    claim_type: Literal["CH", "RP"] = "CH"
    submitter: Submitter
    receiver: Receiver
    claims: list[ProfessionalClaim] = Field(min_length=1)

    _created = field_validator("created")(naive_minutes)


class ClaimBatch(X12Model):
    envelope: Envelope
    transactions: list[ClaimSubmission] = Field(min_length=1)

    _unique = field_validator("transactions")(unique_control_numbers)
