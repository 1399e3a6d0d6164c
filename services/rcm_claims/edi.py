"""The claims service's X12: episode data -> 837P claims and batches; 999/277CA -> verdicts.

Pure functions, no I/O. Two rules worth knowing:

- The coverage's holder is the subscriber (2010BA) with the coverage's member id. When
  that is the patient (relationship 18), SBR02 = 18 and there is no patient loop; when
  the patient is on someone else's plan (a spouse, a child), SBR02 is blank and the
  patient is loop 2000C (PAT01 = the relationship, 2010CA name, address, birth date).
- A secondary claim carries the primary's decision twice, at two levels: 2320 CAS with
  the claim-level totals per group and reason (and AMT*D paid, AMT*EAF patient
  liability), and, when the primary's posting is line by line and adds up, 2430 per line.
  A reader takes one level or the other, never the sum of both.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from rcm_contracts.coding import CodedEpisode
from rcm_contracts.payments import Adjustment as PostedAdjustment
from rcm_contracts.payments import AdjustmentGroup
from rcm_contracts.registration import Coverage, Person, Relationship
from rcm_edits import Library
from rcm_x12 import (
    AcknowledgmentDocument,
    Address,
    Adjustment,
    BillingProvider,
    ClaimAcknowledgmentDocument,
    ClaimBatch,
    ClaimSubmission,
    Contact,
    Envelope,
    ImplementationAcknowledgment,
    LineAdjudication,
    Patient,
    Payer,
    PriorPayer,
    Procedure,
    ProfessionalClaim,
    Receiver,
    RenderingProvider,
    ServiceLine,
    Submitter,
    Subscriber,
    X12Error,
    build_837p,
)

# Characters that are delimiters in the interchanges we write (rcm_shared default set).
_DELIMITERS = re.compile(r"[*~:^]")
_GROUP_ORDER: tuple[AdjustmentGroup, ...] = (
    AdjustmentGroup.CONTRACTUAL,
    AdjustmentGroup.PATIENT_RESPONSIBILITY,
    AdjustmentGroup.OTHER,
    AdjustmentGroup.PAYER_INITIATED,
)
MAX_MESSAGE = 300


class ClaimBuildError(ValueError):
    """The episode's data cannot make a valid 837P claim; `problems` say why."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class BillingConfig:
    """Who bills and who renders: fixed per installation (from the settings)."""

    provider: BillingProvider
    rendering: Mapping[str, RenderingProvider] = field(default_factory=dict)
    edit_packs: Library | None = None  # the scrub's packs (domain/edits.py); None: no scrub


@dataclass(frozen=True)
class Partners:
    """The parties of an interchange: us (submitter) and the clearinghouse (receiver)."""

    submitter: Submitter
    receiver: Receiver
    sender_id: str
    receiver_id: str
    usage: Literal["T", "P"] = "P"


