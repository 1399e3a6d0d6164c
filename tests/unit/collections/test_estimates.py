"""Estimates before the visit: the arithmetic worked by hand, the shipped data, and the
estimate kept on the account (no money moved)."""

from __future__ import annotations

import pytest
from rcm_coding.codesets import load_chargemaster
from rcm_collections import domain
from rcm_collections.estimates import (
    Benefits,
    FeeSchedule,
    insured_estimate,
    self_pay_estimate,
    shipped_fee_schedule,
)
from rcm_contracts.collections import EstimateKind, PatientEstimated
from rcm_contracts.registration import CoverageRank
from rcm_payer_simulator.payers import PAYERS
from rcm_shared.errors import Conflict, Invalid

from .support import EPISODE, RULES, T0, Sim

FEES = FeeSchedule(
    allowed_per_unit={
        ("ACME01", "99213"): 10_000,
        ("ACME01", "80061"): 4_000,
        ("ACME01", "99396"): 20_000,
        ("ACME01", "83036"): 4_003,
    },
    list_prices={"99213": 15_000, "80061": 6_500, "99396": 28_500, "36415": 2_500, "83036": 4_500},
)
BENEFITS = Benefits(
    payer_id="ACME01",
    copay_cents=2_000,
    deductible_remaining_cents=3_000,
    coinsurance_basis_points=2_000,
)


def test_copay_then_deductible_then_coinsurance_line_by_line() -> None:
    breakdown = insured_estimate([("99213", 1), ("80061", 2)], BENEFITS, FEES)
    office, lipids = breakdown.lines
    # 99213: allowed 100.00; copay 20.00; deductible 30.00 of the 80.00 left; 20% of 50.00
    assert (office.allowed_cents, office.copay_cents, office.deductible_cents) == (
        10_000,
        2_000,
        3_000,
    )
    assert (office.coinsurance_cents, office.patient_cents) == (1_000, 6_000)
    # 80061 x2: allowed 80.00; no copay (not an office visit), deductible met; 20% = 16.00
    assert (lipids.allowed_cents, lipids.copay_cents, lipids.deductible_cents) == (8_000, 0, 0)
    assert (lipids.coinsurance_cents, lipids.patient_cents) == (1_600, 1_600)
    assert breakdown.charges_cents == 15_000 + 2 * 6_500
    assert breakdown.allowed_cents == 18_000
    assert breakdown.patient_cents == 7_600
    assert breakdown.insurance_cents == 10_400
    assert (breakdown.copay_cents, breakdown.deductible_cents, breakdown.coinsurance_cents) == (
        2_000,
        3_000,
        2_600,
    )
    assert breakdown.assumptions


def test_the_out_of_pocket_maximum_caps_the_share() -> None:
    capped = BENEFITS.model_copy(update={"out_of_pocket_remaining_cents": 4_500})
    breakdown = insured_estimate([("99213", 1), ("80061", 2)], capped, FEES)
    # copay 20.00 leaves 25.00 of the maximum; the deductible takes it; nothing more is owed
    office, lipids = breakdown.lines
    assert (office.copay_cents, office.deductible_cents, office.coinsurance_cents) == (
        2_000,
        2_500,
        0,
    )
    assert lipids.patient_cents == 0
    assert breakdown.patient_cents == 4_500
    assert breakdown.insurance_cents == 18_000 - 4_500


def test_preventive_is_free_and_a_code_without_a_contracted_rate_is_not_covered() -> None:
    breakdown = insured_estimate([("99396", 1), ("36415", 1)], BENEFITS, FEES)
    preventive, venipuncture = breakdown.lines
    assert (preventive.allowed_cents, preventive.patient_cents) == (20_000, 0)
    assert not venipuncture.covered
    assert (venipuncture.allowed_cents, venipuncture.patient_cents) == (0, 0)
    assert breakdown.charges_cents == 28_500 + 2_500
    assert (breakdown.patient_cents, breakdown.insurance_cents) == (0, 20_000)


