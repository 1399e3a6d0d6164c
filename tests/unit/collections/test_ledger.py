"""Ledger transitions: charges, postings (CO/OA/PI/PR, OA-23, reversals), patient money."""

from __future__ import annotations

import pytest
from rcm_collections import domain
from rcm_contracts import Event
from rcm_contracts.payments import PostedClaimStatus
from rcm_contracts.registration import CoverageRank
from rcm_shared.errors import PermanentError
from rcm_shared.store import to_bson

from .support import (
    EPISODE,
    T0,
    Sim,
    later,
    patient_payment,
    posting,
    refund,
    reversal_of,
)

PRIMARY = posting("R1-1", 12000, [("CO", "45", 4000), ("PR", "1", 2000), ("PR", "3", 2000)])
# The secondary pays the primary's PR-1 and leaves PR-3 with the patient; OA-23 is the
# primary's part of the claim (paid + contractual).
SECONDARY = posting(
    "R2-1",
    2000,
    [("OA", "23", 16000), ("PR", "3", 2000)],
    rank=CoverageRank.SECONDARY,
    claim_id=f"{EPISODE}-2",
)


def insured(charges: int = 20000) -> Sim:
    sim = Sim()
    sim.coding(charges)
    sim.verified()
    return sim


def test_charges_are_the_latest_coding_and_a_correction_replaces_them() -> None:
    sim = Sim()
    sim.coding(20000, at=T0)
    assert sim.ledger.charges_cents == 20000
    assert sim.ledger.insurance_balance_cents == 20000
    assert sim.coding(18000, corrected=True, at=T0.replace(hour=16))
    assert sim.ledger.charges_cents == 18000
    # a completion delivered late (another topic) does not undo the correction
    assert not sim.coding(25000, corrected=False, at=T0.replace(hour=17))
    assert sim.coding(19000, corrected=True, at=T0.replace(hour=18))
    assert sim.ledger.charges_cents == 19000
    assert [e.amount_cents for e in sim.ledger.entries if e.kind == "charge"] == [
        20000,
        -2000,
        1000,
    ]
    assert not sim.ledger.problems()


def test_primary_posting_adjusts_contractual_and_bills_the_patient_share() -> None:
    sim = insured()
    assert sim.posted(PRIMARY)
    ledger = sim.ledger
    assert ledger.payer_paid_cents == 12000
    assert ledger.adjustments_cents == 4000
    assert ledger.patient_share_cents == 4000
    assert (ledger.insurance_balance_cents, ledger.patient_balance_cents) == (0, 4000)
    assert ledger.balance_cents == 4000
    kinds = [(e.kind.value, e.amount_cents, e.reference, e.detail) for e in ledger.entries]
    assert ("payer-payment", 12000, "R1-1", "ACME01 primary paid E0000000000a1-1") in kinds
    assert ("adjustment", 4000, "R1-1", "CO-45") in kinds
    assert ("patient-share", 4000, "R1-1", "PR primary") in kinds


def test_other_and_payer_initiated_adjustments_count_on_a_primary() -> None:
    sim = insured()
    sim.posted(posting("R1-1", 10000, [("CO", "45", 5000), ("OA", "23", 1000), ("PI", "94", 4000)]))
    assert sim.ledger.adjustments_cents == 10000
    assert sim.ledger.balance_cents == 0


def test_secondary_oa23_is_not_an_adjustment_and_its_pr_replaces_the_primary() -> None:
    sim = insured()
    sim.verified(CoverageRank.SECONDARY)
    sim.posted(PRIMARY)
    sim.posted(SECONDARY)
    ledger = sim.ledger
    assert ledger.payer_paid_cents == 14000
    assert ledger.adjustments_cents == 4000  # CO-45 only; OA-23 16000 ignored
    assert ledger.patient_share_cents == 2000
    assert (ledger.insurance_balance_cents, ledger.patient_balance_cents) == (0, 2000)
    assert next(e for e in ledger.entries if e.kind == "prior-payer").amount_cents == 16000
    assert not ledger.problems()


def test_secondary_other_adjustments_still_count() -> None:
    sim = insured()
    sim.posted(PRIMARY)
    sim.posted(
        posting(
            "R2-1",
            1500,
            [("OA", "23", 16000), ("CO", "45", 500), ("PR", "3", 2000)],
            rank=CoverageRank.SECONDARY,
        )
    )
    assert sim.ledger.adjustments_cents == 4500
    assert sim.ledger.patient_share_cents == 2000
    assert sim.ledger.balance_cents == 2000


def test_a_posting_id_seen_twice_is_applied_once() -> None:
    sim = insured()
    assert sim.posted(PRIMARY)
    before = sim.snapshot()
    # the same posting in a new envelope (e.g. posted again by payments)
    assert not sim.posted(PRIMARY.model_copy(update={"posted_at": later()}))
    assert sim.state == before


