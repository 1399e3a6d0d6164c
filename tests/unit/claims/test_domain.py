"""The claims rules: joining inputs, billing, acknowledgments, payments, closings."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from rcm_claims import domain
from rcm_claims.edi import AckVerdict
from rcm_contracts.claims import (
    AckStage,
    ClaimAccepted,
    ClaimClosed,
    ClaimDenied,
    ClaimFrequency,
    ClaimOutcome,
    ClaimPaid,
    ClaimRejected,
    ClaimResubmitted,
    ClaimSubmitted,
    DenialCategory,
)
from rcm_contracts.payments import PostedClaimStatus
from rcm_contracts.registration import CoverageRank
from rcm_shared.errors import Conflict, NotFound, PermanentError
from rcm_x12 import ProfessionalClaim

from .builders import (
    CONFIG,
    EPISODE,
    NOW,
    PRIMARY_COVERAGE,
    SECONDARY_COVERAGE,
    Memory,
    adjustment,
    billed,
    coded,
    coverages,
    denial_posting,
    failed,
    paid_posting,
    person,
    recoded,
    registered,
    submit,
    verified,
)

FIRST = f"{EPISODE}-1"
SECOND = f"{EPISODE}-2"


def x12_of(memory: Memory, claim_id: str) -> ProfessionalClaim:
    x12 = memory.claim(claim_id).x12
    assert x12 is not None
    return ProfessionalClaim.model_validate(x12)


# --- joining in any order ----------------------------------------------------------------

INPUTS = {
    "patient": lambda e: domain.patient_registered(e, registered(), CONFIG, NOW),
    "coverages": lambda e: domain.coverage_updated(
        e, coverages(PRIMARY_COVERAGE, SECONDARY_COVERAGE), CONFIG, NOW
    ),
    "primary": lambda e: domain.eligibility_verified(e, verified(PRIMARY_COVERAGE), CONFIG, NOW),
    "secondary": lambda e: domain.eligibility_verified(
        e, verified(SECONDARY_COVERAGE), CONFIG, NOW
    ),
    "coding": lambda e: domain.coding_completed(e, coded(), CONFIG, NOW),
}
NEEDED = {"patient", "coverages", "primary", "coding"}  # the secondary's verdict is not


@pytest.mark.parametrize("order", list(itertools.permutations(INPUTS)))
def test_one_claim_to_the_primary_once_its_inputs_are_in_whatever_the_order(
    order: tuple[str, ...],
) -> None:
    memory = Memory()
    seen: set[str] = set()
    for name in order:
        memory.apply(INPUTS[name])
        seen.add(name)
        expected = 1 if seen >= NEEDED else 0
        assert len(memory.episode.claims) == expected, (order, name)
    (claim,) = memory.episode.claims
    assert claim.claim_id == FIRST
    assert claim.rank is CoverageRank.PRIMARY
    assert claim.payer_id == "ACME01"
    assert claim.status is domain.ClaimStatus.QUEUED
    assert memory.events == []  # queueing emits nothing; claim-submitted comes with sending


def test_waits_for_the_primary_verdict_then_bills_the_first_verified_coverage() -> None:
    memory = Memory()
    memory.apply(domain.patient_registered, registered(), CONFIG, NOW)
    memory.apply(
        domain.coverage_updated, coverages(PRIMARY_COVERAGE, SECONDARY_COVERAGE), CONFIG, NOW
    )
    memory.apply(domain.eligibility_verified, verified(SECONDARY_COVERAGE), CONFIG, NOW)
    memory.apply(domain.coding_completed, coded(), CONFIG, NOW)
    assert memory.episode.claims == []
    assert domain.billing(memory.episode).waiting_for == ("eligibility of primary",)

    memory.apply(domain.eligibility_failed, failed(PRIMARY_COVERAGE, False), CONFIG, NOW)
    (claim,) = memory.episode.claims
    assert claim.payer_id == "SUMMIT"
    assert claim.rank is CoverageRank.PRIMARY  # the first payer billed
    assert x12_of(memory, FIRST).subscriber.payer_responsibility == "P"


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_self_pay_makes_no_claim(order: tuple[int, ...]) -> None:
    inputs = [
        (domain.patient_registered, registered()),
        (domain.coverage_updated, coverages()),
        (domain.eligibility_failed, failed(None, True)),
        (domain.coding_completed, coded()),
    ]
    memory = Memory()
    for index in order:
        decide, event = inputs[index]
        memory.apply(decide, event, CONFIG, NOW)
    assert memory.episode.claims == []
    assert domain.billing(memory.episode).state == "self-pay"
    assert memory.events == []


def test_a_late_verification_after_self_pay_is_billed() -> None:
    memory = Memory()
    memory.apply(domain.patient_registered, registered(), CONFIG, NOW)
    memory.apply(domain.coverage_updated, coverages(PRIMARY_COVERAGE), CONFIG, NOW)
    memory.apply(domain.eligibility_failed, failed(PRIMARY_COVERAGE, True), CONFIG, NOW)
    memory.apply(domain.coding_completed, coded(), CONFIG, NOW)
    assert memory.episode.claims == []
    later = NOW + timedelta(hours=1)
    memory.apply(domain.eligibility_verified, verified(PRIMARY_COVERAGE, later), CONFIG, NOW)
    assert [c.payer_id for c in memory.episode.claims] == ["ACME01"]


def test_an_older_verdict_arriving_late_does_not_win() -> None:
    memory = Memory()
    memory.apply(domain.coverage_updated, coverages(PRIMARY_COVERAGE), CONFIG, NOW)
    memory.apply(domain.eligibility_verified, verified(PRIMARY_COVERAGE), CONFIG, NOW)
    older = NOW - timedelta(hours=1)
    memory.apply(domain.eligibility_failed, failed(PRIMARY_COVERAGE, True, older), CONFIG, NOW)
    memory.apply(domain.patient_registered, registered(), CONFIG, NOW)
    memory.apply(domain.coding_completed, coded(), CONFIG, NOW)
    assert len(memory.episode.claims) == 1


# --- the claim built ---------------------------------------------------------------------


def test_the_claim_carries_line_ids_rendering_provider_and_the_patient_as_subscriber() -> None:
    memory = billed()
    claim = x12_of(memory, FIRST)
    assert claim.patient_control_number == FIRST
    assert [line.line_control_number for line in claim.lines] == [
        f"{EPISODE}-L1",
        f"{EPISODE}-L2",
    ]
    assert claim.rendering_provider is not None
    assert claim.rendering_provider.npi == "1234567893"
    assert claim.billing_provider.npi == "1100000003"
    assert claim.subscriber.member_id == "AB123456789"
    assert (claim.subscriber.last_name, claim.subscriber.relationship) == ("DOE", "18")
    assert claim.total_charge_cents == 17500
    assert claim.frequency_code == "1"


def test_an_unknown_rendering_npi_bills_under_the_billing_provider() -> None:
    memory = Memory()
    memory.apply(domain.patient_registered, registered(), CONFIG, NOW)
    memory.apply(domain.coverage_updated, coverages(PRIMARY_COVERAGE), CONFIG, NOW)
    memory.apply(domain.eligibility_verified, verified(PRIMARY_COVERAGE), CONFIG, NOW)
    memory.apply(domain.coding_completed, coded(npi="1999999992"), CONFIG, NOW)
    assert x12_of(memory, FIRST).rendering_provider is None


def test_a_claim_that_cannot_be_built_goes_to_the_rejection_queue() -> None:
    memory = Memory()
    memory.apply(domain.patient_registered, registered(person(state="ZZ")), CONFIG, NOW)
    memory.apply(domain.coverage_updated, coverages(PRIMARY_COVERAGE), CONFIG, NOW)
    memory.apply(domain.eligibility_verified, verified(PRIMARY_COVERAGE), CONFIG, NOW)
    memory.apply(domain.coding_completed, coded(), CONFIG, NOW)
    claim = memory.claim(FIRST)
    assert claim.status is domain.ClaimStatus.REJECTED
    assert claim.x12 is None
    assert claim.work is not None
    assert claim.work.stage == "build"
    assert "state" in claim.work.message
    assert memory.state is not None
    assert memory.state.model_dump()["unsent"] == []
    assert memory.state.model_dump()["work"] == [FIRST]


# --- sending and acknowledgments ---------------------------------------------------------


def test_claim_submitted_is_emitted_once_per_claim() -> None:
    memory = billed()
    submit(memory, icn=42)
    (submitted,) = memory.of(ClaimSubmitted)
    assert isinstance(submitted, ClaimSubmitted)
    assert submitted.interchange_control_number == "000000042"
    assert [line.line_id for line in submitted.lines] == [f"{EPISODE}-L1", f"{EPISODE}-L2"]
    assert memory.apply(domain.mark_submitted, 42, "B42", NOW) is None
    assert memory.claim(FIRST).status is domain.ClaimStatus.SUBMITTED


def test_999_rejection_opens_a_rejection_item() -> None:
    memory = billed()
    submit(memory, icn=7)
    verdict = AckVerdict(False, ("IK502:5",), "999 rejected transaction set 0001")
    memory.apply(domain.acknowledge, AckStage.CLEARINGHOUSE, {FIRST: verdict}, NOW, 7)
    (rejected,) = memory.of(ClaimRejected)
    assert isinstance(rejected, ClaimRejected)
    assert (rejected.stage, rejected.status_codes) == (AckStage.CLEARINGHOUSE, ["IK502:5"])
    items = domain.work_items(memory.episode, "rejection")
    assert [item["claim_id"] for item in items] == [FIRST]


def test_a_999_for_another_interchange_is_ignored() -> None:
    memory = billed()
    submit(memory, icn=7)
    verdict = AckVerdict(False, ("IK502:5",), "no")
    assert (
        memory.apply(domain.acknowledge, AckStage.CLEARINGHOUSE, {FIRST: verdict}, NOW, 6) is None
    )


def test_277ca_acceptance_keeps_the_payer_claim_number() -> None:
    memory = billed()
    submit(memory)
    accepted = AckVerdict(True, ("A1:20",), "", "ACME000111")
    memory.apply(domain.acknowledge, AckStage.CLEARINGHOUSE, {FIRST: accepted}, NOW, 42)
    memory.apply(domain.acknowledge, AckStage.PAYER, {FIRST: accepted}, NOW)
    stages = [e.stage for e in memory.of(ClaimAccepted) if isinstance(e, ClaimAccepted)]
    assert stages == [AckStage.CLEARINGHOUSE, AckStage.PAYER]
    claim = memory.claim(FIRST)
    assert (claim.status, claim.payer_claim_control_number) == ("accepted", "ACME000111")
    assert memory.apply(domain.acknowledge, AckStage.PAYER, {FIRST: accepted}, NOW) is None


def test_277ca_rejection_opens_a_rejection_item() -> None:
    memory = billed()
    submit(memory)
    rejected = AckVerdict(False, ("A7:164",), "member not found")
    memory.apply(domain.acknowledge, AckStage.PAYER, {FIRST: rejected}, NOW)
    (event,) = memory.of(ClaimRejected)
    assert isinstance(event, ClaimRejected)
    assert (event.stage, event.status_codes, event.message) == (
        AckStage.PAYER,
        ["A7:164"],
        "member not found",
    )
    assert memory.claim(FIRST).work is not None


def test_an_answer_for_a_claim_still_sending_waits() -> None:
    memory = billed()
    memory.apply(domain.mark_sending, {FIRST: "0001"}, 9, NOW)
    verdict = AckVerdict(True)
    with pytest.raises(domain.ClaimStillSending):
        memory.apply(domain.acknowledge, AckStage.PAYER, {FIRST: verdict}, NOW)


# --- payments ----------------------------------------------------------------------------


def test_paid_primary_with_patient_share_queues_the_secondary_and_closes() -> None:
    memory = billed()
    submit(memory)
    memory.apply(domain.payment_posted, paid_posting(FIRST, "P-1"), CONFIG, NOW)
    paid, closed = memory.events[1:]
    assert isinstance(paid, ClaimPaid)
    assert (paid.paid_cents, paid.patient_responsibility_cents) == (7600, 4400)
    assert isinstance(closed, ClaimClosed)
    assert (closed.outcome, closed.open_claims, closed.sequence) == (ClaimOutcome.PAID, 1, 1)
    assert closed.posting_ids == ["P-1"]

    secondary = memory.claim(SECOND)
    assert (secondary.rank, secondary.payer_id, secondary.status) == (
        CoverageRank.SECONDARY,
        "SUMMIT",
        domain.ClaimStatus.QUEUED,
    )
    claim = x12_of(memory, SECOND)
    assert claim.subscriber.payer_responsibility == "S"
    assert claim.subscriber.member_id == "CD987654321"
    (prior,) = claim.prior_payers
    assert (prior.payer_id, prior.paid_cents, prior.remaining_patient_liability_cents) == (
        "ACME01",
        7600,
        4400,
    )
    assert prior.subscriber_member_id == "AB123456789"
    assert [(a.group, a.reason, a.amount_cents) for a in prior.adjustments] == [
        ("CO", "45", 5500),
        ("PR", "1", 3000),
        ("PR", "2", 1400),
    ]
    per_line = [[(a.paid_cents, a.payer_id) for a in line.adjudications] for line in claim.lines]
    assert per_line == [[(5600, "ACME01")], [(2000, "ACME01")]]

    submit(memory, icn=43)
    posting = paid_posting(SECOND, "P-2", patient_share=False, rank=CoverageRank.SECONDARY)
    memory.apply(domain.payment_posted, posting, CONFIG, NOW)
    last = memory.closings()[-1]
    assert (last.claim_id, last.open_claims, last.sequence) == (SECOND, 0, 2)
    assert last.posting_ids == ["P-1", "P-2"]
    assert len(memory.episode.claims) == 2  # a paid secondary bills nobody else


def test_paid_without_patient_share_or_without_secondary_just_closes() -> None:
    for memory, share in ((billed(), False), (billed(secondary=False), True)):
        submit(memory)
        memory.apply(domain.payment_posted, paid_posting(FIRST, patient_share=share), CONFIG, NOW)
        (closed,) = memory.closings()
        assert closed.open_claims == 0
        assert len(memory.episode.claims) == 1


def test_claim_level_adjustments_make_no_line_adjudications() -> None:
    memory = billed()
    submit(memory)
    posting = paid_posting(FIRST).model_copy(
        update={"adjustments": [adjustment("CO", "45", 5500), adjustment("PR", "1", 4400)]}
    )
    memory.apply(domain.payment_posted, posting, CONFIG, NOW)
    claim = x12_of(memory, SECOND)
    assert all(line.adjudications == [] for line in claim.lines)
    assert [a.amount_cents for a in claim.prior_payers[0].adjustments] == [5500, 4400]


@pytest.mark.parametrize(
    ("carc", "category"),
    [
        ("16", DenialCategory.DOCUMENTATION),
        ("97", DenialCategory.CODING),
        ("197", DenialCategory.AUTHORIZATION),
        ("50", DenialCategory.OTHER),
        ("45", DenialCategory.OTHER),
        ("B7", DenialCategory.OTHER),
    ],
)
def test_denial_category_from_the_carc(carc: str, category: DenialCategory) -> None:
    memory = billed()
    submit(memory)
    memory.apply(domain.payment_posted, denial_posting(FIRST, carc), CONFIG, NOW)
    (denied,) = memory.of(ClaimDenied)
    assert isinstance(denied, ClaimDenied)
    assert denied.category is category
    assert [r.reason_code for r in denied.reasons] == [carc]
    claim = memory.claim(FIRST)
    if category is DenialCategory.CODING:
        assert claim.awaiting_recode
        assert domain.work_items(memory.episode) == []
    else:
        (item,) = domain.work_items(memory.episode, "denial")
        assert item["category"] == category.value
    assert memory.closings() == []


def test_the_first_carc_with_a_category_decides() -> None:
    adjustments = [adjustment("CO", "45", 100), adjustment("CO", "197", 100)]
    assert domain.denial_category(adjustments) is DenialCategory.AUTHORIZATION


def test_a_coding_denial_is_replaced_once_coding_is_corrected() -> None:
    memory = billed(secondary=False)
    submit(memory)
    accepted = AckVerdict(True, ("A1:20",), "", "ACME000111")
    memory.apply(domain.acknowledge, AckStage.PAYER, {FIRST: accepted}, NOW)
    memory.apply(domain.payment_posted, denial_posting(FIRST, "97"), CONFIG, NOW)
    memory.apply(domain.coding_corrected, recoded(), CONFIG, NOW)

    resubmitted, closed = memory.changes[-1]
    assert isinstance(resubmitted, ClaimResubmitted)
    assert (resubmitted.claim_id, resubmitted.replaces_claim_id) == (SECOND, FIRST)
    assert resubmitted.frequency is ClaimFrequency.REPLACEMENT
    assert resubmitted.payer_claim_control_number == "ACME000111"
    assert isinstance(closed, ClaimClosed)
    assert (closed.claim_id, closed.outcome, closed.open_claims) == (
        FIRST,
        ClaimOutcome.REPLACED,
        1,
    )
    replacement = x12_of(memory, SECOND)
    assert (replacement.frequency_code, replacement.payer_claim_control_number) == (
        "7",
        "ACME000111",
    )
    assert replacement.lines[0].procedure.code == "99214"  # the corrected codes


def test_reversal_is_recorded_only_and_a_posting_counts_once() -> None:
    memory = billed(secondary=False)
    submit(memory)
    memory.apply(domain.payment_posted, paid_posting(FIRST, "P-1"), CONFIG, NOW)
    events = len(memory.events)
    reversal = denial_posting(FIRST, "45", "P-2", PostedClaimStatus.REVERSED)
    assert memory.apply(domain.payment_posted, reversal, CONFIG, NOW) is not None
    assert len(memory.events) == events
    assert memory.episode.posting_ids == ["P-1", "P-2"]
    assert memory.apply(domain.payment_posted, reversal, CONFIG, NOW) is None


def test_a_posting_for_an_unknown_claim_is_permanent() -> None:
    memory = billed()
    with pytest.raises(PermanentError):
        memory.apply(domain.payment_posted, paid_posting(f"{EPISODE}-9"), CONFIG, NOW)
    with pytest.raises(PermanentError):
        Memory().apply(domain.payment_posted, paid_posting(FIRST), CONFIG, NOW)


# --- the biller --------------------------------------------------------------------------


def _denied(carc: str) -> Memory:
    memory = billed(secondary=False)
    submit(memory)
    memory.apply(domain.payment_posted, denial_posting(FIRST, carc), CONFIG, NOW)
    return memory


def test_correcting_a_rejection_sends_a_new_original_claim() -> None:
    memory = billed()
    submit(memory)
    rejected = AckVerdict(False, ("A7:164",), "member not found")
    memory.apply(domain.acknowledge, AckStage.PAYER, {FIRST: rejected}, NOW)
    result = memory.result(domain.correct, FIRST, "biller-1", "fixed member id", CONFIG, NOW)
    assert (result.claim_id, result.new_claim_id, result.frequency) == (
        FIRST,
        SECOND,
        ClaimFrequency.ORIGINAL,
    )
    resubmitted, closed = memory.changes[-1]
    assert isinstance(resubmitted, ClaimResubmitted)
    assert (resubmitted.frequency, resubmitted.payer_claim_control_number) == (
        ClaimFrequency.ORIGINAL,
        None,
    )
    assert isinstance(closed, ClaimClosed)
    assert (closed.outcome, closed.open_claims) == (ClaimOutcome.REPLACED, 1)
    assert x12_of(memory, SECOND).frequency_code == "1"
    assert domain.work_items(memory.episode) == []
    with pytest.raises(Conflict, match="closed"):
        memory.apply(domain.correct, FIRST, "biller-1", "again", CONFIG, NOW)


def test_correcting_a_denial_sends_a_replacement() -> None:
    memory = _denied("16")
    result = memory.result(domain.correct, FIRST, "biller-1", "notes attached", CONFIG, NOW)
    assert result.frequency is ClaimFrequency.REPLACEMENT
    replacement = x12_of(memory, SECOND)
    assert replacement.frequency_code == "7"
    assert replacement.payer_claim_control_number == FIRST  # no 277CA number: our own id
    assert memory.claim(FIRST).audit[-1].by == "biller-1"


def test_a_replacement_names_the_payer_claim_number_from_the_835() -> None:
    """The denial's posting can come before the 277CA: CLP07 in it names the claim."""
    memory = billed(secondary=False)
    submit(memory)
    posting = denial_posting(FIRST, "16").model_copy(
        update={"payer_claim_control_number": "ACME-000123"}
    )
    memory.apply(domain.payment_posted, posting, CONFIG, NOW)
    memory.apply(domain.correct, FIRST, "biller-1", "notes", CONFIG, NOW)
    assert x12_of(memory, SECOND).payer_claim_control_number == "ACME-000123"


