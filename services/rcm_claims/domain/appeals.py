"""A biller's appeal of a denied claim or line, and the payer's answer to it.

An appeal is filed on an open denial before its deadline (deadlines.py); the claim leaves
the biller's queue while the payer decides. Overturned: the payer reprocesses the claim
and its 835 pays it as any other (remittance.py). Upheld: the denial is the biller's
again, with the payer's letter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rcm_contracts.claims import (
    AppealDecided,
    AppealDecisionRequested,
    AppealOutcome,
    AppealRequested,
    ClaimAppealed,
)
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Conflict, Invalid, NotFound

from ..edi import MAX_MESSAGE
from .appeal_state import Appeal
from .deadlines import DeadlineTable, appeal_deadline
from .model import AuditEntry, Claim, ClaimStatus, Episode, WorkItem, change, unchanged
from .remittance import reason_category


def _denial_codes(claim: Claim, line_id: str | None) -> list[str]:
    if line_id is None:
        return [f"{r.group_code}-{r.reason_code}" for r in claim.denial_reasons]
    return [
        f"{a.group.value}-{a.reason_code}"
        for adjudication in claim.adjudications
        for a in adjudication.adjustments
    ]


def file_appeal(
    current: Episode | None, request: AppealRequested, table: DeadlineTable, now: datetime
) -> Decision[Episode, dict[str, Any]]:
    if current is None:
        raise NotFound(f"claim {request.claim_id} not found")
    episode = Episode.begin(current, current.episode_id)
    claim = episode.claim(request.claim_id)
    if any(a.appeal_id == request.appeal_id for a in claim.appeals):
        return unchanged(appeal_view(claim, request.appeal_id))
    if claim.closed:
        raise Conflict(f"claim {claim.claim_id} is closed ({claim.outcome})")
    if request.line_id is None:
        if claim.status is not ClaimStatus.DENIED:
            raise Conflict(f"claim {claim.claim_id} is {claim.status.value}: not denied")
        if claim.awaiting_recode:
            raise Conflict(f"claim {claim.claim_id} was denied for coding: it waits for recoding")
    elif request.line_id not in claim.denied_lines:
        raise Conflict(f"claim {claim.claim_id}: line {request.line_id} was not denied")
    if any(a.status == "sent" and a.line_id == request.line_id for a in claim.appeals):
        raise Conflict(f"claim {claim.claim_id}: an appeal is with the payer already")
    deadline = appeal_deadline(claim, table)
    if deadline is not None and now.date() > deadline:
        late = (now.date() - deadline).days
        days = table.of(claim.payer_id).appeal_days
        raise Invalid(
            f"claim {claim.claim_id}: the appeal deadline {deadline} passed {late} days ago "
            f"({claim.payer_id} takes appeals up to {days} days from the denial)"
        )
    appeal = Appeal(
        appeal_id=request.appeal_id,
        line_id=request.line_id,
        reason=request.reason,
        documents=request.documents,
        authorization_number=request.authorization_number,
        timely_filing_proof=request.timely_filing_proof,
        denial_codes=_denial_codes(claim, request.line_id),
        filed_by=request.requested_by,
        filed_at=now,
    )
    claim.appeals.append(appeal)
    if request.line_id is None:
        claim.work = None  # with the payer until it answers
    claim.audit.append(
        AuditEntry(at=now, action=f"appeal {appeal.appeal_id} filed", by=request.requested_by)
    )
    appealed = ClaimAppealed(
        episode_id=episode.episode_id,
        claim_id=claim.claim_id,
        appeal_id=appeal.appeal_id,
        reason=request.reason,
        appealed_at=now,
        payer_id=claim.payer_id,
        line_id=request.line_id,
        documents=request.documents,
        authorization_number=request.authorization_number,
        timely_filing_proof=request.timely_filing_proof,
        deadline=deadline,
    )
    return change(episode, [appealed], appeal_view(claim, appeal.appeal_id))


def record_decision(
    current: Episode | None, request: AppealDecisionRequested, now: datetime
) -> Decision[Episode, dict[str, Any]]:
    if current is None:
        raise NotFound(f"claim {request.claim_id} not found")
    episode = Episode.begin(current, current.episode_id)
    claim = episode.claim(request.claim_id)
    appeal = next((a for a in claim.appeals if a.appeal_id == request.appeal_id), None)
    if appeal is None:
        raise NotFound(f"appeal {request.appeal_id} of claim {claim.claim_id} not found")
    if appeal.status != "sent":
        if appeal.status != request.outcome.value:
            raise Conflict(f"appeal {appeal.appeal_id} was {appeal.status} already")
        return unchanged(appeal_view(claim, appeal.appeal_id))
    appeal.status = "overturned" if request.outcome is AppealOutcome.OVERTURNED else "upheld"
    appeal.decision = request.reason
    appeal.decided_at = now
    claim.audit.append(
        AuditEntry(at=now, action=f"appeal {appeal.appeal_id} {appeal.status}", note=request.reason)
    )
    if (
        request.outcome is AppealOutcome.UPHELD
        and appeal.line_id is None
        and not claim.closed
        and claim.status is ClaimStatus.DENIED
    ):
        claim.work = WorkItem(
            kind="denial",
            stage="appeal",
            opened_at=now,
            message=f"appeal {appeal.appeal_id} upheld by {claim.payer_id}: {request.reason}"[
                :MAX_MESSAGE
            ],
            status_codes=appeal.denial_codes,
            category=claim.denial_category,
            reasons=claim.denial_reasons,
            reason_category=reason_category(claim.denial_reasons),
        )
    decided = AppealDecided(
        episode_id=episode.episode_id,
        claim_id=claim.claim_id,
        appeal_id=appeal.appeal_id,
        payer_id=claim.payer_id,
        outcome=request.outcome,
        reason=request.reason,
        decided_at=now,
    )
    return change(episode, [decided], appeal_view(claim, appeal.appeal_id))


def appeal_view(claim: Claim, appeal_id: str) -> dict[str, Any]:
    appeal = next(a for a in claim.appeals if a.appeal_id == appeal_id)
    view = appeal.model_dump(mode="json")
    view.update(claim_id=claim.claim_id, payer_id=claim.payer_id)
    return view


def appeal_of(episode: Episode, claim_id: str, appeal_id: str) -> dict[str, Any]:
    claim = episode.claim(claim_id)
    if not any(a.appeal_id == appeal_id for a in claim.appeals):
        raise NotFound(f"appeal {appeal_id} of claim {claim_id} not found")
    return appeal_view(claim, appeal_id)
