"""Properties of the ledger over random inputs in random order, with duplicates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from rcm_collections import domain
from rcm_contracts.collections import (
    BalanceWrittenOff,
    EpisodeClosed,
    StatementIssued,
    WriteOffReason,
)
from rcm_contracts.registration import CoverageRank
from rcm_shared.errors import PermanentError

from .support import (
    EPISODE,
    RULES,
    Sim,
    closed,
    later,
    patient_payment,
    posting,
    refund,
    reversal_of,
)


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Sim], bool]


@dataclass(frozen=True)
class Scenario:
    steps: list[Step]
    charges: int
    payer_paid: int
    adjustments: int
    patient_share: int


@st.composite
def billing(draw: st.DrawFn) -> Scenario:
    """An insured episode's inputs: coding, eligibility, guarantor, primary posting (maybe
    reversed and posted again), maybe a secondary, and the claim closings."""
    charges = draw(st.integers(1, 100_000))
    co = draw(st.integers(0, charges))
    pr = draw(st.integers(0, charges - co))
    paid = charges - co - pr
    deductible = draw(st.integers(0, pr))
    copay = pr - deductible
    primary = posting("R1-1", paid, [("CO", "45", co), ("PR", "1", deductible), ("PR", "3", copay)])
    coded_at = later()  # one coding event: redelivered, it carries the same time
    steps = [
        Step("coding", lambda s: s.coding(charges, at=coded_at)),
        Step("verified", lambda s: s.verified()),
        Step("registered", lambda s: s.registered()),
        Step("primary", lambda s: s.posted(primary)),
    ]
    posting_ids = ["R1-1"]
    if draw(st.booleans()):
        again = primary.model_copy(update={"posting_id": "R3-2"})
        reversed_ = reversal_of(primary, "R3-1")
        steps += [
            Step("reversal", lambda s: s.posted(reversed_)),
            Step("reposted", lambda s: s.posted(again)),
        ]
        posting_ids += ["R3-1", "R3-2"]
    share, payer_paid = pr, paid
    if draw(st.booleans()):
        secondary = posting(
            "R2-1",
            deductible,
            [("OA", "23", paid + co), ("PR", "3", copay)],
            rank=CoverageRank.SECONDARY,
            claim_id=f"{EPISODE}-2",
        )
        steps += [
            Step("verified-2", lambda s: s.verified(CoverageRank.SECONDARY)),
            Step("secondary", lambda s: s.posted(secondary)),
            Step("closed-1", lambda s: s.claim_closed(closed(1, 1, posting_ids[:1]))),
        ]
        posting_ids.append("R2-1")
        last = closed(2, 0, list(posting_ids))
        steps.append(Step("closed-2", lambda s: s.claim_closed(last)))
        share, payer_paid = copay, paid + deductible
    else:
        only = closed(1, 0, list(posting_ids))
        steps.append(Step("closed-1", lambda s: s.claim_closed(only)))
    return Scenario(steps, charges, payer_paid, co, share)


@st.composite
def patient_money(draw: st.DrawFn) -> list[Step]:
    steps = []
    for i, cents in enumerate(draw(st.lists(st.integers(1, 6000), max_size=4))):
        event = patient_payment(f"pay-{i}", cents)
        steps.append(Step(f"pay-{i}", lambda s, e=event: s.paid(e)))
    for i, cents in enumerate(draw(st.lists(st.integers(1, 4000), max_size=2))):
        event = refund(f"rf-{i}", cents)
        steps.append(Step(f"refund-{i}", lambda s, e=event: s.refunded(e)))
    reasons = st.sampled_from([r.value for r in WriteOffReason])
    for i, (cents, reason) in enumerate(
        draw(st.lists(st.tuples(st.integers(1, 6000), reasons), max_size=2))
    ):

        def write_off(s: Sim, cents: int = cents, reason: str = reason, i: int = i) -> bool:
            return s.write_off(cents, reason, write_off_id=f"WO-{i}").state is not None

        steps.append(Step(f"write-off-{i}", write_off))
    return steps


def assert_ledger_holds(sim: Sim) -> None:
    """The invariant, recomputed here from the kept figures and from the entries."""
    ledger = sim.ledger
    totals = ledger.totals()
    assert totals.balance_cents == ledger.insurance_balance_cents + ledger.patient_balance_cents
    assert totals.charges_cents == (
        totals.payer_paid_cents
        + totals.adjustments_cents
        + totals.patient_paid_cents
        + totals.written_off_cents
        + totals.balance_cents
    )

    def entries(*kinds: str) -> int:
        return sum(e.amount_cents for e in ledger.entries if e.kind.value in kinds)

    assert totals.charges_cents == entries("charge")
    assert totals.payer_paid_cents == entries("payer-payment", "payer-refund")
    assert totals.adjustments_cents == entries("adjustment")
    assert totals.patient_paid_cents == entries("patient-payment", "patient-refund")
    assert totals.written_off_cents == entries("write-off")
    assert ledger.patient_share_cents == entries("patient-share")
    assert totals.patient_paid_cents >= 0
    assert ledger.problems() == []
    if sim.account.state is domain.AccountState.CLOSED:
        assert totals.balance_cents == 0
    for closing in sim.of_type(EpisodeClosed):
        assert closing.totals.balance_cents == 0
    for written in sim.of_type(BalanceWrittenOff):
        if written.reason is WriteOffReason.SMALL_BALANCE:
            assert 0 < written.amount_cents <= RULES.small_balance_cents


def run_step(sim: Sim, step: Step) -> bool:
    """Run a step; a refusal must leave the account untouched."""
    before = sim.snapshot()
    events = len(sim.events)
    try:
        return step.run(sim)
    except PermanentError:
        assert sim.state == before
        assert len(sim.events) == events
        return False


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_invariant_holds_after_every_step_and_duplicates_change_nothing(
    data: st.DataObject,
) -> None:
    scenario = data.draw(billing())
    steps = data.draw(st.permutations(scenario.steps + data.draw(patient_money())))
    sim = Sim()
    applied: list[Step] = []
    for step in steps:
        if run_step(sim, step):
            applied.append(step)
        assert_ledger_holds(sim)
        if data.draw(st.booleans(), label=f"redeliver {step.name}"):
            before, events = sim.snapshot(), len(sim.events)
            assert not run_step(sim, step)
            assert (sim.state, len(sim.events)) == (before, events)
    # every billing input is in: payers owe nothing, the patient owes their share less
    # what they paid and what was forgiven
    ledger = sim.ledger
    assert ledger.insurance_balance_cents == 0
    assert ledger.patient_share_cents == scenario.patient_share
    assert ledger.patient_balance_cents == (
        scenario.patient_share - ledger.patient_paid_cents - ledger.written_off_cents
    )
    before, events = sim.snapshot(), len(sim.events)
    for step in applied:  # every input delivered once more, at the end
        assert not run_step(sim, step), step.name
    assert (sim.state, len(sim.events)) == (before, events)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_order_of_the_billing_inputs_ends_the_same(data: st.DataObject) -> None:
    scenario = data.draw(billing())
    sim = Sim()
    for step in data.draw(st.permutations(scenario.steps)):
        changed = step.run(sim)
        assert changed or step.name == "closed-1", step.name  # an older closing may come late
        assert_ledger_holds(sim)
    totals = sim.ledger.totals()
    assert totals.charges_cents == scenario.charges
    assert totals.payer_paid_cents == scenario.payer_paid
    assert totals.adjustments_cents == scenario.adjustments
    assert sim.ledger.patient_share_cents == scenario.patient_share
    share = scenario.patient_share
    kinds = [type(event).__name__ for event in sim.events]
    if share == 0:
        assert kinds == ["EpisodeClosed"]
    elif share <= RULES.small_balance_cents:
        assert kinds == ["BalanceWrittenOff", "EpisodeClosed"]
        assert sim.of_type(BalanceWrittenOff)[0].amount_cents == share
    else:
        assert kinds == ["StatementIssued"]
        assert sim.of_type(StatementIssued)[0].amount_due_cents == share