def test_a_rejected_replacement_is_sent_again_as_a_replacement_of_the_same_claim() -> None:
    memory = billed(secondary=False)
    submit(memory)
    posting = denial_posting(FIRST, "16").model_copy(
        update={"payer_claim_control_number": "ACME-000123"}
    )
    memory.apply(domain.payment_posted, posting, CONFIG, NOW)
    memory.apply(domain.correct, FIRST, "biller-1", "notes", CONFIG, NOW)
    submit(memory, icn=43)
    rejected = AckVerdict(False, ("A7:21",), "missing or invalid information")
    memory.apply(domain.acknowledge, AckStage.PAYER, {SECOND: rejected}, NOW)
    result = memory.result(domain.correct, SECOND, "biller-1", "again", CONFIG, NOW)
    assert result.frequency is ClaimFrequency.REPLACEMENT
    third = x12_of(memory, f"{EPISODE}-3")
    assert (third.frequency_code, third.payer_claim_control_number) == ("7", "ACME-000123")


def test_accepting_a_denial_closes_the_claim() -> None:
    memory = _denied("197")
    memory.apply(domain.accept_denial, FIRST, "biller-1", "no auth", NOW)
    (closed,) = memory.closings()
    assert (closed.outcome, closed.open_claims, closed.sequence) == (
        ClaimOutcome.DENIAL_ACCEPTED,
        0,
        1,
    )
    assert closed.posting_ids == ["R000000002-T2-1"]
    with pytest.raises(Conflict):
        memory.apply(domain.accept_denial, FIRST, "b", "again", NOW)


