"""Contract events of one episode, as the other services publish them, for KPI tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from rcm_contracts.claims import (
    AckStage,
    ClaimAccepted,
    ClaimClosed,
    ClaimDenied,
    ClaimFrequency,
    ClaimOutcome,
    ClaimPaid,
    ClaimRejected,
    ClaimResubmitted,
    ClaimSubmitted,
    DenialCategory,
    DeniedReason,
    SubmittedLine,
)
from rcm_contracts.eligibility import EligibilityVerified
from rcm_contracts.payments import PatientPaymentReceived, PaymentMethod
from rcm_contracts.registration import (
    Address,
    AppointmentCancelled,
    AppointmentScheduled,
    ClinicalDocumentation,
    Coverage,
    CoverageRank,
    CoverageUpdated,
    DocumentedDiagnosis,
    DocumentedProcedure,
    EncounterCompleted,
    Person,
    Sex,
)

DAY = date(2025, 3, 3)
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
NPI = "1234567893"


def at(days: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


def scheduled(episode_id: str, start: datetime = T0) -> AppointmentScheduled:
    return AppointmentScheduled(
        episode_id=episode_id,
        appointment_id="A000000000001",
        patient_id="P000000000001",
        scheduled_start=start,
        rendering_provider_npi=NPI,
        visit_type="office-visit-established",
    )


def cancelled(episode_id: str) -> AppointmentCancelled:
    return AppointmentCancelled(
        episode_id=episode_id, appointment_id="A000000000001", reason="patient called"
    )


def coverage(episode_id: str, payer_id: str | None) -> CoverageUpdated:
    person = Person(
        first_name="Test",
        last_name="Patient",
        birth_date=date(1980, 1, 2),
        sex=Sex.FEMALE,
        address=Address(line1="1 Main St", city="Springfield", state="IL", postal_code="62701"),
    )
    coverages = []
    if payer_id is not None:
        coverages.append(
            Coverage(
                coverage_id="V000000000001",
                rank=CoverageRank.PRIMARY,
                payer_id=payer_id,
                payer_name="A payer",
                member_id="AB123456789",
                subscriber=person,
            )
        )
    return CoverageUpdated(episode_id=episode_id, patient_id="P000000000001", coverages=coverages)


def encounter(episode_id: str, day: date) -> EncounterCompleted:
    return EncounterCompleted(
        episode_id=episode_id,
        encounter_id="N000000000001",
        patient_id="P000000000001",
        date_of_service=day,
        place_of_service="11",
        rendering_provider_npi=NPI,
        documentation=ClinicalDocumentation(
            note="visit",
            diagnoses=[DocumentedDiagnosis(description="back pain")],
            procedures=[DocumentedProcedure(description="visit", code_hint="99213")],
        ),
    )


def verified(
    episode_id: str, payer_id: str, when: datetime, rank: CoverageRank = CoverageRank.PRIMARY
) -> EligibilityVerified:
    return EligibilityVerified(
        episode_id=episode_id,
        coverage_id="V000000000001",
        rank=rank,
        payer_id=payer_id,
        verified_at=when,
        trace_number="T1",
    )


def submitted(
    episode_id: str,
    claim_id: str,
    payer_id: str,
    charge_cents: int,
    when: datetime,
    *,
    frequency: ClaimFrequency = ClaimFrequency.ORIGINAL,
    rank: CoverageRank = CoverageRank.PRIMARY,
) -> ClaimSubmitted:
    return ClaimSubmitted(
        episode_id=episode_id,
        claim_id=claim_id,
        payer_id=payer_id,
        rank=rank,
        frequency=frequency,
        total_charge_cents=charge_cents,
        lines=[
            SubmittedLine(
                line_id=f"{episode_id}-L1",
                procedure_code="99213",
                units=1,
                charge_cents=charge_cents,
            )
        ],
        interchange_control_number="000000001",
        submitted_at=when,
    )


def accepted(episode_id: str, claim_id: str, when: datetime) -> ClaimAccepted:
    return ClaimAccepted(
        episode_id=episode_id, claim_id=claim_id, stage=AckStage.PAYER, accepted_at=when
    )


def accepted_999(episode_id: str, claim_id: str, when: datetime) -> ClaimAccepted:
    return ClaimAccepted(
        episode_id=episode_id, claim_id=claim_id, stage=AckStage.CLEARINGHOUSE, accepted_at=when
    )


def rejected(episode_id: str, claim_id: str, when: datetime) -> ClaimRejected:
    return ClaimRejected(
        episode_id=episode_id,
        claim_id=claim_id,
        stage=AckStage.PAYER,
        status_codes=["A7:164"],
        message="rejected",
        rejected_at=when,
    )


def resubmitted(
    episode_id: str, claim_id: str, replaces: str, when: datetime, frequency: ClaimFrequency
) -> ClaimResubmitted:
    return ClaimResubmitted(
        episode_id=episode_id,
        claim_id=claim_id,
        replaces_claim_id=replaces,
        frequency=frequency,
        reason="corrected",
        resubmitted_at=when,
    )


def denied(
    episode_id: str, claim_id: str, payer_id: str, category: DenialCategory, when: datetime
) -> ClaimDenied:
    return ClaimDenied(
        episode_id=episode_id,
        claim_id=claim_id,
        payer_id=payer_id,
        category=category,
        reasons=[DeniedReason(group_code="CO", reason_code="16", amount_cents=100)],
        denied_at=when,
    )


def paid(episode_id: str, claim_id: str, payer_id: str, when: datetime) -> ClaimPaid:
    return ClaimPaid(
        episode_id=episode_id,
        claim_id=claim_id,
        payer_id=payer_id,
        rank=CoverageRank.PRIMARY,
        paid_cents=100,
        patient_responsibility_cents=0,
        paid_at=when,
    )


def closed(
    episode_id: str, claim_id: str, payer_id: str, when: datetime, sequence: int = 1
) -> ClaimClosed:
    return ClaimClosed(
        episode_id=episode_id,
        claim_id=claim_id,
        payer_id=payer_id,
        outcome=ClaimOutcome.PAID,
        open_claims=0,
        sequence=sequence,
        posting_ids=[],
        closed_at=when,
    )


def patient_paid(
    episode_id: str, payment_id: str, amount_cents: int, when: datetime
) -> PatientPaymentReceived:
    return PatientPaymentReceived(
        episode_id=episode_id,
        payment_id=payment_id,
        amount_cents=amount_cents,
        method=PaymentMethod.CARD,
        received_at=when,
    )
