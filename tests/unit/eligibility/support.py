"""What the eligibility tests share: one episode's inputs, its coverages, 271 benefits."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from rcm_contracts.registration import (
    Address,
    AppointmentScheduled,
    Coverage,
    CoverageRank,
    CoverageUpdated,
    PatientRegistered,
    Person,
    Relationship,
    Sex,
)
from rcm_eligibility.domain import Requester
from rcm_x12 import Coverage as Benefits
from rcm_x12 import Rejection

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
EPISODE = "E0000000000aa"
NPI = "1234567893"
REQUESTER = Requester(
    provider_name="RCM MEDICAL GROUP",
    trace_originator="1123456789",
    sender_id="RCMPLATFORM",
    receiver_id="CLEARINGHOUSE",
)


def person(first: str = "Ann") -> Person:
    return Person(
        first_name=first,
        last_name="Lee",
        birth_date=date(1980, 5, 1),
        sex=Sex.FEMALE,
        address=Address(line1="1 Main St", city="Springfield", state="IL", postal_code="62701"),
    )


PRIMARY = Coverage(
    coverage_id="V000000000001",
    rank=CoverageRank.PRIMARY,
    payer_id="ACME01",
    payer_name="Acme Health Plan",
    member_id="AC123456789",
)
SECONDARY = Coverage(
    coverage_id="V000000000002",
    rank=CoverageRank.SECONDARY,
    payer_id="SUMMIT",
    payer_name="Summit Mutual",
    member_id="SU987654321",
    relationship=Relationship.SPOUSE,
    subscriber=person("Bob"),
)

APPOINTMENT = AppointmentScheduled(
    episode_id=EPISODE,
    appointment_id="A000000000001",
    patient_id="P000000000001",
    scheduled_start=datetime(2026, 3, 3, 1, 30, tzinfo=UTC),
    rendering_provider_npi=NPI,
    visit_type="office-visit-established",
)
REGISTERED = PatientRegistered(
    episode_id=EPISODE, patient_id="P000000000001", patient=person(), guarantor_id="G1"
)


def coverages(*items: Coverage) -> CoverageUpdated:
    return CoverageUpdated(episode_id=EPISODE, patient_id="P000000000001", coverages=list(items))


GOLD = Benefits(
    active=True,
    plan_name="GOLD PPO 1500",
    copay_cents=2500,
    deductible_cents=150000,
    deductible_remaining_cents=120000,
    coinsurance_percent=Decimal("20"),
    out_of_pocket_cents=500000,
    out_of_pocket_remaining_cents=465075,
)
INACTIVE = Benefits(active=False)
NOT_FOUND = Rejection(reason="75")
