"""Edits when a coder submits codes, on a pack built here: an error refuses the codes
with the hits (and the modifier the edit allows), a warning lets them go; every hit is
an edit-hit event and stays on the case as its worklist."""

from __future__ import annotations

from datetime import date

from rcm_coding import domain
from rcm_coding.domain import Coding, LineInput, Status
from rcm_coding.handlers import Handlers
from rcm_contracts.coding import CodedLine, CodesSubmissionRequested, CodingCompleted, CodingEditHit
from rcm_edits import Library
from rcm_edits.packs import ModifierIndicator, Pack, PtpEdit, ScrubRule, Severity
from rcm_shared.aggregates import InMemoryAggregates
from rcm_shared.envelope import Envelope
from rcm_shared.requests import Reply

from .test_cases import CASE, CHARGEMASTER, EPISODE, NOW, after, nothing, opened
from .test_handlers import CaseIds, assignment, encounter

PACK = Pack(
    version="test-2025",
    effective_from=date(2025, 1, 1),
    ptp=[
        PtpEdit(
            column1="96372",
            column2="99213",
            effective=date(2025, 1, 1),
            modifier_indicator=ModifierIndicator.ALLOWED,
        )
    ],
    rules=[ScrubRule(rule="em-modifier-25", severity=Severity.WARNING, procedures=["87880"])],
)
PACKS = Library([PACK])
WITHOUT_25 = Coding(("M5450",), (LineInput("99213", (), 1, (1,)), LineInput("96372", (), 1, (1,))))
WITH_25 = Coding(
    ("M5450",), (LineInput("99213", ("25",), 1, (1,)), LineInput("96372", (), 1, (1,)))
)


def assigned() -> domain.Case:
    return after(domain.assign(opened(), CASE, "coder-1", NOW))


def submit(case: domain.Case, coding: Coding) -> domain.CaseDecision:
    return domain.submit(case, CASE, "coder-1", coding, CHARGEMASTER, NOW, PACKS)


def test_codes_breaking_a_ptp_edit_are_refused_with_the_allowed_modifier() -> None:
    decision = submit(assigned(), WITHOUT_25)
    case = after(decision)
    assert case.status is Status.IN_PROGRESS  # still the coder's, not done
    assert case.coding is None
    assert case.edits_refused == WITHOUT_25
    assert case.edit_pack_version == "test-2025"
    (hit,) = case.edit_hits
    assert (hit.rule, hit.codes, hit.line_numbers, hit.allowed_modifiers) == (
        "ptp",
        ["96372", "99213"],
        [1, 2],
        ["25"],
    )
    (event,) = decision.events
    assert isinstance(event, CodingEditHit)
    assert (event.action, event.edit_pack_version, event.hits) == ("refused", "test-2025", [hit])
    assert case.audit[-1].action == "edits-refused"
    # the same codes again: nothing new
    assert nothing(submit(case, WITHOUT_25))
    body = domain.refusal_body(case.edit_hits)
    assert body[0]["msg"] == hit.message
    assert body[0]["allowed_modifiers"] == ["25"]


def test_the_codes_with_the_modifier_go_out_with_the_pack_version() -> None:
    refused = after(submit(assigned(), WITHOUT_25))
    decision = submit(refused, WITH_25)
    case = after(decision)
    assert case.status is Status.DONE
    assert (case.edits_refused, case.edit_hits) == (None, [])
    (completed,) = decision.events
    assert isinstance(completed, CodingCompleted)
    assert completed.edit_pack_version == "test-2025"


def test_a_warning_is_shown_and_the_codes_go_out() -> None:
    rapid_strep = Coding(
        ("M5450",), (LineInput("99213", (), 1, (1,)), LineInput("87880", (), 1, (1,)))
    )
    decision = submit(assigned(), rapid_strep)
    case = after(decision)
    assert case.status is Status.DONE
    completed, warned = decision.events
    assert isinstance(completed, CodingCompleted)
    assert isinstance(warned, CodingEditHit)
    assert warned.action == "warned"
    assert [hit.rule for hit in case.edit_hits] == ["em-modifier-25"]


def test_without_packs_there_are_no_edits() -> None:
    decision = domain.submit(assigned(), CASE, "coder-1", WITHOUT_25, CHARGEMASTER, NOW)
    (completed,) = decision.events
    assert isinstance(completed, CodingCompleted)
    assert completed.edit_pack_version is None


async def test_the_handler_answers_422_with_the_hits_and_keeps_them_on_the_case() -> None:
    cases = InMemoryAggregates(domain.Case)
    handle = Handlers(cases, CaseIds(), CHARGEMASTER, clock=lambda: NOW, packs=PACKS)
    await handle.encounter_completed(Envelope(data=encounter(), source="rcm/registration"))
    await handle.case_assignment_requested(assignment("coder-1"))
    request = CodesSubmissionRequested(
        episode_id=EPISODE,
        requested_by="coder-1",
        diagnoses=["M54.50"],
        lines=[
            CodedLine(procedure_code="99213", diagnosis_pointers=[1]),
            CodedLine(procedure_code="96372", diagnosis_pointers=[1]),
        ],
    )
    sent = Envelope(data=request, source="rcm/coding")
    answer = await handle.codes_submission_requested(sent)
    assert isinstance(answer, Reply)
    assert answer.status == 422
    assert answer.body[0]["allowed_modifiers"] == ["25"]
    # redelivered: the same answer, from the stored case, and no second event
    again = await handle.codes_submission_requested(sent)
    assert isinstance(again, Reply)
    assert again.body == answer.body
    assert len([e for e in cases.emitted if isinstance(e, CodingEditHit)]) == 1
    assert cases.states[EPISODE].status is Status.IN_PROGRESS
