"""The 835 corpus for remittance posting (tests/corpus/x12/835) through the parser, the
posting rules and the handlers on the in-memory port: identity (payer + trace), copies,
reused traces, split payments, crossovers, PLB entries, recodes and remarks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from rcm_contracts import Event
from rcm_contracts.claims import ClaimFrequency, ClaimSubmitted, SubmittedLine
from rcm_contracts.payments import (
    PaymentPosted,
    PostedClaimStatus,
    ProviderAdjustmentKind,
    ProviderAdjustmentPosted,
    RemittancePostingRequested,
    RemittanceProcessed,
    RemittanceTransaction,
    RemittedProviderAdjustment,
    UnpostableRetryRequested,
)
from rcm_contracts.registration import CoverageRank
from rcm_payments import domain
from rcm_payments.domain import (
    Episode,
    PatientPayment,
    PayerClaimNumber,
    Remittance,
    UnpostableKind,
    UnreadableDocument,
)
from rcm_payments.handlers import SUBSCRIPTIONS, Handlers
from rcm_payments.mailbox import read_upload, uploaded_document_id
from rcm_shared.aggregates import InMemoryAggregates
from rcm_shared.envelope import Envelope
from rcm_shared.errors import Conflict
from rcm_x12 import parse_835, validate_with_pyx12

CORPUS = Path(__file__).parents[2] / "corpus" / "x12" / "835"
NOW = datetime(2026, 2, 3, 9, 0, tzinfo=UTC)
ACME, SUMMIT, BLUEPK = "1043218765", "1056781234", "1061234987"  # TRN03 of each payer
SPLIT, CROSSED, MISMATCHED, RECODED, OTHER, FIRST, SECOND, PLB_CLAIM, REVERSED = (
    f"E5b100000000{n}-1" for n in range(1, 10)
)


def text(name: str) -> str:
    with (CORPUS / name).open(newline="") as handle:
        return handle.read()


def transactions(name: str, document_id: str | None = None) -> list[RemittanceTransaction]:
    return domain.read_835(text(name), document_id or name)


def claim_submitted(
    claim_id: str,
    payer_id: str = "ACME01",
    charge: int = 300_00,
    rank: CoverageRank = CoverageRank.PRIMARY,
) -> Envelope[ClaimSubmitted]:
    episode_id = claim_id.rsplit("-", 1)[0]
    event = ClaimSubmitted(
        episode_id=episode_id, claim_id=claim_id, payer_id=payer_id, rank=rank,
        frequency=ClaimFrequency.ORIGINAL, total_charge_cents=charge,
        lines=[SubmittedLine(line_id=f"{claim_id}-L1", procedure_code="99214", units=1,
                             charge_cents=charge)],
        interchange_control_number="000000001", submitted_at=NOW,
    )  # fmt: skip
    return Envelope(data=event, source="rcm/claims")


class Harness:
    def __init__(self) -> None:
        self.episodes = InMemoryAggregates(Episode)
        self.remittances = InMemoryAggregates(Remittance)
        self.claim_numbers = InMemoryAggregates(PayerClaimNumber)
        self.copies = 0
        self.handle = Handlers(
            self.episodes,
            self.remittances,
            InMemoryAggregates(PatientPayment),
            InMemoryAggregates(UnreadableDocument),
            clock=lambda: NOW,
            claim_numbers=self.claim_numbers,
            copy_received=self.count_copy,
        )

    def count_copy(self) -> None:
        self.copies += 1

    async def submit(self, *claims: Envelope[ClaimSubmitted]) -> None:
        for event in claims:
            await self.handle.claim_submitted(event)

    async def post(self, transaction: RemittanceTransaction) -> dict[str, Any]:
        request = RemittancePostingRequested(
            requested_by="payments-mailbox", transaction=transaction
        )
        return await self.handle.remittance_posting_requested(
            Envelope(data=request, source="rcm/payments")
        )

    async def post_file(self, name: str, document_id: str | None = None) -> list[dict[str, Any]]:
        return [await self.post(t) for t in transactions(name, document_id)]

    def emitted(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.remittances.emitted if isinstance(e, kind)]


# --- the files ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.x12")), ids=lambda p: p.name)
def test_every_835_of_the_corpus_passes_pyx12(path: Path) -> None:
    ok, errors = validate_with_pyx12(path.read_text())
    assert ok, errors


def test_the_parser_keeps_recodes_remarks_crossovers_and_every_plb_triple() -> None:
    (paid,) = parse_835(text("paid_line_denial_recode.x12")).transactions[0].claims
    recoded, denied = paid.lines
    assert recoded.original_procedure is not None
    assert (recoded.procedure.code, recoded.original_procedure.code) == ("99214", "99215")
    assert (recoded.remark_codes, denied.remark_codes) == (["N20"], ["M15", "N20"])
    assert paid.outpatient is not None
    assert paid.outpatient.remark_codes == ["MA01"]
    (crossed,) = parse_835(text("crossover_primary.x12")).transactions[0].claims
    assert crossed.crossover_carrier is not None
    assert (crossed.crossover_carrier.identifier, crossed.crossover_carrier.name) == (
        "SUMMIT", "SUMMIT MUTUAL",
    )  # fmt: skip
    plb = parse_835(text("plb_recoupment_interest.x12")).transactions[0].provider_adjustments
    assert [(p.reason, p.reference, p.amount_cents) for p in plb] == [
        ("WO", f"CLM{RECODED}", 50_00), ("FB", "ACME2602000201", 10_00),
        ("L6", "INT0208", -3_45), ("72", "ACME9999999999", 5_00),
    ]  # fmt: skip
    assert {p.fiscal_period_date for p in plb} == {date(2026, 12, 31)}


def test_identity_is_payer_and_trace_not_where_the_copy_came_from() -> None:
    (original,) = transactions("paid_line_denial_recode.x12")
    (resent,) = transactions("paid_line_denial_recode_resent.x12")
    (other,) = transactions("other_payer_same_isa13_trn02.x12")
    assert original.remittance_id == resent.remittance_id == f"R{ACME}-CHK00091010"
    assert (original.interchange_control_number, resent.interchange_control_number) == (9101, 9202)
    assert original.content_digest == resent.content_digest
    assert other.interchange_control_number == original.interchange_control_number
    assert other.trace_number == original.trace_number
    assert other.remittance_id == f"R{BLUEPK}-CHK00091010"
    first, second = transactions("two_st_same_trn02.x12")
    assert first.remittance_id == second.remittance_id
    assert first.content_digest != second.content_digest


# --- copies and reused traces ------------------------------------------------------------


async def test_a_resent_copy_is_recorded_and_reported_never_posted_twice() -> None:
    h = Harness()
    await h.submit(claim_submitted(RECODED, charge=292_00), claim_submitted(OTHER, "BLUEPK"))
    (first,) = await h.post_file("paid_line_denial_recode.x12")
    (copy,) = await h.post_file("paid_line_denial_recode_resent.x12")
    (again,) = await h.post_file("paid_line_denial_recode_resent.x12")  # the mailbox again
    assert (first["outcome"], copy["outcome"], again["outcome"]) == ("posted", "copy", "copy")
    assert h.copies == 1
    assert len(h.emitted(PaymentPosted)) == len(h.emitted(RemittanceProcessed)) == 1
    stored = h.remittances.states[f"R{ACME}-CHK00091010"]
    (kept,) = stored.copies
    assert (kept.document_id, kept.interchange_control_number) == (
        "paid_line_denial_recode_resent.x12", 9202,
    )  # fmt: skip
    assert kept.transaction_control_number == "0007"
    view = domain.remittance_view(stored)
    assert view["copies"][0]["interchange_control_number"] == 9202
    assert domain.copies_view(stored)["posted_from"]["interchange_control_number"] == 9101

    (other,) = await h.post_file("other_payer_same_isa13_trn02.x12")
    assert (other["remittance_id"], other["outcome"]) == (f"R{BLUEPK}-CHK00091010", "posted")
    assert [p.payer_id for p in h.emitted(PaymentPosted)] == ["ACME01", "BLUEPK"]


async def test_a_second_transaction_under_a_used_trace_is_held_whole_with_why() -> None:
    h = Harness()
    await h.submit(claim_submitted(FIRST, charge=140_00), claim_submitted(SECOND, charge=90_00))
    answers = await h.post_file("two_st_same_trn02.x12")
    rid = f"R{ACME}-CHK00093030"
    assert [a["outcome"] for a in answers] == ["posted", "trace-reused"]
    assert answers[1]["unpostable_id"] == f"{rid}-X1"
    assert [p.claim_id for p in h.emitted(PaymentPosted)] == [FIRST]
    stored = h.remittances.states[rid]
    held = stored.unpostable(f"{rid}-X1")
    assert held is not None
    assert held.kind is UnpostableKind.TRACE_REUSED
    assert "trace number reused with different content" in held.reason
    assert held.transaction is not None
    assert [c.claim_id for c in held.transaction.claims] == [SECOND]  # whole
    assert stored.open_unpostables == [f"{rid}-X1"]
    assert await h.post_file("two_st_same_trn02.x12") == answers  # asked again: the same
    assert len(stored.unpostables) == 1
    assert domain.holders_of(f"{rid}-X1") == [f"{rid}-X1", rid]
    retry = UnpostableRetryRequested(requested_by="b", unpostable_id=f"{rid}-X1", holder_id=rid)
    with pytest.raises(Conflict, match="reused with different content"):
        await h.handle.unpostable_retry_requested(Envelope(data=retry, source="rcm/payments"))


# --- what a posting carries ----------------------------------------------------------------


async def test_a_split_payment_says_what_it_covers_of_the_submitted_charge() -> None:
    h = Harness()
    await h.submit(claim_submitted(SPLIT, charge=300_00))
    await h.post_file("split_payment_part1.x12")
    await h.post_file("split_payment_part2.x12")
    first, second = h.emitted(PaymentPosted)
    assert (first.charge_cents, second.charge_cents) == (260_00, 40_00)
    assert first.submitted_charge_cents == second.submitted_charge_cents == 300_00
    assert first.remittance_id != second.remittance_id
    assert [line.line_id for line in first.lines] == [f"{SPLIT}-L1", f"{SPLIT}-L2"]
    assert [line.line_id for line in second.lines] == [f"{SPLIT}-L3"]


async def test_a_paid_claim_carries_its_lines_recode_remarks_and_line_denial() -> None:
    h = Harness()
    await h.submit(claim_submitted(RECODED, charge=292_00))
    await h.post_file("paid_line_denial_recode.x12")
    (posted,) = h.emitted(PaymentPosted)
    assert posted.status is PostedClaimStatus.PAID
    assert posted.remark_codes == ["MA01"]
    recoded, denied = posted.lines
    assert (recoded.procedure_code, recoded.billed_procedure_code) == ("99214", "99215")
    assert (recoded.allowed_cents, recoded.units_paid, recoded.remark_codes) == (200_00, 1, ["N20"])
    assert (denied.paid_cents, denied.billed_procedure_code) == (0, None)
    found = [(a.group.value, a.reason_code, a.amount_cents, a.line_id) for a in denied.adjustments]
    assert found == [("CO", "97", 12_00, f"{RECODED}-L2")]
    assert denied.remark_codes == ["M15", "N20"]
    assert posted.charge_cents == posted.paid_cents + sum(
        a.amount_cents for a in posted.adjustments
    )
    assert sum(line.charge_cents for line in posted.lines) == posted.charge_cents
    (kept,) = h.remittances.states[posted.remittance_id].postings
    assert kept.recoded_lines == [f"{RECODED}-L1"]
    assert kept.remark_codes == ["M15", "MA01", "N20"]


async def test_a_crossover_is_recorded_and_the_secondarys_own_835_posts_as_secondary() -> None:
    h = Harness()
    await h.submit(
        claim_submitted(CROSSED, charge=200_00), claim_submitted(MISMATCHED, charge=140_00)
    )
    await h.post_file("crossover_primary.x12")
    (primary,) = h.emitted(PaymentPosted)
    assert (primary.payer_id, primary.rank, primary.status) == (
        "ACME01",
        CoverageRank.PRIMARY,
        PostedClaimStatus.PAID,
    )
    assert (primary.crossover_payer_id, primary.crossover_payer_name) == ("SUMMIT", "SUMMIT MUTUAL")
    assert primary.remark_codes == ["MA18"]

    (answer,) = await h.post_file("crossover_secondary.x12")
    assert answer["claims_posted"] == 1
    _, secondary = h.emitted(PaymentPosted)
    assert (secondary.claim_id, secondary.payer_id, secondary.rank) == (
        CROSSED, "SUMMIT", CoverageRank.SECONDARY,
    )  # fmt: skip
    assert (secondary.paid_cents, secondary.crossover_payer_id) == (30_00, None)
    rid = f"R{SUMMIT}-CHK00090044"
    mismatch = h.remittances.states[rid].unpostable(f"{rid}-2")
    assert mismatch is not None
    assert mismatch.kind is UnpostableKind.PAYER_MISMATCH
    assert "payer ACME01" in mismatch.reason
    assert "payer SUMMIT" in mismatch.reason
    assert h.remittances.states[rid].open_claim_ids == []  # not awaited: it is known


def test_a_different_payer_remitting_as_primary_or_tertiary_is_a_mismatch() -> None:
    (transaction,) = transactions("crossover_secondary.x12")
    submitted = domain.SubmittedClaim(
        claim_id=CROSSED, episode_id=CROSSED[:-2], payer_id="ACME01", rank=CoverageRank.PRIMARY
    )
    known = {CROSSED: submitted}
    for status, posted in (("1", False), ("19", False), ("3", False), ("2", True), ("20", True)):
        claim = transaction.claims[0].model_copy(update={"status_code": status})
        changed = transaction.model_copy(update={"claims": [claim]})
        decision = domain.post_remittance(None, changed, known, NOW)
        assert decision.state is not None
        assert (len(decision.state.postings) == 1) is posted, status
    # Without N104 the remitting payer is unknown: the claim's payer stands.
    anonymous = transaction.model_copy(
        update={"remitting_payer_id": None, "claims": transaction.claims[:1]}
    )
    decision = domain.post_remittance(None, anonymous, known, NOW)
    assert decision.state is not None
    assert [p.rank for p in decision.state.postings] == [CoverageRank.PRIMARY]


async def test_a_reversal_and_its_repost_post_in_order() -> None:
    h = Harness()
    await h.submit(claim_submitted(REVERSED, charge=150_00))
    await h.post_file("reversal_repost.x12")
    reversal, repost = h.emitted(PaymentPosted)
    assert (reversal.status, reversal.paid_cents, repost.status, repost.paid_cents) == (
        PostedClaimStatus.REVERSED, -100_00, PostedClaimStatus.PAID, 120_00,
    )  # fmt: skip
    assert reversal.lines[0].units_paid is None  # -1 in SVC05: the contract carries paid units
    assert reversal.lines[0].charge_cents == -150_00


async def test_an_unbalanced_transaction_posts_nothing_but_keeps_its_place() -> None:
    h = Harness()
    await h.submit(claim_submitted(FIRST, charge=140_00))
    (answer,) = await h.post_file("unbalanced.x12")
    assert (answer["outcome"], answer["unpostable_id"]) == ("unbalanced", f"R{ACME}-CHK00096060")
    assert h.emitted(PaymentPosted) == []
    assert (
        "expected 10000 cents, got 9999 cents"
        in h.remittances.states[answer["remittance_id"]].unpostables[0].reason
    )


# --- PLB ---------------------------------------------------------------------------------


def test_plb_references_name_claims_in_the_documented_forms() -> None:
    assert domain.claim_ids_in(RECODED) == [RECODED]
    # Prefixed: the whole reference is tried too (an episode payments does not know).
    assert domain.claim_ids_in(f"CLM{RECODED}")[-1] == RECODED
    assert domain.claim_ids_in(f"CLM-{RECODED}")[-1] == RECODED
    assert domain.claim_ids_in("ACME2602000201") == []
    assert domain.claim_ids_in(None) == []
    kinds = {code: domain.adjustment_kind(code) for code in ("WO", "FB", "72", "L6", "CS", "50")}
    assert kinds == {
        "WO": ProviderAdjustmentKind.RECOUPMENT, "FB": ProviderAdjustmentKind.OTHER,
        "72": ProviderAdjustmentKind.RECOUPMENT, "L6": ProviderAdjustmentKind.INTEREST,
        "CS": ProviderAdjustmentKind.OTHER, "50": ProviderAdjustmentKind.OTHER,
    }  # fmt: skip


async def test_every_plb_entry_is_kept_emitted_and_linked_to_the_claim_it_recovers() -> None:
    h = Harness()
    await h.submit(
        claim_submitted(RECODED, charge=292_00),
        claim_submitted(CROSSED, charge=200_00),
        claim_submitted(PLB_CLAIM, charge=200_00),
    )
    await h.post_file("crossover_primary.x12")  # CLP07 ACME2602000201 is known from now on
    (answer,) = await h.post_file("plb_recoupment_interest.x12")
    rid = f"R{ACME}-EFT00094040"
    events = {e.adjustment_id: e for e in h.emitted(ProviderAdjustmentPosted)}
    assert list(events) == [f"{rid}-P{n}" for n in (1, 2, 3, 4)]
    wo, fb, l6, other = events.values()
    assert (wo.kind, wo.claim_id, wo.episode_id, wo.amount_cents) == (
        ProviderAdjustmentKind.RECOUPMENT, RECODED, RECODED[:-2], 50_00,
    )  # fmt: skip
    assert wo.key == RECODED[:-2]
    assert (fb.reason_code, fb.kind, fb.claim_id) == (
        "FB", ProviderAdjustmentKind.OTHER, CROSSED,  # found by the payer's CLP07
    )  # fmt: skip
    assert (l6.kind, l6.amount_cents, l6.claim_id, l6.key) == (
        ProviderAdjustmentKind.INTEREST, -3_45, None, rid,
    )  # fmt: skip
    assert (other.reason_code, other.claim_id, other.key) == ("72", None, rid)
    assert {(e.provider_id, e.fiscal_period_date, e.payer_id) for e in events.values()} == {
        ("1234567893", date(2026, 12, 31), "ACME01")
    }
    stored = h.remittances.states[rid]
    assert [p.adjustment_id for p in stored.provider_adjustments] == list(events)
    unlinked = stored.unpostable(f"{rid}-P4")
    assert unlinked is not None
    assert unlinked.kind is UnpostableKind.UNLINKED_RECOUPMENT
    assert stored.open_unpostables == [f"{rid}-P4"]
    assert answer["claims_posted"] == 1
    (processed,) = [e for e in h.emitted(RemittanceProcessed) if e.remittance_id == rid]
    assert processed.provider_adjustments_cents == 50_00 + 10_00 - 3_45 + 5_00
    assert processed.payment_cents == 140_00 - processed.provider_adjustments_cents


async def test_a_recoupment_naming_a_claim_number_of_another_payer_is_not_linked() -> None:
    h = Harness()
    await h.submit(claim_submitted(CROSSED, charge=200_00))
    await h.post_file("crossover_primary.x12")
    assert await h.claim_numbers.get("ACME01:ACME2602000201") is not None
    (transaction,) = transactions("plb_recoupment_interest.x12")
    elsewhere = transaction.model_copy(update={"payer_id": "BLUEPK"})
    assert await h.handle.plb_links(elsewhere) == {}


# --- an uploaded file ----------------------------------------------------------------------


def test_an_uploaded_file_is_named_by_its_content() -> None:
    body = text("split_payment_part1.x12")
    document_id, (transaction,) = read_upload(body)
    assert document_id == uploaded_document_id(body) == read_upload(body)[0]
    assert transaction.document_id == document_id
    assert document_id != uploaded_document_id(text("split_payment_part2.x12"))


def test_subscriptions_are_unchanged_by_remittance_posting() -> None:
    assert RemittancePostingRequested in SUBSCRIPTIONS


def test_a_balance_carried_forward_is_emitted_but_asks_no_biller() -> None:
    """The payer simulator's 835 of reversals only: a negative FB without a reference."""
    (transaction,) = transactions("reversal_repost.x12")
    reversal = transaction.claims[0]
    carried = RemittedProviderAdjustment(
        provider_id="1234567893", fiscal_period_date=date(2026, 12, 31), reason_code="FB",
        amount_cents=reversal.paid_cents,
    )  # fmt: skip
    only_reversal = transaction.model_copy(
        update={"claims": [reversal], "provider_adjustments": [carried], "payment_cents": 0}
    )
    known = {
        REVERSED: domain.SubmittedClaim(
            claim_id=REVERSED, episode_id=REVERSED[:-2], payer_id="ACME01",
            rank=CoverageRank.PRIMARY,
        )
    }  # fmt: skip
    decision = domain.post_remittance(None, only_reversal, known, NOW)
    assert decision.state is not None
    assert decision.state.unpostables == []
    (event,) = [e for e in decision.events if isinstance(e, ProviderAdjustmentPosted)]
    assert (event.kind, event.amount_cents, event.claim_id) == (
        ProviderAdjustmentKind.OTHER, -100_00, None,
    )  # fmt: skip


