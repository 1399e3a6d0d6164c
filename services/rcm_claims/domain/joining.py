"""Joining the inputs, which arrive in any order: the patient (patient-registered), the
coverages (coverage-updated), a verdict per coverage (eligibility-verified / -failed) and
the codes (coding-completed / -corrected). Each records what it brings (an older verdict
or coding arriving late is ignored) and bills once the episode is ready.
"""

from __future__ import annotations

from datetime import datetime

from rcm_contracts import Event
from rcm_contracts.claims import ClaimFrequency, ClaimOutcome
from rcm_contracts.coding import CodedEpisode, CodingCompleted, CodingCorrected
from rcm_contracts.eligibility import EligibilityFailed, EligibilityVerified
from rcm_contracts.registration import CoverageUpdated, PatientRegistered
from rcm_shared.aggregates import Decision

from ..edi import BillingConfig
from .building import bill_if_ready, replace
from .model import Episode, Verdict, change


def patient_registered(
    episode: Episode | None, event: PatientRegistered, config: BillingConfig, now: datetime
) -> Decision[Episode, None]:
    episode = Episode.begin(episode, event.episode_id)
    episode.patient = event.patient
    bill_if_ready(episode, config, now)
    return change(episode)


def coverage_updated(
    episode: Episode | None, event: CoverageUpdated, config: BillingConfig, now: datetime
) -> Decision[Episode, None]:
    episode = Episode.begin(episode, event.episode_id)
    episode.coverages = list(event.coverages)
    bill_if_ready(episode, config, now)
    return change(episode)


def _record_verdict(episode: Episode, verdict: Verdict) -> None:
    current = episode.verdict(verdict.coverage_id)
    if current is not None and current.at > verdict.at:
        return  # an older check arriving late
    episode.verdicts = [v for v in episode.verdicts if v is not current] + [verdict]


def eligibility_verified(
    episode: Episode | None, event: EligibilityVerified, config: BillingConfig, now: datetime
) -> Decision[Episode, None]:
    episode = Episode.begin(episode, event.episode_id)
    _record_verdict(
        episode, Verdict(coverage_id=event.coverage_id, verified=True, at=event.verified_at)
    )
    bill_if_ready(episode, config, now)
    return change(episode)


def eligibility_failed(
    episode: Episode | None, event: EligibilityFailed, config: BillingConfig, now: datetime
) -> Decision[Episode, None]:
    episode = Episode.begin(episode, event.episode_id)
    verdict = Verdict(
        coverage_id=event.coverage_id,
        verified=False,
        self_pay=event.self_pay,
        at=event.checked_at,
    )
    _record_verdict(episode, verdict)
    bill_if_ready(episode, config, now)
    return change(episode)


def coding_completed(
    episode: Episode | None, event: CodingCompleted, config: BillingConfig, now: datetime
) -> Decision[Episode, None]:
    episode = Episode.begin(episode, event.episode_id)
    if episode.coding_at is None or episode.coding_at <= event.completed_at:
        episode.coding = CodedEpisode.model_validate(event.model_dump())
        episode.coding_at = event.completed_at
    bill_if_ready(episode, config, now)
    return change(episode)


def coding_corrected(
    episode: Episode | None, event: CodingCorrected, config: BillingConfig, now: datetime
) -> Decision[Episode, None]:
    """New codes; a claim denied for coding, or paid with a line denied for coding, is
    replaced by a corrected claim (frequency 7). The coder's codes supersede a biller's
    earlier line changes."""
    episode = Episode.begin(episode, event.episode_id)
    if episode.coding_at is not None and episode.coding_at > event.corrected_at:
        return change(episode)  # older than what we have: only mark it applied
    episode.coding = CodedEpisode.model_validate(event.model_dump())
    episode.coding_at = event.corrected_at
    episode.billing_changes = None
    events: list[Event] = []
    for claim in list(episode.claims):
        recode_line = (
            claim.line_recode
            and claim.replaced_by is None
            and claim.outcome in (None, ClaimOutcome.PAID)
        )
        waiting = claim.awaiting_recode and not claim.closed
        if (waiting or recode_line) and episode.patient is not None:
            claim.line_recode = False
            _, replaced = replace(
                episode,
                config,
                claim,
                ClaimFrequency.REPLACEMENT,
                f"recoded after a coding denial ({event.reason})",
                now,
            )
            events += replaced
    bill_if_ready(episode, config, now)
    return change(episode, events)
