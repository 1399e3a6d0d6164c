"""The handlers on the in-memory port: what is stored under which key, what goes out,
what a request answers, and that a redelivered cause changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rcm_coding import codesets, domain
from rcm_coding.domain import Case, Status
from rcm_coding.handlers import SUBSCRIPTIONS, Handlers
from rcm_contracts.claims import ClaimDenied, DenialCategory, LineDenied
from rcm_contracts.coding import (
    CaseAssignmentRequested,
    CaseReassignmentRequested,
    CodedLine,
    CoderProfileRequested,
    CodesSubmissionRequested,
    CodingCompleted,
    CodingCorrected,
    CodingQueryAnswerRequested,
    CodingQueryRequested,
    CodingReviewRequested,
)
from rcm_shared.aggregates import InMemoryAggregates
from rcm_shared.envelope import Envelope
from rcm_shared.errors import Conflict, Invalid, NotFound

from .test_cases import EPISODE, denial, encounter

CHARGEMASTER = codesets.load_chargemaster()
NOW = datetime(2025, 3, 5, 9, 0, tzinfo=UTC)
CASE_ID = domain.case_id_for(EPISODE)


class CaseIds(dict[str, str]):
    async def remember(self, case_id: str, episode_id: str) -> None:
        self[case_id] = episode_id


def handlers() -> tuple[Handlers, InMemoryAggregates[Case], CaseIds]:
    cases = InMemoryAggregates(Case)
    case_ids = CaseIds()
    return Handlers(cases, case_ids, CHARGEMASTER, clock=lambda: NOW), cases, case_ids


def assignment(coder: str) -> Envelope[CaseAssignmentRequested]:
    return Envelope(
        data=CaseAssignmentRequested(episode_id=EPISODE, requested_by=coder), source="rcm/coding"
    )


def codes(coder: str = "coder-1", diagnoses: tuple[str, ...] = ("M54.50", "I10")) -> Envelope:
    return Envelope(
        data=CodesSubmissionRequested(
            episode_id=EPISODE,
            requested_by=coder,
            diagnoses=list(diagnoses),
            lines=[
                CodedLine(procedure_code="99213", modifiers=["25"], diagnosis_pointers=[1, 2]),
                CodedLine(procedure_code="36415", diagnosis_pointers=[2]),
            ],
        ),
        source="rcm/coding",
    )


def test_every_consumed_type_has_its_handler() -> None:
    assert dict(SUBSCRIPTIONS) == {
        type(encounter()): Handlers.encounter_completed,
        ClaimDenied: Handlers.claim_denied,
        LineDenied: Handlers.line_denied,
        CaseAssignmentRequested: Handlers.case_assignment_requested,
        CodesSubmissionRequested: Handlers.codes_submission_requested,
        CodingQueryRequested: Handlers.coding_query_requested,
        CodingQueryAnswerRequested: Handlers.coding_query_answer_requested,
        CaseReassignmentRequested: Handlers.case_reassignment_requested,
        CodingReviewRequested: Handlers.coding_review_requested,
        CoderProfileRequested: Handlers.coder_profile_requested,
    }


async def test_an_encounter_opens_the_case_under_its_episode_once() -> None:
    handle, cases, case_ids = handlers()
    sent = Envelope(data=encounter(), source="rcm/registration")
    await handle.encounter_completed(sent)
    await handle.encounter_completed(sent)  # redelivered
    case = cases.states[EPISODE]  # keyed by the episode: the key of its messages
    assert (case.case_id, case.status, case.opened_at) == (CASE_ID, Status.OPEN, NOW)
    assert [entry.action for entry in case.audit] == ["opened"]
    assert case_ids == {CASE_ID: EPISODE}
    assert cases.emitted == []


async def test_a_coder_takes_the_case_and_a_second_coder_is_refused() -> None:
    handle, cases, _ = handlers()
    with pytest.raises(NotFound, match=f"no coding case {CASE_ID}"):
        await handle.case_assignment_requested(assignment("coder-1"))
    await handle.encounter_completed(Envelope(data=encounter(), source="rcm/registration"))
    taken = await handle.case_assignment_requested(assignment("coder-1"))
    assert (taken["case_id"], taken["status"], taken["coder_id"]) == (
        CASE_ID,
        Status.IN_PROGRESS,
        "coder-1",
    )
    again = await handle.case_assignment_requested(assignment("coder-1"))
    assert again == taken
    with pytest.raises(Conflict, match="held by coder coder-1"):
        await handle.case_assignment_requested(assignment("coder-2"))
    assert cases.states[EPISODE].coder_id == "coder-1"


async def test_codes_are_refused_with_every_reason_and_nothing_changes() -> None:
    handle, cases, _ = handlers()
    await handle.encounter_completed(Envelope(data=encounter(), source="rcm/registration"))
    await handle.case_assignment_requested(assignment("coder-1"))
    before = cases.states[EPISODE]
    with pytest.raises(Invalid) as refused:
        await handle.codes_submission_requested(codes(diagnoses=("M54.5",)))
    assert refused.value.reasons == [
        "diagnoses[0]: M54.5 is not billable; use one of M54.50, M54.51, M54.59 (ICD-10-CM FY2026)",
        "lines[0].diagnosis_pointers[1]: 2 does not point at a diagnosis (1..1)",
        "lines[1].diagnosis_pointers[0]: 2 does not point at a diagnosis (1..1)",
    ]
    with pytest.raises(Conflict, match="held by coder coder-1"):
        await handle.codes_submission_requested(codes("coder-2"))
    assert cases.states[EPISODE] == before
    assert cases.emitted == []


async def test_codes_go_out_once_and_a_repeat_answers_from_the_state() -> None:
    handle, cases, _ = handlers()
    await handle.encounter_completed(Envelope(data=encounter(), source="rcm/registration"))
    await handle.case_assignment_requested(assignment("coder-1"))
    request = codes()
    priced = await handle.codes_submission_requested(request)
    assert priced["case_id"] == CASE_ID
    assert priced["episode_id"] == EPISODE
    assert priced["event_type"] == CodingCompleted.event_type
    assert priced["total_charge_cents"] == 17500
    assert priced["coded_at"] == NOW
    assert priced["repeated"] is False
    (event,) = cases.emitted
    assert isinstance(event, CodingCompleted)
    assert event.completed_at == NOW
    # The same request redelivered, then the same codes in a new request: no new event.
    for repeat in (request, codes()):
        answer = await handle.codes_submission_requested(repeat)
        assert answer == {**priced, "repeated": True}
    assert len(cases.emitted) == 1


async def test_a_coding_denial_reopens_and_the_recode_goes_out_corrected() -> None:
    handle, cases, _ = handlers()
    await handle.encounter_completed(Envelope(data=encounter(), source="rcm/registration"))
    await handle.case_assignment_requested(assignment("coder-1"))
    await handle.codes_submission_requested(codes())
    other = Envelope(data=denial(DenialCategory.DOCUMENTATION, "-1"), source="rcm/claims")
    await handle.claim_denied(other)
    assert cases.states[EPISODE].status == Status.DONE  # billers' work
    coding = Envelope(data=denial(claim="-2"), source="rcm/claims")
    await handle.claim_denied(coding)
    await handle.claim_denied(coding)  # redelivered
    case = cases.states[EPISODE]
    assert (case.status, case.coder_id) == (Status.OPEN, None)
    assert [entry.action for entry in case.audit].count("reopened") == 1
    await handle.case_assignment_requested(assignment("coder-2"))
    corrected = await handle.codes_submission_requested(codes("coder-2"))
    assert corrected["event_type"] == CodingCorrected.event_type
    assert [type(event) for event in cases.emitted] == [CodingCompleted, CodingCorrected]
