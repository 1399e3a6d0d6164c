"""The life of a coding case: opened, assigned, coded, reopened by a coding denial."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from rcm_coding import codesets, domain
from rcm_coding.domain import Case, CaseDecision, Coding, LineInput, Status
from rcm_contracts.claims import ClaimDenied, DenialCategory, DeniedReason
from rcm_contracts.coding import CodingCompleted, CodingCorrected, RecodeReason
from rcm_contracts.registration import ClinicalDocumentation, EncounterCompleted
from rcm_shared.errors import Conflict, NotFound

CHARGEMASTER = codesets.load_chargemaster()
NOW = datetime(2025, 3, 4, 15, 30, tzinfo=UTC)
EPISODE = "E0123456789ab"
CASE = domain.case_id_for(EPISODE)
CODING = Coding(
    ("M5450", "I10"),
    (LineInput("99213", ("25",), 1, (1, 2)), LineInput("36415", (), 1, (2,))),
)


def encounter() -> EncounterCompleted:
    return EncounterCompleted(
        episode_id=EPISODE,
        encounter_id="N0123456789ab",
        patient_id="P0123456789ab",
        date_of_service=date(2025, 3, 4),
        place_of_service="11",
        rendering_provider_npi="1234567893",
        documentation=ClinicalDocumentation(
            note="Back pain; blood pressure check.",
            diagnoses=[{"description": "Low back pain", "icd10_hint": "M54.5"}],
            procedures=[{"description": "Office visit", "code_hint": "99213"}],
        ),
    )


def denial(category: DenialCategory = DenialCategory.CODING, claim: str = "-1") -> ClaimDenied:
    return ClaimDenied(
        episode_id=EPISODE,
        claim_id=EPISODE + claim,
        payer_id="ACME01",
        category=category,
        reasons=[DeniedReason(group_code="CO", reason_code="97", amount_cents=17500)],
        denied_at=NOW,
    )


def after(decision: CaseDecision) -> Case:
    """The case as the store would hold it after the decision."""
    assert decision.state is not None
    return decision.state


def nothing(decision: CaseDecision) -> bool:
    return decision.state is None and not decision.events


def opened() -> Case:
    suggestions = domain.suggest(encounter().documentation, CHARGEMASTER)
    return after(domain.open_case(None, encounter(), suggestions, "rcm/registration", NOW))


def coded(coder: str = "coder-1") -> Case:
    case = after(domain.assign(opened(), CASE, coder, NOW))
    return after(domain.submit(case, CASE, coder, CODING, CHARGEMASTER, NOW))


def test_a_case_id_is_k_and_12_hex_digits_and_stable_per_episode() -> None:
    assert re.fullmatch(r"K[0-9a-f]{12}", domain.case_id_for(EPISODE))
    assert domain.case_id_for(EPISODE) == CASE
    assert domain.case_id_for("E0123456789ac") != CASE


def test_an_encounter_opens_a_case_with_documentation_and_suggestions() -> None:
    case = opened()
    assert case.status == Status.OPEN
    assert case.case_id == CASE
    assert case.model_dump(mode="json")["date_of_service"] == "2025-03-04"
    assert case.documentation is not None
    assert case.suggestions is not None
    assert case.documentation.diagnoses[0].icd10_hint == "M54.5"
    assert case.suggestions.diagnoses[0].code == "M5450"
    assert [entry.action for entry in case.audit] == ["opened"]
    # the same encounter again (another event id) changes nothing
    assert nothing(
        domain.open_case(case, encounter(), domain.Suggestions(), "rcm/registration", NOW)
    )


def test_assign_takes_the_case_and_a_second_coder_is_refused() -> None:
    case = after(domain.assign(opened(), CASE, "coder-1", NOW))
    assert case.status == Status.IN_PROGRESS
    assert case.coder_id == "coder-1"
    assert case.audit[-1].model_dump() == {
        "at": NOW,
        "who": "coder-1",
        "action": "assigned",
        "detail": {},
    }
    again = domain.assign(case, CASE, "coder-1", NOW)  # asked twice
    assert nothing(again)
    assert again.result == case
    with pytest.raises(Conflict, match="held by coder coder-1"):
        domain.assign(case, CASE, "coder-2", NOW)
    with pytest.raises(NotFound):
        domain.assign(None, CASE, "coder-1", NOW)


def test_codes_need_the_case_held_by_the_submitting_coder() -> None:
    with pytest.raises(Conflict, match="assign it first"):
        domain.submit(opened(), CASE, "coder-1", CODING, CHARGEMASTER, NOW)
    case = after(domain.assign(opened(), CASE, "coder-1", NOW))
    with pytest.raises(Conflict, match="held by coder coder-1"):
        domain.submit(case, CASE, "coder-2", CODING, CHARGEMASTER, NOW)


def test_first_coding_emits_coding_completed_with_priced_lines() -> None:
    case = after(domain.assign(opened(), CASE, "coder-1", NOW))
    change = domain.submit(case, CASE, "coder-1", CODING, CHARGEMASTER, NOW)
    (event,) = change.events
    assert isinstance(event, CodingCompleted)
    assert event.coding_case_id == CASE
    assert event.diagnoses == ["M5450", "I10"]
    assert [(line.procedure_code, line.charge_cents) for line in event.charge_lines] == [
        ("99213", 15000),
        ("36415", 2500),
    ]
    assert event.total_charge_cents == 17500
    assert event.charge_lines[0].service_date == date(2025, 3, 4)
    assert event.charge_lines[1].line_id == f"{EPISODE}-L2"
    assert (event.place_of_service, event.rendering_provider_npi) == ("11", "1234567893")
    assert event.coder_id == "coder-1"
    assert event.completed_at == NOW
    done = after(change)
    assert done.status == Status.DONE
    assert done.coding is not None
    assert done.coding.total_charge_cents == 17500
    assert done.audit[-1].action == "coded"
    assert change.result == done


def test_the_same_codes_again_emit_nothing_and_other_codes_are_refused() -> None:
    case = coded()
    assert nothing(domain.submit(case, CASE, "coder-1", CODING, CHARGEMASTER, NOW))
    # as typed, not yet normalized: still the same codes
    typed = Coding(("m54.50", "I10"), CODING.lines)
    assert nothing(domain.submit(case, CASE, "coder-1", typed, CHARGEMASTER, NOW))
    other = Coding(("I10",), (LineInput("99214", (), 1, (1,)),))
    with pytest.raises(Conflict, match="is done"):
        domain.submit(case, CASE, "coder-1", other, CHARGEMASTER, NOW)
    with pytest.raises(Conflict):
        domain.submit(case, CASE, "coder-2", CODING, CHARGEMASTER, NOW)
    with pytest.raises(Conflict, match="is done"):
        domain.assign(case, CASE, "coder-2", NOW)


def test_only_a_coding_denial_reopens_the_case() -> None:
    case = coded()
    for category in DenialCategory:
        if category is not DenialCategory.CODING:
            assert nothing(domain.reopen_for_recode(case, denial(category), "rcm/claims", NOW))
    reopened = after(domain.reopen_for_recode(case, denial(), "rcm/claims", NOW))
    assert reopened.status == Status.OPEN
    assert reopened.coder_id is None
    assert reopened.recode is not None
    assert reopened.recode.model_dump(mode="json") == {
        "reason": "coding-denial",
        "claim_id": f"{EPISODE}-1",
        "reason_codes": ["CO-97"],
        "requested_at": "2025-03-04T15:30:00Z",
        "lines": [],
        "corrections": None,
    }
    assert reopened.recode.requested_at == NOW
    assert reopened.audit[-1].action == "reopened"
    assert reopened.audit[-1].who == "rcm/claims"
    # the same claim's denial again changes nothing
    assert nothing(domain.reopen_for_recode(reopened, denial(), "rcm/claims", NOW))


def test_after_a_recode_the_coding_goes_out_as_coding_corrected() -> None:
    reopened = after(domain.reopen_for_recode(coded(), denial(), "rcm/claims", NOW))
    case = after(domain.assign(reopened, CASE, "coder-2", NOW))
    recoded = Coding(("M5450", "I10"), (LineInput("99213", (), 1, (1, 2)),))
    change = domain.submit(case, CASE, "coder-2", recoded, CHARGEMASTER, NOW)
    (event,) = change.events
    assert isinstance(event, CodingCorrected)
    assert event.reason is RecodeReason.CODING_DENIAL
    assert event.corrected_at == NOW
    assert event.total_charge_cents == 15000
    done = after(change)
    assert done.status == Status.DONE
    assert done.recode is None
    actions = [entry.action for entry in done.audit]
    assert actions == ["opened", "assigned", "coded", "reopened", "assigned", "coded"]
    # a later coding denial of the corrected claim reopens it again
    again = domain.reopen_for_recode(done, denial(claim="-2"), "rcm/claims", NOW)
    assert after(again).status == Status.OPEN


def test_a_denial_before_the_encounter_waits_for_it() -> None:
    waiting = after(domain.reopen_for_recode(None, denial(), "rcm/claims", NOW))
    assert waiting.status == Status.AWAITING_ENCOUNTER
    with pytest.raises(NotFound):
        domain.assign(waiting, CASE, "coder-1", NOW)
    suggestions = domain.suggest(encounter().documentation, CHARGEMASTER)
    case = after(domain.open_case(waiting, encounter(), suggestions, "rcm/r", NOW))
    assert case.status == Status.OPEN
    assert case.recode is not None
    assert case.recode.claim_id == f"{EPISODE}-1"
    assert [entry.action for entry in case.audit] == ["reopened", "opened"]
    case = after(domain.assign(case, CASE, "coder-1", NOW))
    change = domain.submit(case, CASE, "coder-1", CODING, CHARGEMASTER, NOW)
    assert isinstance(change.events[0], CodingCorrected)
