"""Issue 11, bug 1: a primary line denied for coding after the secondary was billed.

Coding recodes, the primary is replaced by a corrected claim and paid again; the
secondary, billed on the primary's first answer, must be billed again on the new one,
or what the secondary paid and what the patient owes never match the primary's answer
and the insurance side of the ledger never reaches zero."""

from __future__ import annotations

from datetime import timedelta

from rcm_claims import domain
from rcm_contracts.claims import ClaimClosed, ClaimFrequency, ClaimOutcome, ClaimResubmitted
from rcm_contracts.payments import (
    Adjustment,
    PatientResponsibility,
    PaymentPosted,
    PostedClaimStatus,
    PostedLine,
)
from rcm_contracts.registration import CoverageRank
from rcm_x12 import ProfessionalClaim

from tests.unit.claims.builders import (
    CONFIG,
    EPISODE,
    NOW,
    Memory,
    adjustment,
    billed,
    recoded,
    submit,
)

C1, C2, C3, C4 = (f"{EPISODE}-{n}" for n in range(1, 5))
L1, L2 = f"{EPISODE}-L1", f"{EPISODE}-L2"


def posting(
    claim_id: str,
    posting_id: str,
    adjustments: list[Adjustment],
    charge: int,
    *,
    rank: CoverageRank = CoverageRank.PRIMARY,
    payer: str = "ACME01",
    status: PostedClaimStatus = PostedClaimStatus.PAID,
    lines: list[PostedLine] | None = None,
    days: int = 14,
) -> PaymentPosted:
    share = sum(a.amount_cents for a in adjustments if a.group.value == "PR")
    return PaymentPosted(
        episode_id=EPISODE,
        posting_id=posting_id,
        claim_id=claim_id,
        payer_id=payer,
        rank=rank,
        remittance_id=posting_id.rpartition("-")[0],
        payment_trace_number=posting_id,
        payer_claim_control_number=f"PCCN{claim_id[-1]}",
        status=status,
        charge_cents=charge,
        paid_cents=charge - sum(a.amount_cents for a in adjustments),
        adjustments=adjustments,
        patient_responsibility=PatientResponsibility(coinsurance_cents=share),
        posted_at=NOW + timedelta(days=days),
        lines=lines or [],
        submitted_charge_cents=abs(charge),
    )


def negated(original: PaymentPosted, posting_id: str) -> PaymentPosted:
    """The payer's reversal of an earlier answer (CLP02 22, every amount negated)."""
    return original.model_copy(
        update={
            "posting_id": posting_id,
            "status": PostedClaimStatus.REVERSED,
            "charge_cents": -original.charge_cents,
            "paid_cents": -original.paid_cents,
            "adjustments": [
                a.model_copy(update={"amount_cents": -a.amount_cents}) for a in original.adjustments
            ],
            "patient_responsibility": PatientResponsibility(
                coinsurance_cents=-original.patient_responsibility.coinsurance_cents
            ),
            "lines": [],
            "posted_at": original.posted_at + timedelta(days=15),
        }
    )


# The primary's first answer: the visit paid with 44.00 to the patient, the venipuncture
# (L2) denied CO-97 (bundled) for coding.
FIRST_ANSWER = posting(
    C1,
    "R1-T1-1",
    [
        adjustment("CO", "45", 5000, L1),
        adjustment("PR", "2", 4400, L1),
        adjustment("CO", "97", 2500, L2),
    ],
    17500,
    lines=[
        PostedLine(
            line_id=L2,
            procedure_code="36415",
            charge_cents=2500,
            paid_cents=0,
            adjustments=[adjustment("CO", "97", 2500, L2)],
        )
    ],
)
# The secondary's answer on it: what the patient owed (44.00); OA-23 the rest.
SECONDARY_ANSWER = posting(
    C2,
    "R2-T1-1",
    [adjustment("OA", "23", 13100)],
    17500,
    rank=CoverageRank.SECONDARY,
    payer="SUMMIT",
    days=16,
)
# The corrected primary (99214 and 36415, 205.00): both lines paid, 24.00 to the patient.
CORRECTED_ANSWER = posting(
    C3,
    "R3-T1-2",
    [
        adjustment("CO", "45", 6000, L1),
        adjustment("PR", "2", 2400, L1),
        adjustment("CO", "45", 500, L2),
    ],
    20500,
    days=30,
)


def post(memory: Memory, event: PaymentPosted) -> None:
    memory.apply(domain.payment_posted, event, CONFIG, NOW)


