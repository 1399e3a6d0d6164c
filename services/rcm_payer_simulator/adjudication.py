"""The payers' decisions: pure and deterministic, no state, no I/O, no clock.

A denial follows from the claim's content and the payer's rules (rules.py): a pair of
procedures billed without the modifier the payer asks for, a procedure needing a prior
authorization billed without one, a date of service outside the member's coverage or
the payer's timely-filing limit, a claim already adjudicated. A front-end rejection
(277CA) follows from the claim too: a member id the payer does not have or cannot be one.

The payer's own data (its members' enrollment and plans) is a hash of (seed, stage,
member), never a random generator, so a seed gives the same answers whatever the timing
or the order of arrival. What depends on order is a member's deductible and out-of-pocket
spending and which claims were adjudicated before, which the caller keeps and passes in.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP
from typing import Literal

from rcm_x12 import (
    Adjustment,
    Contact,
    OutpatientAdjudication,
    PriorPayer,
    ProfessionalClaim,
    ProviderAdjustment,
    Remittance,
    RemittanceClaim,
    RemittanceLine,
    RemittanceParty,
    RemittancePayee,
    RemittancePayer,
    ServiceLine,
)

from .payers import EVALUATION_AND_MANAGEMENT, PREVENTIVE, PayerInfo

NOT_FOUND_PER_10000 = 200  # ~2% of members are unknown to the payer
INACTIVE_PER_10000 = 400  # ~4% have a terminated coverage
# ~3% were terminated retroactively: the payer's eligibility answers (271) still show
# them active, its claims system knows the coverage ended (the usual cause of CO-27).
RETRO_TERMINATED_PER_10000 = 300
RETRO_TERMINATIONS_FROM = date(2025, 1, 1)
RETRO_TERMINATION_MONTHS = 36  # terminated on the 1st of a month in 2025-2027
MEMBER_ID_SHAPE = re.compile(r"^[A-Z]{2}[0-9]{9}$")  # docs/flow.md: the payers' member ids
MISSING_INFORMATION_REMARK = "MA130"
MISSING_AUTHORIZATION_REMARK = "M62"
NOT_COVERED_REASON = "96"  # a procedure the payer has no fee for
TERMINATED_REASON = "27"  # services after the coverage ended
DUPLICATE_REASON = "18"
TIMELY_FILING_REASON = "29"
AUTHORIZATION_REASON = "197"
PAIR_EDIT_REASON = "97"

MemberStatus = Literal["active", "inactive", "not-found"]


def draw(seed: int, stage: str, key: str) -> int:
    """A 64-bit number that depends only on the seed, the kind of decision and its subject."""
    digest = hashlib.sha256(f"{seed}|{stage}|{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def chance(seed: int, stage: str, key: str, per_10000: int) -> bool:
    return draw(seed, stage, key) % 10_000 < per_10000


def member_key(payer_id: str, member_id: str) -> str:
    return f"{payer_id}|{member_id}"


def _enrollment_roll(seed: int, payer_id: str, member_id: str) -> int:
    return draw(seed, "member", member_key(payer_id, member_id)) % 10_000


def member_status(seed: int, payer_id: str, member_id: str) -> MemberStatus:
    """What the payer's eligibility system answers (a retroactive termination is not
    recorded there yet)."""
    roll = _enrollment_roll(seed, payer_id, member_id)
    if roll < NOT_FOUND_PER_10000:
        return "not-found"
    if roll < NOT_FOUND_PER_10000 + INACTIVE_PER_10000:
        return "inactive"
    return "active"


def retro_termination(seed: int, payer_id: str, member_id: str) -> date | None:
    """The first day a retroactively terminated member is no longer covered, else None."""
    roll = _enrollment_roll(seed, payer_id, member_id) - NOT_FOUND_PER_10000 - INACTIVE_PER_10000
    if not 0 <= roll < RETRO_TERMINATED_PER_10000:
        return None
    months = draw(seed, "terminated", member_key(payer_id, member_id)) % RETRO_TERMINATION_MONTHS
    start = RETRO_TERMINATIONS_FROM
    year, month = divmod(start.month - 1 + months, 12)
    return date(start.year + year, month + 1, 1)


def covered_on(seed: int, payer_id: str, member_id: str, service_date: date) -> bool:
    """The claims system's view: the member's coverage on the date of service."""
    if member_status(seed, payer_id, member_id) != "active":
        return False
    terminated = retro_termination(seed, payer_id, member_id)
    return terminated is None or service_date < terminated


@dataclass(frozen=True)
class Accumulators:
    """What a member still has to pay this plan year before the plan pays more."""

    deductible_remaining_cents: int
    out_of_pocket_remaining_cents: int

    def spend(self, deductible_cents: int, out_of_pocket_cents: int) -> Accumulators:
        return Accumulators(
            self.deductible_remaining_cents - deductible_cents,
            self.out_of_pocket_remaining_cents - out_of_pocket_cents,
        )


@dataclass(frozen=True)
class Benefits:
    """A member's plan: the same for a member every time (hash of payer and member id)."""

    plan_name: str
    copay_cents: int
    deductible_cents: int
    deductible_met_cents: int  # already met when the simulation starts
    coinsurance_percent: int
    out_of_pocket_cents: int
    out_of_pocket_met_cents: int

    def starting_accumulators(self) -> Accumulators:
        return Accumulators(
            self.deductible_cents - self.deductible_met_cents,
            self.out_of_pocket_cents - self.out_of_pocket_met_cents,
        )


