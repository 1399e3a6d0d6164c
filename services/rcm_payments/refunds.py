"""Refunds of credit balances: collections approves one (refund-approved), payments
issues it (refund-issued, the same refund_id), once per refund_id.

The aggregate is an episode's issued refunds, keyed by episode_id: refund-approved is
keyed by the episode, so the owner of that key is the only writer (decisions §17), and
a refund_id seen before (a redelivery, or the same approval sent again) issues nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from rcm_contracts.collections import RefundApproved
from rcm_contracts.payments import RefundIssued, RefundRecipient
from rcm_shared.aggregates import Aggregates, Decision
from rcm_shared.clock import Clock, utc_now
from rcm_shared.envelope import Envelope
from rcm_shared.service import Service, Subscriptions
from rcm_shared.store import MongoAggregates

log = logging.getLogger(__name__)

COLLECTION = "refunds"


class IssuedRefund(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    refund_id: str
    amount_cents: int
    recipient: RefundRecipient
    reason: str
    approved_by: str
    approved_at: datetime
    issued_at: datetime


class EpisodeRefunds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    episode_id: str
    refunds: list[IssuedRefund] = Field(default_factory=list)

    def issued(self, refund_id: str) -> IssuedRefund | None:
        return next((r for r in self.refunds if r.refund_id == refund_id), None)


def issue_refund(
    current: EpisodeRefunds | None, approved: RefundApproved, now: datetime
) -> Decision[EpisodeRefunds, IssuedRefund]:
    """Issue an approved refund unless its refund_id was issued already."""
    episode = current or EpisodeRefunds(episode_id=approved.episode_id)
    known = episode.issued(approved.refund_id)
    if known is not None:
        return Decision(result=known)
    refund = IssuedRefund(
        refund_id=approved.refund_id,
        amount_cents=approved.amount_cents,
        recipient=approved.recipient,
        reason=approved.reason,
        approved_by=approved.approved_by,
        approved_at=approved.approved_at,
        issued_at=now,
    )
    issued = RefundIssued(
        episode_id=approved.episode_id,
        refund_id=refund.refund_id,
        amount_cents=refund.amount_cents,
        recipient=refund.recipient,
        reason=refund.reason,
        issued_at=now,
    )
    state = episode.model_copy(update={"refunds": [*episode.refunds, refund]})
    return Decision(state=state, events=[issued], result=refund)


class RefundHandlers:
    def __init__(self, refunds: Aggregates[EpisodeRefunds], clock: Clock = utc_now) -> None:
        self.refunds = refunds
        self.clock = clock

    async def refund_approved(self, envelope: Envelope[RefundApproved]) -> None:
        approved = envelope.data
        # BSON keeps milliseconds: the event and the stored refund say the same time.
        now = self.clock()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        applied = await self.refunds.apply(
            approved.episode_id,
            lambda current: issue_refund(current, approved, now),
            cause=envelope.id,
        )
        log.info("refund %s: %s", approved.refund_id, applied.outcome.value)


SUBSCRIPTIONS: Subscriptions[RefundHandlers] = {
    RefundApproved: RefundHandlers.refund_approved,
}


def wire(service: Service) -> MongoAggregates[EpisodeRefunds]:
    """The refunds aggregate and its subscription, on the payments service."""
    refunds = service.aggregates(COLLECTION, EpisodeRefunds)
    service.subscribe(RefundHandlers(refunds), SUBSCRIPTIONS)
    return refunds
