"""Events of the eligibility service (X12 270/271 with the payer)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .base import EpisodeEvent, Id, NonNegativeCents, UtcDatetime, event
from .registration import CoverageRank


@event("rcm.eligibility.eligibility-verified.v1")
class EligibilityVerified(EpisodeEvent):
    """Coverage is active; the benefits the episode will be adjudicated against."""

    coverage_id: Id
    rank: CoverageRank
    payer_id: Id
    plan_name: str | None = Field(default=None, max_length=80)
    copay_cents: NonNegativeCents = 0
    deductible_cents: NonNegativeCents = 0
    deductible_remaining_cents: NonNegativeCents = 0
    coinsurance_basis_points: int = Field(
        default=0, ge=0, le=10_000, description="Patient's coinsurance share; 2000 = 20%."
    )
    out_of_pocket_remaining_cents: NonNegativeCents | None = None
    verified_at: UtcDatetime
    trace_number: str = Field(min_length=1, max_length=50, description="TRN from the 271.")


class EligibilityFailureReason(StrEnum):
    INACTIVE = "inactive"
    SUBSCRIBER_NOT_FOUND = "subscriber-not-found"
    NO_COVERAGE = "no-coverage"
    PAYER_UNAVAILABLE = "payer-unavailable"


@event("rcm.eligibility.eligibility-failed.v1")
class EligibilityFailed(EpisodeEvent):
    """No billable coverage: the episode becomes self-pay."""

    coverage_id: Id | None = None
    payer_id: Id | None = None
    reason: EligibilityFailureReason
    detail: str = Field(default="", max_length=200)
    self_pay: bool = True
    checked_at: UtcDatetime
