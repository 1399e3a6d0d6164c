"""Statement cadence and dunning levels, plan installments, agency placement and recall,
with the day given (an injected clock) and the ledger checked after every step."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rcm_collections import domain
from rcm_contracts.collections import (
    AccountPlacedWithAgency,
    AccountRecalledFromAgency,
    AccountReturnedByAgency,
    BalanceWrittenOff,
    DunningLevel,
    EpisodeClosed,
    PaymentPlanCompleted,
    PaymentPlanDefaulted,
    StatementIssued,
    WriteOffReason,
)
from rcm_contracts.payments import PatientPaymentReceived, PaymentMethod
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Conflict

from .support import EPISODE, RULES, Sim, closed, posting

PRIMARY = posting("R1-1", 12000, [("CO", "45", 4000), ("PR", "1", 2000), ("PR", "3", 2000)])
ISSUED = date(2025, 3, 3)  # the day the support's clock bills on


def billed(rules: domain.Rules = RULES) -> Sim:
    """Insured, the primary paid, the claim closed: the patient owes 4000, first statement."""
    sim = Sim(rules=rules)
    sim.registered()
    sim.verified()
    sim.coding(20000)
    sim.posted(PRIMARY)
    sim.claim_closed(closed(1, 0, ["R1-1"]))
    holds(sim)
    return sim


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


def holds(sim: Sim) -> None:
    assert sim.ledger.problems() == []


def dun(sim: Sim, day: date) -> str:
    decision = domain.run_dunning(sim.state, EPISODE, day, sim.rules, noon(day))
    sim.run(lambda _a, _now: decision)
    holds(sim)
    assert decision.result is not None
    return decision.result


def pay(sim: Sim, payment_id: str, cents: int, day: date) -> None:
    event = PatientPaymentReceived(
        episode_id=EPISODE,
        payment_id=payment_id,
        amount_cents=cents,
        method=PaymentMethod.PORTAL,
        received_at=noon(day),
    )
    sim.run(
        lambda account, _now: domain.record_patient_payment(account, event, sim.rules, noon(day))
    )
    holds(sim)


def statements(sim: Sim) -> list[StatementIssued]:
    return sim.of_type(StatementIssued)


def test_statements_follow_the_cadence_up_to_the_final_notice_then_the_agency() -> None:
    sim = billed()
    (first,) = statements(sim)
    assert first.dunning_level is DunningLevel.FIRST_STATEMENT
    assert sim.account.next_dunning_on == ISSUED + timedelta(days=30)

    assert dun(sim, ISSUED + timedelta(days=29)) == "nothing due"
    assert len(statements(sim)) == 1

    day2 = ISSUED + timedelta(days=30)
    assert dun(sim, day2) == "second-notice"
    assert dun(sim, day2) == "nothing due"  # the same round again does nothing
    second = statements(sim)[-1]
    assert (second.sequence, second.dunning_level) == (2, DunningLevel.SECOND_NOTICE)
    assert second.amount_due_cents == 4000
    assert [s.status for s in sim.account.statements] == [
        domain.StatementStatus.CLOSED,
        domain.StatementStatus.OPEN,
    ]

    day3 = day2 + timedelta(days=30)
    assert sim.account.next_dunning_on == day3
    assert dun(sim, day3) == "final-notice"
    assert statements(sim)[-1].dunning_level is DunningLevel.FINAL_NOTICE

    totals_before = sim.ledger.totals()
    day4 = day3 + timedelta(days=RULES.agency_after_days)
    assert sim.account.next_dunning_on == day4
    assert dun(sim, day4) == "placed with agency"
    (placed,) = sim.of_type(AccountPlacedWithAgency)
    assert (placed.automatic, placed.balance_cents, placed.agency_id) == (True, 4000, "AGENCY01")
    assert sim.ledger.totals() == totals_before  # placement moves no money
    assert sim.account.next_dunning_on is None
    assert dun(sim, day4 + timedelta(days=400)) == "nothing due"
    assert len(statements(sim)) == 3


def test_the_cadence_is_configurable_and_a_part_payment_lowers_the_next_notice() -> None:
    sim = billed(replace(RULES, statement_cycle_days=14))
    assert sim.account.next_dunning_on == ISSUED + timedelta(days=14)
    pay(sim, "PAY1", 1500, ISSUED + timedelta(days=5))
    assert dun(sim, ISSUED + timedelta(days=14)) == "second-notice"
    assert statements(sim)[-1].amount_due_cents == 2500


def test_paying_in_full_closes_and_stops_dunning() -> None:
    sim = billed()
    pay(sim, "PAY1", 4000, ISSUED + timedelta(days=3))
    assert sim.account.state is domain.AccountState.CLOSED
    assert sim.account.next_dunning_on is None
    with pytest.raises(Conflict):
        domain.place_with_agency(sim.state, EPISODE, "AG2", "U1", RULES, noon(ISSUED))


def final_notice(rules: domain.Rules = RULES) -> tuple[Sim, date]:
    sim = billed(rules)
    dun(sim, ISSUED + timedelta(days=30))
    day = ISSUED + timedelta(days=60)
    dun(sim, day)
    return sim, day


def test_a_hold_or_the_setting_stops_automatic_placement_but_not_a_person() -> None:
    sim, day = final_notice()
    sim.run(lambda a, now: domain.hold_collection(a, EPISODE, True, RULES, now))
    assert sim.account.next_dunning_on is None
    assert dun(sim, day + timedelta(days=90)) == "nothing due"
    sim.run(lambda a, now: domain.hold_collection(a, EPISODE, False, RULES, now))
    assert sim.account.next_dunning_on == day + timedelta(days=30)

    off, off_day = final_notice(replace(RULES, auto_agency_placement=False))
    assert off.account.next_dunning_on is None
    assert dun(off, off_day + timedelta(days=90)) == "nothing due"
    decision = domain.place_with_agency(off.state, EPISODE, "AG2", "U1", RULES, noon(off_day))
    off.run(lambda _a, _now: decision)
    holds(off)
    (placed,) = off.of_type(AccountPlacedWithAgency)
    assert (placed.automatic, placed.agency_id) == (False, "AG2")


def test_manual_placement_is_once_per_agency_and_not_beside_a_plan() -> None:
    sim = billed()
    first = domain.place_with_agency(sim.state, EPISODE, "AG1", "U1", RULES, noon(ISSUED))
    sim.run(lambda _a, _now: first)
    again = domain.place_with_agency(sim.state, EPISODE, "AG1", "U1", RULES, noon(ISSUED))
    assert again.state is None
    assert again.result == first.result
    with pytest.raises(Conflict):
        domain.place_with_agency(sim.state, EPISODE, "AG2", "U1", RULES, noon(ISSUED))
    with pytest.raises(Conflict):  # a plan needs the account back first
        domain.create_payment_plan(sim.state, EPISODE, 2, RULES, noon(ISSUED))

    planned = billed()
    planned.plan(2)
    with pytest.raises(Conflict):
        domain.place_with_agency(planned.state, EPISODE, "AG1", "U1", RULES, noon(ISSUED))


def test_a_recall_takes_the_account_back_and_holds_it_in_house() -> None:
    sim, day = final_notice()
    dun(sim, day + timedelta(days=30))
    assert sim.account.placement is not None
    totals = sim.ledger.totals()
    sim.run(lambda a, now: domain.recall_from_agency(a, EPISODE, RULES, now))
    holds(sim)
    (recalled,) = sim.of_type(AccountRecalledFromAgency)
    assert recalled.balance_cents == 4000
    assert sim.account.placement is None
    assert sim.account.placements[-1].status is domain.PlacementStatus.RECALLED
    assert sim.account.collection_hold
    assert sim.account.next_dunning_on is None
    assert sim.ledger.totals() == totals
    with pytest.raises(Conflict):
        domain.recall_from_agency(sim.state, EPISODE, RULES, noon(day))
    # a plan may be made once the account is back
    decision = domain.create_payment_plan(
        sim.state, EPISODE, 2, RULES, noon(day + timedelta(days=31))
    )
    assert decision.result is not None


def test_an_uncollectable_return_writes_the_balance_off_to_bad_debt_and_closes() -> None:
    sim, day = final_notice()
    with pytest.raises(Conflict):  # not placed yet
        domain.return_from_agency(sim.state, EPISODE, RULES, noon(day))
    dun(sim, day + timedelta(days=30))
    pay(sim, "PAY-AGENCY", 1000, day + timedelta(days=40))  # the agency collected part
    sim.run(lambda a, now: domain.return_from_agency(a, EPISODE, RULES, now))
    holds(sim)
    (returned,) = sim.of_type(AccountReturnedByAgency)
    assert returned.balance_cents == 3000
    (written,) = sim.of_type(BalanceWrittenOff)
    assert (written.reason, written.amount_cents) == (WriteOffReason.BAD_DEBT, 3000)
    assert sim.of_type(EpisodeClosed)
    totals = sim.ledger.totals()
    assert (totals.written_off_cents, totals.patient_paid_cents, totals.balance_cents) == (
        3000,
        1000,
        0,
    )


def test_paid_in_full_while_placed_closes_the_placement_as_paid() -> None:
    sim, day = final_notice()
    dun(sim, day + timedelta(days=30))
    pay(sim, "PAY1", 4000, day + timedelta(days=35))
    assert sim.account.state is domain.AccountState.CLOSED
    assert sim.account.placements[-1].status is domain.PlacementStatus.PAID


def test_plan_installments_are_tracked_and_a_missed_one_defaults_the_plan() -> None:
    sim = billed()
    plan = sim.plan(2).result
    assert plan is not None
    assert plan.first_due_date == ISSUED + timedelta(days=30)
    grace = timedelta(days=RULES.plan_grace_days)
    assert sim.account.next_dunning_on == plan.due_date(1) + grace
    # the statement cadence waits while the plan is kept
    assert dun(sim, ISSUED + timedelta(days=30)) == "nothing due"

    pay(sim, "PAY1", 2000, plan.due_date(1))
    assert sim.account.plan is not None
    assert sim.account.plan.paid_cents == 2000
    assert sim.account.next_dunning_on == plan.due_date(2) + grace
    assert dun(sim, plan.due_date(2) + grace - timedelta(days=1)) == "nothing due"

    assert dun(sim, plan.due_date(2) + grace) == "plan defaulted, second-notice"
    (defaulted,) = sim.of_type(PaymentPlanDefaulted)
    assert (defaulted.installment, defaulted.paid_cents, defaulted.remaining_cents) == (
        2,
        2000,
        2000,
    )
    assert defaulted.due_date == plan.due_date(2)
    assert statements(sim)[-1].dunning_level is DunningLevel.SECOND_NOTICE
    assert sim.account.active_plan is None

    # dunning resumes; a new plan can be made
    again = sim.plan(2).result
    assert again is not None
    assert again.plan_id == f"{EPISODE}-P2"
    assert again.total_cents == 2000
    assert [p.plan_id for p in sim.account.past_plans] == [f"{EPISODE}-P1"]


def test_a_plan_paid_in_full_completes_and_the_episode_closes() -> None:
    sim = billed()
    sim.plan(3)
    view = domain.plan_view(sim.account.plan)  # type: ignore[arg-type]
    assert [row["amount_cents"] for row in view["schedule"]] == [1334, 1334, 1332]
    pay(sim, "PAY1", 1334, ISSUED + timedelta(days=20))
    pay(sim, "PAY2", 1334, ISSUED + timedelta(days=50))
    assert not sim.of_type(PaymentPlanCompleted)
    pay(sim, "PAY3", 1332, ISSUED + timedelta(days=80))
    (completed,) = sim.of_type(PaymentPlanCompleted)
    assert completed.paid_cents == 4000
    assert sim.of_type(EpisodeClosed)
    assert sim.account.next_dunning_on is None


def test_paying_ahead_moves_the_next_check_to_the_first_installment_not_covered() -> None:
    sim = billed()
    plan = sim.plan(4).result
    assert plan is not None
    pay(sim, "PAY1", 2000, ISSUED + timedelta(days=10))  # two installments at once
    assert sim.account.next_dunning_on == plan.due_date(3) + timedelta(days=RULES.plan_grace_days)


def decide_now(sim: Sim, action: str, now: datetime) -> None:
    """A person's command on the account as it is now."""
    decision: Decision[domain.Account, Any]
    if action == "place":
        decision = domain.place_with_agency(sim.state, EPISODE, "AG1", "U1", RULES, now)
    elif action in ("hold", "release"):
        decision = domain.hold_collection(sim.state, EPISODE, action == "hold", RULES, now)
    elif action == "recall":
        decision = domain.recall_from_agency(sim.state, EPISODE, RULES, now)
    elif action == "return":
        decision = domain.return_from_agency(sim.state, EPISODE, RULES, now)
    else:
        decision = domain.create_payment_plan(sim.state, EPISODE, 2, RULES, now)
    sim.run(lambda _a, _now: decision)


