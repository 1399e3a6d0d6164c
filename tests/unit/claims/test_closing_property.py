"""Whatever happens to an episode's claims, each closes exactly once (a paid claim that is
voided once more, as voided; a crossover once, under its payer) and every closing tells
the truth about the episode (open claims, sequence, postings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from rcm_claims import domain
from rcm_claims.edi import AckVerdict
from rcm_contracts.claims import AckStage, ClaimClosed, ClaimFrequency, ClaimOutcome
from rcm_contracts.payments import PostedClaimStatus
from rcm_contracts.registration import CoverageRank
from rcm_shared.errors import Conflict

from .builders import (
    CONFIG,
    NOW,
    Memory,
    billed,
    denial_posting,
    paid_posting,
    recoded,
    split_posting,
)

CLAIM_OPS = (
    "ack999",
    "ack277",
    "pay",
    "half",
    "deny",
    "reverse",
    "correct",
    "accept",
    "void",
    "close",
    "crossover",
    "xpay",
)
EPISODE_OPS = ("mark", "record", "recode")
CARCS = ("16", "97", "197", "50", "45")

operations = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(EPISODE_OPS)),
        st.tuples(
            st.sampled_from(CLAIM_OPS),
            st.integers(0, 5),
            st.booleans(),
            st.sampled_from(CARCS),
        ),
    ),
    max_size=30,
)


@dataclass
class Run:
    memory: Memory
    icn: int = 0
    postings: int = 0
    recodes: int = 0
    verdict_numbers: list[str] = field(default_factory=list)

    def claim_id(self, index: int) -> str:
        claims = self.memory.episode.claims
        return claims[index % len(claims)].claim_id

    def posting_id(self) -> str:
        self.postings += 1
        return f"P-{self.postings}"

    def step(self, op: tuple[object, ...]) -> None:
        """Apply one operation; refusals (wrong state) change nothing and are fine."""
        before = len(self.memory.changes)
        try:
            self._step(op)
        except (Conflict, domain.ClaimStillSending):
            assert len(self.memory.changes) == before
            return
        if len(self.memory.changes) > before:
            check_change(self.memory)

    def _step(self, op: tuple[object, ...]) -> None:
        memory, name = self.memory, op[0]
        if name == "mark":
            self.icn += 1
            numbers = {
                c.claim_id: f"{n:04d}"
                for n, c in enumerate(memory.episode.claims, 1)
                if c.unsent and c.x12 is not None
            }
            memory.apply(domain.mark_sending, numbers, self.icn, NOW)
        elif name == "record":
            memory.apply(domain.mark_submitted, self.icn, f"B{self.icn}", NOW)
        elif name == "recode":
            self.recodes += 1
            later = NOW + timedelta(days=20 + self.recodes)
            memory.apply(domain.coding_corrected, recoded(at=later), CONFIG, NOW)
        else:
            _, index, flag, carc = op
            assert isinstance(index, int)
            assert isinstance(flag, bool)
            assert isinstance(carc, str)
            self._claim_step(str(name), self.claim_id(index), flag, carc)

    def _claim_step(self, name: str, claim_id: str, flag: bool, carc: str) -> None:
        memory = self.memory
        verdict = AckVerdict(flag, ("A1:20",) if flag else ("A7:164",), "", "PCCN1")
        if name == "ack999":
            icn = memory.claim(claim_id).interchange_control_number
            stage = AckStage.CLEARINGHOUSE
            memory.apply(domain.acknowledge, stage, {claim_id: verdict}, NOW, icn)
        elif name == "ack277":
            memory.apply(domain.acknowledge, AckStage.PAYER, {claim_id: verdict}, NOW)
        elif name == "pay":
            posting = paid_posting(claim_id, self.posting_id(), patient_share=flag)
            memory.apply(domain.payment_posted, posting, CONFIG, NOW)
        elif name == "half":  # a split payment: half of the charge answered
            charge = memory.claim(claim_id).total_charge_cents // 2
            posting = split_posting(claim_id, self.posting_id(), charge, charge // 2)
            memory.apply(domain.payment_posted, posting, CONFIG, NOW)
        elif name == "crossover":
            posting = paid_posting(claim_id, self.posting_id(), crossover_payer_id="SUMMIT")
            memory.apply(domain.payment_posted, posting, CONFIG, NOW)
        elif name == "xpay":  # the crossover payer's own 835
            posting = split_posting(
                claim_id,
                self.posting_id(),
                17500,
                4000 if flag else 0,
                status=PostedClaimStatus.PAID if flag else PostedClaimStatus.DENIED,
                payer="SUMMIT",
                rank=CoverageRank.SECONDARY,
            )
            memory.apply(domain.payment_posted, posting, CONFIG, NOW)
        elif name == "void":
            memory.apply(domain.void, claim_id, "b", "n", CONFIG, NOW)
        elif name == "close":
            memory.apply(domain.close_claim, claim_id, "b", "n", CONFIG, NOW)
        elif name == "deny":
            posting = denial_posting(claim_id, carc, self.posting_id())
            memory.apply(domain.payment_posted, posting, CONFIG, NOW)
        elif name == "reverse":
            posting = denial_posting(claim_id, "45", self.posting_id(), PostedClaimStatus.REVERSED)
            memory.apply(domain.payment_posted, posting, CONFIG, NOW)
        elif name == "correct":
            memory.apply(domain.correct, claim_id, "b", "n", CONFIG, NOW)
        elif name == "accept":
            memory.apply(domain.accept_denial, claim_id, "b", "n", NOW)

    def settle(self) -> None:
        """Work every open claim to its end the way payer, coder and biller would."""
        for _ in range(60):
            open_claims = [
                c
                for c in self.memory.episode.claims
                if not c.closed or (c.crossover is not None and not c.crossover.closed)
            ]
            if not open_claims:
                return
            claim = open_claims[0]
            status = domain.ClaimStatus
            if claim.crossover is not None and not claim.crossover.closed:
                self._settle_step("close" if claim.work else "xpay", claim.claim_id)
            elif claim.status in (status.QUEUED, status.SENDING):
                self.step(("mark",))
                self.step(("record",))
            elif claim.frequency is ClaimFrequency.VOID:
                self._settle_step("close", claim.claim_id)  # a void the payer never answers
            elif claim.status in (
                status.SUBMITTED,
                status.ACCEPTED,
                status.PARTIALLY_PAID,
                status.REVERSED,
            ):
                self._settle_step("pay", claim.claim_id)
            elif claim.status is status.REJECTED:
                self._settle_step("correct", claim.claim_id)
            elif claim.awaiting_recode:
                self.step(("recode",))
            else:
                self._settle_step("accept", claim.claim_id)
        raise AssertionError("claims did not settle")

    def _settle_step(self, name: str, claim_id: str) -> None:
        before = len(self.memory.changes)
        self._claim_step(name, claim_id, False, "45")
        assert len(self.memory.changes) > before
        check_change(self.memory)


def check_change(memory: Memory) -> None:
    """The closings of the latest change against the state it left."""
    episode = memory.episode
    still_open = episode.open_claims()
    closings = [e for e in memory.changes[-1] if isinstance(e, ClaimClosed)]
    for later, closing in enumerate(reversed(closings)):
        assert closing.open_claims == still_open + later
        assert closing.posting_ids == episode.posting_ids
    all_closings = memory.closings()
    assert [c.sequence for c in all_closings] == list(range(1, len(all_closings) + 1))
    assert episode.closings == len(all_closings)
    for claim in episode.claims:
        mine = [c for c in all_closings if c.claim_id == claim.claim_id]
        own = [c.outcome for c in mine if c.payer_id == claim.payer_id]
        crossover = claim.crossover
        crossed = [c.outcome for c in mine if crossover and c.payer_id == crossover.payer_id]
        assert len(own) + len(crossed) == len(mine)
        assert len(crossed) == (1 if crossover and crossover.closed else 0), "crossover closings"
        if claim.closed:
            assert own in ([claim.outcome], [ClaimOutcome.PAID, ClaimOutcome.VOIDED]), own
        else:
            assert own == [], "an open claim was closed"
        assert claim.closed == (claim.outcome is not None)
        crossover_open = crossover is not None and not crossover.closed
        assert claim.work is None or not claim.closed or crossover_open


@settings(max_examples=150, deadline=None)
@given(operations, st.booleans())
def test_every_claim_closes_exactly_once_and_closings_tell_the_truth(
    ops: list[tuple[object, ...]], secondary: bool
) -> None:
    run = Run(billed(secondary=secondary))
    for op in ops:
        run.step(op)
    run.settle()
    episode = run.memory.episode
    closings = run.memory.closings()
    assert {c.claim_id for c in closings} == {c.claim_id for c in episode.claims}
    assert all(c.closed for c in episode.claims)
    assert closings[-1].open_claims == 0
    # Postings for claims closed already (a reversal, a second adjudication) may come
    # after the last closing; every closing listed all postings of its time (check_change).
    assert episode.posting_ids[: len(closings[-1].posting_ids)] == closings[-1].posting_ids
    assert episode.model_dump()["unsent"] == []
    assert episode.model_dump()["work"] == []
