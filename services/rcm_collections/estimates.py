"""What a patient will owe for scheduled services, before the visit: pure arithmetic.

Insured: each procedure's contracted allowed amount (fee_schedule.csv, per payer and
code, per unit) shared as a payer adjudicates a claim: the copay once per visit on the
first office visit (E/M) line, then the deductible still remaining, then coinsurance on
the rest (half a cent up), each capped by the out-of-pocket maximum still remaining;
preventive services carry no cost sharing. A code the payer has no contracted rate for is
assumed not covered (the provider adjusts it off). Self-pay: a good-faith estimate at the
chargemaster's prices (list_prices.csv, the coding service's chargemaster).

It is an estimate: the benefits are those the 271 reported when eligibility was
verified; other claims adjudicated before this one spend the same deductible.
"""

from __future__ import annotations

import csv
import importlib.resources
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel
from rcm_shared.errors import Invalid

EVALUATION_AND_MANAGEMENT = frozenset(
    {"99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215"}
)
PREVENTIVE = frozenset({"99396", "90686", "G0008"})  # no cost sharing (ACA)

INSURED_ASSUMPTIONS = (
    "benefits as the payer's 271 reported them at eligibility verification",
    "allowed amounts from the contracted fee schedule per payer and procedure",
    "copay once per visit on the first office visit line; then deductible; then coinsurance",
    "preventive services without cost sharing; codes without a contracted rate not covered",
    "other claims adjudicated first may spend the same deductible and out-of-pocket",
)
SELF_PAY_ASSUMPTIONS = (
    "good-faith estimate for a patient without coverage, at the chargemaster's prices",
    "services, units and prices as scheduled; other services add to it",
)


class Benefits(BaseModel):
    """The primary coverage's benefits from the 271 (eligibility-verified)."""

    payer_id: str
    copay_cents: int = 0
    deductible_remaining_cents: int = 0
    coinsurance_basis_points: int = 0
    out_of_pocket_remaining_cents: int | None = None


class EstimateLine(BaseModel):
    code: str
    units: int
    charge_cents: int
    allowed_cents: int
    copay_cents: int = 0
    deductible_cents: int = 0
    coinsurance_cents: int = 0
    patient_cents: int = 0
    covered: bool = True


class Breakdown(BaseModel):
    lines: list[EstimateLine]
    charges_cents: int
    allowed_cents: int
    copay_cents: int
    deductible_cents: int
    coinsurance_cents: int
    patient_cents: int
    insurance_cents: int
    assumptions: list[str]


@dataclass(frozen=True)
class FeeSchedule:
    allowed_per_unit: Mapping[tuple[str, str], int]  # (payer id, code) -> cents
    list_prices: Mapping[str, int]  # code -> cents per unit (the chargemaster)

    def unknown_codes(self, codes: Sequence[str]) -> list[str]:
        return sorted({code for code in codes if code not in self.list_prices})


def _rows(name: str) -> list[dict[str, str]]:
    text = importlib.resources.files("rcm_collections").joinpath(name).read_text()
    return list(csv.DictReader(text.splitlines()))


def shipped_fee_schedule() -> FeeSchedule:
    allowed = {
        (row["payer_id"], row["code"]): int(row["allowed_cents_per_unit"])
        for row in _rows("fee_schedule.csv")
    }
    prices = {row["code"]: int(row["unit_price_cents"]) for row in _rows("list_prices.csv")}
    return FeeSchedule(allowed, prices)


def _priced(procedures: Sequence[tuple[str, int]], fees: FeeSchedule) -> None:
    unknown = fees.unknown_codes([code for code, _ in procedures])
    if unknown:
        raise Invalid(
            "procedures: not on the chargemaster",
            reasons=[f"procedures: code {code} is not on the chargemaster" for code in unknown],
        )


def self_pay_estimate(procedures: Sequence[tuple[str, int]], fees: FeeSchedule) -> Breakdown:
    _priced(procedures, fees)
    lines = []
    for code, units in procedures:
        charge = fees.list_prices[code] * units
        lines.append(
            EstimateLine(
                code=code,
                units=units,
                charge_cents=charge,
                allowed_cents=charge,
                patient_cents=charge,
            )
        )
    total = sum(line.charge_cents for line in lines)
    return Breakdown(
        lines=lines,
        charges_cents=total,
        allowed_cents=total,
        copay_cents=0,
        deductible_cents=0,
        coinsurance_cents=0,
        patient_cents=total,
        insurance_cents=0,
        assumptions=list(SELF_PAY_ASSUMPTIONS),
    )


def insured_estimate(
    procedures: Sequence[tuple[str, int]], benefits: Benefits, fees: FeeSchedule
) -> Breakdown:
    _priced(procedures, fees)
    copay_left = benefits.copay_cents
    deductible_left = max(benefits.deductible_remaining_cents, 0)
    # No maximum reported: nothing caps the share (an estimate errs toward owing more).
    out_of_pocket_left = (
        None
        if benefits.out_of_pocket_remaining_cents is None
        else max(benefits.out_of_pocket_remaining_cents, 0)
    )

    def capped(amount: int) -> int:
        return amount if out_of_pocket_left is None else min(amount, out_of_pocket_left)

    lines = []
    for code, units in procedures:
        charge = fees.list_prices[code] * units
        rate = fees.allowed_per_unit.get((benefits.payer_id, code))
        if rate is None:
            lines.append(
                EstimateLine(
                    code=code, units=units, charge_cents=charge, allowed_cents=0, covered=False
                )
            )
            continue
        allowed = rate * units
        copay = deductible = coinsurance = 0
        if code not in PREVENTIVE:
            if code in EVALUATION_AND_MANAGEMENT and copay_left and allowed:
                copay = capped(min(copay_left, allowed))
                copay_left = 0
            if out_of_pocket_left is not None:
                out_of_pocket_left -= copay
            deductible = capped(min(allowed - copay, deductible_left))
            deductible_left -= deductible
            if out_of_pocket_left is not None:
                out_of_pocket_left -= deductible
            rest = allowed - copay - deductible
            coinsurance = capped((rest * benefits.coinsurance_basis_points + 5_000) // 10_000)
            if out_of_pocket_left is not None:
                out_of_pocket_left -= coinsurance
        lines.append(
            EstimateLine(
                code=code,
                units=units,
                charge_cents=charge,
                allowed_cents=allowed,
                copay_cents=copay,
                deductible_cents=deductible,
                coinsurance_cents=coinsurance,
                patient_cents=copay + deductible + coinsurance,
            )
        )
    allowed_total = sum(line.allowed_cents for line in lines)
    patient = sum(line.patient_cents for line in lines)
    return Breakdown(
        lines=lines,
        charges_cents=sum(line.charge_cents for line in lines),
        allowed_cents=allowed_total,
        copay_cents=sum(line.copay_cents for line in lines),
        deductible_cents=sum(line.deductible_cents for line in lines),
        coinsurance_cents=sum(line.coinsurance_cents for line in lines),
        patient_cents=patient,
        insurance_cents=allowed_total - patient,
        assumptions=list(INSURED_ASSUMPTIONS),
    )
