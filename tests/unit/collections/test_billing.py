"""When billing is over, and what then: close at zero, small-balance write-off, statement."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rcm_collections import domain
from rcm_contracts.collections import (
    BalanceWrittenOff,
    EpisodeClosed,
    LedgerTotals,
    StatementIssued,
    WriteOffReason,
)
from rcm_contracts.registration import CoverageRank
from rcm_shared.errors import PermanentError

from .support import (
    EPISODE,
    Sim,
    closed,
    patient_payment,
    posting,
    refund,
)

PRIMARY = posting("R1-1", 12000, [("CO", "45", 4000), ("PR", "1", 2000), ("PR", "3", 2000)])
SECONDARY = posting(
    "R2-1",
    2000,
    [("OA", "23", 16000), ("PR", "3", 2000)],
    rank=CoverageRank.SECONDARY,
    claim_id=f"{EPISODE}-2",
)


def names(events: list[object]) -> list[str]:
    return [type(event).__name__ for event in events]


def billed(charges: int = 20000) -> Sim:
    """Insured, registered, the primary posted and its claim closed: statement for 4000."""
    sim = Sim()
    sim.registered()
    sim.verified()
    sim.coding(charges)
    sim.posted(PRIMARY)
    sim.claim_closed(closed(1, 0, ["R1-1"]))
    return sim


def test_self_pay_bills_all_charges_once_charges_and_guarantor_are_known() -> None:
    sim = Sim()
    sim.failed(self_pay=True)
    sim.coding(15000)
    assert sim.account.billing_over
    assert sim.events == []  # no guarantor yet: nobody to send a statement to
    sim.registered("G00000000000b")
    (statement,) = sim.of_type(StatementIssued)
    assert statement.sequence == 1
    assert statement.amount_due_cents == 15000
    assert statement.guarantor_id == "G00000000000b"
    assert statement.statement_id == f"{EPISODE}-S1"
    assert statement.due_date == statement.issued_at.date() + timedelta(days=30)
    assert sim.ledger.patient_balance_cents == 15000


def test_a_failure_without_self_pay_or_after_a_verification_does_not_make_self_pay() -> None:
    sim = Sim()
    sim.coding(15000)
    assert not sim.failed(self_pay=False)
    assert sim.account.coverage is domain.CoverageStatus.UNKNOWN
    sim.verified()
    sim.failed(self_pay=True)  # arrives late; a coverage was verified
    assert sim.account.coverage is domain.CoverageStatus.INSURED
    assert not sim.account.billing_over


def test_self_pay_small_charges_are_written_off_and_closed_in_one_change() -> None:
    sim = Sim()
    sim.failed()
    change = domain.record_coding(
        sim.state, EPISODE, "K1", 450, False, PRIMARY.posted_at, sim.rules, PRIMARY.posted_at
    )
    assert change.state is not None
    assert names(list(change.events)) == ["BalanceWrittenOff", "EpisodeClosed"]
    written, closing = change.events
    assert isinstance(written, BalanceWrittenOff)
    assert isinstance(closing, EpisodeClosed)
    assert written.reason is WriteOffReason.SMALL_BALANCE
    assert written.amount_cents == 450
    assert closing.totals == LedgerTotals(
        charges_cents=450,
        payer_paid_cents=0,
        adjustments_cents=0,
        patient_paid_cents=0,
        written_off_cents=450,
        balance_cents=0,
    )
    assert change.state.state is domain.AccountState.CLOSED


def test_insured_billing_waits_for_the_newest_closing_and_all_its_postings() -> None:
    sim = Sim()
    sim.registered()
    sim.verified()
    sim.coding(20000)
    sim.claim_closed(closed(1, 0, ["R1-1"]))  # the closing overtook the posting
    assert not sim.account.billing_over
    assert sim.events == []
    sim.posted(PRIMARY)
    assert sim.account.billing_over
    assert names(sim.events) == ["StatementIssued"]
    assert sim.of_type(StatementIssued)[0].amount_due_cents == 4000


def test_an_older_closing_delivered_late_changes_nothing() -> None:
    sim = Sim()
    sim.verified()
    sim.coding(20000)
    sim.posted(PRIMARY)
    sim.claim_closed(closed(2, 0, ["R1-1"]))
    assert sim.account.billing_over
    assert not sim.claim_closed(closed(1, 1, []))
    assert sim.account.claims == domain.ClaimsProgress(
        sequence=2, open_claims=0, posting_ids=["R1-1"], claim_id=f"{EPISODE}-2", outcome="paid"
    )


def test_secondary_crossover_bills_only_the_secondarys_patient_share() -> None:
    sim = Sim()
    sim.registered()
    sim.verified()
    sim.verified(CoverageRank.SECONDARY)
    sim.coding(20000)
    sim.posted(PRIMARY)
    sim.claim_closed(closed(1, 1, ["R1-1"]))  # primary paid; the secondary claim is open
    assert not sim.account.billing_over
    sim.claim_closed(closed(2, 0, ["R1-1", "R2-1"]))  # arrives before the secondary posting
    assert not sim.account.billing_over
    assert sim.events == []
    sim.posted(SECONDARY)
    (statement,) = sim.of_type(StatementIssued)
    assert statement.amount_due_cents == 2000  # PR-3 the secondary left, not the primary's 4000
    assert sim.ledger.totals() == LedgerTotals(
        charges_cents=20000,
        payer_paid_cents=14000,
        adjustments_cents=4000,
        patient_paid_cents=0,
        written_off_cents=0,
        balance_cents=2000,
    )


def test_zero_balance_closes_with_the_totals() -> None:
    sim = Sim()
    sim.verified()
    sim.coding(10000)
    sim.posted(posting("R1-1", 7000, [("CO", "45", 3000)]))
    sim.claim_closed(closed(1, 0, ["R1-1"]))
    (closing,) = sim.of_type(EpisodeClosed)
    assert closing.totals.payer_paid_cents == 7000
    assert closing.totals.adjustments_cents == 3000
    assert closing.totals.balance_cents == 0
    assert sim.account.state is domain.AccountState.CLOSED


def test_a_denial_accepted_closes_at_zero() -> None:
    sim = Sim()
    sim.verified()
    sim.coding(10000)
    sim.posted(posting("R1-1", 0, [("CO", "16", 10000)]))
    sim.claim_closed(closed(1, 0, ["R1-1"]))
    assert names(sim.events) == ["EpisodeClosed"]
    assert sim.of_type(EpisodeClosed)[0].totals.adjustments_cents == 10000


def test_a_patient_payment_to_zero_closes_and_closes_the_statement() -> None:
    sim = billed()
    sim.paid(patient_payment("pay-1", 4000))
    assert names(sim.events) == ["StatementIssued", "EpisodeClosed"]
    assert sim.of_type(EpisodeClosed)[0].totals.patient_paid_cents == 4000
    assert sim.account.open_statement is None
    assert sim.account.statements[0].status is domain.StatementStatus.CLOSED


def test_a_small_remainder_after_a_payment_is_written_off() -> None:
    sim = billed()
    sim.paid(patient_payment("pay-1", 3600))
    assert names(sim.events) == ["StatementIssued", "BalanceWrittenOff", "EpisodeClosed"]
    assert sim.of_type(BalanceWrittenOff)[0].amount_cents == 400
    totals = sim.of_type(EpisodeClosed)[0].totals
    assert (totals.patient_paid_cents, totals.written_off_cents, totals.balance_cents) == (
        3600,
        400,
        0,
    )


def test_a_larger_remainder_keeps_the_one_statement_open() -> None:
    sim = billed()
    sim.paid(patient_payment("pay-1", 1000))
    assert names(sim.events) == ["StatementIssued"]
    assert sim.account.open_statement is not None
    assert sim.ledger.balance_cents == 3000


def test_an_overpayment_stays_open_with_a_credit_until_refunded() -> None:
    sim = billed()
    sim.paid(patient_payment("pay-1", 5000))
    assert sim.account.state is domain.AccountState.OPEN
    assert sim.ledger.balance_cents == -1000
    assert names(sim.events) == ["StatementIssued"]
    sim.refunded(refund("rf-1", 1000))
    assert names(sim.events) == ["StatementIssued", "EpisodeClosed"]
    assert sim.of_type(EpisodeClosed)[0].totals.patient_paid_cents == 4000


def test_money_moving_after_closing_opens_the_account_again() -> None:
    sim = billed()
    sim.paid(patient_payment("pay-1", 4000))
    assert sim.account.state is domain.AccountState.CLOSED
    sim.paid(patient_payment("pay-2", 700))  # paid twice by the guarantor
    account = sim.account
    assert account.state is domain.AccountState.OPEN
    assert account.closed_at is None
    assert account.ledger.balance_cents == -700
    assert names(sim.events) == ["StatementIssued", "EpisodeClosed"]


def test_cancellation_before_coding_closes_with_zero_totals() -> None:
    sim = Sim()
    sim.registered()
    assert sim.cancelled()
    (closing,) = sim.of_type(EpisodeClosed)
    assert closing.totals == LedgerTotals(
        charges_cents=0,
        payer_paid_cents=0,
        adjustments_cents=0,
        patient_paid_cents=0,
        written_off_cents=0,
        balance_cents=0,
    )
    assert not sim.cancelled()
    with pytest.raises(PermanentError, match="cancelled"):
        sim.coding(10000)


def test_cancellation_after_coding_is_refused() -> None:
    sim = Sim()
    sim.coding(10000)
    with pytest.raises(PermanentError, match="cannot be cancelled"):
        sim.cancelled()
