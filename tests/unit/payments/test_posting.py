"""835 claims to postings: status, adjustments, patient responsibility, unpostables."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter
from rcm_contracts.base import Id
from rcm_contracts.claims import ClaimFrequency, ClaimSubmitted, SubmittedLine
from rcm_contracts.payments import (
    AwaitedClaimSubmitted,
    ClaimAwaited,
    PaymentPosted,
    PostedClaimStatus,
    RemittanceProcessed,
)
from rcm_contracts.registration import CoverageRank
from rcm_payments import domain
from rcm_payments.domain import RemittedAdjustment, RemittedClaim, SubmittedClaim
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Conflict, PermanentError
from rcm_x12 import (
    Address,
    Adjustment,
    Contact,
    Envelope,
    Procedure,
    Remittance,
    RemittanceClaim,
    RemittanceDocument,
    RemittanceLine,
    RemittanceParty,
    RemittancePayee,
    RemittancePayer,
    build_835,
)

NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
ENVELOPE = Envelope(
    sender_id="ACMECLEARING",
    receiver_id="RCMPLATFORM",
    control_number=4242,
    group_control_number=1,
    created=datetime(2026, 2, 1, 9, 30),  # noqa: DTZ001 - X12 stamps are naive
)
EPISODE = "E0123456789ab"


def line(
    code: str, charge: int, *adjustments: tuple[str, str, int], allowed: int | None = None, n: int
) -> RemittanceLine:
    cas = [Adjustment(group=g, reason=r, amount_cents=a) for g, r, a in adjustments]
    return RemittanceLine(
        procedure=Procedure(code=code),
        charge_cents=charge,
        paid_cents=charge - sum(a.amount_cents for a in cas),
        adjustments=cas,
        line_control_number=f"{EPISODE}-L{n}",
        allowed_cents=allowed,
    )


def claim(
    claim_id: str,
    status: str,
    lines: list[RemittanceLine],
    claim_adjustments: tuple[tuple[str, str, int], ...] = (),
    charge: int | None = None,
) -> RemittanceClaim:
    cas = [Adjustment(group=g, reason=r, amount_cents=a) for g, r, a in claim_adjustments]
    total = sum(x.charge_cents for x in lines) if charge is None else charge
    adjusted = sum(a.amount_cents for a in cas) + sum(
        a.amount_cents for x in lines for a in x.adjustments
    )
    return RemittanceClaim(
        patient_control_number=claim_id,
        status=status,
        charge_cents=total,
        paid_cents=total - adjusted,
        filing_indicator="12",
        payer_claim_control_number=f"ACME{claim_id.replace('-', '')}",
        adjustments=cas,
        patient=RemittanceParty(
            last_name="DOE", first_name="JANE", id_qualifier="MI", identifier="AB123456789"
        ),
        lines=lines,
    )


def remittance(claims: list[RemittanceClaim], trace: str = "CHK0001", control: str = "0001",
               payment: int | None = None) -> Remittance:  # fmt: skip
    paid = sum(c.paid_cents for c in claims)
    return Remittance(
        control_number=control,
        handling="I" if paid else "H",
        payment_cents=paid if payment is None else payment,
        payment_method="CHK" if paid else "NON",
        payment_date=date(2026, 2, 1),
        trace_number=trace,
        payer_trace_id="1512345678",
        payer=RemittancePayer(
            name="ACME HEALTH PLAN",
            identifier="ACME01",
            address=Address(line1="1 MAIN ST", city="HARTFORD", state="CT", postal_code="06103"),
            technical_contact=Contact(phone="8005550199"),
        ),
        payee=RemittancePayee(name="GOOD CLINIC", npi="1234567893"),
        claims=claims,
    )


def read(*remittances: Remittance) -> list[domain.RemittanceTransaction]:
    """Through real X12 text, as the mailbox delivers it."""
    text = build_835(
        RemittanceDocument(envelope=ENVELOPE, transactions=list(remittances)),
        check_balance=False,
    )
    return domain.read_835(text, "doc-1")


def submitted(claim_id: str, rank: CoverageRank = CoverageRank.PRIMARY) -> SubmittedClaim:
    return SubmittedClaim(claim_id=claim_id, episode_id=EPISODE, payer_id="ACME01", rank=rank)


def process(
    transaction: domain.RemittanceTransaction, *known: str
) -> tuple[domain.Remittance, list[PaymentPosted], RemittanceProcessed]:
    decision = domain.post_remittance(None, transaction, {c: submitted(c) for c in known}, NOW)
    assert decision.state is not None
    assert decision.result == decision.state
    posted = [e for e in decision.events if isinstance(e, PaymentPosted)]
    (processed,) = [e for e in decision.events if isinstance(e, RemittanceProcessed)]
    return decision.state, posted, processed


def nothing(decision: Decision[domain.Remittance, domain.Remittance]) -> bool:
    return decision.state is None and not decision.events


def test_paid_claim_splits_patient_responsibility_and_keeps_line_adjustments() -> None:
    paid = claim(
        f"{EPISODE}-1",
        "1",
        [
            line("99213", 150_00, ("CO", "45", 30_00), ("PR", "3", 25_00), allowed=120_00, n=1),
            line("83036", 60_00, ("CO", "45", 10_00), ("PR", "1", 40_00), allowed=50_00, n=2),
            line("36415", 20_00, ("PR", "2", 4_00), ("PR", "187", 1_00), allowed=20_00, n=3),
        ],
    )
    (transaction,) = read(remittance([paid]))
    change, (posting,), processed = process(transaction, f"{EPISODE}-1")

    assert transaction.remittance_id == "R1512345678-CHK0001"  # TRN03 + TRN02
    assert posting.posting_id == "R1512345678-CHK0001-1"
    assert posting.status is PostedClaimStatus.PAID
    assert (posting.charge_cents, posting.paid_cents, posting.allowed_cents) == (
        230_00, 120_00, 190_00,
    )  # fmt: skip
    owed = posting.patient_responsibility
    assert (owed.deductible_cents, owed.coinsurance_cents, owed.copay_cents) == (
        40_00, 4_00, 25_00,
    )  # fmt: skip
    assert owed.other_cents == 1_00
    assert [(a.group, a.reason_code, a.amount_cents, a.line_id) for a in posting.adjustments] == [
        ("CO", "45", 30_00, f"{EPISODE}-L1"),
        ("PR", "3", 25_00, f"{EPISODE}-L1"),
        ("CO", "45", 10_00, f"{EPISODE}-L2"),
        ("PR", "1", 40_00, f"{EPISODE}-L2"),
        ("PR", "2", 4_00, f"{EPISODE}-L3"),
        ("PR", "187", 1_00, f"{EPISODE}-L3"),
    ]
    assert (posting.episode_id, posting.payer_id, posting.rank) == (
        EPISODE, "ACME01", CoverageRank.PRIMARY,
    )  # fmt: skip
    assert posting.payment_trace_number == "CHK0001"
    assert posting.payer_claim_control_number == f"ACME{EPISODE}1"
    assert (processed.claims_posted, processed.claims_unpostable) == (1, 0)
    assert processed.payment_cents == 120_00
    assert change.open_unpostables == []


def test_claim_level_adjustments_have_no_line_id() -> None:
    denied = claim(f"{EPISODE}-1", "4", [], (("CO", "197", 95_00),), charge=95_00)
    (transaction,) = read(remittance([denied]))
    _, (posting,), _ = process(transaction, f"{EPISODE}-1")
    assert posting.status is PostedClaimStatus.DENIED
    assert posting.paid_cents == 0
    assert posting.allowed_cents is None
    assert [(a.reason_code, a.line_id) for a in posting.adjustments] == [("197", None)]


@pytest.mark.parametrize(
    ("status", "adjustments", "expected"),
    [
        ("4", [("CO", "97", 100_00)], PostedClaimStatus.DENIED),
        ("1", [("CO", "50", 100_00)], PostedClaimStatus.DENIED),  # paid 0, no PR
        ("1", [("PR", "1", 100_00)], PostedClaimStatus.PAID),  # all to the deductible
        ("1", [("CO", "45", 40_00), ("PR", "1", 60_00)], PostedClaimStatus.PAID),
        ("2", [("CO", "45", 40_00)], PostedClaimStatus.PAID),
        ("19", [("CO", "45", 40_00)], PostedClaimStatus.PAID),
        # A secondary the primary left nothing to pay: processed, not denied.
        ("2", [("OA", "23", 100_00)], PostedClaimStatus.PAID),
        ("2", [("OA", "23", 60_00), ("CO", "45", 40_00)], PostedClaimStatus.DENIED),
    ],
)
def test_status_from_clp02_and_money(
    status: str, adjustments: list[tuple[str, str, int]], expected: PostedClaimStatus
) -> None:
    (transaction,) = read(
        remittance([claim(f"{EPISODE}-1", status, [line("99213", 100_00, *adjustments, n=1)])])
    )
    _, (posting,), _ = process(transaction, f"{EPISODE}-1")
    assert posting.status is expected


def test_reversal_carries_negative_amounts_and_repost_follows() -> None:
    reversal = claim(
        f"{EPISODE}-1",
        "22",
        [line("99213", -150_00, ("CO", "45", -30_00), ("PR", "3", -25_00), n=1)],
    )
    repost = claim(
        f"{EPISODE}-1", "1", [line("99213", 150_00, ("CO", "45", 20_00), ("PR", "3", 25_00), n=1)]
    )
    (transaction,) = read(remittance([reversal, repost]))
    _, (reversed_, reposted), processed = process(transaction, f"{EPISODE}-1")

    assert reversed_.status is PostedClaimStatus.REVERSED
    assert (reversed_.charge_cents, reversed_.paid_cents) == (-150_00, -95_00)
    assert [a.amount_cents for a in reversed_.adjustments] == [-30_00, -25_00]
    assert reversed_.patient_responsibility.copay_cents == -25_00
    assert reposted.status is PostedClaimStatus.PAID
    assert reposted.paid_cents == 105_00
    assert (reversed_.posting_id, reposted.posting_id) == (
        f"{transaction.remittance_id}-1", f"{transaction.remittance_id}-2",
    )  # fmt: skip
    assert processed.payment_cents == 10_00


def test_unbalanced_transaction_goes_whole_to_unpostables_and_others_still_post() -> None:
    good = claim(f"{EPISODE}-1", "1", [line("99213", 100_00, ("CO", "45", 20_00), n=1)])
    bad_line = line("99214", 200_00, ("CO", "45", 50_00), n=1).model_copy(
        update={"paid_cents": 140_00}  # should be 150
    )
    bad = claim("E00000000000f-1", "1", [bad_line]).model_copy(update={"paid_cents": 140_00})
    unbalanced, balanced = read(
        remittance([bad], trace="CHKBAD", control="0001"),
        remittance([good], trace="CHKGOOD", control="0002"),
    )
    assert unbalanced.imbalances
    assert not balanced.imbalances

    change, posted, processed = process(unbalanced, "E00000000000f-1", f"{EPISODE}-1")
    assert posted == []
    (entry,) = change.unpostables
    assert entry.id == unbalanced.remittance_id
    assert entry.kind == domain.UnpostableKind.UNBALANCED
    assert "does not balance" in entry.reason
    assert "expected 15000 cents, got 14000 cents" in entry.reason
    assert (processed.claims_posted, processed.claims_unpostable) == (0, 1)
    assert domain.retry_refusal(entry) == entry.reason
    with pytest.raises(Conflict, match="expected 15000 cents, got 14000 cents"):
        domain.retry(change, entry.id, {}, NOW)

    _, (posting,), _ = process(balanced, f"{EPISODE}-1")
    assert posting.claim_id == f"{EPISODE}-1"


def test_unmatched_claim_waits_then_posts_under_the_same_id() -> None:
    known = claim(f"{EPISODE}-1", "1", [line("99213", 100_00, ("CO", "45", 20_00), n=1)])
    later = claim("E0000000000aa-1", "4", [line("99214", 80_00, ("CO", "16", 80_00), n=1)])
    (transaction,) = read(remittance([known, later]))
    change, (posting,), processed = process(transaction, f"{EPISODE}-1")
    assert (processed.claims_posted, processed.claims_unpostable) == (1, 1)
    (entry,) = change.unpostables
    assert entry.kind == domain.UnpostableKind.UNMATCHED
    assert "no claim-submitted" in entry.reason
    assert change.open_claim_ids == ["E0000000000aa-1"]
    assert domain.retry_refusal(entry) is None  # may post once the claim is known
    # The remittance asks the claim's episode to tell it when the claim is there.
    decision = domain.post_remittance(
        None, transaction, {f"{EPISODE}-1": submitted(f"{EPISODE}-1")}, NOW
    )
    assert [e for e in decision.events if isinstance(e, ClaimAwaited)] == [
        ClaimAwaited(
            episode_id="E0000000000aa",
            claim_id="E0000000000aa-1",
            remittance_id=transaction.remittance_id,
        )
    ]

    stored = change
    with pytest.raises(Conflict, match="still unknown"):  # nothing to post it with yet
        domain.retry(stored, entry.id, {}, NOW)
    other = SubmittedClaim(
        claim_id="E0000000000aa-1", episode_id="E0000000000aa", payer_id="ACME01",
        rank=CoverageRank.SECONDARY,
    )  # fmt: skip
    awaited = AwaitedClaimSubmitted(
        remittance_id=transaction.remittance_id, claim_id=other.claim_id,
        episode_id=other.episode_id, payer_id=other.payer_id, rank=other.rank,
    )  # fmt: skip
    assert nothing(domain.post_awaited(stored, awaited.model_copy(update={"claim_id": "X-1"}), NOW))
    after = domain.post_awaited(stored, awaited, NOW)
    assert after.state is not None
    (late,) = after.events
    assert isinstance(late, PaymentPosted)
    assert late.posting_id == f"{transaction.remittance_id}-2"
    assert (late.episode_id, late.rank, late.status) == (
        "E0000000000aa", CoverageRank.SECONDARY, PostedClaimStatus.DENIED,
    )  # fmt: skip
    assert after.state.open_unpostables == []
    assert after.state.open_claim_ids == []
    assert [p.posting_id for p in after.state.postings] == [
        posting.posting_id, late.posting_id,
    ]  # fmt: skip
    # Posting again finds nothing open.
    assert nothing(domain.post_awaited(after.state, awaited, NOW))
    # A retry of the same unpostable now answers with its posting.
    answer = domain.retry_answer(after.state, entry.id)
    assert answer["posting"]["posting_id"] == late.posting_id
    assert nothing(domain.retry(after.state, entry.id, {other.claim_id: other}, NOW))


def test_a_remittance_that_exists_is_not_processed_again() -> None:
    (transaction,) = read(remittance([claim(f"{EPISODE}-1", "1", [line("99213", 1_00, n=1)])]))
    existing, _, _ = process(transaction)
    again = domain.post_remittance(
        existing, transaction, {f"{EPISODE}-1": submitted(f"{EPISODE}-1")}, NOW
    )
    assert nothing(again)
    assert again.result == existing


def test_unknown_claim_status_needs_a_biller() -> None:
    forwarded = claim(f"{EPISODE}-1", "23", [line("99213", 100_00, ("OA", "23", 100_00), n=1)])
    (transaction,) = read(remittance([forwarded]))
    change, posted, _ = process(transaction, f"{EPISODE}-1")
    assert posted == []
    (entry,) = change.unpostables
    assert entry.kind == domain.UnpostableKind.CLAIM_RULE
    assert domain.retry_refusal(entry) == "CLP02 status 23 is not posted automatically"


def test_broken_money_invariant_is_not_posted() -> None:
    broken = RemittedClaim(
        index=1, claim_id=f"{EPISODE}-1", status_code="1", charge_cents=100_00, paid_cents=80_00,
        allowed_cents=None,
        adjustments=[RemittedAdjustment(group="CO", reason_code="45", amount_cents=10_00)],
    )  # fmt: skip
    with pytest.raises(domain.NotPostable, match="charge 10000 != paid 8000"):
        domain.posting_of(broken, submitted(f"{EPISODE}-1"), "R1-T", "T", NOW)


def test_remittance_and_posting_ids_are_valid_ids() -> None:
    valid = TypeAdapter(Id)
    weird = domain.remittance_id_of("1512345678", "CHK 12/34#5")
    assert weird == "R1512345678-CHK-12-34-5"
    long_one = domain.remittance_id_of("1512345678", "T" * 50)
    other = domain.remittance_id_of("1512345678", "T" * 49 + "U")
    assert len(long_one) <= domain.MAX_REMITTANCE_ID
    assert long_one != other
    for rid in (weird, long_one):
        valid.validate_python(rid)
        valid.validate_python(domain.posting_id_of(rid, 99_999))


def test_remittance_view_holds_no_patient_names() -> None:
    (transaction,) = read(
        remittance([claim(f"{EPISODE}-1", "1", [line("99213", 100_00, ("PR", "3", 20_00), n=1)])])
    )
    change, _, _ = process(transaction, f"{EPISODE}-1")
    view = domain.remittance_view(change)
    text = json.dumps(view, default=str)
    assert "DOE" not in text
    assert "JANE" not in text
    assert "AB123456789" not in text
    assert view["postings"][0]["patient_responsibility_cents"] == 20_00


# --- the posting invariant on generated balanced claims ----------------------------------

GROUPS = st.sampled_from(["CO", "PR", "OA", "PI"])
REASONS = st.sampled_from(["1", "2", "3", "45", "23", "97", "16", "187", "253"])
triples = st.tuples(GROUPS, REASONS, st.integers(-50_000, 50_000))


@st.composite
def balanced_claims(draw: st.DrawFn) -> RemittanceClaim:
    lines = [
        line(
            "99213",
            draw(st.integers(-100_000, 300_000)),
            *draw(st.lists(triples, max_size=4)),
            allowed=draw(st.none() | st.integers(0, 300_000)),
            n=n,
        )
        for n in range(1, draw(st.integers(0, 3)) + 1)
    ]
    return claim(
        f"{EPISODE}-1",
        draw(st.sampled_from(["1", "2", "3", "4", "19", "22"])),
        lines,
        tuple(draw(st.lists(triples, max_size=3))),
        charge=draw(st.integers(-100_000, 500_000)),
    )


@given(balanced_claims())
def test_every_posting_balances_charge_paid_and_adjustments(generated: RemittanceClaim) -> None:
    remitted = domain.remitted_claim(1, generated)
    try:
        posting = domain.posting_of(remitted, submitted(generated.patient_control_number),
                                    "R000000001-T", "T", NOW)  # fmt: skip
    except domain.NotPostable as error:  # only a negative payment on a processed claim
        assert generated.paid_cents < 0, error  # noqa: PT017
        return
    assert posting.charge_cents == posting.paid_cents + sum(
        a.amount_cents for a in posting.adjustments
    )
    owed = posting.patient_responsibility
    assert (
        owed.deductible_cents + owed.coinsurance_cents + owed.copay_cents + owed.other_cents
        == sum(a.amount_cents for a in posting.adjustments if a.group == "PR")
    )
    assert len(posting.adjustments) == len(generated.adjustments) + sum(
        len(x.adjustments) for x in generated.lines
    )


# --- claims and patient payments ---------------------------------------------------------


def claim_event(episode: str = EPISODE) -> ClaimSubmitted:
    return ClaimSubmitted(
        episode_id=episode,
        claim_id=f"{EPISODE}-1",
        payer_id="ACME01",
        rank=CoverageRank.PRIMARY,
        frequency=ClaimFrequency.ORIGINAL,
        total_charge_cents=150_00,
        lines=[
            SubmittedLine(
                line_id=f"{EPISODE}-L1", procedure_code="99213", units=1, charge_cents=150_00
            )
        ],
        interchange_control_number="000000001",
        submitted_at=NOW,
    )


def test_claim_submitted_is_stored_once_in_its_episode() -> None:
    decision = domain.record_claim(None, claim_event())
    stored = decision.state
    assert stored is not None
    assert decision.events == []
    assert stored.episode_id == EPISODE
    (kept,) = stored.claims
    assert kept.episode_id == EPISODE
    assert kept.rank == "primary"
    assert kept.lines[0].line_id == f"{EPISODE}-L1"
    again = domain.record_claim(stored, claim_event())
    assert again.state is None
    assert not again.events
    assert kept.claim_id == f"{EPISODE}-1"
    assert stored.claim(f"{EPISODE}-1") == kept
    with pytest.raises(PermanentError):  # the claim id names another episode
        domain.record_claim(stored, claim_event("E00000000000f"))
