"""Suggested codes: advice from the documentation; the coder decides."""

from __future__ import annotations

from typing import Any

from rcm_coding import codesets, domain
from rcm_coding.domain import Coding, LineInput, suggest_modifiers, validate
from rcm_contracts.registration import (
    ClinicalDocumentation,
    DocumentedDiagnosis,
    DocumentedProcedure,
)

CHARGEMASTER = codesets.load_chargemaster()


def suggest(documented: ClinicalDocumentation, chargemaster: codesets.Chargemaster) -> Any:
    """The suggestions as the case stores and shows them."""
    return domain.suggest(documented, chargemaster).model_dump()


def documentation(diagnoses: list[Any], procedures: list[Any]) -> ClinicalDocumentation:
    return ClinicalDocumentation(
        note="Established patient seen for back pain and a twisted ankle.",
        diagnoses=[DocumentedDiagnosis(description=d, icd10_hint=h) for d, h in diagnoses],
        procedures=[
            DocumentedProcedure(description=d, code_hint=c, units=u) for d, c, u in procedures
        ],
    )


def test_a_billable_hint_is_suggested_as_is() -> None:
    suggested = suggest(
        documentation([("High blood pressure", "I10")], [("Visit", "99213", 1)]), CHARGEMASTER
    )
    assert suggested["diagnoses"] == [
        {
            "code": "I10",
            "display": "I10",
            "description": "Essential (primary) hypertension",
            "source": "hint",
            "hint": "I10",
            "hint_problem": None,
            "documented": "High blood pressure",
        }
    ]


def test_a_hint_that_is_not_billable_is_kept_with_why_and_the_description_decides() -> None:
    suggested = suggest(
        documentation([("Low back pain", "M54.5")], [("Visit", "99213", 1)]), CHARGEMASTER
    )
    (diagnosis,) = suggested["diagnoses"]
    assert diagnosis["code"] == "M5450"
    assert diagnosis["source"] == "description"
    assert diagnosis["hint"] == "M54.5"
    assert diagnosis["hint_problem"] == "M54.5 is not billable; use one of M54.50, M54.51, M54.59"


def test_without_a_hint_the_description_decides() -> None:
    suggested = suggest(
        documentation([("Essential hypertension", None)], [("Visit", "99213", 1)]), CHARGEMASTER
    )
    assert [(d["code"], d["source"]) for d in suggested["diagnoses"]] == [("I10", "description")]


def test_what_cannot_be_matched_is_listed_with_the_reason() -> None:
    suggested = suggest(
        documentation(
            [("qwertyuiop", "Q99.99"), ("Essential hypertension", "I10")],
            [("Mystery test", "12345", 1), ("Counselling", None, 1), ("Visit", "99213", 1)],
        ),
        CHARGEMASTER,
    )
    assert suggested["unmatched"] == [
        {
            "kind": "diagnosis",
            "documented": "qwertyuiop",
            "hint": "Q99.99",
            "problem": "Q99.99 is not an ICD-10-CM code",
        },
        {
            "kind": "procedure",
            "documented": "Mystery test",
            "hint": "12345",
            "problem": "12345 is not in the chargemaster",
        },
        {
            "kind": "procedure",
            "documented": "Counselling",
            "hint": None,
            "problem": "the order carries no code",
        },
    ]
    assert [line["procedure_code"] for line in suggested["lines"]] == ["99213"]


def test_lines_carry_units_pointers_and_modifier_25_but_never_a_side() -> None:
    suggested = suggest(
        documentation(
            [("Sprain of right ankle", None), ("Essential hypertension", "I10")],
            [
                ("Office visit", "99214", 1),
                ("X-ray of the right ankle", "73610", 1),
                ("Dexamethasone 4 mg", "j1100", 4),
            ],
        ),
        CHARGEMASTER,
    )
    lines = [
        (line["procedure_code"], line["modifiers"], line["units"], line["diagnosis_pointers"])
        for line in suggested["lines"]
    ]
    assert lines == [
        ("99214", ["25"], 1, [1, 2]),
        ("73610", [], 1, [1, 2]),  # "right" is documented, RT is still the coder's call
        ("J1100", [], 4, [1, 2]),
    ]
    assert suggested["lines"][0]["description"] == CHARGEMASTER["99214"].description


def test_the_same_code_is_suggested_once() -> None:
    suggested = suggest(
        documentation(
            [("Hypertension", "I10"), ("Essential (primary) hypertension", None)],
            [("Visit", "99213", 1)],
        ),
        CHARGEMASTER,
    )
    assert [d["code"] for d in suggested["diagnoses"]] == ["I10"]


def test_suggestions_that_were_matched_pass_validation() -> None:
    suggested = suggest(
        documentation(
            [("Low back pain", "M54.5"), ("Type 2 diabetes mellitus", "E11.9")],
            [("Visit", "99213", 1), ("A1c", "83036", 1), ("Draw", "36415", 1)],
        ),
        CHARGEMASTER,
    )
    coding = Coding(
        tuple(d["code"] for d in suggested["diagnoses"]),
        tuple(
            LineInput(
                line["procedure_code"],
                tuple(line["modifiers"]),
                line["units"],
                tuple(line["diagnosis_pointers"]),
            )
            for line in suggested["lines"]
        ),
    )
    assert validate(coding, CHARGEMASTER) == coding


def test_modifier_25_rules() -> None:
    assert suggest_modifiers(["99213"]) == [[]]
    assert suggest_modifiers(["99213", "36415"]) == [["25"], []]
    assert suggest_modifiers(["96372", "99214", "J1100"]) == [[], ["25"], []]
    # a problem visit on the day of a preventive visit
    assert suggest_modifiers(["99396", "99213"]) == [[], ["25"]]
    assert suggest_modifiers(["99396", "90686", "G0008"]) == [["25"], [], []]
    assert suggest_modifiers(["73610", "29540"]) == [[], []]
