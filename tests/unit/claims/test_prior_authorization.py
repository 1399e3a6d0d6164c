"""Issue 11, bug 2: a prior authorization registration recorded reaches the original
claim (2300 REF*G1), and the simulator denies CO-197 only a claim truly without one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rcm_claims import domain
from rcm_contracts.registration import CoverageDraft, CoverageRank
from rcm_payer_simulator.adjudication import claim_denial
from rcm_payer_simulator.payers import PAYERS
from rcm_registration import domain as registration
from rcm_shared.errors import NotFound
from rcm_x12 import ProfessionalClaim

from tests.unit.claims.builders import (
    CONFIG,
    EPISODE,
    NOW,
    PRIMARY_COVERAGE,
    Memory,
    coded,
    coverages,
    registered,
    verified,
)
from tests.unit.payer_simulator.factories import claim as payer_claim
from tests.unit.payer_simulator.test_simulator import SEED, active, first

IMAGING = [("99213", ["25"], 1, 15000), ("73610", ["RT"], 1, 9500)]


def billed_with(authorization: str | None) -> ProfessionalClaim:
    memory = Memory()
    coverage = PRIMARY_COVERAGE.model_copy(update={"prior_authorization": authorization})
    memory.apply(domain.patient_registered, registered(), CONFIG, NOW)
    memory.apply(domain.coverage_updated, coverages(coverage), CONFIG, NOW)
    memory.apply(domain.eligibility_verified, verified(coverage), CONFIG, NOW)
    memory.apply(domain.coding_completed, coded(lines=IMAGING), CONFIG, NOW)
    x12 = memory.claim(f"{EPISODE}-1").x12
    assert x12 is not None
    return ProfessionalClaim.model_validate(x12)


def test_the_original_claim_carries_the_authorization_registration_recorded() -> None:
    claim = billed_with("PA-20260302-17")
    assert claim.frequency_code == "1"
    assert claim.prior_authorization == "PA-20260302-17"
    assert billed_with(None).prior_authorization is None


@pytest.mark.parametrize(("authorization", "denied"), [(None, True), ("PA-77", False)])
def test_the_payer_denies_co197_only_without_an_authorization(
    authorization: str | None, denied: bool
) -> None:
    member = first(lambda m: active(m, "SUMMIT"), "CD{:09d}")
    lines = [("99213", 150_00), ("73610", 95_00)]
    claim = payer_claim("E1-1", lines, payer_id="SUMMIT", member_id=member)
    claim = claim.model_copy(update={"prior_authorization": authorization})
    denial = claim_denial(SEED, claim, PAYERS["SUMMIT"], claim.lines[0].service_date, False)
    assert (denial is not None and denial.reason == "197") is denied


def test_registration_keeps_an_authorization_recorded_later_beside_its_coverage() -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    appointment = registration.Appointment(
        appointment_id="A0123456789ab",
        patient_id="P0123456789ab",
        scheduled_start=now,
        rendering_provider_npi="1234567893",
        visit_type="office-visit-established",
    )
    scheduled = registration.schedule(None, "E0123456789ab", appointment, False)
    assert scheduled.state is not None
    draft = CoverageDraft(
        rank=CoverageRank.PRIMARY,
        payer_id="SUMMIT",
        payer_name="Summit Mutual",
        member_id="CD123456789",
        prior_authorization="PA-1",
    )
    done = registration.register(
        scheduled.state,
        registered().patient,
        None,
        [draft],
        "G0123456789ab",
        iter(["V0000000000a1"]),
    )
    assert done.state is not None
    (coverage,) = done.state.coverages or []
    assert coverage.prior_authorization == "PA-1"  # carried to coverage-updated
    recorded = registration.record_authorization(done.state, coverage.coverage_id, "PA-2", now)
    assert recorded.state is not None
    assert recorded.events == []  # eligibility has nothing to check again
    (kept,) = recorded.state.authorizations
    assert (kept.coverage_id, kept.payer_id, kept.number) == (
        coverage.coverage_id,
        "SUMMIT",
        "PA-2",
    )
    again = registration.record_authorization(recorded.state, coverage.coverage_id, "PA-2", now)
    assert again.state is None
    with pytest.raises(NotFound):
        registration.record_authorization(recorded.state, "V0000000000ff", "PA-3", now)
