"""Each claim's deadlines by its payer's terms, and the alerts raised before they pass.

Timely filing: days from the date of service (the claim's first line) to the payer's
receipt of the claim; it matters until the payer accepts one. Appeal: days from the
posting of the remittance that denied the claim (or the line) to the appeal; it
matters while the denial is open and not under appeal. Appeal answer: days from the
appeal's last sending to the payer's decision; past it, the appeal is overdue and back
with the biller (to resend or follow up).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field
from rcm_contracts.claims import DeadlineApproaching, DeadlineKind
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Conflict, NotFound

from .appeal_state import Appeal, line_denial_codes
from .model import AuditEntry, Claim, ClaimStatus, Episode, change, unchanged


class PayerDeadlines(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    timely_filing_days: int = Field(ge=1, le=3650)
    appeal_days: int = Field(ge=1, le=3650)
    # Made up like the rest (Medicare decides a redetermination in 60 days; commercial
    # plans in 30 to 60): a deployment sets its contracts' numbers.
    appeal_answer_days: int = Field(default=60, ge=1, le=3650)


# The simulator's payers' terms (docs/flow.md); a payer not listed gets DEFAULT_TERMS.
DEFAULT_TERMS = PayerDeadlines(timely_filing_days=90, appeal_days=60)
DEFAULT_DEADLINES: Mapping[str, PayerDeadlines] = MappingProxyType(
    {
        "ACME01": PayerDeadlines(timely_filing_days=90, appeal_days=180, appeal_answer_days=60),
        "SUMMIT": PayerDeadlines(timely_filing_days=90, appeal_days=60, appeal_answer_days=30),
        "BLUEPK": PayerDeadlines(timely_filing_days=365, appeal_days=180, appeal_answer_days=60),
        "MERIDN": PayerDeadlines(timely_filing_days=180, appeal_days=90, appeal_answer_days=45),
    }
)
DEFAULT_WARNING_DAYS = 14


@dataclass(frozen=True)
class DeadlineTable:
    terms: Mapping[str, PayerDeadlines] = field(default_factory=lambda: DEFAULT_DEADLINES)
    default: PayerDeadlines = DEFAULT_TERMS
    warning_days: int = DEFAULT_WARNING_DAYS

    def of(self, payer_id: str) -> PayerDeadlines:
        return self.terms.get(payer_id, self.default)


PENDING_FILING = (ClaimStatus.QUEUED, ClaimStatus.SENDING, ClaimStatus.REJECTED)


def service_date(episode: Episode) -> date | None:
    if episode.coding is None:
        return None
    return min(line.service_date for line in episode.coding.charge_lines)


def timely_filing_deadline(episode: Episode, claim: Claim, table: DeadlineTable) -> date | None:
    served = service_date(episode)
    if served is None:
        return None
    return served + timedelta(days=table.of(claim.payer_id).timely_filing_days)


def denied_on(claim: Claim) -> date | None:
    """When the remittance that denied it was posted: the payer's clock runs from its
    notice, not from when claims read the posting (a backlog or a replay is later)."""
    if claim.denied_at is not None:
        denials = [a.posted_at for a in claim.adjudications if a.status == "denied"]
        return max(denials, default=claim.denied_at).date()
    if claim.denied_lines and claim.adjudications:
        return max(a.posted_at for a in claim.adjudications).date()
    return None


def appeal_deadline(claim: Claim, table: DeadlineTable) -> date | None:
    denied = denied_on(claim)
    if denied is None:
        return None
    return denied + timedelta(days=table.of(claim.payer_id).appeal_days)


def line_denied_on(claim: Claim, line_id: str) -> date | None:
    """When the remittance that last denied the line was posted."""
    posted = [
        a.posted_at
        for a in claim.adjudications
        if a.status != "reversed" and line_denial_codes(a.adjustments, line_id)
    ]
    return max(posted).date() if posted else None


def line_appeal_deadline(claim: Claim, line_id: str, table: DeadlineTable) -> date | None:
    denied = line_denied_on(claim, line_id)
    if denied is None:
        return None
    return denied + timedelta(days=table.of(claim.payer_id).appeal_days)


def answer_deadline(claim: Claim, appeal: Appeal, table: DeadlineTable) -> date:
    """The day by which the payer should have decided the appeal, from its last sending."""
    return appeal.last_sent_at.date() + timedelta(days=table.of(claim.payer_id).appeal_answer_days)


def overdue_appeals(
    episode: Episode, table: DeadlineTable, today: date
) -> list[tuple[str, Appeal]]:
    """(claim id, appeal) of the unanswered appeals past their answer deadline and not
    flagged since their last sending (the watch asks the owner to flag each)."""
    return [
        (claim.claim_id, appeal)
        for claim in episode.claims
        for appeal in claim.appeals
        if claim.awaits_answer(appeal)
        and appeal.overdue_at is None
        and today > answer_deadline(claim, appeal, table)
    ]


def under_appeal(claim: Claim) -> bool:
    return any(a.status in ("sent", "overturned") for a in claim.appeals)


def open_deadlines(
    episode: Episode, claim: Claim, table: DeadlineTable
) -> dict[DeadlineKind, date]:
    """The deadlines that still matter for the claim."""
    found: dict[DeadlineKind, date] = {}
    if claim.closed:
        return found
    filing = timely_filing_deadline(episode, claim, table)
    if filing is not None and claim.status in PENDING_FILING:
        found[DeadlineKind.TIMELY_FILING] = filing
    appeal = appeal_deadline(claim, table)
    appealable = claim.status is ClaimStatus.DENIED or bool(claim.denied_lines)
    if appeal is not None and appealable and not under_appeal(claim):
        found[DeadlineKind.APPEAL] = appeal
    return found


def deadlines_view(
    episode: Episode, claim: Claim, table: DeadlineTable, today: date
) -> dict[str, object]:
    """For the claim view and the work queue: each deadline, open or not, and days left."""
    filing = timely_filing_deadline(episode, claim, table)
    appeal = appeal_deadline(claim, table)
    live = open_deadlines(episode, claim, table)
    return {
        kind.value: {
            "deadline": day.isoformat(),
            "days_left": (day - today).days,
            "open": kind in live,
        }
        for kind, day in ((DeadlineKind.TIMELY_FILING, filing), (DeadlineKind.APPEAL, appeal))
        if day is not None
    }


def due_alerts(
    episode: Episode, table: DeadlineTable, today: date
) -> list[tuple[str, DeadlineKind]]:
    """The (claim, kind) pairs whose deadline is within the warning days and not alerted."""
    due = []
    for claim in episode.claims:
        for kind, day in open_deadlines(episode, claim, table).items():
            if kind.value not in claim.alerts and (day - today).days <= table.warning_days:
                due.append((claim.claim_id, kind))
    return due


def raise_alert(
    current: Episode | None,
    claim_id: str,
    kind: DeadlineKind,
    table: DeadlineTable,
    now: datetime,
) -> Decision[Episode, dict[str, object]]:
    """deadline-approaching once per claim and kind, when the deadline still matters and
    is within the warning days (the watch may have read an older state)."""
    if current is None:
        raise NotFound(f"claim {claim_id} not found")
    episode = Episode.begin(current, current.episode_id)
    claim = episode.claim(claim_id)
    if kind.value in claim.alerts:
        return unchanged({"claim_id": claim_id, "kind": kind.value, "raised": False})
    deadline = open_deadlines(episode, claim, table).get(kind)
    if deadline is None:
        raise Conflict(f"claim {claim_id}: no open {kind.value} deadline")
    days_left = (deadline - now.date()).days
    if days_left > table.warning_days:
        raise Conflict(f"claim {claim_id}: the {kind.value} deadline is {days_left} days away")
    claim.alerts.append(kind.value)
    claim.audit.append(AuditEntry(at=now, action=f"{kind.value} deadline {deadline} near"))
    alert = DeadlineApproaching(
        episode_id=episode.episode_id,
        claim_id=claim_id,
        payer_id=claim.payer_id,
        kind=kind,
        deadline=deadline,
        days_left=days_left,
        raised_at=now,
    )
    return change(episode, [alert], {"claim_id": claim_id, "kind": kind.value, "raised": True})
