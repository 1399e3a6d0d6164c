"""999 and 277CA verdicts: the clearinghouse and the payer accept or reject a claim."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from rcm_contracts import Event
from rcm_contracts.claims import AckStage, ClaimAccepted, ClaimRejected
from rcm_shared.aggregates import Decision

from ..edi import MAX_MESSAGE, AckVerdict
from .model import Claim, ClaimStatus, ClaimStillSending, Episode, change, reject, unchanged


def acknowledge(
    current: Episode | None,
    stage: AckStage,
    verdicts: Mapping[str, AckVerdict],
    now: datetime,
    interchange_control_number: int | None = None,
) -> Decision[Episode, None]:
    """Apply 999 or 277CA verdicts to the episode's claims. A 999 counts only for the
    interchange the claim was last sent in; a claim still marked sending makes the caller
    wait (ClaimStillSending, a Conflict) until its submission is recorded."""
    return acknowledge_each(current, stage, [(verdicts, interchange_control_number)], now)


def acknowledge_each(
    current: Episode | None,
    stage: AckStage,
    answers: Sequence[tuple[Mapping[str, AckVerdict], int | None]],
    now: datetime,
) -> Decision[Episode, None]:
    """Several answers of one document at once (a 999 may answer several interchanges):
    (verdicts by claim id, the interchange they answer) each."""
    if current is None:
        return unchanged()
    episode = Episode.begin(current, current.episode_id)
    events: list[Event] = []
    changed = False
    for verdicts, interchange_control_number in answers:
        for claim_id, verdict in verdicts.items():
            claim = episode.find(claim_id)
            if claim is None:
                continue
            if stage is AckStage.CLEARINGHOUSE and (
                claim.interchange_control_number != interchange_control_number
            ):
                continue  # an answer to an earlier attempt
            if claim.status is ClaimStatus.SENDING:
                raise ClaimStillSending(claim_id)
            pccn = verdict.payer_claim_control_number
            if pccn and claim.payer_claim_control_number is None:
                claim.payer_claim_control_number = pccn
                changed = True
            if claim.closed or claim.status is not ClaimStatus.SUBMITTED:
                # Answered already, or the claim has moved on: an 835 can overtake the
                # 277CA. The acceptance still happened; it is recorded, not announced.
                moved_on = claim.closed or claim.status in (
                    ClaimStatus.PARTIALLY_PAID,
                    ClaimStatus.PAID,
                    ClaimStatus.DENIED,
                    ClaimStatus.REVERSED,
                )
                if verdict.accepted and moved_on:
                    milestone = (
                        "clearinghouse_accepted_at"
                        if stage is AckStage.CLEARINGHOUSE
                        else "accepted_at"
                    )
                    if getattr(claim, milestone) is None:
                        setattr(claim, milestone, now)
                        changed = True
                continue
            if not verdict.accepted:
                codes = list(verdict.status_codes) or [stage.value]
                reject(claim, stage.value, codes, verdict.message, now)
                events.append(
                    ClaimRejected(
                        episode_id=episode.episode_id,
                        claim_id=claim_id,
                        stage=stage,
                        status_codes=codes,
                        message=verdict.message[:MAX_MESSAGE] or f"rejected at {stage.value}",
                        rejected_at=now,
                    )
                )
            elif stage is AckStage.CLEARINGHOUSE:
                if claim.clearinghouse_accepted_at is not None:
                    continue
                claim.clearinghouse_accepted_at = now
                events.append(_accepted(episode, claim, stage, now))
            else:
                claim.status = ClaimStatus.ACCEPTED
                claim.accepted_at = now
                events.append(_accepted(episode, claim, stage, now))
    return change(episode, events) if events or changed else unchanged()


def _accepted(episode: Episode, claim: Claim, stage: AckStage, now: datetime) -> ClaimAccepted:
    return ClaimAccepted(
        episode_id=episode.episode_id,
        claim_id=claim.claim_id,
        stage=stage,
        payer_claim_control_number=claim.payer_claim_control_number,
        accepted_at=now,
    )
