"""Registration rules: what each command emits, when it is refused, and that repeating a
command emits nothing."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rcm_contracts.registration import (
    Address,
    AppointmentCancelled,
    AppointmentScheduled,
    ClinicalDocumentation,
    CoverageDraft,
    CoverageRank,
    CoverageUpdated,
    DocumentedDiagnosis,
    DocumentedProcedure,
    EncounterCompleted,
    PatientCheckedIn,
    PatientRegistered,
    Person,
    Relationship,
    Sex,
)
from rcm_registration import domain
from rcm_registration.domain import Appointment, Episode, EpisodeDecision
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Conflict, NotFound

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
TODAY = NOW.date()
NPI = "1234567893"
OTHER_NPI = "1987654328"


def person(first: str = "Ann", last: str = "Lee", born: date = date(1980, 5, 1)) -> Person:
    return Person(
        first_name=first,
        last_name=last,
        birth_date=born,
        sex=Sex.FEMALE,
        address=Address(line1="1 Main St", city="Springfield", state="IL", postal_code="62701"),
    )


def draft(rank: CoverageRank = CoverageRank.PRIMARY, member: str = "AC123456789") -> CoverageDraft:
    return CoverageDraft(
        rank=rank, payer_id="ACME01", payer_name="Acme Health Plan", member_id=member
    )


SECONDARY = draft(CoverageRank.SECONDARY, "SU987654321")
DOCUMENTATION = ClinicalDocumentation(
    note="Follow-up visit.",
    diagnoses=[DocumentedDiagnosis(description="Type 2 diabetes", icd10_hint="E11.9")],
    procedures=[DocumentedProcedure(description="Office visit", code_hint="99213")],
)


def ids(prefix: str) -> Iterator[str]:
    return (f"{prefix}{n:012x}" for n in itertools.count(1))


NO_CHANGE: EpisodeDecision = Decision()


def after(decision: EpisodeDecision) -> Episode:
    assert decision.state is not None
    return decision.state


def coverage_ids(episode: Episode) -> list[str]:
    return [coverage.coverage_id for coverage in episode.coverages or []]


def scheduled() -> Episode:
    appointment = Appointment(
        appointment_id="A000000000001",
        patient_id="P000000000001",
        scheduled_start=NOW,
        rendering_provider_npi=NPI,
        visit_type="office-visit-established",
    )
    return after(domain.schedule(None, "E000000000001", appointment, patient_given=False))


def registered(*drafts: CoverageDraft) -> Episode:
    episode = scheduled()
    return after(domain.register(episode, person(), None, drafts, "G000000000001", ids("V")))


def types(decision: EpisodeDecision) -> list[type]:
    assert decision != NO_CHANGE
    return [type(event) for event in decision.events]


def test_scheduling_opens_the_episode() -> None:
    episode = scheduled()
    assert episode.status == "scheduled"
    assert episode.patient_id == "P000000000001"
    change = domain.schedule(
        None,
        "E1",
        Appointment(
            appointment_id="A1",
            patient_id="P1",
            scheduled_start=NOW,
            rendering_provider_npi=NPI,
            visit_type="new",
        ),
        patient_given=True,
    )
    assert types(change) == [AppointmentScheduled]


def test_scheduling_again_under_one_key_is_no_change_or_a_conflict() -> None:
    episode = scheduled()
    same = Appointment(
        appointment_id="A999",
        patient_id="P999",  # generated again: not part of the request
        scheduled_start=NOW,
        rendering_provider_npi=NPI,
        visit_type="office-visit-established",
    )
    assert domain.schedule(episode, "E000000000001", same, patient_given=False) == NO_CHANGE
    other = same.model_copy(update={"visit_type": "new-patient"})
    with pytest.raises(Conflict):
        domain.schedule(episode, "E000000000001", other, patient_given=False)


def test_first_registration_emits_patient_and_coverages_even_when_self_pay() -> None:
    episode = scheduled()
    change = domain.register(episode, person(), None, [], "G000000000001", ids("V"))
    assert types(change) == [PatientRegistered, CoverageUpdated]
    registered_event, coverage_event = change.events
    assert isinstance(registered_event, PatientRegistered)
    assert registered_event.guarantor_id == "G000000000001"
    assert isinstance(coverage_event, CoverageUpdated)
    assert coverage_event.coverages == []


def test_registering_identical_data_again_emits_nothing() -> None:
    episode = registered(SECONDARY, draft())
    assert [c.rank for c in episode.coverages or []] == ["primary", "secondary"]
    again = domain.register(
        episode, person(), None, [draft(), SECONDARY], "G999999999999", ids("X")
    )
    assert again == NO_CHANGE


def test_only_what_changed_is_emitted() -> None:
    episode = registered(draft())
    moved = domain.register(
        episode, person(last="Smith"), None, [draft()], "G999999999999", ids("X")
    )
    assert types(moved) == [PatientRegistered]
    added = domain.register(episode, person(), None, [draft(), SECONDARY], "G9", ids("V9"))
    assert types(added) == [CoverageUpdated]
    coverage_event = added.events[0]
    assert isinstance(coverage_event, CoverageUpdated)
    first_id = coverage_ids(episode)[0]
    assert coverage_event.coverages[0].coverage_id == first_id  # kept, not renumbered
    assert coverage_event.coverages[1].coverage_id.startswith("V9")


def test_an_explicit_guarantor_replaces_the_one_on_file() -> None:
    episode = registered()
    change = domain.register(episode, person(), "G00000000000a", [], "G9", ids("V"))
    assert types(change) == [PatientRegistered]
    assert after(change).guarantor_id == "G00000000000a"


def test_coverages_change_only_after_registration() -> None:
    with pytest.raises(Conflict, match="register"):
        domain.update_coverages(scheduled(), [draft()], ids("V"))
    episode = registered(draft())
    assert domain.update_coverages(episode, [draft()], ids("X")) == NO_CHANGE
    change = domain.update_coverages(episode, [], ids("V"))
    assert types(change) == [CoverageUpdated]
    assert after(change).coverages == []


def test_commands_on_an_unknown_episode() -> None:
    with pytest.raises(NotFound):
        domain.check_in(None, NOW)
    with pytest.raises(NotFound):
        domain.register(None, person(), None, [], "G1", ids("V"))


def test_check_in_once() -> None:
    episode = scheduled()
    change = domain.check_in(episode, NOW)
    assert types(change) == [PatientCheckedIn]
    assert domain.check_in(after(change), NOW) == NO_CHANGE


def test_encounter_needs_registration_and_check_in() -> None:
    episode = scheduled()
    checked_in = after(domain.check_in(episode, NOW))
    with pytest.raises(Conflict, match="register"):
        domain.complete_encounter(checked_in, "N1", "11", None, DOCUMENTATION, NOW)
    episode = registered()
    with pytest.raises(Conflict, match="check the patient in"):
        domain.complete_encounter(episode, "N1", "11", None, DOCUMENTATION, NOW)


def test_encounter_defaults_to_the_appointment_provider_and_date() -> None:
    episode = registered(draft())
    episode = after(domain.check_in(episode, NOW))
    change = domain.complete_encounter(episode, "N1", "11", None, DOCUMENTATION, NOW)
    assert types(change) == [EncounterCompleted]
    event = change.events[0]
    assert isinstance(event, EncounterCompleted)
    assert (event.rendering_provider_npi, event.date_of_service) == (NPI, TODAY)
    assert event.patient_id == "P000000000001"
    done = after(change)
    assert done.status == "completed"
    assert domain.complete_encounter(done, "N2", "11", NPI, DOCUMENTATION, NOW) == NO_CHANGE
    with pytest.raises(Conflict, match="already completed"):
        domain.complete_encounter(done, "N2", "11", OTHER_NPI, DOCUMENTATION, NOW)


def test_cancel_only_before_the_encounter_and_only_once() -> None:
    episode = registered()
    change = domain.cancel(episode, "patient called", NOW)
    assert types(change) == [AppointmentCancelled]
    cancelled = after(change)
    assert cancelled.status == "cancelled"
    assert domain.cancel(cancelled, "again", NOW) == NO_CHANGE
    with pytest.raises(Conflict, match="cancelled"):
        domain.check_in(cancelled, NOW)
    with pytest.raises(Conflict, match="cancelled"):
        domain.register(cancelled, person(), None, [], "G1", ids("V"))

    episode = after(domain.check_in(episode, NOW))
    done = after(domain.complete_encounter(episode, "N1", "11", None, DOCUMENTATION, NOW))
    with pytest.raises(Conflict, match="encounter is completed"):
        domain.cancel(done, "too late", NOW)


@pytest.mark.parametrize("npi", ["1234567893", "1987654328", "1543219871", "1678901236"])
def test_reference_npis_pass_the_check_digit(npi: str) -> None:
    assert domain.npi_problem(npi) is None


@pytest.mark.parametrize("npi", ["1234567890", "123456789", "12345678931", "abcdefghij"])
def test_bad_npis_are_named(npi: str) -> None:
    assert domain.npi_problem(npi) == "must be a 10-digit NPI with a valid check digit (Luhn)"


@pytest.mark.parametrize(
    ("value", "ok"),
    [("O'Brien-Smith", True), ("José", False), (" Ann", False), ("A*B", False), ("A~", False)],
)
def test_text_that_x12_cannot_carry_is_refused(value: str, ok: bool) -> None:
    assert (domain.text_problem(value) is None) is ok


def test_coverage_list_rules() -> None:
    assert domain.coverage_list_problems([draft(), SECONDARY], TODAY) == []
    assert domain.coverage_list_problems([draft(), draft(member="XY000000001")], TODAY) == [
        "at most one primary coverage"
    ]
    dependent = draft().model_copy(update={"relationship": Relationship.CHILD})
    assert domain.coverage_list_problems([dependent], TODAY) == [
        "[0].subscriber: required when relationship is 19"
    ]
    self_with_subscriber = draft().model_copy(update={"subscriber": person()})
    assert domain.coverage_list_problems([self_with_subscriber], TODAY) == [
        "[0].subscriber: only for a relationship other than self (18)"
    ]
    future = dependent.model_copy(update={"subscriber": person(born=date(2999, 1, 1))})
    assert domain.coverage_list_problems([future], TODAY) == [
        "[0].subscriber.birth_date: must not be in the future"
    ]


members = st.from_regex(r"\A[A-Z]{2}[0-9]{9}\Z")


@given(
    st.lists(st.sampled_from(list(CoverageRank)), unique=True, max_size=2),
    st.lists(members, min_size=2, max_size=2, unique=True),
    st.booleans(),
)
def test_resolving_coverages_twice_keeps_their_ids(
    ranks: list[CoverageRank], member_ids: list[str], reverse: bool
) -> None:
    drafts = [draft(rank, member) for rank, member in zip(ranks, member_ids, strict=False)]
    first = domain.resolve_coverages([], drafts, ids("V"))
    again = domain.resolve_coverages(first, drafts[::-1] if reverse else drafts, ids("X"))
    assert again == first
    assert [c.rank for c in first] == sorted(ranks, key=domain.RANK_ORDER.__getitem__)
    assert len({c.coverage_id for c in first}) == len(first)
