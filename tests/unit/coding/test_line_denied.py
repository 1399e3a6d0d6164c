"""A line denied for coding on a paid claim reopens the episode's case with that line."""

from __future__ import annotations

from rcm_coding import domain
from rcm_coding.domain import Status
from rcm_contracts.claims import DenialCategory, DeniedReason, LineDenied

from .test_cases import CASE, EPISODE, NOW, after, coded, denial, nothing


def line_denied(
    line: str = "L2",
    procedure: str = "36415",
    category: DenialCategory = DenialCategory.CODING,
    carc: str = "97",
) -> LineDenied:
    return LineDenied(
        episode_id=EPISODE,
        claim_id=f"{EPISODE}-1",
        payer_id="ACME01",
        line_id=f"{EPISODE}-{line}",
        procedure_code=procedure,
        category=category,
        reasons=[DeniedReason(group_code="CO", reason_code=carc, amount_cents=2500)],
        posting_id="R1-T1-1",
        denied_at=NOW,
    )


def test_a_line_denial_reopens_a_done_case_and_shows_the_line_and_procedure() -> None:
    reopened = after(domain.reopen_for_line(coded(), line_denied(), "rcm/claims", NOW))
    assert reopened.status == Status.OPEN
    assert reopened.coder_id is None
    assert reopened.recode is not None
    assert reopened.recode.claim_id == f"{EPISODE}-1"
    assert [line.model_dump() for line in reopened.recode.lines] == [
        {"line_id": f"{EPISODE}-L2", "procedure_code": "36415", "reason_codes": ["CO-97"]}
    ]
    entry = reopened.audit[-1]
    assert entry.action == "reopened"
    assert entry.detail["procedure_code"] == "36415"
    assert entry.detail["line_id"] == f"{EPISODE}-L2"
    # the same line again (a redelivery from another posting) changes nothing
    assert nothing(domain.reopen_for_line(reopened, line_denied(), "rcm/claims", NOW))


def test_a_second_line_of_the_same_claim_joins_the_recode() -> None:
    first = after(domain.reopen_for_line(coded(), line_denied(), "rcm/claims", NOW))
    second = after(
        domain.reopen_for_line(first, line_denied("L1", "99213", carc="4"), "rcm/claims", NOW)
    )
    assert second.recode is not None
    assert [line.procedure_code for line in second.recode.lines] == ["36415", "99213"]
    assert second.recode.reason_codes == ["CO-97", "CO-4"]


def test_only_a_coding_line_denial_reopens() -> None:
    for category in DenialCategory:
        if category is not DenialCategory.CODING:
            event = line_denied(category=category)
            assert nothing(domain.reopen_for_line(coded(), event, "rcm/claims", NOW))


def test_a_line_denial_and_a_claim_denial_are_told_apart() -> None:
    """A whole-claim coding denial of the same claim still reopens after a line's."""
    by_line = after(domain.reopen_for_line(coded(), line_denied(), "rcm/claims", NOW))
    case = after(domain.assign(by_line, CASE, "coder-1", NOW))
    assert case.status == Status.IN_PROGRESS
    whole = domain.reopen_for_recode(case, denial(), "rcm/claims", NOW)
    assert after(whole).recode is not None
    assert after(whole).recode.lines == []  # type: ignore[union-attr]
