"""Dependents: 270/271 loop 2000D and 837P loop 2000C, read from files and refused when
the hierarchy is wrong."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from rcm_x12 import (
    X12Error,
    X12StructureError,
    X12ValueError,
    build_270,
    build_837p,
    parse_270,
    parse_271,
    parse_837p,
    validate_with_pyx12,
)

CORPUS = Path(__file__).parents[2] / "corpus" / "x12"


def read(name: str) -> str:
    return (CORPUS / name).read_text()


def test_270_for_a_child_names_the_parent_as_subscriber_and_the_child_as_patient() -> None:
    text = read("270_dependent.x12")
    document = parse_270(text)
    (inquiry,) = document.transactions
    assert (inquiry.subscriber.first_name, inquiry.subscriber.member_id) == (
        "MARCO",
        "ACM555000111",
    )
    assert inquiry.subscriber.birth_date == date(1978, 3, 12)
    dependent = inquiry.dependent
    assert dependent is not None
    assert (dependent.first_name, dependent.relationship) == ("LUCIA", "19")
    assert (dependent.birth_date, dependent.gender) == (date(2015, 7, 9), "F")
    assert inquiry.trace_number == "EQ0042"  # the dependent's TRN (2000D)
    assert inquiry.service_date == date(2026, 3, 2)
    assert build_270(document) == text


def test_271_answers_for_the_child_at_the_dependent_level() -> None:
    response = parse_271(read("271_dependent_active.x12")).transactions[0]
    assert response.dependent is not None
    assert response.dependent.first_name == "LUCIA"
    assert response.trace_number == "EQ0042"
    coverage = response.coverage
    assert coverage is not None
    assert (coverage.active, coverage.plan_name) == (True, "GOLD PPO 1500")
    assert (coverage.deductible_cents, coverage.deductible_remaining_cents) == (1500_00, 1320_50)
    assert coverage.copay_cents == 25_00


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        # HL04 says no dependent: the subscriber is the patient, who has no trace.
        (("HL*3*2*22*1~", "HL*3*2*22*0~"), X12StructureError, "one TRN"),
        # HL04 says a dependent follows; there is none.
        (("HL*4*3*23*0~\n", ""), X12StructureError, "TRN"),
        # The trace at the subscriber's level when the patient is the dependent.
        (("DMG*D8*19780312*M~", "DMG*D8*19780312*M~\nTRN*1*X1*9043214321~"), X12StructureError,
         "TRN"),
        # A dependent has no id of their own in 2100D.
        (("NM1*03*1*ROE*LUCIA~", "NM1*03*1*ROE*LUCIA****MI*X123~"), X12ValueError, "NM108"),
        (("INS*N*19~", "INS*N*99~"), X12ValueError, "relationship"),
        (("INS*N*19~", "INS*Y*19~"), X12ValueError, "INS01"),
    ],
)  # fmt: skip
def test_270_dependent_hierarchy_mistakes_are_refused(
    change: tuple[str, str], error: type[X12Error], message: str
) -> None:
    text = read("270_dependent.x12")
    assert change[0] in text
    broken = text.replace(*change)
    if broken.count("~\n") != text.count("~\n"):  # keep SE01 right, so the hierarchy is blamed
        count = 17 + broken.count("~\n") - text.count("~\n")
        broken = broken.replace("SE*17*0001~", f"SE*{count}*0001~")
    with pytest.raises(error, match=message):
        parse_270(broken)


def test_271_benefits_at_the_subscriber_level_are_refused_when_a_dependent_follows() -> None:
    text = read("271_dependent_active.x12")
    moved = text.replace("HL*4*3*23*0~\n", "").replace(
        "DTP*346*D8*20260101~\n", "DTP*346*D8*20260101~\nHL*4*3*23*0~\n"
    )
    with pytest.raises(X12StructureError):
        parse_271(moved)


def test_837p_with_dependents_reads_and_rebuilds_byte_for_byte() -> None:
    text = read("837p_dependents_patient_loop.x12")
    batch = parse_837p(text)
    own, child, spouse = batch.transactions[0].claims
    assert (own.subscriber.relationship, own.patient) == ("18", None)
    assert child.subscriber.relationship is None
    assert child.subscriber.member_id == spouse.subscriber.member_id == "ACM555000111"
    assert child.patient is not None
    assert spouse.patient is not None
    assert (child.patient.relationship, child.patient.first_name) == ("19", "LUCIA")
    assert (spouse.patient.relationship, spouse.patient.middle_name) == ("01", "M")
    assert child.patient.birth_date == date(2015, 7, 9)
    assert build_837p(batch) == text
    ok, errors = validate_with_pyx12(text)
    assert ok, errors


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # The subscriber said to be the patient, with a patient loop under them.
        (("SBR*P**GRP100200", "SBR*P*18*GRP100200"), "SBR02 is 18 exactly"),
        # Claims straight under a subscriber whose HL04 announces patient loops.
        (("HL*3*1*22*1~", "HL*3*1*22*0~"), "unexpected HL"),
        (("PAT*19~", "PAT*99~"), "relationship"),
        (("NM1*QC*1*ROE*LUCIA~", "NM1*QC*1*ROE*LUCIA****MI*ACM555000111~"), "NM108"),
        # A patient loop must say who the patient is.
        (("DMG*D8*20150709*F~\n", ""), "DMG"),
    ],
)
def test_837p_patient_loop_mistakes_are_refused(change: tuple[str, str], message: str) -> None:
    text = read("837p_dependents_patient_loop.x12")
    assert change[0] in text
    broken = text.replace(*change, 1)
    lost = text.count("~\n") - broken.count("~\n")
    broken = broken.replace("SE*58*0001~", f"SE*{58 - lost}*0001~")
    with pytest.raises(X12Error, match=message):
        parse_837p(broken)