ACTIONS = st.sampled_from(["pay", "dun", "place", "hold", "release", "recall", "return", "plan"])


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_ledger_holds_through_any_dunning_plan_and_agency_sequence(
    data: st.DataObject,
) -> None:
    sim = billed()
    day = ISSUED
    for n, action in enumerate(data.draw(st.lists(ACTIONS, max_size=14), label="actions")):
        day += timedelta(days=data.draw(st.integers(0, 45), label="days pass"))
        before = sim.ledger.totals()
        state = sim.snapshot()
        try:
            if action == "pay":
                pay(sim, f"PAY{n}", data.draw(st.integers(1, 5000), label="cents"), day)
            elif action == "dun":
                dun(sim, day)
            else:
                decide_now(sim, action, noon(day))
        except Conflict:
            assert sim.state == state  # a refusal changes nothing
        holds(sim)
        after = sim.ledger.totals()
        if action in ("dun", "place", "hold", "release", "recall", "plan"):
            assert after == before  # none of these moves money
        if action == "return":
            moved = after.written_off_cents - before.written_off_cents
            assert before.balance_cents - after.balance_cents == moved
        account = sim.account
        assert len([s for s in account.statements if s.status is domain.StatementStatus.OPEN]) <= 1
        assert sum(p.status is domain.PlacementStatus.PLACED for p in account.placements) <= 1
        if account.next_dunning_on is not None:
            assert account.state is domain.AccountState.OPEN
            assert account.placement is None