def test_commands_refuse_wrong_states_and_unknown_claims() -> None:
    memory = billed()
    submit(memory)
    with pytest.raises(Conflict, match="submitted"):
        memory.apply(domain.correct, FIRST, "b", "n", CONFIG, NOW)
    with pytest.raises(Conflict):
        memory.apply(domain.accept_denial, FIRST, "b", "n", NOW)
    with pytest.raises(NotFound):
        memory.apply(domain.correct, f"{EPISODE}-5", "b", "n", CONFIG, NOW)
    with pytest.raises(NotFound):
        Memory().apply(domain.accept_denial, FIRST, "b", "n", NOW)
    coding = _denied("97")
    with pytest.raises(Conflict, match="recoding"):
        coding.apply(domain.correct, FIRST, "b", "n", CONFIG, NOW)


def test_stats_count_milestones_and_closings() -> None:
    memory = billed()
    submit(memory)
    memory.apply(domain.payment_posted, paid_posting(FIRST), CONFIG, NOW)
    stats = domain.count(memory.episode.claims)
    assert (stats["claims"], stats["submitted"], stats["paid"], stats["open"]) == (2, 1, 1, 1)
    assert stats["closed"]["paid"] == 1
    assert stats["status"]["queued"] == 1


def test_a_277ca_read_after_the_835_still_counts_the_acceptance() -> None:
    memory = billed(secondary=False)
    submit(memory)
    memory.apply(domain.payment_posted, paid_posting(FIRST), CONFIG, NOW)
    announced = len(memory.of(ClaimAccepted))
    memory.apply(domain.acknowledge, AckStage.PAYER, {FIRST: AckVerdict(True)}, NOW)
    assert memory.claim(FIRST).accepted_at == NOW
    assert len(memory.of(ClaimAccepted)) == announced  # recorded, not announced after paid
    assert domain.count([memory.claim(FIRST)])["accepted"] == 1
