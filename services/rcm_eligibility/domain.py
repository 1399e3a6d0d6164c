"""Eligibility rules: join an episode's inputs, decide when to check, and what a 271 means.

The aggregate joins appointment-scheduled, patient-registered and coverage-updated in any
order. Once all three are known, and again whenever the coverages change, it opens a
*check* (numbered 1, 2, ...): one 270 per coverage, in rank order. The X12 calls happen
outside the store; their answers come back through `record_results`, which closes only
the check still pending under that number, so a check that is superseded or answered
twice emits nothing more. Pure: no I/O; clocks come in as arguments.

An input that breaks a rule is refused (Conflict, Invalid); a 271 that cannot be read is
the payer's fault, not the input's: an X12Problem, which says where in the 271, never
its values. Both are dead-lettered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from rcm_contracts.base import Event
from rcm_contracts.eligibility import (
    EligibilityFailed,
    EligibilityFailureReason,
    EligibilityVerified,
)
from rcm_contracts.registration import (
    AppointmentScheduled,
    Coverage,
    CoverageRank,
    CoverageUpdated,
    PatientRegistered,
    Person,
    Relationship,
)
from rcm_shared.aggregates import Decision
from rcm_shared.clearinghouse import X12Problem
from rcm_shared.errors import Conflict, Invalid
from rcm_shared.redact import problems
from rcm_x12 import Coverage as X12Coverage
from rcm_x12 import (
    EligibilityDependent,
    EligibilityInquiry,
    EligibilityInquiryDocument,
    EligibilityProvider,
    EligibilityResponse,
    EligibilitySubscriber,
    Envelope,
    X12Error,
    parse_271,
)

RANK_ORDER = {CoverageRank.PRIMARY: 0, CoverageRank.SECONDARY: 1}
SUBSCRIBER_NOT_FOUND = "75"  # AAA03: Subscriber/Insured Not Found
PAYER_UNAVAILABLE = frozenset({"42", "80"})  # unable to respond now; no response from payer


@dataclass(frozen=True)
class Requester:
    """Who asks: the practice (NM1*1P name), TRN03, and the interchange's parties."""

    provider_name: str
    trace_originator: str
    sender_id: str
    receiver_id: str
    usage: Literal["T", "P"] = "T"


class Appointment(BaseModel):
    model_config = ConfigDict(frozen=True)

    appointment_id: str
    service_date: date
    rendering_provider_npi: str


class Result(BaseModel):
    """What a coverage's check ended in, as people read it: the event's fields (kept as
    they are, so the view shows what was emitted) and its outcome."""

    model_config = ConfigDict(frozen=True, extra="allow")

    outcome: Literal["verified"] | EligibilityFailureReason

    @classmethod
    def of(cls, event: EligibilityVerified | EligibilityFailed) -> Result:
        outcome = "verified" if isinstance(event, EligibilityVerified) else event.reason
        return cls(outcome=outcome, **event.model_dump(mode="json", exclude={"episode_id"}))


