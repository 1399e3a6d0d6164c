"""Refunds of credit balances, PLB recoupments and interest, and the new posting shapes
(split payments, crossovers, voids): the ledger holds at every step."""

from __future__ import annotations

from datetime import date

import pytest
from rcm_collections import domain
from rcm_contracts.claims import ClaimOutcome
from rcm_contracts.collections import EpisodeClosed, RefundApproved, StatementIssued
from rcm_contracts.payments import (
    PaymentPosted,
    PostedClaimStatus,
    ProviderAdjustmentKind,
    ProviderAdjustmentPosted,
    RefundIssued,
    RefundRecipient,
)
from rcm_contracts.registration import CoverageRank
from rcm_shared.errors import Conflict, Invalid

from .support import EPISODE, Sim, closed, later, patient_payment, posting, reversal_of

# Charges 20000: the primary pays 12000, CO-45 4000, the patient owes 4000 (PR-1 + PR-3).
PRIMARY = posting("R1-1", 12000, [("CO", "45", 4000), ("PR", "1", 2000), ("PR", "3", 2000)])


def billed() -> Sim:
    sim = Sim()
    sim.registered()
    sim.verified()
    sim.coding(20000)
    sim.posted(PRIMARY)
    sim.claim_closed(closed(1, 0, ["R1-1"]))
    return sim


def holds(sim: Sim) -> None:
    assert sim.ledger.problems() == []


def approve(
    sim: Sim, cents: int, recipient: RefundRecipient = RefundRecipient.PATIENT
) -> domain.Refund:
    decision = domain.approve_refund(
        sim.state, EPISODE, cents, recipient, "overpaid", "U7", sim.rules, later()
    )
    sim.run(lambda _a, _now: decision)
    assert decision.result is not None
    return decision.result


def issued(refund: domain.Refund) -> RefundIssued:
    return RefundIssued(
        episode_id=EPISODE,
        refund_id=refund.refund_id,
        amount_cents=refund.amount_cents,
        recipient=refund.recipient,
        reason=refund.reason,
        issued_at=later(),
    )


def plb(
    index: int, reason: str, cents: int, kind: ProviderAdjustmentKind, episode: str | None = EPISODE
) -> ProviderAdjustmentPosted:
    return ProviderAdjustmentPosted(
        adjustment_id=f"R9-P{index}",
        remittance_id="R9",
        payer_id="ACME01",
        provider_id="1100000003",
        fiscal_period_date=date(2025, 12, 31),
        reason_code=reason,
        reference=f"{EPISODE}-1" if episode else None,
        amount_cents=cents,
        kind=kind,
        episode_id=episode,
        claim_id=f"{EPISODE}-1" if episode else None,
        posted_at=later(),
    )


def adjusted(sim: Sim, event: ProviderAdjustmentPosted) -> bool:
    return sim.run(lambda a, now: domain.record_provider_adjustment(a, event, sim.rules, now))


# --- refunds ------------------------------------------------------------------------------


def test_an_overpaid_statement_is_a_credit_refunded_once_approved_and_issued() -> None:
    sim = billed()
    sim.paid(patient_payment("PAY1", 5000))
    assert sim.ledger.balance_cents == -1000
    assert sim.account.has_credit_balance
    assert sim.account.refundable_cents(RefundRecipient.PATIENT) == 1000
    assert sim.account.refundable_cents(RefundRecipient.PAYER) == 0

    with pytest.raises(Invalid, match="more than the credit 1000"):
        approve(sim, 1001)
    with pytest.raises(Conflict, match="no payer credit"):
        approve(sim, 100, RefundRecipient.PAYER)

    refund = approve(sim, 1000)
    assert refund.refund_id == f"{EPISODE}-F1"
    (approved,) = sim.of_type(RefundApproved)
    assert (approved.refund_id, approved.amount_cents, approved.approved_by) == (
        refund.refund_id,
        1000,
        "U7",
    )
    assert sim.account.pending_refund == refund
    assert sim.ledger.balance_cents == -1000  # approved is not paid: nothing moved yet
    with pytest.raises(Conflict, match="is pending"):
        approve(sim, 500)

    assert sim.refunded(issued(refund))
    holds(sim)
    assert sim.ledger.balance_cents == 0
    assert sim.account.pending_refund is None
    assert sim.account.refunds[0].status is domain.RefundStatus.ISSUED
    assert not sim.account.has_credit_balance
    assert sim.account.state is domain.AccountState.CLOSED
    (closing,) = sim.of_type(EpisodeClosed)
    assert closing.totals.patient_paid_cents == 4000
    assert not sim.refunded(issued(refund))  # issued again (a redelivery): once


