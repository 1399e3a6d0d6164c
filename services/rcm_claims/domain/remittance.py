"""Postings from the 835: each is recorded once on the episode and its claim; a paid
claim that leaves a patient share bills the next verified coverage, a denied one waits
for recoding or goes to the biller's denial queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rcm_contracts import Event
from rcm_contracts.claims import (
    ClaimDenied,
    ClaimOutcome,
    ClaimPaid,
    DenialCategory,
    DeniedReason,
)
from rcm_contracts.payments import Adjustment, PaymentPosted, PostedClaimStatus
from rcm_contracts.registration import CoverageRank
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Invalid, NotFound

from ..edi import MAX_MESSAGE, BillingConfig, PriorAdjudication
from .building import new_claim, next_verified
from .model import Claim, ClaimStatus, Episode, WorkItem, change, close, unchanged

DENIAL_CATEGORIES = {
    "16": DenialCategory.DOCUMENTATION,
    "97": DenialCategory.CODING,
    "197": DenialCategory.AUTHORIZATION,
    "50": DenialCategory.OTHER,
}


def denial_category(adjustments: Iterable[Adjustment]) -> DenialCategory:
    """From the first CARC that names a category: 16 documentation, 97 coding,
    197 authorization, 50 other; anything else is other."""
    for adjustment in adjustments:
        category = DENIAL_CATEGORIES.get(adjustment.reason_code)
        if category is not None:
            return category
    return DenialCategory.OTHER


def _patient_share(event: PaymentPosted) -> int:
    share = event.patient_responsibility
    return share.deductible_cents + share.coinsurance_cents + share.copay_cents + share.other_cents


def payment_posted(
    current: Episode | None, event: PaymentPosted, config: BillingConfig, now: datetime
) -> Decision[Episode, None]:
    if current is None:
        raise NotFound(f"posting {event.posting_id}: unknown episode {event.episode_id}")
    episode = Episode.begin(current, event.episode_id)
    if event.posting_id in episode.posting_ids:
        return unchanged()
    claim = episode.find(event.claim_id)
    if claim is None:
        raise NotFound(f"posting {event.posting_id}: unknown claim {event.claim_id}")
    episode.posting_ids.append(event.posting_id)
    claim.postings.append(event.posting_id)
    if event.payer_claim_control_number and event.status is not PostedClaimStatus.REVERSED:
        # The 835 is authoritative, and may come before the 277CA that also names it.
        claim.payer_claim_control_number = event.payer_claim_control_number
    if claim.closed or event.status is PostedClaimStatus.REVERSED:
        return change(episode)  # recorded; the claim's course does not change
    if event.status is PostedClaimStatus.PAID:
        return change(episode, _paid(episode, claim, event, config, now))
    return change(episode, _denied(episode, claim, event, now))


def _paid(
    episode: Episode, claim: Claim, event: PaymentPosted, config: BillingConfig, now: datetime
) -> list[Event]:
    share = _patient_share(event)
    claim.status = ClaimStatus.PAID
    claim.paid_at = now
    claim.paid_cents = event.paid_cents
    claim.patient_responsibility_cents = share
    events: list[Event] = [
        ClaimPaid(
            episode_id=episode.episode_id,
            claim_id=claim.claim_id,
            payer_id=claim.payer_id,
            rank=claim.rank,
            paid_cents=event.paid_cents,
            patient_responsibility_cents=max(share, 0),
            paid_at=now,
        )
    ]
    secondary = next_verified(episode, claim.coverage_id)
    has_secondary = any(
        c.rank is CoverageRank.SECONDARY and c.outcome is not ClaimOutcome.REPLACED
        for c in episode.claims
    )
    primary = episode.coverage(claim.coverage_id)
    if (
        claim.rank is CoverageRank.PRIMARY
        and share > 0
        and secondary is not None
        and primary is not None
        and not has_secondary
        and episode.patient is not None
        and episode.coding is not None
    ):
        prior = PriorAdjudication(
            claim_id=claim.claim_id,
            payer_id=claim.payer_id,
            payer_name=primary.payer_name,
            member_id=primary.member_id,
            group_number=primary.group_number,
            paid_cents=event.paid_cents,
            patient_responsibility_cents=share,
            adjustments=event.adjustments,
            adjudicated_on=event.posted_at.date(),
            payer_claim_control_number=claim.payer_claim_control_number,
            relationship=primary.relationship,
            subscriber=primary.subscriber,
        )
        episode.claims.append(
            new_claim(episode, config, CoverageRank.SECONDARY, secondary, now, prior=prior)
        )
    events.append(close(episode, claim, ClaimOutcome.PAID, now))
    return events


def _denied(episode: Episode, claim: Claim, event: PaymentPosted, now: datetime) -> list[Event]:
    if not event.adjustments:
        raise Invalid(f"posting {event.posting_id}: a denial without adjustments")
    category = denial_category(event.adjustments)
    reasons = [
        DeniedReason(
            group_code=a.group.value, reason_code=a.reason_code, amount_cents=a.amount_cents
        )
        for a in event.adjustments
    ]
    claim.status = ClaimStatus.DENIED
    claim.denied_at = now
    claim.denial_category = category
    claim.denial_reasons = reasons
    if category is DenialCategory.CODING:
        claim.awaiting_recode = True  # coding recodes; coding-corrected brings the new codes
        claim.work = None
    else:
        codes = [f"{a.group.value}-{a.reason_code}" for a in event.adjustments]
        claim.work = WorkItem(
            kind="denial",
            stage="835",
            opened_at=now,
            message=f"denied by {claim.payer_id}: {category.value} ({', '.join(codes)})"[
                :MAX_MESSAGE
            ],
            status_codes=codes,
            category=category,
            reasons=reasons,
        )
    return [
        ClaimDenied(
            episode_id=episode.episode_id,
            claim_id=claim.claim_id,
            payer_id=claim.payer_id,
            category=category,
            reasons=reasons,
            denied_at=now,
        )
    ]
