"""A biller's appeal of a denied claim or line, and the payer's answer to it.

An appeal is filed on an open denial before its deadline (deadlines.py); the claim leaves
the biller's queue while the payer decides. Overturned: the payer reprocesses the claim
and its 835 pays it as any other (remittance.py). Upheld: the denial is the biller's
again, with the payer's letter.

A line is appealed on its own when the payer denied it on a claim it paid (the claim may
be closed as paid): the line's codes come from the posting, a coding denial is recoded
instead. A payer that lets its answer deadline pass puts the appeal back in the biller's
queue (overdue, once per sending); the biller may send it again, same id and documents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rcm_codes import Category, carc
from rcm_contracts.claims import (
    AppealDecided,
    AppealDecisionRequested,
    AppealOutcome,
    AppealOverdue,
    AppealOverdueRequested,
    AppealRequested,
    AppealResendRequested,
    AppealResent,
    ClaimAppealed,
    ClaimOutcome,
)
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Conflict, Invalid, NotFound

from ..edi import MAX_MESSAGE
from .appeal_state import Appeal, AppealStep, line_denial_codes
from .deadlines import DeadlineTable, answer_deadline, appeal_deadline, line_appeal_deadline
from .model import AuditEntry, Claim, ClaimStatus, Episode, WorkItem, change, unchanged
from .remittance import reason_category

OVERDUE_STAGE = "appeal-overdue"


def _denial_codes(claim: Claim, line_id: str | None) -> list[str]:
    if line_id is None:
        return [f"{r.group_code}-{r.reason_code}" for r in claim.denial_reasons]
    standing = [a for a in claim.adjudications if a.status != "reversed"]
    return line_denial_codes(standing[-1].adjustments, line_id) if standing else []


def _line_appealable(claim: Claim, line_id: str) -> list[str]:
    """The line's denial codes; refused when the line cannot be appealed."""
    if claim.replaced_by is not None:
        raise Conflict(f"claim {claim.claim_id} was replaced by {claim.replaced_by}")
    if claim.closed and claim.outcome is not ClaimOutcome.PAID:
        raise Conflict(f"claim {claim.claim_id} is closed ({claim.outcome})")
    codes = _denial_codes(claim, line_id)
    if not codes:
        raise Conflict(f"claim {claim.claim_id}: line {line_id} was not denied")
    listed = carc()
    if all(listed.category(code.split("-", 1)[1]) is Category.CODING for code in codes):
        raise Conflict(f"claim {claim.claim_id}: line {line_id} was denied for coding: recode it")
    return codes


def file_appeal(
    current: Episode | None, request: AppealRequested, table: DeadlineTable, now: datetime
) -> Decision[Episode, dict[str, Any]]:
    if current is None:
        raise NotFound(f"claim {request.claim_id} not found")
    episode = Episode.begin(current, current.episode_id)
    claim = episode.claim(request.claim_id)
    if any(a.appeal_id == request.appeal_id for a in claim.appeals):
        return unchanged(appeal_view(claim, request.appeal_id))
    if request.line_id is None:
        if claim.closed:
            raise Conflict(f"claim {claim.claim_id} is closed ({claim.outcome})")
        if claim.status is not ClaimStatus.DENIED:
            raise Conflict(f"claim {claim.claim_id} is {claim.status.value}: not denied")
        if claim.awaiting_recode:
            raise Conflict(f"claim {claim.claim_id} was denied for coding: it waits for recoding")
        codes = _denial_codes(claim, None)
        deadline = appeal_deadline(claim, table)
    else:
        codes = _line_appealable(claim, request.line_id)
        deadline = line_appeal_deadline(claim, request.line_id, table)
    if any(a.status == "sent" and a.line_id == request.line_id for a in claim.appeals):
        raise Conflict(f"claim {claim.claim_id}: an appeal is with the payer already")
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
        denial_codes=codes,
        filed_by=request.requested_by,
        filed_at=now,
        history=[AppealStep(at=now, action="filed", by=request.requested_by)],
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
    appeal.history.append(AppealStep(at=now, action=appeal.status, note=request.reason))
    _settle_overdue(claim, appeal)
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


def _settle_overdue(claim: Claim, appeal: Appeal) -> None:
    """The appeal is with the payer again or answered: its overdue item leaves the queue."""
    appeal.overdue_at = None
    work = claim.work
    if work is not None and work.stage == OVERDUE_STAGE and appeal.appeal_id in work.message:
        claim.work = None