def test_a_refund_waits_until_billing_is_over() -> None:
    sim = Sim()
    sim.registered()
    sim.verified()
    sim.coding(20000)
    sim.paid(patient_payment("PAY1", 25000))  # paid before any payer answered
    assert sim.account.has_credit_balance
    with pytest.raises(Conflict, match="billing is not over"):
        approve(sim, 1000)


def test_a_payer_overpayment_is_refunded_from_the_insurance_side() -> None:
    sim = billed()
    sim.paid(patient_payment("PAY1", 4000))
    assert sim.account.state is domain.AccountState.CLOSED
    sim.posted(posting("R2-1", 3000, []))  # 3000 more than the payer owed
    assert sim.ledger.insurance_balance_cents == -3000
    assert sim.account.state is domain.AccountState.OPEN
    assert sim.account.refundable_cents(RefundRecipient.PAYER) == 3000
    assert sim.account.refundable_cents(RefundRecipient.PATIENT) == 0
    refund = approve(sim, 3000, RefundRecipient.PAYER)
    assert sim.refunded(issued(refund))
    holds(sim)
    assert sim.ledger.payer_paid_cents == 12000
    assert sim.ledger.balance_cents == 0
    assert sim.account.state is domain.AccountState.CLOSED


# --- provider adjustments (PLB) -----------------------------------------------------------


def test_a_recoupment_takes_back_payer_money_and_the_payer_owes_it_again() -> None:
    sim = billed()
    sim.paid(patient_payment("PAY1", 4000))
    assert sim.account.state is domain.AccountState.CLOSED
    statements = len(sim.of_type(StatementIssued))

    assert adjusted(sim, plb(1, "WO", 3000, ProviderAdjustmentKind.RECOUPMENT))
    holds(sim)
    assert sim.ledger.payer_paid_cents == 9000
    assert sim.ledger.insurance_balance_cents == 3000
    assert sim.ledger.patient_balance_cents == 0  # not the patient's
    assert sim.account.state is domain.AccountState.OPEN
    assert len(sim.of_type(StatementIssued)) == statements  # a payer owes it: no statement
    entry = sim.ledger.entries[-1]
    assert (entry.kind, entry.amount_cents, entry.reference) == (
        domain.EntryKind.PAYER_RECOUPMENT,
        -3000,
        "R9-P1",
    )
    assert not adjusted(sim, plb(1, "WO", 3000, ProviderAdjustmentKind.RECOUPMENT))


def test_a_recoupment_of_a_duplicate_payment_resolves_the_credit_and_closes() -> None:
    sim = billed()
    sim.paid(patient_payment("PAY1", 4000))
    sim.posted(posting("R2-1", 12000, [("CO", "45", 8000)]))  # paid twice
    assert sim.ledger.balance_cents == -20000
    adjusted(sim, plb(1, "WO", 20000, ProviderAdjustmentKind.RECOUPMENT))
    holds(sim)
    assert sim.ledger.balance_cents == 0
    assert sim.account.state is domain.AccountState.CLOSED


def test_a_recoupment_collecting_a_reversal_moves_nothing_twice() -> None:
    """The payer reprocessed the claim in its CLPs (reversal, repost for less): the
    reversal took the payment back, and the PLB that collects the cash must not again."""
    sim = billed()
    sim.posted(reversal_of(PRIMARY, "R3-1"))
    sim.posted(posting("R3-2", 9000, [("CO", "45", 7000), ("PR", "1", 2000), ("PR", "3", 2000)]))
    holds(sim)
    before = sim.ledger.totals()
    assert adjusted(sim, plb(1, "WO", 3000, ProviderAdjustmentKind.RECOUPMENT))
    assert adjusted(sim, plb(2, "WO", 3000, ProviderAdjustmentKind.OTHER))
    assert adjusted(sim, plb(3, "FB", 3000, ProviderAdjustmentKind.OTHER))
    holds(sim)
    assert sim.ledger.totals() == before
    assert len(domain.account_view(sim.account)["provider_adjustments"]) == 3


def test_interest_is_income_that_changes_no_balance() -> None:
    sim = billed()
    before = (sim.ledger.insurance_balance_cents, sim.ledger.patient_balance_cents)
    assert adjusted(sim, plb(2, "L6", -150, ProviderAdjustmentKind.INTEREST))
    holds(sim)
    assert sim.ledger.interest_cents == 150
    assert (sim.ledger.insurance_balance_cents, sim.ledger.patient_balance_cents) == before
    view = domain.account_view(sim.account)
    assert view["interest_cents"] == 150
    assert view["provider_adjustments"][0]["reason_code"] == "L6"


