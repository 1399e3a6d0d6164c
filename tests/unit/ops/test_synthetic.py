"""The synthetic episodes: deterministic from the seed, and valid for every contract."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
import simple_icd_10_cm as icd
from rcm_contracts.registration import (
    AppointmentScheduled,
    ClinicalDocumentation,
    Coverage,
    CoverageRank,
    CoverageUpdated,
    EncounterCompleted,
    PatientRegistered,
    Person,
    Relationship,
)
from rcm_ops.synthetic import (
    LATE_BILLED_DAYS,
    PAYERS,
    RENDERING_NPIS,
    SCENARIOS,
    EpisodeGenerator,
    Px,
)
from rcm_payer_simulator.adjudication import member_status, retro_termination

DAY = date(2025, 3, 14)
# The generator's truth, to grade what it documents (bots never see it: test_bots.py).
DIAGNOSIS_KNOWLEDGE = {dx.description: dx.code for s in SCENARIOS for dx in s.diagnoses}
PROCEDURE_KNOWLEDGE: dict[str, Px] = {px.description: px for s in SCENARIOS for px in s.procedures}
# docs/flow.md, "Reference data the parts agree on"
FLOW_PROCEDURES = {
    *(str(code) for code in range(99202, 99206)),
    *(str(code) for code in range(99211, 99216)),
    "99396", "83036", "80061", "81002", "87880", "36415", "93000", "73610", "29540",
    "96127", "96372", "90686", "G0008", "J1100",
}  # fmt: skip
FLOW_MODIFIERS = {"25", "59", "RT", "LT"}


@pytest.fixture(scope="module")
def many() -> list:  # type: ignore[type-arg]
    return EpisodeGenerator(seed=11, day=DAY).episodes(1500)


def test_the_same_seed_gives_the_same_episodes() -> None:
    first = EpisodeGenerator(seed=42, day=DAY).episodes(50)
    again = EpisodeGenerator(seed=42, day=DAY).episodes(50)
    other = EpisodeGenerator(seed=43, day=DAY).episodes(50)
    assert first == again
    assert [e.registration_body() for e in first] == [e.registration_body() for e in again]
    assert first != other


def test_every_body_validates_against_the_contracts_it_becomes(many: list) -> None:  # type: ignore[type-arg]
    for n, episode in enumerate(many):
        ids = {"episode_id": f"E{n:012x}", "patient_id": f"P{n:012x}"}
        appointment = episode.appointment_body()
        AppointmentScheduled(**ids, appointment_id=f"A{n:012x}", **appointment)
        registration = episode.registration_body()
        patient = Person.model_validate(registration["patient"])
        PatientRegistered(**ids, patient=patient, guarantor_id=f"G{n:012x}")
        coverages = [Coverage.model_validate(c) for c in registration["coverages"]]
        CoverageUpdated(**ids, coverages=coverages)
        encounter = episode.encounter_body()
        EncounterCompleted(
            **ids,
            encounter_id=f"N{n:012x}",
            date_of_service=episode.scheduled_start.date(),
            place_of_service=encounter["place_of_service"],
            rendering_provider_npi=encounter["rendering_provider_npi"],
            documentation=ClinicalDocumentation.model_validate(encounter["documentation"]),
        )


def test_demographics_and_coverage_have_the_agreed_shapes(many: list) -> None:  # type: ignore[type-arg]
    payers = dict(PAYERS)
    for episode in many:
        assert episode.scheduled_start.tzinfo == UTC
        assert episode.scheduled_start.date() in (DAY, DAY - timedelta(days=LATE_BILLED_DAYS))
        assert episode.rendering_provider_npi in RENDERING_NPIS
        for person in (episode.patient, episode.guarantor):
            assert re.fullmatch(r"[A-Z]{2}", person.address.state)
            assert re.fullmatch(r"\d{5}", person.address.postal_code)
            assert person.birth_date < DAY
        ranks = [c.rank for c in episode.coverages]
        assert ranks in ([], [CoverageRank.PRIMARY], [CoverageRank.PRIMARY, CoverageRank.SECONDARY])
        assert len({c.payer_id for c in episode.coverages}) == len(episode.coverages)
        for coverage in episode.coverages:
            assert payers[coverage.payer_id] == coverage.payer_name
            assert re.fullmatch(r"[A-Z]{2}\d{9}", coverage.member_id)
            assert (coverage.relationship == Relationship.SELF) == (coverage.subscriber is None)
        age = (DAY - episode.patient.birth_date).days // 365
        if age < 18 and episode.coverages:
            assert episode.coverages[0].relationship == Relationship.CHILD
            assert episode.coverages[0].subscriber == episode.guarantor


def test_coverage_mix_is_about_as_asked(many: list) -> None:  # type: ignore[type-arg]
    kinds = Counter(len(e.coverages) for e in many)
    insured = kinds[1] + kinds[2]
    assert 0.11 < kinds[0] / len(many) < 0.19  # ~15% self-pay
    assert 0.15 < kinds[2] / insured < 0.25  # ~20% of the insured have a secondary


def test_visits_use_only_the_agreed_codes_and_some_hints_are_missing(many: list) -> None:  # type: ignore[type-arg]
    missing = Counter[str]()
    for episode in many:
        documentation = episode.documentation
        assert documentation.note
        assert "{" not in documentation.note
        for dx in documentation.diagnoses:
            code = DIAGNOSIS_KNOWLEDGE[dx.description]
            assert icd.is_valid_item(code), code
            assert icd.is_leaf(code), code
            if dx.icd10_hint is None:
                missing["dx"] += 1
            elif dx.icd10_hint != code:
                # the one planted mistake: a non-billable parent of the right code
                assert dx.icd10_hint == "M54.5"
                assert code == "M54.50"
        for px in documentation.procedures:
            known = PROCEDURE_KNOWLEDGE[px.description]
            assert known.code in FLOW_PROCEDURES
            assert set(known.modifiers) <= FLOW_MODIFIERS
            assert px.code_hint in (None, known.code)
            assert px.units == known.units
            missing["px"] += px.code_hint is None
    assert missing["dx"] > 0
    assert missing["px"] > 0
    assert {e.scenario for e in many} == {s.name for s in SCENARIOS}


def test_scenarios_fit_the_patients_age(many: list) -> None:  # type: ignore[type-arg]
    by_name = {s.name: s for s in SCENARIOS}
    for episode in many:
        scenario = by_name[episode.scenario]
        age = (datetime.combine(DAY, datetime.min.time()).date() - episode.patient.birth_date).days
        assert scenario.min_age <= age // 365 <= scenario.max_age


def test_the_flagship_visits_code_as_docs_flow_describes() -> None:
    def codes(name: str) -> tuple[list[str], list[tuple[str, tuple[str, ...], int]]]:
        scenario = next(s for s in SCENARIOS if s.name == name)
        return (
            [d.code for d in scenario.diagnoses],
            [(p.code, p.modifiers, p.units) for p in scenario.procedures],
        )

    assert codes("diabetes-follow-up") == (
        ["E11.9"],
        [("99214", (), 1), ("83036", (), 1), ("36415", (), 1)],
    )
    assert codes("ankle-sprain")[1][1] == ("73610", ("RT",), 1)
    assert codes("steroid-injection")[1][:2] == [("99213", ("25",), 1), ("J1100", (), 4)]


def test_some_visits_are_billed_late_and_some_coverages_lapsed_the_same_for_a_seed(
    many: list,  # type: ignore[type-arg]
) -> None:
    late = [e for e in many if e.scheduled_start.date() != DAY]
    assert 0.02 < len(late) / len(many) < 0.07  # ~4%
    lapsed = [
        (e.key, c.payer_id, c.member_id)
        for e in many
        for c in e.coverages[:1]
        if (ended := retro_termination(11, c.payer_id, c.member_id)) is not None
        and ended <= e.scheduled_start.date()
    ]
    insured = sum(1 for e in many if e.coverages)
    assert 0.02 < len(lapsed) / insured < 0.08  # ~4% chosen, a few by chance
    for _, payer_id, member_id in lapsed:
        assert member_status(11, payer_id, member_id) == "active"  # the 271 says active
    again = EpisodeGenerator(seed=11, day=DAY).episodes(len(many))
    assert [e.scheduled_start for e in again] == [e.scheduled_start for e in many]
    assert [e.coverages for e in again] == [e.coverages for e in many]


def test_the_ankle_visit_is_documented_as_significant_but_not_in_the_usual_words() -> None:
    ankle = next(s for s in SCENARIOS if s.name == "ankle-sprain")
    assert ankle.procedures[0].modifiers == ("25",)
    assert "significant" in ankle.note
    assert "separately identifiable" not in ankle.note