def test_reversal_undoes_a_posting_and_a_corrected_claim_replaces_it() -> None:
    sim = insured()
    denied = posting(
        "R1-1", 0, [("CO", "97", 20000)], status=PostedClaimStatus.DENIED, charge=20000
    )
    sim.posted(denied)
    assert sim.ledger.adjustments_cents == 20000
    assert sim.ledger.balance_cents == 0
    sim.coding(21000, corrected=True)
    sim.posted(reversal_of(denied, "R2-1"))
    assert sim.ledger.adjustments_cents == 0
    assert sim.ledger.insurance_balance_cents == 21000
    sim.posted(
        posting(
            "R2-2",
            15000,
            [("CO", "45", 3000), ("PR", "2", 3000)],
            claim_id=f"{EPISODE}-2",
        )
    )
    ledger = sim.ledger
    assert (ledger.payer_paid_cents, ledger.adjustments_cents) == (15000, 3000)
    assert ledger.patient_share_cents == 3000
    assert ledger.balance_cents == 3000


def test_reversing_the_secondary_gives_the_patient_the_primarys_share_again() -> None:
    sim = insured()
    sim.posted(PRIMARY)
    sim.posted(SECONDARY)
    sim.posted(reversal_of(SECONDARY, "R3-1"))
    assert sim.ledger.patient_share_cents == 4000
    assert sim.ledger.payer_paid_cents == 12000
    assert sim.ledger.balance_cents == 4000


def test_a_posting_that_does_not_balance_is_refused_and_nothing_changes() -> None:
    sim = insured()
    before = sim.snapshot()
    broken = posting("R1-1", 12000, [("CO", "45", 4000)], charge=20000)
    with pytest.raises(PermanentError, match="does not balance"):
        sim.posted(broken)
    assert sim.state == before


def test_patient_payments_and_refunds() -> None:
    sim = insured()
    sim.posted(PRIMARY)
    assert sim.paid(patient_payment("pay-1", 1000))
    assert not sim.paid(patient_payment("pay-1", 1000))  # same payment id
    assert sim.ledger.patient_paid_cents == 1000
    assert (sim.ledger.insurance_balance_cents, sim.ledger.patient_balance_cents) == (0, 3000)
    assert sim.refunded(refund("rf-1", 400))
    assert not sim.refunded(refund("rf-1", 400))
    assert sim.ledger.patient_paid_cents == 600
    assert (sim.ledger.insurance_balance_cents, sim.ledger.patient_balance_cents) == (0, 3400)


def test_a_refund_beyond_what_the_patient_paid_breaks_the_ledger_and_is_refused() -> None:
    sim = insured()
    sim.paid(patient_payment("pay-1", 1000))
    before = sim.snapshot()
    with pytest.raises(domain.LedgerError, match="patient_paid_cents -500 < 0"):
        sim.refunded(refund("rf-1", 1500))
    assert sim.state == before


def test_the_check_compares_kept_figures_with_totals_and_entries() -> None:
    ledger = domain.Ledger()
    ledger.change_charges(10000, "K1", T0, "coding-completed")
    assert not ledger.problems()
    skewed = ledger.model_copy(update={"insurance_balance_cents": 9999})
    assert any("charges 10000 !=" in p for p in skewed.problems())
    unrecorded = ledger.model_copy(
        update={"charges_cents": 10001, "insurance_balance_cents": 10001}
    )
    assert unrecorded.problems() == ["charges_cents 10001 != its entries 10000"]


def test_a_change_that_would_break_the_ledger_is_refused() -> None:
    sim = insured()
    before = sim.snapshot()

    def sloppy(account: domain.Account) -> list[Event] | None:
        account.ledger.payer_paid_cents += 100  # money without an entry or a bucket move
        return []

    with pytest.raises(domain.LedgerError, match="refused"):
        sim.run(lambda a, now: domain.decide(a, EPISODE, sloppy, sim.rules, now))
    assert sim.state == before


def test_stored_document_carries_totals_for_queries() -> None:
    sim = insured()
    sim.posted(PRIMARY)
    assert sim.state is not None
    document = to_bson(sim.state.model_dump())  # what the aggregate port stores
    assert document["totals"]["balance_cents"] == 4000
    assert document["totals"]["charges_cents"] == 20000
    assert document["invariant_holds"] is True
    assert document["open_statement_id"] is None
    assert document["state"] == "open"


def test_a_coding_sent_again_is_not_newer_after_the_database_kept_milliseconds() -> None:
    sim = Sim()
    at = T0.replace(microsecond=123456)
    assert sim.coding(20000, at=at)
    assert sim.state is not None
    assert sim.state.coding is not None
    stored = sim.state.coding.at
    sim.state.coding.at = stored.replace(microsecond=stored.microsecond // 1000 * 1000)
    assert not sim.coding(20000, at=at)