def test_coinsurance_rounds_half_a_cent_up() -> None:
    no_deductible = BENEFITS.model_copy(update={"deductible_remaining_cents": 0})
    (line,) = insured_estimate([("83036", 1)], no_deductible, FEES).lines
    assert line.coinsurance_cents == 801  # 20% of 40.03 is 8.006


def test_a_good_faith_estimate_for_self_pay_is_the_chargemaster_price() -> None:
    breakdown = self_pay_estimate([("99213", 1), ("36415", 2)], FEES)
    assert breakdown.charges_cents == breakdown.patient_cents == 15_000 + 2 * 2_500
    assert breakdown.insurance_cents == 0
    assert [line.patient_cents for line in breakdown.lines] == [15_000, 5_000]
    assert any("good-faith" in assumption for assumption in breakdown.assumptions)


def test_a_code_not_on_the_chargemaster_is_refused_with_every_one_named() -> None:
    with pytest.raises(Invalid) as refused:
        insured_estimate([("99999", 1), ("99213", 1), ("0000A", 1)], BENEFITS, FEES)
    assert len(refused.value.reasons) == 2
    assert any("99999" in reason for reason in refused.value.reasons)


def test_shipped_prices_are_the_chargemaster_s_and_rates_are_the_payers_contracts() -> None:
    fees = shipped_fee_schedule()
    chargemaster = load_chargemaster()
    assert dict(fees.list_prices) == {
        code: item.unit_price_cents for code, item in chargemaster.items()
    }
    contracted = {
        (payer.payer_id, code): cents
        for payer in PAYERS.values()
        for code, cents in payer.fee_schedule.items()
    }
    assert dict(fees.allowed_per_unit) == contracted


def insured_sim() -> Sim:
    sim = Sim()
    sim.registered()
    sim.run(
        lambda account, now: domain.record_eligibility(
            account, EPISODE, CoverageRank.PRIMARY, False, "V1", T0, RULES, now, BENEFITS
        )
    )
    return sim


def test_an_estimate_is_kept_on_the_account_and_moves_no_money() -> None:
    sim = insured_sim()
    assert sim.account.benefits == BENEFITS
    entries_before = list(sim.ledger.entries)
    sim.run(
        lambda account, now: domain.estimate(
            account, EPISODE, [("99213", 1), ("80061", 2)], FEES, "desk1", RULES, now
        )
    )
    (event,) = sim.of_type(PatientEstimated)
    assert event.kind is EstimateKind.INSURED
    assert (event.patient_cents, event.insurance_cents, event.allowed_cents) == (
        7_600,
        10_400,
        18_000,
    )
    assert event.estimate_id == f"{EPISODE}-X1"
    kept = sim.account.estimates[-1]
    assert kept.breakdown.patient_cents == 7_600
    assert kept.estimated_by == "desk1"
    assert sim.ledger.entries == entries_before
    assert domain.account_view(sim.account)["estimate"]["breakdown"]["patient_cents"] == 7_600


def test_a_self_pay_episode_gets_a_good_faith_estimate_and_an_unverified_one_none() -> None:
    unknown = Sim()
    unknown.registered()
    with pytest.raises(Conflict):
        domain.estimate(unknown.state, EPISODE, [("99213", 1)], FEES, "desk1", RULES, T0)
    unknown.failed(self_pay=True)
    decision = domain.estimate(unknown.state, EPISODE, [("99213", 1)], FEES, "desk1", RULES, T0)
    assert decision.result is not None
    assert decision.result.kind is EstimateKind.SELF_PAY
    assert decision.result.breakdown.patient_cents == 15_000


def test_a_secondary_s_benefits_do_not_replace_the_primary_s() -> None:
    sim = insured_sim()
    other = Benefits(payer_id="SUMMIT", copay_cents=0)
    sim.run(
        lambda account, now: domain.record_eligibility(
            account, EPISODE, CoverageRank.SECONDARY, False, "V2", T0, RULES, now, other
        )
    )
    assert sim.account.benefits == BENEFITS
    assert CoverageRank.SECONDARY in sim.account.verified_ranks