def member_benefits(seed: int, payer: PayerInfo, member_id: str) -> Benefits:
    key = member_key(payer.payer_id, member_id)
    deductible = 500_00 + draw(seed, "deductible", key) % 11 * 250_00  # $500 to $3000
    deductible_met = deductible * (draw(seed, "deductible-met", key) % 5) // 4
    return Benefits(
        plan_name=payer.plans[draw(seed, "plan", key) % len(payer.plans)],
        copay_cents=(0, 20_00, 30_00, 40_00)[draw(seed, "copay", key) % 4],
        deductible_cents=deductible,
        deductible_met_cents=deductible_met,
        coinsurance_percent=(0, 10, 20, 30)[draw(seed, "coinsurance", key) % 4],
        out_of_pocket_cents=4000_00 + draw(seed, "out-of-pocket", key) % 9 * 500_00,
        out_of_pocket_met_cents=deductible_met + draw(seed, "oop-met", key) % 6 * 100_00,
    )


@dataclass(frozen=True)
class ClaimRejection:
    """The 277CA verdict on a claim the payer will not adjudicate (STC category/code)."""

    category: str
    code: str
    entity: str | None
    message: str


INVALID_MEMBER = ClaimRejection("A7", "164", "IL", "ENTITY CONTRACT/MEMBER NUMBER INVALID")
MISSING_INFORMATION = ClaimRejection("A7", "21", None, "MISSING OR INVALID INFORMATION")
WRONG_PAYER = ClaimRejection("A3", "116", None, "CLAIM SUBMITTED TO THE INCORRECT PAYER")
UNKNOWN_ORIGINAL = ClaimRejection(
    "A7", "21", None, "REF F8 NAMES NO CLAIM OF THIS PAYER THAT CAN BE REPLACED"
)


def claim_rejection(claim: ProfessionalClaim, received: date) -> ClaimRejection | None:
    """The payer's front-end edits: a member id that cannot be one of its members, a
    date of service after the day the claim came."""
    if not MEMBER_ID_SHAPE.match(claim.subscriber.member_id):
        return INVALID_MEMBER
    if first_service_date(claim) > received:
        return MISSING_INFORMATION
    return None


@dataclass(frozen=True)
class Denial:
    """A CARC (group CO) and the remark that says why."""

    reason: str
    remark: str | None = None


