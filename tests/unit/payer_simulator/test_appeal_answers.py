"""The payer keeps its answers to appeals across a restart, decides a line's appeal by the
same rules as a claim's, and can be made to lose appeals (received, never decided)."""

from __future__ import annotations

from pathlib import Path

from rcm_payer_simulator import adjudication as rules
from rcm_payer_simulator.appeals import AnswerBook, AppealDecision, Received
from rcm_payer_simulator.payers import PAYERS
from rcm_payer_simulator.simulator import Simulator
from rcm_x12 import RemittanceClaim, check_835_balance

from .factories import batch_837, claim
from .test_appeals import appeal, document
from .test_simulator import MEMBER, NOW, remittances, remitted

CLAIM_ID = "E0000000000a1-1"
LINE_2 = f"{CLAIM_ID}-L2"


def simulator(book: AnswerBook | None = None) -> Simulator:
    return Simulator(
        seed=20261125,
        ack_delay_s=1,
        remit_delay_s=5,
        clock=lambda: NOW,
        first_control_number=700,
        answers=book,
    )


def denied(sim: Simulator, carc: str, line_id: str | None = None) -> RemittanceClaim:
    sim.receive_837(batch_837([claim(CLAIM_ID, member_id=MEMBER)]), 0)
    sim.tick(1)
    assert sim.deny(CLAIM_ID, carc, line_id=line_id)
    (answered,) = remitted(sim)
    return answered


def test_a_restarted_payer_answers_a_resent_appeal_as_before(tmp_path: Path) -> None:
    book = AnswerBook(tmp_path / "payer-simulator-appeals")
    sim = simulator(book)
    denial = denied(sim, "16")
    request = appeal(
        claim_id=CLAIM_ID,
        payer_claim_control_number=denial.payer_claim_control_number,
        documents=[document()],
    )
    answer = sim.appeal(request, 10)
    assert isinstance(answer, AppealDecision)
    assert answer.outcome == "overturned"
    assert (book.folder.stat().st_mode & 0o777, book.path.stat().st_mode & 0o777) == (
        0o700,
        0o600,
    )

    restarted = simulator(AnswerBook(tmp_path / "payer-simulator-appeals"))
    assert restarted.appeal(request, 20) == answer  # it no longer knows the claim
    without_the_file = simulator()
    assert without_the_file.appeal(request, 20) is None


def test_a_torn_last_answer_is_decided_again_and_later_answers_still_read(
    tmp_path: Path,
) -> None:
    book = AnswerBook(tmp_path)
    book.keep(AppealDecision("AP-1", "upheld", "CO-27: coverage had ended"))
    with book.path.open("a", encoding="utf-8") as file:
        file.write('{"appeal_id": "AP-2", "outc')  # the process died mid-write
    book.keep(AppealDecision("AP-3", "overturned", "CO-16: the documents support the claim"))
    assert sorted(AnswerBook(tmp_path).load()) == ["AP-1", "AP-3"]


def test_an_overturned_line_is_paid_in_a_balanced_reprocessing_835() -> None:
    sim = simulator()
    paid = denied(sim, "50", line_id=LINE_2)
    assert paid.status == "1"
    denied_line = next(line for line in paid.lines if line.line_control_number == LINE_2)
    assert denied_line.paid_cents == 0
    request = appeal(
        claim_id=CLAIM_ID,
        payer_claim_control_number=paid.payer_claim_control_number,
        line_id=LINE_2,
        documents=[document()],
    )
    answer = sim.appeal(request, 10)
    assert isinstance(answer, AppealDecision)
    assert (answer.outcome, answer.reason[:5]) == ("overturned", "CO-50")
    sim.tick(16)
    *_, reprocessed = remittances(sim)
    assert check_835_balance(reprocessed) == []
    reversal, repaid = reprocessed.transactions[0].claims
    assert (reversal.status, reversal.paid_cents) == ("22", -paid.paid_cents)
    assert repaid.status == "1"
    first_line, line = repaid.lines
    assert line.line_control_number == LINE_2
    assert line.allowed_cents  # adjudicated by the fee schedule now, not denied
    assert all(a.reason != "50" for a in line.adjustments)
    # The member's deductible went back with the reversal: the visit is adjudicated as
    # it was the first time, not as if the member had paid its deductible twice.
    assert first_line.adjustments == paid.lines[0].adjustments
    assert first_line.paid_cents == paid.lines[0].paid_cents
    payer = PAYERS["ACME01"]
    start = rules.member_benefits(sim.seed, payer, MEMBER).starting_accumulators()
    deductible = sum(
        a.amount_cents
        for a in [*repaid.adjustments, *(a for ln in repaid.lines for a in ln.adjustments)]
        if a.reason == "1"
    )
    left = sim._accumulators(payer, MEMBER)  # the member's, as the payer keeps them
    assert left.deductible_remaining_cents == start.deductible_remaining_cents - deductible

    assert sim.appeal(request, 30) == answer  # the same appeal id: the same answer
    sim.tick(100)
    assert len(remittances(sim)) == 2  # reprocessed once
    again = appeal(**{**request.model_dump(), "appeal_id": "AP-2"})
    assert sim.appeal(again, 40) is None  # the line is paid now: nothing to appeal


def test_a_line_is_decided_by_its_own_denial_and_only_a_denied_line_is_appealable() -> None:
    sim = simulator()
    paid = denied(sim, "97", line_id=LINE_2)
    pccn = paid.payer_claim_control_number
    bundled = appeal(
        claim_id=CLAIM_ID,
        payer_claim_control_number=pccn,
        line_id=LINE_2,
        documents=[document()],
    )
    answer = sim.appeal(bundled, 10)
    assert isinstance(answer, AppealDecision)
    assert (answer.outcome, answer.reason[:5]) == ("upheld", "CO-97")
    visit = appeal(
        appeal_id="AP-2",
        claim_id=CLAIM_ID,
        payer_claim_control_number=pccn,
        line_id=f"{CLAIM_ID}-L1",
    )
    assert sim.appeal(visit, 10) is None  # paid: not denied
    whole_claim = appeal(appeal_id="AP-3", claim_id=CLAIM_ID, payer_claim_control_number=pccn)
    assert sim.appeal(whole_claim, 10) is None  # the claim was paid, not denied


def test_a_lost_appeal_is_received_and_not_decided_until_sent_again(tmp_path: Path) -> None:
    book = AnswerBook(tmp_path)
    sim = simulator(book)
    denial = denied(sim, "16")
    request = appeal(
        claim_id=CLAIM_ID,
        payer_claim_control_number=denial.payer_claim_control_number,
        documents=[document()],
    )
    sim.lose_appeals(CLAIM_ID)
    assert sim.appeal(request, 10) == Received("AP-1")
    sim.tick(100)
    assert len(remittances(sim)) == 1  # nothing reprocessed
    assert book.load() == {}
    sim.lose_appeals(CLAIM_ID, lost=False)
    answer = sim.appeal(request, 110)
    assert isinstance(answer, AppealDecision)
    assert answer.outcome == "overturned"
    assert book.load() == {"AP-1": answer}