def test_the_simulators_payers_remit_under_the_platforms_payer_ids() -> None:
    """N104 is the payer id coverages and claims use; TRN03 tells payers apart."""
    from rcm_payer_simulator import adjudication
    from rcm_payer_simulator.payers import PAYERS
    from rcm_x12 import Envelope as X12Envelope
    from rcm_x12 import RemittanceDocument, RemittancePayee, build_835

    payee = RemittancePayee(name="GOOD CLINIC PC", npi="1234567893")
    envelope = X12Envelope(
        sender_id="PAYERSIM", receiver_id="RCMPLATFORM", control_number=1,
        group_control_number=1, created=datetime(2026, 2, 2, 8, 0),  # noqa: DTZ001
    )  # fmt: skip
    seen: dict[str, str] = {}
    for payer_id, payer in PAYERS.items():
        remitted = adjudication.remittance(payer, payee, [], "0001", date(2026, 2, 2), 7)
        document = RemittanceDocument(envelope=envelope, transactions=[remitted])
        (transaction,) = domain.read_835(build_835(document), "doc")
        assert transaction.payer_id == transaction.remitting_payer_id == payer_id
        seen[payer_id] = transaction.payer_company_id or ""
    assert set(seen) == {"ACME01", "SUMMIT", "BLUEPK", "MERIDN"}
    assert len(set(seen.values())) == len(seen)  # no two payers share an identity
