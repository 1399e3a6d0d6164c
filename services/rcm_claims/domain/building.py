"""Queueing claims: when an episode is ready to bill and whom it bills, and the one way a
claim is built (the first, a secondary, a replacement), so that claim ids, REF*F8 and
claims that cannot be built are handled alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import ValidationError
from rcm_contracts import Event
from rcm_contracts.claims import (
    ClaimChanges,
    ClaimFrequency,
    ClaimOutcome,
    ClaimResubmitted,
    SubmittedLine,
)
from rcm_contracts.coding import CodedEpisode
from rcm_contracts.registration import Coverage, CoverageRank
from rcm_edits import errors
from rcm_shared.errors import Conflict, Invalid
from rcm_x12 import ProfessionalClaim

from ..edi import BillingConfig, ClaimBuildError, PriorAdjudication, professional_claim
from . import edits
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
    """A queued claim, or, when it breaks a hard edit or cannot be built, one rejected
    into the work queue (strict: raise Invalid or Conflict instead and change nothing)."""
    if episode.patient is None or episode.coding is None:
        raise AssertionError("a claim needs the patient and the coding")
    claim_id = episode.next_claim_id()
    replaced_pccn = None
    if frequency is not ClaimFrequency.ORIGINAL and replaces is not None:
        # REF*F8 names the payer's claim; our own id if the payer never told us its number.
        # A rejected replacement never reached the payer: its successor names the same claim.
        rejected = replaces.status is ClaimStatus.REJECTED
        replaced_pccn = (
            (replaces.replaced_pccn if rejected else None)
            or replaces.payer_claim_control_number
            or replaces.claim_id
        )
    changes = episode.billing_changes
    coding = with_changes(episode.coding, changes)
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
        changes=changes,
    )
    claim.edit_pack_version, hits = edits.scrub(config.edit_packs, coding)
    if errors(hits):
        if strict:
            reasons = [{"msg": hit.message, **hit.model_dump()} for hit in errors(hits)]
            raise Invalid("the corrected claim breaks edits", reasons)
        edits.hold(claim, hits, now)
        return claim
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
        # The payer's number from registration, unless a biller's correction brought one.
        authorization = (
            changes.prior_authorization if changes is not None else None
        ) or coverage.prior_authorization
        if authorization is not None:
            x12 = _with_prior_authorization(x12, authorization)
    except ClaimBuildError as error:
        if strict:
            raise Conflict(f"the corrected claim cannot be built: {error}") from None
        reject(claim, "build", ["BUILD"], f"claim cannot be built: {error}", now)
        return claim
    claim.x12 = x12.model_dump(mode="json")
    return claim


def with_changes(coding: CodedEpisode, changes: ClaimChanges | None) -> CodedEpisode:
    """The coded episode as billed: a biller's line changes over the coder's lines."""
    if changes is None or not changes.lines:
        return coding
    by_line = {change.line_id: change for change in changes.lines}
    lines = []
    for line in coding.charge_lines:
        change = by_line.get(line.line_id)
        if change is not None:
            update = {
                "modifiers": change.modifiers,
                "units": change.units,
                "charge_cents": change.charge_cents,
            }
            line = line.model_copy(update={k: v for k, v in update.items() if v is not None})
        lines.append(line)
    total = sum(line.charge_cents for line in lines)
    return coding.model_copy(update={"charge_lines": lines, "total_charge_cents": total})


def _with_prior_authorization(claim: ProfessionalClaim, number: str) -> ProfessionalClaim:
    try:
        return ProfessionalClaim.model_validate(
            claim.model_copy(update={"prior_authorization": number}).model_dump()
        )
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(p) for p in problem['loc']) or 'claim'}: {problem['msg']}"
            for problem in error.errors(include_input=False, include_url=False)
        ]
        raise ClaimBuildError(problems) from None


def merge_changes(episode: Episode, changes: ClaimChanges) -> tuple[ClaimChanges, list[str]]:
    """The episode's billing changes with these over them, and what these change (field
    names, never values). Lines must be the coding's: Invalid names every other one."""
    coding = episode.coding
    known = {line.line_id for line in coding.charge_lines} if coding else set()
    unknown = [
        f"changes.lines[{n}].line_id: not a line of the claim"
        for n, line in enumerate(changes.lines)
        if line.line_id not in known
    ]
    if unknown:
        raise Invalid("the changes name lines the claim does not have", reasons=unknown)
    changed = [
        f"lines[{line.line_id}].{name}"
        for line in changes.lines
        for name in ("modifiers", "units", "charge_cents")
        if getattr(line, name) is not None
    ]
    if changes.prior_authorization is not None:
        changed.append("prior_authorization")
    earlier = episode.billing_changes
    if earlier is None:
        return changes, changed
    lines = {line.line_id: line for line in earlier.lines}
    for line in changes.lines:
        before = lines.get(line.line_id)
        if before is None:
            lines[line.line_id] = line
            continue
        update = {
            name: getattr(line, name)
            for name in ("modifiers", "units", "charge_cents")
            if getattr(line, name) is not None
        }
        lines[line.line_id] = before.model_copy(update=update)
    merged = ClaimChanges(
        lines=list(lines.values()),
        prior_authorization=changes.prior_authorization or earlier.prior_authorization,
    )
    return merged, changed


def replace(
    episode: Episode,
    config: BillingConfig,
    old: Claim,
    frequency: ClaimFrequency,
    reason: str,
    now: datetime,
    *,
    strict: bool = False,
    outcome: ClaimOutcome = ClaimOutcome.REPLACED,
    changed: list[str] | None = None,
    prior: PriorAdjudication | None = None,
    close_old: bool = True,
) -> tuple[Claim, list[Event]]:
    """Queue the claim that takes `old`'s place (same payer and rank), close `old` (a
    paid claim replaced after a line was recoded stays closed as paid). `prior`: the
    primary's answer now, for a secondary billed on an earlier one. `close_old` False:
    the caller closes `old` itself (with another outcome)."""
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
        prior=prior or old.prior,
        strict=strict,
    )
    new.changed = list(changed or [])
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
        changed=changed or [],
        total_charge_cents=new.total_charge_cents,
    )
    if not close_old or (old.closed and outcome is ClaimOutcome.REPLACED):
        return new, [resubmitted]
    return new, [resubmitted, close(episode, old, outcome, now)]


def _coverage_like(episode: Episode, old: Claim) -> Coverage | None:
    """After registration replaced the coverages: the one now in the claim's position."""
    decision = billing(episode)
    if decision.coverage is None:
        return None
    if old.rank is CoverageRank.PRIMARY:
        return decision.coverage
    return next_verified(episode, decision.coverage.coverage_id)
