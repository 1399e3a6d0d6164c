"""Ops' view of an episode (rcm_shared.flow): ids, times and states stay, patient values go."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from rcm_contracts.registration import (
    Address,
    ClinicalDocumentation,
    CoverageDraft,
    CoverageRank,
    DocumentedDiagnosis,
    DocumentedProcedure,
    Person,
    Relationship,
    Sex,
)
from rcm_registration import domain
from rcm_registration.domain import Appointment, Episode, EpisodeDecision
from rcm_shared.flow import flow_view

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
# Values no id, time or state word could be: found anywhere in the view, they leaked.
PATIENT_VALUES = (
    "Zebediah",
    "Quackenbush",
    "1961-07-04",
    "742 Evergreen",
    "Shelbyville",
    '"WY"',
    "MEMB99887766",
    "GRP4455",
    "Prudence",
    "E11.9",
    "Diabetes mellitus",
    "visit note of a patient",
)


def state(decision: EpisodeDecision) -> Episode:
    assert decision.state is not None
    return decision.state


def person(first: str, born: date) -> Person:
    return Person(
        first_name=first,
        last_name="Quackenbush",
        birth_date=born,
        sex=Sex.MALE,
        address=Address(line1="742 Evergreen", city="Shelbyville", state="WY", postal_code="62565"),
    )


def completed_episode() -> Episode:
    appointment = Appointment(
        appointment_id="A000000000001",
        patient_id="P000000000001",
        scheduled_start=NOW,
        rendering_provider_npi="1234567893",
        visit_type="office-visit-established",
    )
    episode = state(domain.schedule(None, "E000000000001", appointment, patient_given=False))
    coverage = CoverageDraft(
        rank=CoverageRank.PRIMARY,
        payer_id="ACME01",
        payer_name="Acme Health Plan",
        member_id="MEMB99887766",
        group_number="GRP4455",
        relationship=Relationship.SPOUSE,
        subscriber=person("Prudence", date(1960, 1, 2)),
    )
    ids = iter(f"V{n:012x}" for n in range(1, 9))
    episode = state(
        domain.register(
            episode, person("Zebediah", date(1961, 7, 4)), None, [coverage], "G000000000001", ids
        )
    )
    episode = state(domain.check_in(episode, NOW + timedelta(minutes=5)))
    documentation = ClinicalDocumentation(
        note="visit note of a patient",
        diagnoses=[DocumentedDiagnosis(description="Diabetes mellitus", icd10_hint="E11.9")],
        procedures=[DocumentedProcedure(description="Office visit", code_hint="99213")],
    )
    return state(
        domain.complete_encounter(
            episode, "N000000000001", "11", None, documentation, NOW + timedelta(minutes=30)
        )
    )


def test_an_episode_s_flow_keeps_ids_times_and_status() -> None:
    view = flow_view(completed_episode().model_dump(mode="json"))
    assert view["episode_id"] == "E000000000001"
    assert view["status"] == "completed"
    assert view["patient_id"] == "P000000000001"
    assert view["guarantor_id"] == "G000000000001"
    assert view["appointment"]["appointment_id"] == "A000000000001"
    assert view["checked_in_at"].startswith("2026-03-02T15:05")
    assert view["encounter"] == {
        "encounter_id": "N000000000001",
        "completed_at": view["encounter"]["completed_at"],
    }
    assert view["coverages"] == [
        {"coverage_id": "V000000000001", "rank": "primary", "payer_id": "ACME01"}
    ]


def test_no_patient_value_survives_at_any_depth() -> None:
    full = json.dumps(completed_episode().model_dump(mode="json"))
    assert all(value in full for value in PATIENT_VALUES)  # the full view holds them all
    said = json.dumps(flow_view(json.loads(full)))
    assert [value for value in PATIENT_VALUES if value in said] == []


def test_lists_and_objects_left_empty_are_dropped_and_times_are_strings() -> None:
    view = flow_view(
        {
            "claims": [{"lines": [{"procedure_code": "99213"}], "claim_id": "E1-1"}],
            "notes": [{"text": "free text"}],
            "codes": ["E11.9"],
            "member_id": "M1",
            "closed_at": NOW,
            "status": "x" * 65,  # too long to be a state word
            "closed": True,
        }
    )
    assert view == {"claims": [{"claim_id": "E1-1"}], "closed_at": NOW.isoformat()}
