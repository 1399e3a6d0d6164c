"""People's commands on an account: payment plans and write-offs."""

from __future__ import annotations

import pytest
from rcm_collections import domain
from rcm_contracts.collections import (
    BalanceWrittenOff,
    EpisodeClosed,
    PaymentPlanCreated,
    StatementIssued,
    WriteOffReason,
)
from rcm_shared.errors import Conflict, Invalid, NotFound

from .support import EPISODE, T0, Sim, closed, patient_payment, posting

PRIMARY = posting("R1-1", 5000, [("CO", "45", 3000), ("PR", "1", 2000)])


def billed() -> Sim:
    sim = Sim()
    sim.registered()
    sim.verified()
    sim.coding(10000)
    sim.posted(PRIMARY)
    sim.claim_closed(closed(1, 0, ["R1-1"]))
    assert sim.ledger.balance_cents == 2000
    return sim


@pytest.mark.parametrize(
    ("balance", "installments", "each", "last"),
    [(1000, 3, 334, 332), (1200, 4, 300, 300), (2001, 2, 1001, 1000), (6000, 60, 100, 100)],
)
def test_installments_round_up_and_the_last_is_smaller(
    balance: int, installments: int, each: int, last: int
) -> None:
    assert domain.split_installments(balance, installments) == (each, last)
    assert each * (installments - 1) + last == balance


def test_a_balance_too_small_for_the_installments_is_invalid() -> None:
    with pytest.raises(Invalid, match="cannot be split"):
        domain.split_installments(5, 4)


def test_a_plan_needs_an_open_statement_and_is_made_once() -> None:
    sim = Sim()
    sim.verified()
    sim.coding(10000)
    with pytest.raises(Conflict, match="no open statement"):
        sim.plan(3)
    sim = billed()
    decision = sim.plan(3)
    assert decision.state is not None
    assert decision.result is not None
    (event,) = sim.of_type(PaymentPlanCreated)
    assert (event.total_cents, event.installments, event.installment_cents) == (2000, 3, 667)
    assert decision.result.last_installment_cents == 666
    statement = sim.account.open_statement
    assert statement is not None
    assert event.first_due_date == statement.due_date
    again = sim.plan(3)  # a double submission
    assert again.state is None
    assert again.result == decision.result
    with pytest.raises(Conflict, match="already has a plan"):
        sim.plan(4)
    assert len(sim.of_type(PaymentPlanCreated)) == 1


def test_commands_on_an_unknown_episode() -> None:
    with pytest.raises(NotFound):
        domain.create_payment_plan(None, EPISODE, 3, domain.Rules(), T0)
    with pytest.raises(NotFound):
        domain.write_off(None, EPISODE, 100, WriteOffReason.CHARITY, "U1", None, domain.Rules(), T0)


def test_write_off_needs_billing_over_and_at_most_the_balance() -> None:
    sim = Sim()
    sim.verified()
    sim.coding(10000)
    with pytest.raises(Conflict, match="billing is not over"):
        sim.write_off(100)
    sim = billed()
    with pytest.raises(Invalid, match="more than the balance 2000"):
        sim.write_off(2001)
    with pytest.raises(Invalid, match="small-balance is for at most 500"):
        sim.write_off(501, "small-balance")


def test_a_partial_write_off_leaves_the_statement_open() -> None:
    sim = billed()
    decision = sim.write_off(1000, "charity")
    assert decision.result is not None
    assert decision.result.amount_cents == 1000
    assert sim.ledger.written_off_cents == 1000
    assert sim.ledger.balance_cents == 1000
    assert sim.account.open_statement is not None
    assert [type(e).__name__ for e in sim.events] == ["StatementIssued", "BalanceWrittenOff"]


def test_writing_off_to_a_small_remainder_writes_that_off_too_and_closes() -> None:
    sim = billed()
    sim.write_off(1700, "bad-debt")
    write_offs = sim.of_type(BalanceWrittenOff)
    assert [(w.amount_cents, w.reason.value) for w in write_offs] == [
        (1700, "bad-debt"),
        (300, "small-balance"),
    ]
    assert write_offs[0].write_off_id != write_offs[1].write_off_id
    assert sim.of_type(EpisodeClosed)[0].totals.written_off_cents == 2000


def test_a_write_off_with_an_id_counts_once() -> None:
    sim = billed()
    first = sim.write_off(2000, "administrative", write_off_id="WO-1")
    assert first.state is not None
    assert sim.account.state is domain.AccountState.CLOSED
    again = sim.write_off(2000, "administrative", write_off_id="WO-1")
    assert again.state is None
    assert again.result is not None
    assert again.result.write_off_id == "WO-1"
    with pytest.raises(Conflict, match="other values"):
        sim.write_off(1500, "administrative", write_off_id="WO-1")
    assert sim.ledger.written_off_cents == 2000
    with pytest.raises(Conflict, match="closed"):
        sim.write_off(100)


def test_payments_after_a_plan_follow_the_same_rules() -> None:
    sim = billed()
    sim.plan(4)
    sim.paid(patient_payment("pay-1", 500))
    sim.paid(patient_payment("pay-2", 500))
    sim.paid(patient_payment("pay-3", 500))
    assert [type(e).__name__ for e in sim.events] == [
        "StatementIssued",
        "PaymentPlanCreated",
        "BalanceWrittenOff",
        "EpisodeClosed",
    ]
    assert len(sim.of_type(StatementIssued)) == 1
