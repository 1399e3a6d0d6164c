"""The payers' rules: every outcome balances, cost sharing follows the plan, and every
decision is a pure function of the seed and the id."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rcm_payer_simulator import adjudication as rules
from rcm_payer_simulator.payers import (
    EVALUATION_AND_MANAGEMENT,
    LIST_PRICES_CENTS,
    PAYERS,
    PREVENTIVE,
    PayerInfo,
)
from rcm_x12 import (
    Envelope,
    ProfessionalClaim,
    RemittanceClaim,
    RemittanceDocument,
    build_835,
    check_835_balance,
    parse_835,
    validate_with_pyx12,
)

from .factories import PARTNER, STAMP, claim, secondary_claim

SEED = 20261125
PAY_DAY = date(2026, 3, 9)
CODES = [*LIST_PRICES_CENTS, "99499"]  # one code no payer has a fee for


def remit(payer: PayerInfo, claims: list[RemittanceClaim]) -> RemittanceDocument:
    payee = rules.payee_of(claim("E1-1"))
    envelope = Envelope(
        sender_id="RCMCLEARING",
        receiver_id=PARTNER,
        control_number=7,
        group_control_number=7,
        created=STAMP,
    )
    return RemittanceDocument(
        envelope=envelope,
        transactions=[rules.remittance(payer, payee, claims, "0001", PAY_DAY, SEED)],
    )


def assert_balanced_and_valid_x12(document: RemittanceDocument) -> None:
    assert check_835_balance(document) == []
    text = build_835(document)
    assert parse_835(text) == document
    ok, errors = validate_with_pyx12(text)
    assert ok, errors


payers = st.sampled_from(list(PAYERS.values()))
benefits = st.builds(
    rules.Benefits,
    plan_name=st.just("PLAN"),
    copay_cents=st.sampled_from([0, 20_00, 30_00, 40_00]),
    deductible_cents=st.integers(500_00, 3000_00),
    deductible_met_cents=st.just(0),
    coinsurance_percent=st.sampled_from([0, 10, 20, 30]),
    out_of_pocket_cents=st.integers(0, 8000_00),
    out_of_pocket_met_cents=st.just(0),
)
accumulators = st.builds(
    rules.Accumulators,
    deductible_remaining_cents=st.integers(0, 3000_00),
    out_of_pocket_remaining_cents=st.integers(0, 8000_00),
)
lines = st.lists(
    st.tuples(
        st.sampled_from(CODES),
        st.integers(0, 2000_00),
        st.decimals(min_value=1, max_value=20, places=0),
    ),
    min_size=1,
    max_size=6,
)


@st.composite
def claims(draw: st.DrawFn) -> ProfessionalClaim:
    number = draw(st.integers(1, 10**9))
    return claim(f"E{number:012d}-1", draw(lines), member_id=f"AB{number % 10**9:09d}")


@given(claims(), payers, benefits, accumulators)
def test_a_paid_claim_balances_and_shares_cost_by_the_plan(
    submitted: ProfessionalClaim,
    payer: PayerInfo,
    plan: rules.Benefits,
    before: rules.Accumulators,
) -> None:
    result = rules.adjudicate(submitted, payer, "AC1", plan, before)
    remitted = result.claim
    assert check_835_balance(remit(payer, [remitted])) == []
    copays = 0
    for line, sent in zip(remitted.lines, submitted.lines, strict=True):
        by_reason = {(a.group, a.reason): a.amount_cents for a in line.adjustments}
        allowed = line.allowed_cents or 0
        assert 0 <= allowed <= line.charge_cents
        assert 0 <= line.paid_cents <= allowed
        if sent.procedure.code not in payer.fee_schedule:
            assert by_reason == {("CO", "96"): line.charge_cents}
            continue
        assert by_reason.get(("CO", "45"), 0) == line.charge_cents - allowed
        patient = sum(v for (group, _), v in by_reason.items() if group == "PR")
        assert allowed - patient == line.paid_cents
        if sent.procedure.code in PREVENTIVE:
            assert patient == 0
        if ("PR", "3") in by_reason:
            assert sent.procedure.code in EVALUATION_AND_MANAGEMENT
            copays += 1
    assert copays <= 1
    deductible = sum(
        a.amount_cents for line in remitted.lines for a in line.adjustments if a.reason == "1"
    )
    assert deductible == result.deductible_applied_cents <= before.deductible_remaining_cents
    assert remitted.patient_responsibility_cents == result.out_of_pocket_applied_cents
    assert result.out_of_pocket_applied_cents <= before.out_of_pocket_remaining_cents
    assert result.accumulators == before.spend(deductible, result.out_of_pocket_applied_cents)


@given(claims(), payers, st.sampled_from(["16", "18", "27", "29", "50", "97", "197"]))
def test_a_denied_claim_balances_and_pays_nothing(
    submitted: ProfessionalClaim, payer: PayerInfo, reason: str
) -> None:
    denied = rules.deny(submitted, payer, "AC1", reason)
    assert (denied.status, denied.paid_cents, denied.patient_responsibility_cents) == ("4", 0, 0)
    assert [(a.group, a.reason) for a in denied.adjustments] == [("CO", reason)]
    assert (denied.outpatient is not None) == (reason == "16")
    assert check_835_balance(remit(payer, [denied])) == []


@given(claims(), payers, benefits, accumulators, st.booleans())
def test_a_reversal_negates_the_original_and_balances_beside_the_new_claim(
    submitted: ProfessionalClaim,
    payer: PayerInfo,
    plan: rules.Benefits,
    before: rules.Accumulators,
    denied_first: bool,
) -> None:
    if denied_first:
        original = rules.deny(submitted, payer, "AC1", "97")
    else:
        original = rules.adjudicate(submitted, payer, "AC1", plan, before).claim
    reversal = rules.reverse(original)
    assert reversal.status == "22"
    assert reversal.payer_claim_control_number == original.payer_claim_control_number
    assert reversal.charge_cents == -original.charge_cents
    assert reversal.paid_cents == -original.paid_cents
    assert reversal.adjustment_total_cents() == -original.adjustment_total_cents()
    corrected = rules.adjudicate(submitted, payer, "AC2", plan, before).claim
    document = remit(payer, [reversal, corrected])
    assert check_835_balance(document) == []
    assert document.transactions[0].payment_cents == max(
        corrected.paid_cents - original.paid_cents, 0
    )
    alone = remit(payer, [reversal])  # a void: the money goes back through a PLB
    assert check_835_balance(alone) == []
    assert alone.transactions[0].payment_cents == 0


@given(claims(), payers, benefits, accumulators, st.booleans())
def test_a_secondary_pays_the_primary_deductible_and_coinsurance(
    submitted: ProfessionalClaim,
    payer: PayerInfo,
    plan: rules.Benefits,
    before: rules.Accumulators,
    line_level: bool,
) -> None:
    primary = rules.adjudicate(submitted, payer, "AC1", plan, before).claim
    secondary = PAYERS["SUMMIT"]
    second = secondary_claim("E2-1", submitted, primary, line_level=line_level)
    paid = rules.adjudicate_secondary(second, secondary, "SM1")
    assert check_835_balance(remit(secondary, [paid])) == []
    primary_share = [a for line in primary.lines for a in line.adjustments if a.group == "PR"]
    assert paid.status == "2"
    assert paid.paid_cents == sum(a.amount_cents for a in primary_share if a.reason in ("1", "2"))
    copay = sum(a.amount_cents for a in primary_share if a.reason == "3")
    assert paid.patient_responsibility_cents == copay
    every = paid.adjustments + [a for line in paid.lines for a in line.adjustments]
    other_payer = sum(a.amount_cents for a in every if (a.group, a.reason) == ("OA", "23"))
    assert other_payer == submitted.total_charge_cents - sum(a.amount_cents for a in primary_share)
    assert bool(paid.lines) == line_level


def test_cost_sharing_example() -> None:
    """Acme allows $92.40 for a 99213 billed $150 and $8.40 for a 36415 billed $20."""
    plan = rules.Benefits("PLAN", 20_00, 1000_00, 0, 20, 6000_00, 0)
    before = rules.Accumulators(50_00, 1000_00)
    result = rules.adjudicate(claim("E1-1"), PAYERS["ACME01"], "AC1", plan, before)
    office, lab = result.claim.lines
    amounts = [
        [(a.group, a.reason, a.amount_cents) for a in line.adjustments] for line in (office, lab)
    ]
    # 99213: copay 20, deductible 50 of the 72.40 left, 20% of the 22.40 rest = 4.48.
    assert amounts[0] == [
        ("CO", "45", 57_60),
        ("PR", "3", 20_00),
        ("PR", "1", 50_00),
        ("PR", "2", 4_48),
    ]
    assert office.paid_cents == 17_92
    # 36415: deductible met, 20% of 8.40 = 1.68.
    assert amounts[1] == [("CO", "45", 11_60), ("PR", "2", 1_68)]
    assert lab.paid_cents == 6_72
    assert result.accumulators == rules.Accumulators(0, 1000_00 - 20_00 - 50_00 - 4_48 - 1_68)


def test_preventive_visits_cost_the_patient_nothing() -> None:
    plan = rules.Benefits("PLAN", 40_00, 3000_00, 0, 30, 8000_00, 0)
    visit = claim("E1-1", [("99396", 250_00), ("90686", 55_00), ("G0008", 35_00)])
    result = rules.adjudicate(visit, PAYERS["BLUEPK"], "BP1", plan, plan.starting_accumulators())
    assert result.claim.patient_responsibility_cents == 0
    assert all(line.paid_cents == line.allowed_cents for line in result.claim.lines)


def test_out_of_pocket_maximum_caps_the_patient_share() -> None:
    plan = rules.Benefits("PLAN", 40_00, 3000_00, 0, 30, 8000_00, 0)
    result = rules.adjudicate(
        claim("E1-1", [("99215", 400_00)]),
        PAYERS["ACME01"],
        "AC1",
        plan,
        rules.Accumulators(3000_00, 25_00),
    )
    assert result.claim.patient_responsibility_cents == 25_00
    assert result.accumulators.out_of_pocket_remaining_cents == 0


def test_units_multiply_the_fee_and_the_fee_never_exceeds_the_charge() -> None:
    acme = PAYERS["ACME01"]
    ten_mg = claim("E1-1", [("J1100", 100_00, Decimal(10))]).lines[0]
    assert rules.allowed_cents(acme, ten_mg) == acme.fee_schedule["J1100"] * 10
    cheap = claim("E1-1", [("99205", 1_00)]).lines[0]
    assert rules.allowed_cents(acme, cheap) == 1_00


def test_fee_schedules_cover_the_agreed_codes_at_55_to_80_percent_and_differ() -> None:
    for payer in PAYERS.values():
        assert set(payer.fee_schedule) == set(LIST_PRICES_CENTS)
        for code, allowed in payer.fee_schedule.items():
            assert 0.55 <= allowed / LIST_PRICES_CENTS[code] <= 0.80, (payer.payer_id, code)
    assert len({PAYERS[p].fee_schedule["99213"] for p in PAYERS}) == len(PAYERS)


# --- determinism and rates -----------------------------------------------------------


def test_same_seed_same_decisions_whatever_the_order() -> None:
    acme = PAYERS["ACME01"]
    first, second = claim("E000000000001-1"), claim("E000000000002-1", member_id="ZZ000000002")

    def run(order: list[ProfessionalClaim]) -> dict[str, RemittanceClaim]:
        out = {}
        for submitted in order:
            member = submitted.subscriber.member_id
            plan = rules.member_benefits(SEED, acme, member)
            pccn = rules.payer_claim_control_number(SEED, acme, submitted)
            out[submitted.patient_control_number] = rules.adjudicate(
                submitted, acme, pccn, plan, plan.starting_accumulators()
            ).claim
        return out

    assert run([first, second]) == run([second, first])
    assert build_835(remit(acme, list(run([first, second]).values()))) == build_835(
        remit(acme, list(run([first, second]).values()))
    )


def test_the_payers_data_depends_on_the_seed() -> None:
    members = [f"AB{n:09d}" for n in range(500)]
    statuses = [rules.member_status(1, "ACME01", m) for m in members]
    assert statuses != [rules.member_status(2, "ACME01", m) for m in members]
    acme = PAYERS["ACME01"]
    assert rules.member_benefits(1, acme, "AB1") == rules.member_benefits(1, acme, "AB1")
    plans = {rules.member_benefits(seed, acme, "AB1") for seed in range(20)}
    assert len(plans) > 1


def test_member_outcomes_come_in_the_agreed_shares() -> None:
    statuses = [rules.member_status(SEED, "ACME01", f"AB{n:09d}") for n in range(5000)]
    assert 50 <= statuses.count("not-found") <= 150  # ~2%
    assert 125 <= statuses.count("inactive") <= 275  # ~4%
    terminated = [rules.retro_termination(SEED, "ACME01", f"AB{n:09d}") for n in range(5000)]
    retro = [day for day in terminated if day is not None]
    assert 75 <= len(retro) <= 225  # ~3%, all among the members the 271 calls active
    assert all(statuses[n] == "active" for n, day in enumerate(terminated) if day is not None)
    assert {day.day for day in retro} == {1}


@pytest.mark.parametrize("payer_id", list(PAYERS))
def test_benefits_are_within_the_plan_ranges(payer_id: str) -> None:
    for n in range(300):
        plan = rules.member_benefits(SEED, PAYERS[payer_id], f"AB{n:09d}")
        assert plan.copay_cents in (0, 20_00, 30_00, 40_00)
        assert 500_00 <= plan.deductible_cents <= 3000_00
        assert 0 <= plan.deductible_met_cents <= plan.deductible_cents
        assert plan.coinsurance_percent in (0, 10, 20, 30)
        assert plan.out_of_pocket_met_cents <= plan.out_of_pocket_cents


# --- the X12 itself ----------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(claims(), benefits, accumulators)
def test_every_outcome_is_valid_x12_for_pyx12(
    submitted: ProfessionalClaim, plan: rules.Benefits, before: rules.Accumulators
) -> None:
    acme = PAYERS["ACME01"]
    paid = rules.adjudicate(submitted, acme, "AC1", plan, before).claim
    denied = rules.deny(submitted, acme, "AC2", "16")
    assert_balanced_and_valid_x12(remit(acme, [paid, denied, rules.reverse(paid)]))
    summit = PAYERS["SUMMIT"]
    for line_level in (True, False):
        second = secondary_claim("E2-1", submitted, paid, line_level=line_level)
        assert_balanced_and_valid_x12(
            remit(summit, [rules.adjudicate_secondary(second, summit, "SM1")])
        )
    assert_balanced_and_valid_x12(remit(acme, [rules.reverse(denied)]))
