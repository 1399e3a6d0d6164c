"""A void (frequency 8) is answered with the reversal of the claim it names, and the money
it takes back is a PLB FB recoupment that names that claim."""

from __future__ import annotations

from rcm_payer_simulator import adjudication as rules
from rcm_payer_simulator.payers import PAYERS
from rcm_x12 import check_835_balance

from .factories import claim
from .test_simulator import SEED, active, first, ordinary, remittances, remitted, run, simulator


def deductible_met(member_id: str) -> bool:
    benefits = rules.member_benefits(SEED, PAYERS["ACME01"], member_id)
    return active(member_id) and benefits.deductible_met_cents == benefits.deductible_cents


MEMBER = first(deductible_met, "AB{:09d}")  # the payer pays something


def test_a_void_reverses_the_paid_claim_and_the_recoupment_names_it() -> None:
    sim = simulator()
    paid_id = first(ordinary)
    run(sim, [claim(paid_id, member_id=MEMBER)])
    (paid,) = remitted(sim)
    assert paid.status == "1"
    assert paid.paid_cents > 0
    void = claim(
        paid_id.replace("-1", "-2"),
        member_id=MEMBER,
        frequency="8",
        replaces=paid.payer_claim_control_number,
    )
    run(sim, [void], start=100)
    *_, document = remittances(sim)
    (transaction,) = document.transactions
    (reversal,) = transaction.claims  # no adjudication of the void itself
    assert (reversal.status, reversal.patient_control_number) == ("22", paid_id)
    assert reversal.paid_cents == -paid.paid_cents
    (recoupment,) = transaction.provider_adjustments
    assert (recoupment.reason, recoupment.reference) == ("FB", paid_id)
    assert recoupment.amount_cents == -paid.paid_cents
    assert transaction.payment_cents == 0
    assert check_835_balance(document) == []
    # The voided claim cannot be voided or replaced again.
    run(sim, [void.model_copy(update={"patient_control_number": "E9-3"})], start=200)
    assert len(remittances(sim)) == 2
