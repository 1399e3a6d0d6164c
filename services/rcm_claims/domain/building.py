"""Queueing claims: when an episode is ready to bill and whom it bills, and the one way a
claim is built (the first, a secondary, a replacement), so that claim ids, REF*F8 and
claims that cannot be built are handled alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from rcm_contracts import Event
from rcm_contracts.claims import ClaimFrequency, ClaimOutcome, ClaimResubmitted, SubmittedLine
from rcm_contracts.registration import Coverage, CoverageRank
from rcm_shared.errors import Conflict

from ..edi import BillingConfig, ClaimBuildError, PriorAdjudication, professional_claim
from .model import Claim, ClaimStatus, Episode, close, reject


@dataclass(frozen=True)
class Billing:
    """What the episode's billing waits for, or whom it bills first."""

    state: Literal["waiting", "self-pay", "insured"]
    coverage: Coverage | None = None
    waiting_for: tuple[str, ...] = ()


def billing(episode: Episode) -> Billing:
    """The first verified coverage in rank order, once every coverage ranked before it has
    a verdict; self-pay when eligibility said so and nothing is verified."""
    missing = [
        name
        for name, known in (("patient", episode.patient), ("coding", episode.coding))
        if known is None
    ]
    self_pay = any(v.self_pay and not v.verified for v in episode.verdicts)
    if episode.coverages is None:
        if self_pay:
            return Billing("self-pay")
        return Billing("waiting", waiting_for=(*missing, "coverages"))
    for coverage in episode.ranked_coverages():
        verdict = episode.verdict(coverage.coverage_id)
        if verdict is None:
            return Billing("waiting", waiting_for=(*missing, f"eligibility of {coverage.rank}"))
        if verdict.verified:
            if missing:
                return Billing("waiting", coverage, tuple(missing))
            return Billing("insured", coverage)
    if self_pay:
        return Billing("self-pay")
    return Billing("waiting", waiting_for=(*missing, "eligibility"))


def next_verified(episode: Episode, coverage_id: str) -> Coverage | None:
    """The verified coverage ranked after the one billed, for a secondary claim."""
    ranked = episode.ranked_coverages()
    ids = [c.coverage_id for c in ranked]
    if coverage_id not in ids:
        return None
    for coverage in ranked[ids.index(coverage_id) + 1 :]:
        verdict = episode.verdict(coverage.coverage_id)
        if verdict is not None and verdict.verified:
            return coverage
    return None


def bill_if_ready(episode: Episode, config: BillingConfig, now: datetime) -> None:
    if episode.claims:
        return
    decision = billing(episode)
    if decision.state == "insured" and decision.coverage is not None:
        episode.claims.append(
            new_claim(episode, config, CoverageRank.PRIMARY, decision.coverage, now)
        )


def new_claim(
    episode: Episode,
    config: BillingConfig,
    rank: CoverageRank,
    coverage: Coverage,
    now: datetime,
    *,
    frequency: ClaimFrequency = ClaimFrequency.ORIGINAL,
    replaces: Claim | None = None,
    prior: PriorAdjudication | None = None,
    strict: bool = False,
) -> Claim:
    """A queued claim, or, when it cannot be built, one rejected into the work queue
    (strict: raise Conflict instead and change nothing)."""
    if episode.patient is None or episode.coding is None:
        raise AssertionError("a claim needs the patient and the coding")
    claim_id = episode.next_claim_id()
    replaced_pccn = None
    if frequency is ClaimFrequency.REPLACEMENT and replaces is not None:
        # REF*F8 names the payer's claim; our own id if the payer never told us its number.
        # A rejected replacement never reached the payer: its successor names the same claim.
        rejected = replaces.status is ClaimStatus.REJECTED
        replaced_pccn = (
            (replaces.replaced_pccn if rejected else None)
            or replaces.payer_claim_control_number
            or replaces.claim_id
        )
    coding = episode.coding
    claim = Claim(
        claim_id=claim_id,
        rank=rank,
        coverage_id=coverage.coverage_id,
        payer_id=coverage.payer_id,
        frequency=frequency,
        replaces_claim_id=replaces.claim_id if replaces else None,
        replaced_pccn=replaced_pccn,
        prior=prior,
        total_charge_cents=sum(line.charge_cents for line in coding.charge_lines),
        lines=[
            SubmittedLine(
                line_id=line.line_id,
                procedure_code=line.procedure_code,
                modifiers=line.modifiers,
                units=line.units,
                charge_cents=line.charge_cents,
            )
            for line in sorted(coding.charge_lines, key=lambda line: line.line_number)
        ],
        status=ClaimStatus.QUEUED,
        queued_at=now,
    )
    try:
        x12 = professional_claim(
            config=config,
            claim_id=claim_id,
            patient=episode.patient,
            coverage=coverage,
            coding=coding,
            responsibility="P" if rank is CoverageRank.PRIMARY else "S",
            frequency=frequency.value,
            replaced_pccn=replaced_pccn,
            prior=prior,
        )
    except ClaimBuildError as error:
        if strict:
            raise Conflict(f"the corrected claim cannot be built: {error}") from None
        reject(claim, "build", ["BUILD"], f"claim cannot be built: {error}", now)
        return claim
    claim.x12 = x12.model_dump(mode="json")
    return claim


def replace(
    episode: Episode,
    config: BillingConfig,
    old: Claim,
    frequency: ClaimFrequency,
    reason: str,
    now: datetime,
    *,
    strict: bool = False,
) -> tuple[Claim, list[Event]]:
    """Queue the claim that takes `old`'s place (same payer and rank), close `old`."""
    coverage = episode.coverage(old.coverage_id) or _coverage_like(episode, old)
    if coverage is None:
        raise Conflict(f"claim {old.claim_id}: its coverage is no longer on the episode")
    new = new_claim(
        episode,
        config,
        old.rank,
        coverage,
        now,
        frequency=frequency,
        replaces=old,
        prior=old.prior,
        strict=strict,
    )
    episode.claims.append(new)
    old.replaced_by = new.claim_id
    resubmitted = ClaimResubmitted(
        episode_id=episode.episode_id,
        claim_id=new.claim_id,
        replaces_claim_id=old.claim_id,
        frequency=frequency,
        payer_claim_control_number=new.replaced_pccn,
        reason=reason[:300],
        resubmitted_at=now,
    )
    return new, [resubmitted, close(episode, old, ClaimOutcome.REPLACED, now)]


def _coverage_like(episode: Episode, old: Claim) -> Coverage | None:
    """After registration replaced the coverages: the one now in the claim's position."""
    decision = billing(episode)
    if decision.coverage is None:
        return None
    if old.rank is CoverageRank.PRIMARY:
        return decision.coverage
    return next_verified(episode, decision.coverage.coverage_id)