def _appeal(
    current: Episode | None, claim_id: str, appeal_id: str
) -> tuple[Episode, Claim, Appeal]:
    if current is None:
        raise NotFound(f"claim {claim_id} not found")
    episode = Episode.begin(current, current.episode_id)
    claim = episode.claim(claim_id)
    appeal = next((a for a in claim.appeals if a.appeal_id == appeal_id), None)
    if appeal is None:
        raise NotFound(f"appeal {appeal_id} of claim {claim_id} not found")
    return episode, claim, appeal


def mark_overdue(
    current: Episode | None, request: AppealOverdueRequested, table: DeadlineTable, now: datetime
) -> Decision[Episode, dict[str, Any]]:
    """An unanswered appeal past the payer's answer deadline goes back to the biller's
    queue, once per sending (the watch may have read an older state)."""
    episode, claim, appeal = _appeal(current, request.claim_id, request.appeal_id)
    if appeal.status != "sent":
        raise Conflict(f"appeal {appeal.appeal_id} was {appeal.status} already")
    if not claim.awaits_answer(appeal):
        raise Conflict(f"claim {claim.claim_id} is closed ({claim.outcome}): no answer awaited")
    if appeal.overdue_at is not None:
        return unchanged(appeal_view(claim, appeal.appeal_id))
    due = answer_deadline(claim, appeal, table)
    if now.date() <= due:
        raise Conflict(f"appeal {appeal.appeal_id}: the payer's answer is due by {due}")
    appeal.overdue_at = now
    days = table.of(claim.payer_id).appeal_answer_days
    appeal.history.append(AppealStep(at=now, action="overdue", note=f"answer due by {due}"))
    claim.audit.append(AuditEntry(at=now, action=f"appeal {appeal.appeal_id} overdue"))
    message = (
        f"appeal {appeal.appeal_id} sent {appeal.last_sent_at.date()} unanswered by "
        f"{claim.payer_id} past its {days}-day answer deadline {due}: resend or follow up"
    )
    if claim.work is None:  # else the biller has the claim in the queue already
        claim.work = WorkItem(
            kind="denial",
            stage=OVERDUE_STAGE,
            opened_at=now,
            message=message[:MAX_MESSAGE],
            status_codes=appeal.denial_codes,
            category=claim.denial_category,
            reasons=claim.denial_reasons,
            reason_category=reason_category(claim.denial_reasons) if claim.denial_reasons else None,
        )
    overdue = AppealOverdue(
        episode_id=episode.episode_id,
        claim_id=claim.claim_id,
        appeal_id=appeal.appeal_id,
        payer_id=claim.payer_id,
        line_id=appeal.line_id,
        sent_at=appeal.last_sent_at,
        answer_deadline=due,
        raised_at=now,
    )
    return change(episode, [overdue], appeal_view(claim, appeal.appeal_id))


def resend(
    current: Episode | None, request: AppealResendRequested, table: DeadlineTable, now: datetime
) -> Decision[Episode, dict[str, Any]]:
    """Records that an unanswered appeal is sent again (the API sends it): same id, same
    documents; the payer's answer clock starts again."""
    episode, claim, appeal = _appeal(current, request.claim_id, request.appeal_id)
    if appeal.status != "sent":
        raise Conflict(f"appeal {appeal.appeal_id} was {appeal.status}: nothing to resend")
    if not claim.awaits_answer(appeal):
        raise Conflict(f"claim {claim.claim_id} is closed ({claim.outcome}): nothing to resend")
    appeal.sends += 1
    appeal.sent_at = now
    _settle_overdue(claim, appeal)
    appeal.history.append(AppealStep(at=now, action="resent", by=request.requested_by))
    claim.audit.append(
        AuditEntry(at=now, action=f"appeal {appeal.appeal_id} resent", by=request.requested_by)
    )
    resent = AppealResent(
        episode_id=episode.episode_id,
        claim_id=claim.claim_id,
        appeal_id=appeal.appeal_id,
        payer_id=claim.payer_id,
        line_id=appeal.line_id,
        sends=appeal.sends,
        documents=appeal.documents,
        answer_deadline=answer_deadline(claim, appeal, table),
        resent_at=now,
    )
    return change(episode, [resent], appeal_view(claim, appeal.appeal_id))


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
