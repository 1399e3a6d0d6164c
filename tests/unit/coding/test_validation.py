"""What a coder may submit: every problem is reported at once, by where it is."""

from __future__ import annotations

import pytest
from rcm_coding import codesets
from rcm_coding.domain import Coding, LineInput, validate
from rcm_shared.errors import Invalid

CHARGEMASTER = codesets.load_chargemaster()


def line(
    code: str = "99213",
    modifiers: tuple[str, ...] = (),
    units: int = 1,
    pointers: tuple[int, ...] = (1,),
) -> LineInput:
    return LineInput(code, modifiers, units, pointers)


def problems(diagnoses: tuple[str, ...], *lines: LineInput) -> list[str]:
    with pytest.raises(Invalid) as refused:
        validate(Coding(diagnoses, lines), CHARGEMASTER)
    return refused.value.reasons


def test_valid_codes_come_back_normalized() -> None:
    coding = validate(
        Coding(
            ("m54.50", "I10"),
            (line("99213", ("25",), 1, (1, 2)), line("j1100", ("xs",), 4, (1,))),
        ),
        CHARGEMASTER,
    )
    assert coding.diagnoses == ("M5450", "I10")
    assert coding.lines == (line("99213", ("25",), 1, (1, 2)), line("J1100", ("XS",), 4, (1,)))


def test_a_category_is_refused_with_the_billable_codes() -> None:
    assert problems(("M54.5",), line()) == [
        "diagnoses[0]: M54.5 is not billable; use one of M54.50, M54.51, M54.59"
    ]


def test_every_problem_is_reported_not_just_the_first() -> None:
    reasons = problems(
        ("M54.5", "Q99.99", "I10", "I10"),
        line("99213"),
        line("99999", pointers=(1, 5)),
        line("9921", units=0, pointers=()),
    )
    assert reasons == [
        "diagnoses[0]: M54.5 is not billable; use one of M54.50, M54.51, M54.59",
        "diagnoses[1]: Q99.99 is not an ICD-10-CM code",
        "diagnoses[3]: I10 is listed twice (also diagnoses[2])",
        "lines[1].procedure_code: 99999 is not in the chargemaster",
        "lines[1].diagnosis_pointers[1]: 5 does not point at a diagnosis (1..4)",
        "lines[2].procedure_code: '9921' is not a CPT code (5 digits, or 4 digits and a "
        "letter) or a HCPCS level II code (a letter and 4 digits)",
        "lines[2].units: 0 is not 1..99",
        "lines[2].diagnosis_pointers: 1 to 4 pointers, got 0",
    ]


def test_a_diagnosis_is_a_duplicate_with_or_without_dot() -> None:
    assert problems(("E11.9", "E119"), line()) == [
        "diagnoses[1]: E119 is listed twice (also diagnoses[0])"
    ]


def test_at_least_one_and_at_most_twelve_diagnoses() -> None:
    assert problems((), line(pointers=(1,))) == [
        "diagnoses: at least one diagnosis is required",
        "lines[0].diagnosis_pointers[0]: 1 does not point at a diagnosis (1..0)",
    ]
    thirteen = tuple(f"S93.40{side}A" for side in "129") + tuple(
        f"E11.{n}" for n in ("9", "65", "8", "21", "22", "29", "36", "40", "42", "51")
    )
    assert problems(thirteen, line()) == ["diagnoses: at most 12 diagnoses, got 13"]


def test_lines_are_required_and_limited() -> None:
    assert problems(("I10",)) == ["lines: at least one line is required"]
    assert problems(("I10",), *[line()] * 51) == ["lines: at most 50 lines, got 51"]


def test_modifiers_shape_list_count_and_duplicates() -> None:
    reasons = problems(("I10",), line("73610", ("RT", "rt", "9", "ZZ", "59")))
    assert reasons == [
        "lines[0].modifiers: at most 4 modifiers, got 5",
        "lines[0].modifiers[1]: RT is listed twice (also lines[0].modifiers[0])",
        "lines[0].modifiers[2]: '9' is not a modifier (2 letters or digits)",
        "lines[0].modifiers[3]: ZZ is not a known modifier "
        "(25, 59, 76, 77, 91, LT, RT, XE, XP, XS, XU)",
    ]


def test_modifier_25_belongs_on_an_evaluation_and_management_code() -> None:
    assert problems(("I10",), line("36415", ("25",))) == [
        "lines[0].modifiers[0]: 25 applies only to an E/M service"
    ]
    validate(Coding(("I10",), (line("99214", ("25",)),)), CHARGEMASTER)


@pytest.mark.parametrize("units", [0, -1, 100])
def test_units_are_1_to_99(units: int) -> None:
    assert problems(("I10",), line(units=units)) == [f"lines[0].units: {units} is not 1..99"]


def test_pointers_count_range_and_duplicates() -> None:
    assert problems(("I10", "E119"), line(pointers=(1, 2, 1, 2, 1))) == [
        "lines[0].diagnosis_pointers: 1 to 4 pointers, got 5",
        "lines[0].diagnosis_pointers[2]: 1 is listed twice (also lines[0].diagnosis_pointers[0])",
        "lines[0].diagnosis_pointers[3]: 2 is listed twice (also lines[0].diagnosis_pointers[1])",
        "lines[0].diagnosis_pointers[4]: 1 is listed twice (also lines[0].diagnosis_pointers[0])",
    ]
    assert problems(("I10",), line(pointers=(0,))) == [
        "lines[0].diagnosis_pointers[0]: 0 does not point at a diagnosis (1..1)"
    ]