class PriorAdjudication(BaseModel):
    """What the primary payer did with the claim, for the secondary claim's 2320/2430."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    claim_id: str
    payer_id: str
    payer_name: str
    member_id: str
    group_number: str | None = None
    paid_cents: int
    patient_responsibility_cents: int
    adjustments: list[PostedAdjustment]
    adjudicated_on: date
    payer_claim_control_number: str | None = None
    # The primary coverage's holder, when not the patient (2320 SBR02, 2330A name).
    relationship: Relationship = Relationship.SELF
    subscriber: Person | None = None


def x12_text(value: str, limit: int) -> str:
    """Printable upper-case ASCII without our delimiters, as X12 names are written."""
    ascii_only = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    cleaned = " ".join(_DELIMITERS.sub(" ", ascii_only).upper().split())
    return cleaned[:limit].rstrip()


def _optional_text(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    return x12_text(value, limit) or None


def _address(person: Person) -> Address:
    address = person.address
    return Address(
        line1=x12_text(address.line1, 55),
        line2=_optional_text(address.line2, 55),
        city=x12_text(address.city, 30),
        state=address.state,
        postal_code=address.postal_code,
    )


def _aggregate(adjustments: Iterable[PostedAdjustment]) -> list[Adjustment]:
    """Totals per group and reason, groups in CAS order, zero totals left out."""
    totals: dict[tuple[AdjustmentGroup, str], int] = {}
    for adjustment in adjustments:
        key = (adjustment.group, adjustment.reason_code)
        totals[key] = totals.get(key, 0) + adjustment.amount_cents
    return [
        Adjustment(group=group.value, reason=reason, amount_cents=cents)
        for wanted in _GROUP_ORDER
        for (group, reason), cents in totals.items()
        if group is wanted and cents != 0
    ]


def _prior_payer(prior: PriorAdjudication, patient: Person) -> PriorPayer:
    holder = prior.subscriber if prior.relationship is not Relationship.SELF else None
    holder = holder or patient
    return PriorPayer(
        payer_responsibility="P",
        relationship=prior.relationship.value,
        group_number=_optional_text(prior.group_number, 50),
        filing_indicator="CI",
        adjustments=_aggregate(prior.adjustments),
        paid_cents=prior.paid_cents,
        remaining_patient_liability_cents=prior.patient_responsibility_cents,
        subscriber_last_name=x12_text(holder.last_name, 60),
        subscriber_first_name=_optional_text(holder.first_name, 35),
        subscriber_member_id=x12_text(prior.member_id, 80),
        payer_name=x12_text(prior.payer_name, 60),
        payer_id=prior.payer_id,
        adjudication_date=prior.adjudicated_on,
        payer_claim_control_number=prior.payer_claim_control_number,
    )


def _line_adjudications(
    prior: PriorAdjudication, lines: Sequence[ServiceLine]
) -> list[list[LineAdjudication]] | None:
    """The primary's decision per line (2430), or None when it was not made line by line
    (a claim-level adjustment, an unknown line, or line payments that do not add up)."""
    by_line: dict[str, list[PostedAdjustment]] = {
        line.line_control_number or "": [] for line in lines
    }
    for adjustment in prior.adjustments:
        if adjustment.line_id is None or adjustment.line_id not in by_line:
            return None
    for adjustment in prior.adjustments:
        by_line[adjustment.line_id or ""].append(adjustment)
    result: list[list[LineAdjudication]] = []
    paid_total = 0
    for line in lines:
        adjustments = by_line[line.line_control_number or ""]
        paid = line.charge_cents - sum(a.amount_cents for a in adjustments)
        paid_total += paid
        liability = sum(
            a.amount_cents for a in adjustments if a.group is AdjustmentGroup.PATIENT_RESPONSIBILITY
        )
        result.append(
            [
                LineAdjudication(
                    payer_id=prior.payer_id,
                    paid_cents=paid,
                    procedure=line.procedure,
                    paid_units=line.units,
                    adjustments=_aggregate(adjustments),
                    adjudication_date=prior.adjudicated_on,
                    remaining_patient_liability_cents=liability or None,
                )
            ]
        )
    return result if paid_total == prior.paid_cents else None


def professional_claim(
    *,
    config: BillingConfig,
    claim_id: str,
    patient: Person,
    coverage: Coverage,
    coding: CodedEpisode,
    responsibility: Literal["P", "S"],
    frequency: Literal["1", "7", "8"] = "1",
    replaced_pccn: str | None = None,
    prior: PriorAdjudication | None = None,
) -> ProfessionalClaim:
    """The 837P claim (loop 2300 with provider, subscriber and payer) for one payer.

    Raises ClaimBuildError naming each problem (field and rule, never the value).
    """
    try:
        lines = [
            ServiceLine(
                procedure=Procedure(code=line.procedure_code, modifiers=line.modifiers),
                charge_cents=line.charge_cents,
                units=Decimal(line.units),
                diagnosis_pointers=line.diagnosis_pointers,
                service_date=line.service_date,
                line_control_number=line.line_id,
            )
            for line in sorted(coding.charge_lines, key=lambda line: line.line_number)
        ]
        prior_payers = []
        if prior is not None:
            prior_payers.append(_prior_payer(prior, patient))
            per_line = _line_adjudications(prior, lines)
            if per_line is not None:
                lines = [
                    line.model_copy(update={"adjudications": adjudications})
                    for line, adjudications in zip(lines, per_line, strict=True)
                ]
        claim = ProfessionalClaim(
            billing_provider=config.provider,
            subscriber=_subscriber(coverage, patient, responsibility),
            patient=_dependent(coverage, patient),
            payer=Payer(name=x12_text(coverage.payer_name, 60), payer_id=coverage.payer_id),
            patient_control_number=claim_id,
            total_charge_cents=sum(line.charge_cents for line in lines),
            place_of_service=coding.place_of_service,
            frequency_code=frequency,
            payer_claim_control_number=replaced_pccn,
            diagnoses=coding.diagnoses,
            rendering_provider=config.rendering.get(coding.rendering_provider_npi),
            prior_payers=prior_payers,
            lines=lines,
        )
    except ValidationError as error:
        raise ClaimBuildError(_problems(error)) from None
    return claim


def _holder(coverage: Coverage, patient: Person) -> Person:
    if coverage.relationship is Relationship.SELF:
        return patient
    if coverage.subscriber is None:
        raise ClaimBuildError(
            [f"coverage: relationship {coverage.relationship.value} needs the subscriber"]
        )
    return coverage.subscriber


def _subscriber(
    coverage: Coverage, patient: Person, responsibility: Literal["P", "S"]
) -> Subscriber:
    holder = _holder(coverage, patient)
    return Subscriber(
        member_id=x12_text(coverage.member_id, 80),
        last_name=x12_text(holder.last_name, 60),
        first_name=_optional_text(holder.first_name, 35),
        birth_date=holder.birth_date,
        gender=holder.sex.value,
        address=_address(holder),
        relationship="18" if coverage.relationship is Relationship.SELF else None,
        payer_responsibility=responsibility,
        group_number=_optional_text(coverage.group_number, 50),
        filing_indicator="CI",
    )


def _dependent(coverage: Coverage, patient: Person) -> Patient | None:
    if coverage.relationship is Relationship.SELF:
        return None
    return Patient(
        relationship=coverage.relationship.value,
        last_name=x12_text(patient.last_name, 60),
        first_name=_optional_text(patient.first_name, 35),
        address=_address(patient),
        birth_date=patient.birth_date,
        gender=patient.sex.value,
    )


def _problems(error: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(part) for part in problem['loc']) or 'claim'}: {problem['msg']}"
        for problem in error.errors(include_input=False, include_url=False)
    ]


def interchange(
    partners: Partners,
    control_number: int,
    created: datetime,
    claims: Sequence[tuple[str, ProfessionalClaim]],
) -> str:
    """One interchange, one functional group (GS06 = ISA13) and one 837 transaction set
    per claim (ST02 given with each claim), so a 999 accepts or rejects claim by claim."""
    stamp = created.replace(tzinfo=None, second=0, microsecond=0)
    envelope = Envelope(
        sender_id=partners.sender_id,
        receiver_id=partners.receiver_id,
        control_number=control_number,
        group_control_number=control_number,
        created=stamp,
        usage=partners.usage,
    )
    batch = ClaimBatch(
        envelope=envelope,
        transactions=[
            ClaimSubmission(
                control_number=st,
                batch_id=f"{control_number:09d}",
                created=stamp,
                submitter=partners.submitter,
                receiver=partners.receiver,
                claims=[claim],
            )
            for st, claim in claims
        ],
    )
    return build_837p(batch)


def check_writable(partners: Partners, claim: ProfessionalClaim) -> None:
    """Raise ClaimBuildError when the claim cannot be written as X12 at all."""
    try:
        interchange(partners, 1, datetime(2000, 1, 1), [("0001", claim)])  # noqa: DTZ001
    except X12Error as error:
        raise ClaimBuildError([error.located()]) from None


def default_contact() -> Contact:
    return Contact(name="BILLING OFFICE", phone="4135550100")


# --- acknowledgments ---------------------------------------------------------------------


@dataclass(frozen=True)
class AckVerdict:
    """A clearinghouse (999) or payer (277CA) verdict on one claim."""

    accepted: bool
    status_codes: tuple[str, ...] = ()
    message: str = ""
    payer_claim_control_number: str | None = None


def verdict_999(ack: ImplementationAcknowledgment, st: str) -> AckVerdict:
    """The 999's word on the transaction set `st`; a set it does not name shares the
    group's fate (AK9)."""
    response = next((r for r in ack.responses if r.control_number == st), None)
    if response is None:
        if ack.accepted:
            return AckVerdict(accepted=True)
        group = tuple(f"AK905:{code}" for code in ack.error_codes) or (f"AK901:{ack.status}",)
        return AckVerdict(False, group, f"999 rejected the functional group (AK9 {ack.status})")
    if response.accepted:
        return AckVerdict(accepted=True)
    codes: list[str] = [f"IK502:{code}" for code in response.error_codes]
    details: list[str] = []
    for issue in response.segment_issues:
        codes.append(f"IK3:{issue.segment_id}:{issue.error_code or ''}".rstrip(":"))
        where = f" loop {issue.loop_id}" if issue.loop_id else ""
        details.append(f"{issue.segment_id} at {issue.position}{where} error {issue.error_code}")
        for element in issue.element_issues:
            codes.append(f"IK4:{element.position}:{element.error_code}")
            details.append(f"element {element.position} error {element.error_code}")
    message = f"999 rejected transaction set {st} (IK5 {response.status})"
    if details:
        message += ": " + "; ".join(details)  # bad values (IK404) left out: may be PHI
    return AckVerdict(False, tuple(codes) or (f"IK501:{response.status}",), message[:MAX_MESSAGE])


def verdicts_999(
    document: AcknowledgmentDocument,
) -> list[tuple[int, ImplementationAcknowledgment]]:
    """The 999s that answer 837P groups, with the group control number (our ICN)."""
    return [
        (ack.group_control_number, ack)
        for ack in document.transactions
        if ack.functional_id == "HC"
    ]


def verdicts_277ca(document: ClaimAcknowledgmentDocument) -> dict[str, AckVerdict]:
    """Verdicts by patient control number (our claim id)."""
    verdicts: dict[str, AckVerdict] = {}
    for transaction in document.transactions:
        for entry in transaction.claims:
            statuses = [entry.status, *entry.additional_statuses]
            codes = tuple(f"{s.category}:{s.code}" for s in statuses)
            if entry.accepted:
                verdicts[entry.patient_control_number] = AckVerdict(
                    True, codes, "", entry.payer_claim_control_number
                )
            else:
                # STC12's free text is left out: a payer may quote the claim's data there.
                message = f"277CA rejected the claim ({', '.join(codes)})"
                verdicts[entry.patient_control_number] = AckVerdict(
                    False, codes, message[:MAX_MESSAGE], entry.payer_claim_control_number
                )
    return verdicts
