"""The reference data: the shipped chargemaster and ICD-10-CM lookups."""

from __future__ import annotations

import re

import pytest
from rcm_coding import codesets
from rcm_coding.codesets import ChargemasterError, parse_chargemaster
from rcm_contracts.coding import ProcedureCodeSet

from tests.conftest import REPO

HEADER = "code,code_set,description,unit_price_cents\n"


def codes_in_flow_doc() -> set[str]:
    """The procedure codes docs/flow.md says the simulator and the chargemaster know."""
    text = (REPO / "docs" / "flow.md").read_text()
    paragraph = text.split("**Procedure codes**", 1)[1].split("\n- **", 1)[0]
    codes: set[str] = set()
    for first, last in re.findall(r"`(\d{5})`\u2013`(\d{5})`", paragraph):  # en dash
        codes |= {str(code) for code in range(int(first), int(last) + 1)}
    return codes | set(re.findall(r"`([0-9A-Z]\d{4})`", paragraph))


def test_shipped_chargemaster_has_exactly_the_codes_of_the_flow() -> None:
    chargemaster = codesets.load_chargemaster()
    assert set(chargemaster) == codes_in_flow_doc()
    assert len(chargemaster) == 23
    assert chargemaster["99213"].unit_price_cents == 15000
    assert chargemaster["J1100"].code_set is ProcedureCodeSet.HCPCS
    assert chargemaster["G0008"].code_set is ProcedureCodeSet.HCPCS
    assert chargemaster["36415"].code_set is ProcedureCodeSet.CPT
    # list prices rise with the level of the visit
    visits = [chargemaster[code].unit_price_cents for code in ("99211", "99212", "99213")]
    assert visits == sorted(visits)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "header"),
        ("code,set,description,price\n99213,CPT,Visit,15000\n", "header"),
        (HEADER, "no codes"),
        (HEADER + "99213,CPT,Visit\n", "expected 4 fields"),
        (HEADER + "99213,ICD,Visit,15000\n", "code_set must be CPT or HCPCS"),
        (HEADER + "J1100,CPT,Dexamethasone,800\n", "is not a CPT code"),
        (HEADER + "9921,CPT,Visit,15000\n", "is not a CPT code"),
        (HEADER + "99213,CPT,,15000\n", "has no description"),
        (HEADER + "99213,CPT,Visit,150.00\n", "whole cents"),
        (HEADER + "99213,CPT,Visit,0\n", "whole cents"),
        (HEADER + "99213,CPT,Visit,-5\n", "whole cents"),
        (HEADER + "99213,CPT,Visit,15000\n99213,CPT,Visit again,16000\n", "listed twice"),
    ],
)
def test_a_malformed_chargemaster_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ChargemasterError, match=problem):
        parse_chargemaster(text)


def test_chargemaster_reads_quoted_descriptions() -> None:
    chargemaster = parse_chargemaster(HEADER + '99213,CPT,"Visit, established",15000\n\n')
    assert chargemaster["99213"].description == "Visit, established"


@pytest.mark.parametrize(
    ("raw", "code"), [("I10", "I10"), ("M54.50", "M5450"), ("m5450", "M5450"), (" E11.9 ", "E119")]
)
def test_billable_codes_are_accepted_with_or_without_dot(raw: str, code: str) -> None:
    assert codesets.check_icd10(raw) == codesets.IcdCheck(code, None)


def test_a_category_is_not_billable_and_the_problem_names_the_billable_codes() -> None:
    assert codesets.check_icd10("M54.5").problem == (
        "M54.5 is not billable; use one of M54.50, M54.51, M54.59"
    )
    many = codesets.check_icd10("E11").problem
    assert many is not None
    assert many.startswith("E11 is not billable; use one of its ")
    assert "e.g. E11.00" in many


@pytest.mark.parametrize("raw", ["X99.99", "M5.45", "13", "M00-M02", "", "ABC"])
def test_unknown_codes_chapters_and_blocks_are_not_codes(raw: str) -> None:
    check = codesets.check_icd10(raw)
    assert check.code is None
    assert check.problem is not None
    assert "is not an ICD-10-CM code" in check.problem


@pytest.mark.parametrize(
    ("description", "code"),
    [
        ("Essential (primary) hypertension", "I10"),  # exact, normalized
        ("essential primary HYPERTENSION", "I10"),
        ("Low back pain", "M5450"),  # the unspecified one, not "other"
        ("Type 2 diabetes mellitus", "E119"),  # not a "with <complication>" code
        ("Sprain of right ankle", "S93401A"),  # initial encounter
        ("Urinary tract infection", "N390"),
    ],
)
def test_codes_are_found_by_description(description: str, code: str) -> None:
    assert codesets.find_by_description(description) == code
    assert codesets.check_icd10(code).code == code  # always a billable code


def test_nothing_is_found_for_words_no_description_has() -> None:
    assert codesets.find_by_description("qwertyuiop zxcvbnm") is None


def test_description_index_ranks_overlap_then_extra_words() -> None:
    index = codesets.DescriptionIndex(
        {
            "A001": "Pain in knee, with swelling",
            "A002": "Pain in knee, unspecified",
            "A003": "Pain",
            "A004": "Knee pain of the right leg in winter",
        }
    )
    assert index.find("pain in knee unspecified") == "A002"  # exact
    assert index.find("knee pain") == "A002"  # all words, nothing extra but filler
    assert index.find("pain") == "A003"
    assert index.find("right knee pain") == "A004"
    assert index.find("elbow") is None


@pytest.mark.parametrize(
    ("code", "code_set"),
    [
        ("99213", ProcedureCodeSet.CPT),
        ("0001F", ProcedureCodeSet.CPT),  # category II
        ("0042T", ProcedureCodeSet.CPT),  # category III
        ("J1100", ProcedureCodeSet.HCPCS),
        ("G0008", ProcedureCodeSet.HCPCS),
        ("9921", None),
        ("992134", None),
        ("JJ100", None),
        ("W1234", None),  # not a HCPCS level II letter
    ],
)
def test_procedure_code_shapes(code: str, code_set: ProcedureCodeSet | None) -> None:
    assert codesets.code_set_by_shape(code) is code_set


def test_evaluation_and_management_range() -> None:
    assert codesets.is_evaluation_and_management("99213")
    assert codesets.is_evaluation_and_management("99396")
    assert not codesets.is_evaluation_and_management("36415")
    assert not codesets.is_evaluation_and_management("J1100")
    assert codesets.is_preventive_visit("99396")
    assert not codesets.is_preventive_visit("99213")
