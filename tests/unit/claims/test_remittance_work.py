"""Issue 10 on the claims side: split and partial payments, reversal and repost,
crossovers, voids, corrections with a biller's changes, line-level coding denials."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from rcm_claims import domain
from rcm_claims.edi import AckVerdict
from rcm_contracts.claims import (
    AckStage,
    ClaimChanges,
    ClaimClosed,
    ClaimFrequency,
    ClaimOutcome,
    ClaimPaid,
    ClaimResubmitted,
    LineChange,
    LineDenied,
)
from rcm_contracts.payments import PostedClaimStatus, PostedLine
from rcm_contracts.registration import CoverageRank
from rcm_shared.errors import Conflict, Invalid
from rcm_x12 import ProfessionalClaim

from .builders import (
    CONFIG,
    EPISODE,
    NOW,
    SECONDARY,
    Memory,
    adjustment,
    billed,
    denial_posting,
    paid_posting,
    recoded,
    split_posting,
    submit,
)

FIRST = f"{EPISODE}-1"
SECOND = f"{EPISODE}-2"
L1, L2 = f"{EPISODE}-L1", f"{EPISODE}-L2"


def x12_of(memory: Memory, claim_id: str) -> ProfessionalClaim:
    x12 = memory.claim(claim_id).x12
    assert x12 is not None
    return ProfessionalClaim.model_validate(x12)


def sent(secondary: bool = False) -> Memory:
    memory = billed(secondary=secondary)
    submit(memory)
    return memory


def post(memory: Memory, posting: object) -> None:
    memory.apply(domain.payment_posted, posting, CONFIG, NOW)


# --- split and partial payments ----------------------------------------------------------


def test_a_split_payment_keeps_the_claim_with_the_payer_until_the_charge_is_covered() -> None:
    memory = sent()
    post(memory, split_posting(FIRST, "R1-T1-1", 10000, 6000, coinsurance=1000))
    claim = memory.claim(FIRST)
    assert claim.status is domain.ClaimStatus.PARTIALLY_PAID
    assert not claim.closed
    assert memory.closings() == []
    assert memory.of(ClaimPaid) == []
    assert memory.episode.open_claims() == 1

    post(memory, split_posting(FIRST, "R2-T1-1", 7500, 5000))
    claim = memory.claim(FIRST)
    assert claim.status is domain.ClaimStatus.PAID
    assert (claim.paid_cents, claim.patient_responsibility_cents) == (11000, 1000)
    (closed,) = memory.closings()
    assert closed.outcome is ClaimOutcome.PAID
    assert closed.open_claims == 0
    assert closed.posting_ids == ["R1-T1-1", "R2-T1-1"]
    (paid,) = memory.of(ClaimPaid)
    assert isinstance(paid, ClaimPaid)
    assert paid.paid_cents == 11000


def test_a_biller_closes_a_partial_payment_as_paid_and_the_secondary_is_billed() -> None:
    memory = sent(secondary=True)
    post(memory, split_posting(FIRST, "R1-T1-1", 10000, 6000, coinsurance=1000))
    with pytest.raises(Conflict):
        memory.apply(domain.accept_denial, FIRST, "biller-1", "n", NOW)
    result = memory.result(domain.close_claim, FIRST, "biller-1", "payer done", CONFIG, NOW)
    assert (result.outcome, result.payer_id) == (ClaimOutcome.PAID, "ACME01")
    (closed,) = memory.closings()
    assert closed.outcome is ClaimOutcome.PAID
    assert closed.open_claims == 1  # the secondary claim, queued before the closing
    secondary = memory.claim(SECOND)
    assert secondary.rank is CoverageRank.SECONDARY
    assert secondary.coverage_id == SECONDARY
    assert x12_of(memory, SECOND).prior_payers[0].paid_cents == 6000
    assert memory.claim(FIRST).audit[-1].by == "biller-1"
    assert domain.closed_by_biller(memory.episode, FIRST) == result
    with pytest.raises(Conflict, match="closed"):
        memory.apply(domain.close_claim, FIRST, "biller-1", "again", CONFIG, NOW)


def test_a_biller_closes_a_denial_as_accepted_but_not_a_claim_the_payer_has_not_answered() -> None:
    memory = sent()
    with pytest.raises(Conflict, match="has not answered"):
        memory.apply(domain.close_claim, FIRST, "biller-1", "n", CONFIG, NOW)
    post(memory, denial_posting(FIRST, "50"))
    result = memory.result(domain.close_claim, FIRST, "biller-1", "n", CONFIG, NOW)
    assert result.outcome is ClaimOutcome.DENIAL_ACCEPTED
    assert memory.claim(FIRST).work is None


# --- reversal and repost -----------------------------------------------------------------


def test_after_a_reversal_and_a_repost_the_amounts_are_the_reposts() -> None:
    memory = sent()
    post(memory, split_posting(FIRST, "R1-T1-1", 17500, 9000, coinsurance=3000, pccn="OLD"))
    assert memory.claim(FIRST).closed
    reversal = split_posting(
        FIRST, "R2-T1-1", -17500, -9000, coinsurance=-3000, pccn="OLD",
        status=PostedClaimStatus.REVERSED,
    )  # fmt: skip
    post(memory, reversal)
    claim = memory.claim(FIRST)
    assert claim.status is domain.ClaimStatus.REVERSED
    assert (claim.paid_cents, claim.patient_responsibility_cents) == (0, 0)
    post(memory, split_posting(FIRST, "R2-T1-2", 17500, 11000, coinsurance=1500, pccn="NEW"))
    claim = memory.claim(FIRST)
    assert claim.status is domain.ClaimStatus.PAID
    assert (claim.paid_cents, claim.patient_responsibility_cents) == (11000, 1500)
    assert claim.payer_claim_control_number == "NEW"
    assert claim.postings == ["R1-T1-1", "R2-T1-1", "R2-T1-2"]  # the history stays
    assert [a.status for a in claim.adjudications] == ["paid", "reversed", "paid"]
    assert len(memory.closings()) == 1  # closed once, as paid
    assert [p.paid_cents for p in memory.of(ClaimPaid)] == [9000, 11000]  # type: ignore[attr-defined]


# --- crossovers --------------------------------------------------------------------------


def test_a_crossover_is_not_billed_by_us_and_stays_open_until_its_payers_835() -> None:
    memory = sent(secondary=True)
    post(memory, paid_posting(FIRST, "R1-T1-1", crossover_payer_id="SUMMIT"))
    assert [c.claim_id for c in memory.episode.claims] == [FIRST]  # no secondary claim
    claim = memory.claim(FIRST)
    assert claim.closed
    assert claim.outcome is ClaimOutcome.PAID
    assert claim.crossover is not None
    assert (claim.crossover.payer_id, claim.crossover.coverage_id) == ("SUMMIT", SECONDARY)
    (closed,) = memory.closings()
    assert closed.open_claims == 1  # the crossover is still with its payer

    secondary_835 = split_posting(
        FIRST, "R7-T1-1", 17500, 4400, payer="SUMMIT", rank=CoverageRank.SECONDARY
    )
    post(memory, secondary_835)
    crossover = memory.claim(FIRST).crossover
    assert crossover is not None
    assert crossover.closed
    assert crossover.status == "paid"
    assert memory.claim(FIRST).paid_cents == 7600  # the primary's amounts stay its own
    last = memory.closings()[-1]
    assert (last.claim_id, last.payer_id, last.outcome) == (FIRST, "SUMMIT", ClaimOutcome.PAID)
    assert last.open_claims == 0
    assert last.posting_ids == ["R1-T1-1", "R7-T1-1"]
    paid = memory.of(ClaimPaid)[-1]
    assert isinstance(paid, ClaimPaid)
    assert (paid.payer_id, paid.rank, paid.paid_cents) == ("SUMMIT", CoverageRank.SECONDARY, 4400)


def test_a_crossover_payers_835_may_come_before_the_primarys() -> None:
    memory = sent(secondary=True)
    post(
        memory,
        split_posting(FIRST, "R7-T1-1", 17500, 4400, payer="SUMMIT", rank=CoverageRank.SECONDARY),
    )
    assert not memory.claim(FIRST).closed
    post(memory, paid_posting(FIRST, "R1-T1-1", crossover_payer_id="SUMMIT"))
    assert [c.claim_id for c in memory.episode.claims] == [FIRST]
    assert [c.open_claims for c in memory.closings()] == [1, 0]


def test_a_crossover_denial_is_the_billers_to_close() -> None:
    memory = sent(secondary=True)
    post(memory, paid_posting(FIRST, "R1-T1-1", crossover_payer_id="SUMMIT"))
    denied = split_posting(
        FIRST, "R7-T1-1", 17500, 0, payer="SUMMIT", rank=CoverageRank.SECONDARY,
        status=PostedClaimStatus.DENIED,
    )  # fmt: skip
    post(memory, denied)
    assert memory.episode.work == [FIRST]
    assert memory.episode.open_claims() == 1
    result = memory.result(domain.close_claim, FIRST, "biller-1", "n", CONFIG, NOW)
    assert (result.payer_id, result.outcome) == ("SUMMIT", ClaimOutcome.DENIAL_ACCEPTED)
    assert memory.episode.work == []
    assert memory.closings()[-1].open_claims == 0


# --- voids -------------------------------------------------------------------------------


def test_voiding_a_paid_claim_sends_a_frequency_8_and_closes_when_the_payer_reverses() -> None:
    memory = sent()
    post(memory, paid_posting(FIRST, "R1-T1-1", payer_claim_control_number="PCCN9"))
    result = memory.result(domain.void, FIRST, "biller-1", "wrong patient", CONFIG, NOW)
    assert (result.new_claim_id, result.frequency) == (SECOND, ClaimFrequency.VOID)
    x12 = x12_of(memory, SECOND)
    assert (x12.frequency_code, x12.payer_claim_control_number) == ("8", "PCCN9")
    original = memory.claim(FIRST)
    assert original.outcome is ClaimOutcome.VOIDED
    assert original.voided_by == SECOND
    resubmitted = memory.of(ClaimResubmitted)[-1]
    assert isinstance(resubmitted, ClaimResubmitted)
    assert resubmitted.frequency is ClaimFrequency.VOID
    assert resubmitted.payer_claim_control_number == "PCCN9"
    outcomes = [(c.claim_id, c.outcome, c.open_claims) for c in memory.closings()]
    assert outcomes == [(FIRST, ClaimOutcome.PAID, 0), (FIRST, ClaimOutcome.VOIDED, 1)]
    with pytest.raises(Conflict):
        memory.apply(domain.void, FIRST, "biller-1", "again", CONFIG, NOW)
    assert domain.voided(memory.episode, FIRST) == result

    submit(memory, icn=43)
    reversal = paid_posting(FIRST, "R2-T1-1", payer_claim_control_number="PCCN9")
    reversal = reversal.model_copy(
        update={
            "status": PostedClaimStatus.REVERSED,
            "charge_cents": -reversal.charge_cents,
            "paid_cents": -reversal.paid_cents,
        }
    )
    post(memory, reversal)
    last = memory.closings()[-1]
    assert (last.claim_id, last.outcome, last.open_claims) == (SECOND, ClaimOutcome.VOIDED, 0)
    assert last.posting_ids == ["R1-T1-1", "R2-T1-1"]


def test_voiding_a_submitted_claim_closes_it_once_and_some_claims_cannot_be_voided() -> None:
    memory = sent()
    memory.apply(domain.void, FIRST, "biller-1", "duplicate", CONFIG, NOW)
    assert [c.outcome for c in memory.closings()] == [ClaimOutcome.VOIDED]
    with pytest.raises(Conflict, match="void itself"):
        memory.apply(domain.void, SECOND, "biller-1", "n", CONFIG, NOW)
    # a void the payer never answers is closed by a biller
    submit(memory, icn=43)
    result = memory.result(domain.close_claim, SECOND, "biller-1", "n", CONFIG, NOW)
    assert result.outcome is ClaimOutcome.VOIDED
    queued = billed(secondary=False)
    with pytest.raises(Conflict, match="queued"):
        queued.apply(domain.void, FIRST, "biller-1", "n", CONFIG, NOW)


# --- corrections with a biller's changes --------------------------------------------------


def test_a_correction_bills_the_billers_changes_and_says_what_changed() -> None:
    memory = sent()
    post(memory, denial_posting(FIRST, "16"))
    changes = ClaimChanges(
        lines=[
            LineChange(line_id=L1, modifiers=["25", "59"]),
            LineChange(line_id=L2, units=2, charge_cents=5000),
        ],
        prior_authorization="PA-12345",
    )
    result = memory.result(
        domain.correct, FIRST, "biller-1", "units and auth", CONFIG, NOW, changes
    )
    assert result.frequency is ClaimFrequency.REPLACEMENT
    x12 = x12_of(memory, SECOND)
    assert x12.prior_authorization == "PA-12345"
    assert [line.procedure.modifiers for line in x12.lines] == [["25", "59"], []]
    assert [line.units for line in x12.lines] == [1, 2]
    assert x12.total_charge_cents == 20000 == memory.claim(SECOND).total_charge_cents
    changed = [
        f"lines[{L1}].modifiers",
        f"lines[{L2}].units",
        f"lines[{L2}].charge_cents",
        "prior_authorization",
    ]
    resubmitted = memory.of(ClaimResubmitted)[-1]
    assert isinstance(resubmitted, ClaimResubmitted)
    assert resubmitted.changed == changed
    assert resubmitted.total_charge_cents == 20000
    assert "PA-12345" not in resubmitted.model_dump_json()  # names, never values
    assert domain.corrected(memory.episode, FIRST).changed == tuple(changed)
    # new codes from coding supersede the biller's changes
    memory.apply(domain.coding_corrected, recoded(), CONFIG, NOW)
    assert memory.episode.billing_changes is None


def test_changes_to_a_line_the_claim_does_not_have_are_refused_whole() -> None:
    memory = sent()
    post(memory, denial_posting(FIRST, "16"))
    before = memory.episode
    changes = ClaimChanges(lines=[LineChange(line_id=f"{EPISODE}-L9", units=3)])
    with pytest.raises(Invalid) as refused:
        memory.apply(domain.correct, FIRST, "biller-1", "n", CONFIG, NOW, changes)
    assert refused.value.reasons == ["changes.lines[0].line_id: not a line of the claim"]
    assert memory.episode == before


@pytest.mark.parametrize(
    "change",
    [
        {"line_id": "E1-L1"},  # changes nothing
        {"line_id": "E1-L1", "modifiers": ["2"]},
        {"line_id": "E1-L1", "modifiers": ["25", "59", "RT", "LT", "XE"]},
        {"line_id": "E1-L1", "units": 0},
        {"line_id": "E1-L1", "charge_cents": -1},
    ],
)
def test_a_line_change_is_validated(change: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ClaimChanges(lines=[change])  # type: ignore[list-item]


def test_changes_change_something_and_each_line_once() -> None:
    with pytest.raises(ValidationError):
        ClaimChanges()
    with pytest.raises(ValidationError):
        ClaimChanges(lines=[{"line_id": "L1", "units": 2}, {"line_id": "L1", "units": 3}])  # type: ignore[list-item]
    with pytest.raises(ValidationError):
        ClaimChanges(prior_authorization="PA 1")


# --- line-level coding denials -----------------------------------------------------------


def posted_line(line_id: str, code: str, *adjustments: tuple[str, str, int]) -> PostedLine:
    return PostedLine(
        line_id=line_id,
        procedure_code=code,
        charge_cents=2500,
        paid_cents=0,
        adjustments=[adjustment(g, r, c, line_id) for g, r, c in adjustments],
    )


def test_a_line_denied_for_coding_on_a_paid_claim_reaches_coding_once() -> None:
    memory = sent(secondary=False)
    lines = [
        posted_line(L1, "99213", ("CO", "45", 5000)),
        posted_line(L2, "36415", ("CO", "97", 2500)),
    ]
    posting = paid_posting(FIRST, "R1-T1-1", patient_share=False)
    post(memory, posting.model_copy(update={"lines": lines}))
    denied = [e for e in memory.events if isinstance(e, LineDenied)]
    assert len(denied) == 1
    (line,) = denied
    assert (line.claim_id, line.line_id, line.procedure_code) == (FIRST, L2, "36415")
    assert [f"{r.group_code}-{r.reason_code}" for r in line.reasons] == ["CO-97"]
    assert line.posting_id == "R1-T1-1"
    assert memory.claim(FIRST).closed  # the claim itself is paid

    # a repost naming the same line does not tell coding again
    again = paid_posting(FIRST, "R2-T1-1", patient_share=False)
    post(memory, again.model_copy(update={"lines": lines}))
    assert len([e for e in memory.events if isinstance(e, LineDenied)]) == 1

    # the coder's new codes replace the paid claim with a corrected one
    memory.apply(domain.coding_corrected, recoded(), CONFIG, NOW)
    resubmitted = memory.of(ClaimResubmitted)
    assert [(e.replaces_claim_id, e.frequency) for e in resubmitted] == [  # type: ignore[attr-defined]
        (FIRST, ClaimFrequency.REPLACEMENT)
    ]
    assert memory.claim(FIRST).outcome is ClaimOutcome.PAID  # closed once, as paid
    assert len([c for c in memory.closings() if c.claim_id == FIRST]) == 1
    assert memory.episode.open_claims() == 1


@pytest.mark.parametrize(
    "adjustments",
    [
        [("CO", "45", 2500)],  # contractual
        [("PR", "97", 2500)],  # the patient's, not the payer's coding edit
        [("CO", "16", 2500)],  # documentation: billers' work
    ],
)
def test_other_line_adjustments_do_not_go_to_coding(
    adjustments: list[tuple[str, str, int]],
) -> None:
    memory = sent(secondary=False)
    posting = paid_posting(FIRST, "R1-T1-1", patient_share=False)
    lines = [posted_line(L2, "36415", *adjustments)]
    post(memory, posting.model_copy(update={"lines": lines}))
    assert [e for e in memory.events if isinstance(e, LineDenied)] == []
    assert not memory.claim(FIRST).line_recode


def test_every_closing_of_an_episode_counts_its_open_crossovers() -> None:
    memory = sent(secondary=True)
    post(memory, paid_posting(FIRST, "R1-T1-1", crossover_payer_id="BLUEPK"))
    claim = memory.claim(FIRST)
    assert claim.crossover is not None
    assert claim.crossover.coverage_id is None
    assert [c.claim_id for c in memory.episode.claims] == [FIRST]
    closing = memory.closings()[-1]
    assert isinstance(closing, ClaimClosed)
    assert closing.open_claims == 1


def test_a_void_rejected_and_sent_again_still_closes_on_the_reversal() -> None:
    memory = sent()
    post(memory, paid_posting(FIRST, "R1-T1-1", payer_claim_control_number="PCCN9"))
    memory.apply(domain.void, FIRST, "biller-1", "wrong payer", CONFIG, NOW)
    submit(memory, icn=43)
    verdict = AckVerdict(False, ("A7:21",), "rejected")
    memory.apply(domain.acknowledge, AckStage.PAYER, {SECOND: verdict}, NOW)
    again = memory.result(domain.correct, SECOND, "biller-1", "again", CONFIG, NOW)
    third = again.new_claim_id
    assert memory.claim(third).frequency is ClaimFrequency.VOID
    assert x12_of(memory, third).payer_claim_control_number == "PCCN9"
    submit(memory, icn=44)
    reversal = split_posting(
        FIRST, "R2-T1-1", -17500, -7600, status=PostedClaimStatus.REVERSED, pccn="PCCN9"
    )
    post(memory, reversal)
    last = memory.closings()[-1]
    assert (last.claim_id, last.outcome, last.open_claims) == (third, ClaimOutcome.VOIDED, 0)


def test_a_payer_answering_the_void_under_its_own_id_closes_it() -> None:
    memory = sent()
    memory.apply(domain.void, FIRST, "biller-1", "duplicate", CONFIG, NOW)
    submit(memory, icn=43)
    post(memory, denial_posting(SECOND, "45", "R3-T1-1", PostedClaimStatus.REVERSED))
    last = memory.closings()[-1]
    assert (last.claim_id, last.outcome, last.open_claims) == (SECOND, ClaimOutcome.VOIDED, 0)


def test_a_277ca_read_after_a_partial_payment_still_counts_the_acceptance() -> None:
    memory = sent()
    post(memory, split_posting(FIRST, "R1-T1-1", 10000, 6000))
    verdict = AckVerdict(True, ("A1:20",), "", "PCCN1")
    memory.apply(domain.acknowledge, AckStage.PAYER, {FIRST: verdict}, NOW)
    claim = memory.claim(FIRST)
    assert claim.accepted_at == NOW
    assert claim.status is domain.ClaimStatus.PARTIALLY_PAID