def first_service_date(claim: ProfessionalClaim) -> date:
    return min(line.service_date for line in claim.lines)


def claim_content(claim: ProfessionalClaim) -> str:
    """What makes two claims the same service billed twice: payer, member (and the
    dependent), dates, procedures with their modifiers and units, charges. A digest:
    the simulator keeps it, not the patient's values."""
    patient = claim.patient
    parts = [
        claim.payer.payer_id,
        claim.subscriber.member_id,
        "" if patient is None else f"{patient.last_name}|{patient.first_name}",
        "" if patient is None or patient.birth_date is None else patient.birth_date.isoformat(),
        *sorted(
            f"{line.service_date}|{line.procedure.code}|{','.join(line.procedure.modifiers)}"
            f"|{line.units}|{line.charge_cents}"
            for line in claim.lines
        ),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def claim_denial(
    seed: int,
    claim: ProfessionalClaim,
    payer: PayerInfo,
    received: date,
    duplicate: bool,
) -> Denial | None:
    """A whole-claim denial by the payer's rules, checked in this order: an original
    claim already adjudicated (CO-18), past the timely-filing limit (CO-29), not covered
    on the date of service (CO-27), a procedure needing a prior authorization billed
    without one (CO-197 M62). A void is never denied: it asks for nothing."""
    if claim.frequency_code == "8":
        return None
    if duplicate and claim.frequency_code == "1":
        return Denial(DUPLICATE_REASON)
    service_date = first_service_date(claim)
    if (received - service_date).days > payer.rules.timely_filing_days:
        return Denial(TIMELY_FILING_REASON)
    if not covered_on(seed, payer.payer_id, claim.subscriber.member_id, service_date):
        return Denial(TERMINATED_REASON)
    if claim.subscriber.payer_responsibility != "P":
        return None  # a secondary pays on the primary's adjudication of the services
    needing = payer.rules.prior_authorization
    if not claim.prior_authorization and any(
        line.procedure.code in needing for line in claim.lines
    ):
        return Denial(AUTHORIZATION_REASON, MISSING_AUTHORIZATION_REMARK)
    return None


def line_denials(claim: ProfessionalClaim, payer: PayerInfo) -> dict[int, Denial]:
    """The payer's pair edits: by line index, the column-2 lines billed on the same day as
    their column-1 procedure without a modifier that lets both be paid (CO-97)."""
    denied: dict[int, Denial] = {}
    for edit in payer.rules.pair_edits:
        column1_dates = {
            line.service_date for line in claim.lines if line.procedure.code == edit.column1
        }
        for index, line in enumerate(claim.lines):
            if line.procedure.code != edit.column2 or line.service_date not in column1_dates:
                continue
            if edit.modifiers.isdisjoint(line.procedure.modifiers):
                denied.setdefault(index, Denial(PAIR_EDIT_REASON, edit.remark))
    return denied


def payer_claim_control_number(seed: int, payer: PayerInfo, claim: ProfessionalClaim) -> str:
    """Stable for the same submission; the caller makes it unique on a (rare) collision."""
    key = "|".join(
        (
            payer.payer_id,
            claim.patient_control_number,
            claim.frequency_code,
            claim.payer_claim_control_number or "",
        )
    )
    return f"{payer.claim_prefix}{draw(seed, 'pccn', key) % 10**12:012d}"


@dataclass(frozen=True)
class Adjudication:
    claim: RemittanceClaim
    accumulators: Accumulators  # the member's, after this claim
    deductible_applied_cents: int = 0
    out_of_pocket_applied_cents: int = 0


def allowed_cents(payer: PayerInfo, line: ServiceLine) -> int | None:
    """The fee schedule's amount for the units, never more than the charge; None: no fee."""
    rate = payer.fee_schedule.get(line.procedure.code)
    if rate is None:
        return None
    scheduled = int((rate * line.units).to_integral_value(rounding=ROUND_HALF_UP))
    return min(line.charge_cents, scheduled)


def adjudicate(
    claim: ProfessionalClaim,
    payer: PayerInfo,
    pccn: str,
    benefits: Benefits,
    accumulators: Accumulators,
    denied_lines: Mapping[int, Denial] | None = None,
) -> Adjudication:
    """A primary claim paid by the fee schedule, the patient's share in the order
    copay (PR-3, once per claim, on an E/M line), deductible (PR-1), coinsurance (PR-2),
    each capped by what is left of the out-of-pocket maximum. A line in `denied_lines`
    is paid nothing: its charge is the denial's CO adjustment, its remark on LQ*HE."""
    denied_lines = denied_lines or {}
    deductible_left = max(accumulators.deductible_remaining_cents, 0)
    out_of_pocket_left = max(accumulators.out_of_pocket_remaining_cents, 0)
    copay_left = benefits.copay_cents
    deductible_applied = out_of_pocket_applied = 0
    lines: list[RemittanceLine] = []
    for index, line in enumerate(claim.lines):
        code = line.procedure.code
        denial = denied_lines.get(index)
        if denial is not None:
            adjustments = [
                Adjustment(group="CO", reason=denial.reason, amount_cents=line.charge_cents)
            ]
            denied_line = _remittance_line(line, 0, adjustments, 0)
            if denial.remark is not None:
                denied_line = denied_line.model_copy(update={"remark_codes": [denial.remark]})
            lines.append(denied_line)
            continue
        allowed = allowed_cents(payer, line)
        if allowed is None:
            adjustments = [
                Adjustment(group="CO", reason=NOT_COVERED_REASON, amount_cents=line.charge_cents)
            ]
            lines.append(_remittance_line(line, 0, adjustments, 0))
            continue
        copay = deductible = coinsurance = 0
        if code not in PREVENTIVE:
            if code in EVALUATION_AND_MANAGEMENT and copay_left and allowed:
                copay = min(copay_left, allowed, out_of_pocket_left)
                copay_left = 0
                out_of_pocket_left -= copay
            deductible = min(allowed - copay, deductible_left, out_of_pocket_left)
            deductible_left -= deductible
            out_of_pocket_left -= deductible
            rest = allowed - copay - deductible
            coinsurance = min((rest * benefits.coinsurance_percent + 50) // 100, out_of_pocket_left)
            out_of_pocket_left -= coinsurance
        deductible_applied += deductible
        out_of_pocket_applied += copay + deductible + coinsurance
        adjustments = _nonzero(
            Adjustment(group="CO", reason="45", amount_cents=line.charge_cents - allowed),
            Adjustment(group="PR", reason="3", amount_cents=copay),
            Adjustment(group="PR", reason="1", amount_cents=deductible),
            Adjustment(group="PR", reason="2", amount_cents=coinsurance),
        )
        paid = allowed - copay - deductible - coinsurance
        lines.append(_remittance_line(line, paid, adjustments, allowed))
    remittance_claim = _claim(claim, payer, pccn, "1", lines, [])
    return Adjudication(
        claim=remittance_claim,
        accumulators=accumulators.spend(deductible_applied, out_of_pocket_applied),
        deductible_applied_cents=deductible_applied,
        out_of_pocket_applied_cents=out_of_pocket_applied,
    )


def deny(
    claim: ProfessionalClaim, payer: PayerInfo, pccn: str, reason: str, remark: str | None = None
) -> RemittanceClaim:
    """A whole-claim denial at claim level, its remark (MOA) if any; CO-16 says what is
    missing with remark MA130."""
    adjustments = [Adjustment(group="CO", reason=reason, amount_cents=claim.total_charge_cents)]
    remittance_claim = _claim(claim, payer, pccn, "4", [], adjustments)
    if remark is None and reason == "16":
        remark = MISSING_INFORMATION_REMARK
    if remark is None:
        return remittance_claim
    outpatient = OutpatientAdjudication(remark_codes=[remark])
    return remittance_claim.model_copy(update={"outpatient": outpatient})


def adjudicate_secondary(claim: ProfessionalClaim, payer: PayerInfo, pccn: str) -> RemittanceClaim:
    """The secondary pays what the primary left to the patient as deductible (PR-1) and
    coinsurance (PR-2); other patient amounts (copay PR-3) stay with the patient; OA-23
    carries everything the primary paid or adjusted. Line by line when the claim has the
    primary's line adjudications (2430), else at claim level from the 2320 CAS."""
    primary = _primary(claim.prior_payers)
    line_level = any(
        adjudication.payer_id == primary.payer_id
        for line in claim.lines
        for adjudication in line.adjudications
    )
    if not line_level:
        paid, adjustments = _secondary_share(claim.total_charge_cents, primary.adjustments)
        return _claim(claim, payer, pccn, "2", [], adjustments, paid)
    lines = []
    for line in claim.lines:
        primary_adjustments = [
            adjustment
            for adjudication in line.adjudications
            if adjudication.payer_id == primary.payer_id
            for adjustment in adjudication.adjustments
        ]
        paid, adjustments = _secondary_share(line.charge_cents, primary_adjustments)
        lines.append(_remittance_line(line, paid, adjustments, None))
    return _claim(claim, payer, pccn, "2", lines, [])


def reverse(original: RemittanceClaim) -> RemittanceClaim:
    """Takes back an earlier adjudication: the same claim with every amount negated."""
    responsibility = original.patient_responsibility_cents
    return original.model_copy(
        update={
            "status": "22",
            "charge_cents": -original.charge_cents,
            "paid_cents": -original.paid_cents,
            "patient_responsibility_cents": None if responsibility is None else -responsibility,
            "adjustments": _negated(original.adjustments),
            "outpatient": None,
            "lines": [
                line.model_copy(
                    update={
                        "charge_cents": -line.charge_cents,
                        "paid_cents": -line.paid_cents,
                        "units_paid": None if line.units_paid is None else -line.units_paid,
                        "adjustments": _negated(line.adjustments),
                        "allowed_cents": None,
                        "remark_codes": [],
                    }
                )
                for line in original.lines
            ],
        }
    )


def remittance(
    payer: PayerInfo,
    payee: RemittancePayee,
    claims: list[RemittanceClaim],
    control_number: str,
    payment_date: date,
    seed: int,
) -> Remittance:
    """One 835 transaction: a check for the net of the claims, or a notice when it is 0.

    A negative net (reversals only, e.g. the answer to a void) is carried forward as a
    PLB FB recoupment; when one claim was reversed, its reference is that claim's patient
    control number, so the provider can tie the recoupment to the claim it takes back.
    """
    net = sum(claim.paid_cents for claim in claims)
    carried = []
    if net < 0:
        reversed_ids = [c.patient_control_number for c in claims if c.status == "22"]
        carried.append(
            ProviderAdjustment(
                provider_id=payee.npi,
                fiscal_period_date=date(payment_date.year, 12, 31),
                reason="FB",
                reference=reversed_ids[0] if len(reversed_ids) == 1 else None,
                amount_cents=net,
            )
        )
    payment = max(net, 0)
    content = "|".join([payee.npi, *(f"{c.payer_claim_control_number}:{c.status}" for c in claims)])
    return Remittance(
        control_number=control_number,
        handling="I" if payment else "H",
        payment_cents=payment,
        payment_method="CHK" if payment else "NON",
        payment_date=payment_date,
        trace_number=f"{payer.claim_prefix}{draw(seed, 'trace', content) % 10**12:012d}",
        payer_trace_id=payer.trace_originator,
        production_date=payment_date,
        payer=RemittancePayer(
            name=payer.x12_name,
            identifier=payer.payer_id,
            address=payer.address,
            technical_contact=Contact(name="EDI SUPPORT", phone=payer.phone),
        ),
        payee=payee,
        claims=claims,
        provider_adjustments=carried,
    )


def payee_of(claim: ProfessionalClaim) -> RemittancePayee:
    provider = claim.billing_provider
    return RemittancePayee(
        name=provider.name, npi=provider.npi, address=provider.address, tax_id=provider.tax_id
    )


# --- helpers -----------------------------------------------------------------------------


def _primary(prior_payers: list[PriorPayer]) -> PriorPayer:
    return next((p for p in prior_payers if p.payer_responsibility == "P"), prior_payers[0])


def _secondary_share(
    charge_cents: int, primary_adjustments: Iterable[Adjustment]
) -> tuple[int, list[Adjustment]]:
    patient = [a for a in primary_adjustments if a.group == "PR"]
    paid = sum(a.amount_cents for a in patient if a.reason in ("1", "2"))
    kept: dict[str, int] = {}
    for a in patient:
        if a.reason not in ("1", "2"):
            kept[a.reason] = kept.get(a.reason, 0) + a.amount_cents
    primary_share = charge_cents - sum(a.amount_cents for a in patient)
    adjustments = _nonzero(
        Adjustment(group="OA", reason="23", amount_cents=primary_share),
        *(Adjustment(group="PR", reason=r, amount_cents=cents) for r, cents in kept.items()),
    )
    return paid, adjustments


def _nonzero(*adjustments: Adjustment) -> list[Adjustment]:
    return [a for a in adjustments if a.amount_cents != 0]


def _negated(adjustments: list[Adjustment]) -> list[Adjustment]:
    return [a.model_copy(update={"amount_cents": -a.amount_cents}) for a in adjustments]


def _remittance_line(
    line: ServiceLine, paid: int, adjustments: list[Adjustment], allowed: int | None
) -> RemittanceLine:
    ranged = line.service_date_end is not None and line.service_date_end != line.service_date
    return RemittanceLine(
        procedure=line.procedure,
        charge_cents=line.charge_cents,
        paid_cents=paid,
        units_paid=line.units,
        service_date=None if ranged else line.service_date,
        service_start=line.service_date if ranged else None,
        service_end=line.service_date_end if ranged else None,
        adjustments=adjustments,
        line_control_number=line.line_control_number,
        allowed_cents=allowed,
    )


def _claim(
    claim: ProfessionalClaim,
    payer: PayerInfo,
    pccn: str,
    status: Literal["1", "2", "4"],
    lines: list[RemittanceLine],
    adjustments: list[Adjustment],
    paid: int | None = None,
) -> RemittanceClaim:
    """CLP and its parties; paid and patient share follow from the lines and adjustments."""
    every = adjustments + [a for line in lines for a in line.adjustments]
    subscriber = claim.subscriber
    rendering = claim.rendering_provider
    return RemittanceClaim(
        patient_control_number=claim.patient_control_number,
        status=status,
        charge_cents=claim.total_charge_cents,
        paid_cents=sum(line.paid_cents for line in lines) if paid is None else paid,
        patient_responsibility_cents=sum(a.amount_cents for a in every if a.group == "PR"),
        filing_indicator=payer.filing_indicator,
        payer_claim_control_number=pccn,
        facility_type_code=claim.place_of_service,
        frequency_code=claim.frequency_code,
        adjustments=adjustments,
        patient=RemittanceParty(
            last_name=subscriber.last_name,
            first_name=subscriber.first_name,
            middle_name=subscriber.middle_name,
            id_qualifier="MI",
            identifier=subscriber.member_id,
        ),
        rendering_provider=None
        if rendering is None
        else RemittanceParty(
            entity_type=rendering.entity_type,
            last_name=rendering.last_name,
            first_name=rendering.first_name,
            id_qualifier="XX",
            identifier=rendering.npi,
        ),
        lines=lines,
    )