class Check(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: int
    coverages: list[Coverage]  # in rank order
    status: Literal["pending", "done"]
    started_at: datetime
    completed_at: datetime | None = None
    results: list[Result] = []
    last_error: str | None = None


class CheckView(BaseModel):
    """A check without its coverages (member ids)."""

    number: int
    status: Literal["pending", "done"]
    started_at: datetime
    completed_at: datetime | None
    results: list[Result]
    last_error: str | None


class VerificationView(BaseModel):
    """What people see of a verification: no demographics, no member ids."""

    episode_id: str
    patient_id: str | None
    status: Literal["waiting", "checking", "checked"]
    missing: list[str]
    checks: int
    check: CheckView | None


class Verification(BaseModel):
    """The aggregate: one per episode."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    episode_id: str
    patient_id: str | None = None
    appointment: Appointment | None = None
    patient: Person | None = None
    coverages: list[Coverage] | None = None  # the newest coverage-updated, in rank order
    checks: int = 0
    check: Check | None = None  # the newest check

    @property
    def missing(self) -> list[str]:
        inputs = {
            "appointment": self.appointment,
            "patient": self.patient,
            "coverages": self.coverages,
        }
        return [name for name, value in inputs.items() if value is None]

    @property
    def pending(self) -> Check | None:
        return self.check if self.check is not None and self.check.status == "pending" else None

    def view(self) -> VerificationView:
        status = "waiting" if self.missing else "checking" if self.pending else "checked"
        return VerificationView(
            episode_id=self.episode_id,
            patient_id=self.patient_id,
            status=status,
            missing=self.missing,
            checks=self.checks,
            check=None
            if self.check is None
            else CheckView.model_validate(self.check.model_dump(exclude={"coverages"})),
        )


def ranked(coverages: Sequence[Coverage]) -> list[Coverage]:
    return sorted(coverages, key=lambda coverage: RANK_ORDER[coverage.rank])


# --- joining the inputs ------------------------------------------------------------------


def on_appointment(
    state: Verification | None, event: AppointmentScheduled, requester: Requester, now: datetime
) -> Decision[Verification, None]:
    appointment = Appointment(
        appointment_id=event.appointment_id,
        service_date=event.scheduled_start.astimezone(UTC).date(),
        rendering_provider_npi=event.rendering_provider_npi,
    )
    update = {"appointment": appointment}
    return _join(state, event.episode_id, event.patient_id, update, requester, now)


def on_patient(
    state: Verification | None, event: PatientRegistered, requester: Requester, now: datetime
) -> Decision[Verification, None]:
    update = {"patient": event.patient}
    return _join(state, event.episode_id, event.patient_id, update, requester, now)


def on_coverages(
    state: Verification | None, event: CoverageUpdated, requester: Requester, now: datetime
) -> Decision[Verification, None]:
    if len({coverage.rank for coverage in event.coverages}) != len(event.coverages):
        raise Invalid(f"coverage-updated of episode {event.episode_id}: two coverages of one rank")
    update = {"coverages": ranked(event.coverages)}
    return _join(state, event.episode_id, event.patient_id, update, requester, now)


def _join(
    state: Verification | None,
    episode_id: str,
    patient_id: str,
    update: dict[str, Any],
    requester: Requester,
    now: datetime,
) -> Decision[Verification, None]:
    current = state or Verification(episode_id=episode_id)
    if current.patient_id is not None and current.patient_id != patient_id:
        raise Conflict(f"episode {episode_id} belongs to another patient")
    joined = current.model_copy(update={**update, "patient_id": patient_id})
    joined, events = _start_check_if_due(joined, requester, now)
    if joined == current:
        return Decision()
    return Decision(state=joined, events=events)


def _start_check_if_due(
    verification: Verification, requester: Requester, now: datetime
) -> tuple[Verification, list[Event]]:
    """A new check when all inputs are there and the coverages differ from the last check's.

    Without coverages the answer needs no payer: one no-coverage failure, self-pay.
    """
    coverages = verification.coverages
    if verification.missing or coverages is None:
        return verification, []
    if verification.check is not None and verification.check.coverages == coverages:
        return verification, []
    number = verification.checks + 1
    if not coverages:
        failed = EligibilityFailed(
            episode_id=verification.episode_id,
            reason=EligibilityFailureReason.NO_COVERAGE,
            detail="no coverage on file",
            self_pay=True,
            checked_at=now,
        )
        check = Check(
            number=number,
            coverages=[],
            status="done",
            started_at=now,
            completed_at=now,
            results=[Result.of(failed)],
        )
        events: list[Event] = [failed]
    else:
        check = Check(number=number, coverages=coverages, status="pending", started_at=now)
        events = []
    started = verification.model_copy(update={"checks": number, "check": check})
    if check.status == "pending":
        inquiries(started, requester, now)  # refuse now what could never be sent
    return started, events


# --- the 270s of a check -----------------------------------------------------------------


def inquiries(
    verification: Verification, requester: Requester, now: datetime
) -> list[tuple[Coverage, EligibilityInquiry]]:
    """One 270 transaction per coverage of the pending check, in rank order.

    A coverage held through someone else (relationship other than 18) asks about the
    patient as a dependent (2000D) under the subscriber whose member id it is (2000C).
    """
    check, appointment, patient = (
        verification.pending,
        verification.appointment,
        verification.patient,
    )
    if check is None or appointment is None or patient is None:
        return []
    asked = []
    for index, coverage in enumerate(check.coverages, start=1):
        holder = patient if coverage.relationship is Relationship.SELF else coverage.subscriber
        if holder is None:
            raise Invalid(f"coverage {coverage.coverage_id}: subscriber missing")
        try:
            inquiry = EligibilityInquiry(
                control_number="0001",
                reference_id=verification.episode_id,
                created=_x12_time(now),
                payer_name=coverage.payer_name,
                payer_id=coverage.payer_id,
                provider=EligibilityProvider(
                    entity_type="2",
                    last_name=requester.provider_name,
                    npi=appointment.rendering_provider_npi,
                ),
                subscriber=EligibilitySubscriber(
                    member_id=coverage.member_id,
                    last_name=holder.last_name,
                    first_name=holder.first_name,
                    birth_date=holder.birth_date,
                    gender=holder.sex.value,
                ),
                dependent=_dependent(patient, coverage.relationship),
                trace_number=f"{verification.episode_id}-{check.number}-{index}",
                trace_originator=requester.trace_originator,
                service_date=appointment.service_date,
            )
        except ValidationError as error:
            raise Invalid(
                f"coverage {coverage.coverage_id} cannot be asked about in X12: {problems(error)}"
            ) from None
        asked.append((coverage, inquiry))
    return asked


def _dependent(patient: Person, relationship: Relationship) -> EligibilityDependent | None:
    if relationship is Relationship.SELF:
        return None
    return EligibilityDependent(
        last_name=patient.last_name,
        first_name=patient.first_name,
        birth_date=patient.birth_date,
        gender=patient.sex.value,
        relationship=relationship.value,  # 01, 19 and G8 mean the same in INS02
    )


def _x12_time(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(tzinfo=None)


def inquiry_document(
    inquiry: EligibilityInquiry, control_number: int, requester: Requester, now: datetime
) -> EligibilityInquiryDocument:
    envelope = Envelope(
        sender_id=requester.sender_id,
        receiver_id=requester.receiver_id,
        control_number=control_number,
        group_control_number=control_number,
        created=_x12_time(now),
        usage=requester.usage,
    )
    return EligibilityInquiryDocument(envelope=envelope, transactions=[inquiry])


def read_answer(inquiry: EligibilityInquiry, text: str) -> EligibilityResponse:
    """The 271's one answer to this inquiry; anything else is permanent (dead letter)."""
    try:
        document = parse_271(text)
    except X12Error as error:
        raise X12Problem(f"unreadable 271: {error.located()}") from None
    if len(document.transactions) != 1:
        raise X12Problem(f"271 with {len(document.transactions)} answers to one inquiry")
    (response,) = document.transactions
    if response.trace_number != inquiry.trace_number:
        raise X12Problem(
            f"271 answers trace {response.trace_number!r}, not {inquiry.trace_number!r}"
        )
    if inquiry.dependent is not None and response.coverage is not None and not response.dependent:
        # Benefits at the subscriber's level are the subscriber's, not the patient's.
        raise X12Problem("271 answers about the subscriber, not the dependent asked about")
    return response


# --- what the answers mean ---------------------------------------------------------------


def decide(
    episode_id: str, answers: Sequence[tuple[Coverage, EligibilityResponse]], now: datetime
) -> list[EligibilityVerified | EligibilityFailed]:
    """One event per coverage, in the order given. A failure is self-pay only when no
    coverage of the episode is active."""
    self_pay = not any(_active(response) for _, response in answers)
    events: list[EligibilityVerified | EligibilityFailed] = []
    for coverage, response in answers:
        benefits = response.coverage
        if benefits is not None and benefits.active:
            events.append(_verified(episode_id, coverage, benefits, response.trace_number, now))
            continue
        reason, detail = _failure(response)
        events.append(
            EligibilityFailed(
                episode_id=episode_id,
                coverage_id=coverage.coverage_id,
                payer_id=coverage.payer_id,
                reason=reason,
                detail=detail,
                self_pay=self_pay,
                checked_at=now,
            )
        )
    return events


def _active(response: EligibilityResponse) -> bool:
    return response.coverage is not None and response.coverage.active


def _verified(
    episode_id: str,
    coverage: Coverage,
    benefits: X12Coverage,
    trace_number: str,
    now: datetime,
) -> EligibilityVerified:
    return EligibilityVerified(
        episode_id=episode_id,
        coverage_id=coverage.coverage_id,
        rank=coverage.rank,
        payer_id=coverage.payer_id,
        plan_name=benefits.plan_name,
        copay_cents=benefits.copay_cents or 0,
        deductible_cents=benefits.deductible_cents or 0,
        deductible_remaining_cents=benefits.deductible_remaining_cents or 0,
        coinsurance_basis_points=basis_points(benefits.coinsurance_percent),
        out_of_pocket_remaining_cents=benefits.out_of_pocket_remaining_cents,
        verified_at=now,
        trace_number=trace_number,
    )


def basis_points(percent: Decimal | None) -> int:
    """20 (%) -> 2000; the 271 carries at most two decimals of a percent."""
    return 0 if percent is None else int((percent * 100).to_integral_value())


def _failure(response: EligibilityResponse) -> tuple[EligibilityFailureReason, str]:
    rejection = response.rejection
    if rejection is None:
        return EligibilityFailureReason.INACTIVE, "coverage inactive (EB*6)"
    detail = f"AAA {rejection.reason} at {rejection.level} level"
    if rejection.reason in PAYER_UNAVAILABLE:
        return EligibilityFailureReason.PAYER_UNAVAILABLE, detail
    return EligibilityFailureReason.SUBSCRIBER_NOT_FOUND, detail


# --- applying a check's answers ----------------------------------------------------------


def record_results(
    verification: Verification | None,
    number: int,
    answers: Sequence[tuple[Coverage, EligibilityResponse]],
    now: datetime,
) -> Decision[Verification, None]:
    """Closes check `number` with its events; nothing if a newer check replaced it."""
    check = verification.pending if verification is not None else None
    if verification is None or check is None or check.number != number:
        return Decision()
    events = decide(verification.episode_id, answers, now)
    done = check.model_copy(
        update={
            "status": "done",
            "completed_at": now,
            "results": [Result.of(event) for event in events],
            "last_error": None,
        }
    )
    return Decision(state=verification.model_copy(update={"check": done}), events=events)


def record_error(
    verification: Verification | None, number: int, message: str
) -> Decision[Verification, None]:
    """Keeps why check `number` cannot finish (it stays pending for a replay)."""
    check = verification.pending if verification is not None else None
    if verification is None or check is None or check.number != number:
        return Decision()
    if check.last_error == message[:500]:
        return Decision()
    failing = check.model_copy(update={"last_error": message[:500]})
    return Decision(state=verification.model_copy(update={"check": failing}))