def line_denied_after_the_secondary_paid() -> Memory:
    memory = billed(secondary=True)
    submit(memory, icn=1)
    post(memory, FIRST_ANSWER)
    assert memory.claim(C1).line_recode  # coding was told (line-denied)
    assert memory.claim(C2).rank is CoverageRank.SECONDARY  # billed on the first answer
    submit(memory, icn=2)
    post(memory, SECONDARY_ANSWER)
    assert memory.claim(C2).outcome is ClaimOutcome.PAID
    memory.apply(domain.coding_corrected, recoded(), CONFIG, NOW)
    assert memory.claim(C3).replaces_claim_id == C1
    submit(memory, icn=3)
    return memory


def test_the_secondary_is_corrected_with_the_primarys_new_answer_before_billing_ends() -> None:
    memory = line_denied_after_the_secondary_paid()
    post(memory, negated(FIRST_ANSWER, "R3-T1-1"))
    post(memory, CORRECTED_ANSWER)

    secondary = memory.claim(C4)
    assert (secondary.rank, secondary.payer_id) == (CoverageRank.SECONDARY, "SUMMIT")
    assert (secondary.frequency, secondary.replaces_claim_id) == (ClaimFrequency.REPLACEMENT, C2)
    assert secondary.replaced_pccn == "PCCN2"  # REF*F8: the secondary's claim
    assert secondary.prior is not None
    assert (secondary.prior.claim_id, secondary.prior.patient_responsibility_cents) == (C3, 2400)
    assert secondary.x12 is not None
    x12 = ProfessionalClaim.model_validate(secondary.x12)
    (prior,) = x12.prior_payers
    assert (prior.paid_cents, prior.remaining_patient_liability_cents) == (11600, 2400)
    assert x12.total_charge_cents == 20500  # the recoded lines
    replaced = [e for e in memory.of(ClaimResubmitted) if e.replaces_claim_id == C2]  # type: ignore[attr-defined]
    assert len(replaced) == 1
    assert memory.claim(C2).outcome is ClaimOutcome.PAID  # closed once, as paid

    # Queued before the primary closed: billing is not over while the secondary answers.
    (primary_closed,) = [c for c in memory.closings() if c.claim_id == C3]
    assert primary_closed.open_claims == 1

    # The secondary takes back its first payment and pays on the new answer.
    post(memory, negated(SECONDARY_ANSWER, "R4-T1-1"))
    new_answer = posting(
        C4,
        "R4-T1-2",
        [adjustment("OA", "23", 18100)],
        20500,
        rank=CoverageRank.SECONDARY,
        payer="SUMMIT",
        days=40,
    )
    post(memory, new_answer)
    last = memory.closings()[-1]
    assert (last.claim_id, last.outcome, last.open_claims) == (C4, ClaimOutcome.PAID, 0)
    assert set(last.posting_ids) == {
        "R1-T1-1", "R2-T1-1", "R3-T1-1", "R3-T1-2", "R4-T1-1", "R4-T1-2"
    }  # fmt: skip
    assert memory.episode.open_claims() == 0
    assert len([c for c in memory.episode.claims if c.rank is CoverageRank.SECONDARY]) == 2


def test_a_secondary_still_adjudicating_is_corrected_once_it_answers() -> None:
    memory = billed(secondary=True)
    submit(memory, icn=1)
    post(memory, FIRST_ANSWER)
    submit(memory, icn=2)  # the secondary is with its payer
    memory.apply(domain.coding_corrected, recoded(), CONFIG, NOW)
    submit(memory, icn=3)
    post(memory, negated(FIRST_ANSWER, "R3-T1-1"))
    post(memory, CORRECTED_ANSWER)
    assert memory.episode.find(C4) is None  # replacing it now would have it answered twice
    assert memory.claim(C2).closed is False

    post(memory, SECONDARY_ANSWER)  # answered on the primary's first answer
    secondary = memory.claim(C4)
    assert (secondary.replaces_claim_id, secondary.frequency) == (C2, ClaimFrequency.REPLACEMENT)
    assert secondary.prior is not None
    assert secondary.prior.claim_id == C3
    (closed,) = [c for c in memory.closings() if c.claim_id == C2]
    assert (closed.outcome, closed.open_claims) == (ClaimOutcome.PAID, 1)


def test_a_secondary_billed_on_the_standing_answer_is_not_billed_again() -> None:
    memory = billed(secondary=True)
    submit(memory, icn=1)
    post(memory, FIRST_ANSWER.model_copy(update={"lines": []}))
    submit(memory, icn=2)
    post(memory, SECONDARY_ANSWER)
    assert [c.claim_id for c in memory.episode.claims] == [C1, C2]
    assert memory.of(ClaimResubmitted) == []
    closings: list[ClaimClosed] = memory.closings()
    assert closings[-1].open_claims == 0
