"""The life of a coding case: opened, assigned, coded, reopened by a coding denial."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from rcm_coding import codesets, domain
from rcm_coding.domain import CaseConflict, CaseNotFound, Coding, LineInput, Status
from rcm_contracts.claims import ClaimDenied, DenialCategory, DeniedReason
from rcm_contracts.coding import CodingCompleted, CodingCorrected, RecodeReason
from rcm_contracts.registration import ClinicalDocumentation, EncounterCompleted
from rcm_shared.store import Change

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


def after(case: dict[str, Any] | None, change: Change | None) -> dict[str, Any]:
    """The case as the store would hold it after the change."""
    assert change is not None
    return {**(case or {}), **change.set}


def opened() -> dict[str, Any]:
    suggestions = domain.suggest(encounter().documentation, CHARGEMASTER)
    return after(None, domain.open_case(None, encounter(), suggestions, "rcm/registration", NOW))


def coded(coder: str = "coder-1") -> dict[str, Any]:
    case = after(opened(), domain.assign(opened(), CASE, coder, NOW))
    return after(case, domain.submit(case, CASE, coder, CODING, CHARGEMASTER, NOW))


def test_a_case_id_is_k_and_12_hex_digits_and_stable_per_episode() -> None:
    assert re.fullmatch(r"K[0-9a-f]{12}", domain.case_id_for(EPISODE))
    assert domain.case_id_for(EPISODE) == CASE
    assert domain.case_id_for("E0123456789ac") != CASE


def test_an_encounter_opens_a_case_with_documentation_and_suggestions() -> None:
    case = opened()
    assert case["status"] == Status.OPEN
    assert case["case_id"] == CASE
    assert case["date_of_service"] == "2025-03-04"
    assert case["documentation"]["diagnoses"][0]["icd10_hint"] == "M54.5"
    assert case["suggestions"]["diagnoses"][0]["code"] == "M5450"
    assert [entry["action"] for entry in case["audit"]] == ["opened"]
    # the same encounter again (another event id) changes nothing
    assert domain.open_case(case, encounter(), {}, "rcm/registration", NOW) is None


def test_assign_takes_the_case_and_a_second_coder_is_refused() -> None:
    case = after(opened(), domain.assign(opened(), CASE, "coder-1", NOW))
    assert case["status"] == Status.IN_PROGRESS
    assert case["coder_id"] == "coder-1"
    assert case["audit"][-1] == {"at": NOW, "who": "coder-1", "action": "assigned", "detail": {}}
    assert domain.assign(case, CASE, "coder-1", NOW) is None  # asked twice
    with pytest.raises(CaseConflict, match="held by coder coder-1"):
        domain.assign(case, CASE, "coder-2", NOW)
    with pytest.raises(CaseNotFound):
        domain.assign(None, CASE, "coder-1", NOW)


def test_codes_need_the_case_held_by_the_submitting_coder() -> None:
    with pytest.raises(CaseConflict, match="assign it first"):
        domain.submit(opened(), CASE, "coder-1", CODING, CHARGEMASTER, NOW)
    case = after(opened(), domain.assign(opened(), CASE, "coder-1", NOW))
    with pytest.raises(CaseConflict, match="held by coder coder-1"):
        domain.submit(case, CASE, "coder-2", CODING, CHARGEMASTER, NOW)


def test_first_coding_emits_coding_completed_with_priced_lines() -> None:
    case = after(opened(), domain.assign(opened(), CASE, "coder-1", NOW))
    change = domain.submit(case, CASE, "coder-1", CODING, CHARGEMASTER, NOW)
    assert change is not None
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
    done = after(case, change)
    assert done["status"] == Status.DONE
    assert done["coding"]["total_charge_cents"] == 17500
    assert done["audit"][-1]["action"] == "coded"


def test_the_same_codes_again_emit_nothing_and_other_codes_are_refused() -> None:
    case = coded()
    assert domain.submit(case, CASE, "coder-1", CODING, CHARGEMASTER, NOW) is None
    other = Coding(("I10",), (LineInput("99214", (), 1, (1,)),))
    with pytest.raises(CaseConflict, match="is done"):
        domain.submit(case, CASE, "coder-1", other, CHARGEMASTER, NOW)
    with pytest.raises(CaseConflict):
        domain.submit(case, CASE, "coder-2", CODING, CHARGEMASTER, NOW)
    with pytest.raises(CaseConflict, match="is done"):
        domain.assign(case, CASE, "coder-2", NOW)


def test_only_a_coding_denial_reopens_the_case() -> None:
    case = coded()
    for category in DenialCategory:
        if category is not DenialCategory.CODING:
            assert domain.reopen_for_recode(case, denial(category), "rcm/claims", NOW) is None
    reopened = after(case, domain.reopen_for_recode(case, denial(), "rcm/claims", NOW))
    assert reopened["status"] == Status.OPEN
    assert reopened["coder_id"] is None
    assert reopened["recode"] == {
        "reason": "coding-denial",
        "claim_id": f"{EPISODE}-1",
        "reason_codes": ["CO-97"],
        "requested_at": NOW,
    }
    assert reopened["audit"][-1]["action"] == "reopened"
    assert reopened["audit"][-1]["who"] == "rcm/claims"
    # the same claim's denial again changes nothing
    assert domain.reopen_for_recode(reopened, denial(), "rcm/claims", NOW) is None


def test_after_a_recode_the_coding_goes_out_as_coding_corrected() -> None:
    reopened = after(coded(), domain.reopen_for_recode(coded(), denial(), "rcm/claims", NOW))
    case = after(reopened, domain.assign(reopened, CASE, "coder-2", NOW))
    recoded = Coding(("M5450", "I10"), (LineInput("99213", (), 1, (1, 2)),))
    change = domain.submit(case, CASE, "coder-2", recoded, CHARGEMASTER, NOW)
    assert change is not None
    (event,) = change.events
    assert isinstance(event, CodingCorrected)
    assert event.reason is RecodeReason.CODING_DENIAL
    assert event.corrected_at == NOW
    assert event.total_charge_cents == 15000
    done = after(case, change)
    assert done["status"] == Status.DONE
    assert done["recode"] is None
    actions = [entry["action"] for entry in done["audit"]]
    assert actions == ["opened", "assigned", "coded", "reopened", "assigned", "coded"]
    # a later coding denial of the corrected claim reopens it again
    again = domain.reopen_for_recode(done, denial(claim="-2"), "rcm/claims", NOW)
    assert after(done, again)["status"] == Status.OPEN


def test_a_denial_before_the_encounter_waits_for_it() -> None:
    waiting = after(None, domain.reopen_for_recode(None, denial(), "rcm/claims", NOW))
    assert waiting["status"] == Status.AWAITING_ENCOUNTER
    with pytest.raises(CaseNotFound):
        domain.assign(waiting, CASE, "coder-1", NOW)
    suggestions = domain.suggest(encounter().documentation, CHARGEMASTER)
    case = after(waiting, domain.open_case(waiting, encounter(), suggestions, "rcm/r", NOW))
    assert case["status"] == Status.OPEN
    assert case["recode"]["claim_id"] == f"{EPISODE}-1"
    case = after(case, domain.assign(case, CASE, "coder-1", NOW))
    change = domain.submit(case, CASE, "coder-1", CODING, CHARGEMASTER, NOW)
    assert change is not None
    assert isinstance(change.events[0], CodingCorrected)