def test_other_and_unlinked_provider_adjustments_move_nothing() -> None:
    sim = billed()
    before = sim.ledger.model_copy(deep=True)
    assert adjusted(sim, plb(3, "CS", 700, ProviderAdjustmentKind.OTHER))
    assert sim.ledger.totals() == before.totals()
    decision = domain.record_provider_adjustment(
        sim.state, plb(4, "WO", 700, ProviderAdjustmentKind.RECOUPMENT, None), sim.rules, later()
    )
    assert decision.state is None
    assert not decision.events


# --- posting shapes ------------------------------------------------------------------------


def split(posting_id: str, paid: int, co: int, pr: int, submitted: int) -> PaymentPosted:
    event = posting(posting_id, paid, [("CO", "45", co), ("PR", "2", pr)])
    return event.model_copy(update={"submitted_charge_cents": submitted})


def test_a_split_payment_never_bills_the_patient_what_the_payer_still_owes() -> None:
    sim = Sim()
    sim.registered()
    sim.verified()
    sim.coding(20000)
    # The payer answers for 8000 of the 20000 submitted; a closing comes too early.
    sim.posted(split("R1-1", 5000, 2000, 1000, 20000))
    sim.claim_closed(closed(1, 0, ["R1-1"]))
    holds(sim)
    assert sim.ledger.insurance_balance_cents == 12000
    assert sim.of_type(StatementIssued) == []
    sim.posted(split("R2-1", 9000, 2000, 1000, 20000))
    sim.claim_closed(closed(2, 0, ["R1-1", "R2-1"]))
    holds(sim)
    (statement,) = sim.of_type(StatementIssued)
    assert statement.amount_due_cents == 2000  # the PR of both parts, nothing more
    assert sim.ledger.insurance_balance_cents == 0


def test_a_crossover_waits_for_the_secondarys_own_posting() -> None:
    sim = Sim()
    sim.registered()
    sim.verified()
    sim.coding(20000)
    forwarded = PRIMARY.model_copy(update={"crossover_payer_id": "SUMMIT"})
    sim.posted(forwarded)
    sim.claim_closed(closed(1, 0, ["R1-1"]))
    assert not sim.account.billing_over
    assert sim.account.awaited_crossovers == [f"{EPISODE}-1"]
    assert sim.of_type(StatementIssued) == []
    secondary = posting(
        "R2-1", 2000, [("OA", "23", 16000), ("PR", "3", 2000)], rank=CoverageRank.SECONDARY
    )
    sim.posted(secondary)  # the crossover's 835 names our primary claim
    holds(sim)
    (statement,) = sim.of_type(StatementIssued)
    assert statement.amount_due_cents == 2000


def test_a_voided_claim_and_its_reversal_bill_nobody() -> None:
    sim = billed()
    assert len(sim.of_type(StatementIssued)) == 1
    sim.posted(reversal_of(PRIMARY, "R3-1"))
    void = closed(2, 0, ["R1-1", "R3-1"]).model_copy(update={"outcome": ClaimOutcome.VOIDED})
    sim.claim_closed(void)
    holds(sim)
    assert sim.account.claims is not None
    assert sim.account.claims.outcome == "voided"
    assert sim.ledger.patient_balance_cents == 0  # the patient's share went with the claim
    assert sim.ledger.insurance_balance_cents == 20000
    assert len(sim.of_type(StatementIssued)) == 1
    assert sim.account.state is domain.AccountState.OPEN
    (open_statement,) = domain.statement_views(sim.account, domain.StatementStatus.OPEN)
    assert open_statement["amount_due_cents"] == 0  # the charges are no longer the patient's


def test_a_secondary_denial_leaves_the_primarys_patient_share_and_no_credit() -> None:
    """The secondary denies the whole charge (e.g. CO-29, its timely filing): none of it
    is the episode's to adjust again, and the patient still owes what the primary left.
    Seen in a run: counted, it made a credit of the primary's contractual adjustment."""
    sim = Sim()
    sim.registered()
    sim.verified()
    sim.coding(20000)
    sim.posted(PRIMARY)
    denial = posting(
        "R5-1",
        0,
        [("CO", "29", 20000)],
        rank=CoverageRank.SECONDARY,
        claim_id=f"{EPISODE}-2",
        status=PostedClaimStatus.DENIED,
    )
    sim.posted(denial)
    holds(sim)
    assert (sim.ledger.adjustments_cents, sim.ledger.patient_balance_cents) == (4000, 4000)
    assert sim.ledger.insurance_balance_cents == 0
    sim.posted(reversal_of(denial, "R6-1"))  # and the secondary takes it back
    holds(sim)
    assert (sim.ledger.adjustments_cents, sim.ledger.patient_balance_cents) == (4000, 4000)
