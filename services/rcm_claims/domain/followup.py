"""The billers' A/R follow-up list: open insurance A/R by age, payer and dollars.

Each episode keeps its rows (`Episode.ar_rows`, stored with every write of the episode
by its owner), so the list reads the flagged episodes' rows, bounded, and never the
claims themselves. What depends on the day (age, bucket, days to a deadline) and on the
payers' terms (the deadline table) is worked out when the list is asked for.

A row is a claim the payer has, or had and must have again: not closed, not a void,
sent at least once in its line (a corrected claim keeps the age of the claim it
replaces). Outstanding is the submitted charge minus what the payer paid and adjusted so
far; a denial's adjustments are not counted while the denial is open, since working it
is the point of the list.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any, Literal

from rcm_contracts.claims import ClaimFrequency, DeadlineKind
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Conflict, NotFound

from .deadlines import PENDING_FILING, DeadlineTable, denied_on, service_date, under_appeal
from .model import AuditEntry, Claim, ClaimStatus, Episode, FollowUp, change, unchanged

BUCKETS: tuple[tuple[str, int], ...] = (
    ("0-30", 30),
    ("31-60", 60),
    ("61-90", 90),
    ("91-120", 120),
)
OLDEST_BUCKET = "120+"
SortBy = Literal["dollars", "age"]


def bucket_of(age_days: int) -> str:
    for name, last_day in BUCKETS:
        if age_days <= last_day:
            return name
    return OLDEST_BUCKET


def first_submitted(episode: Episode, claim: Claim) -> datetime | None:
    """The first submission in the claim's line: itself and the claims it replaced."""
    seen: set[str] = set()
    found: datetime | None = None
    current: Claim | None = claim
    while current is not None and current.claim_id not in seen:
        seen.add(current.claim_id)
        if current.submitted_at is not None and (found is None or current.submitted_at < found):
            found = current.submitted_at
        replaced = current.replaces_claim_id
        current = episode.find(replaced) if replaced else None
    return found


def _last_action(claim: Claim) -> tuple[str, datetime]:
    milestones = [
        ("queued", claim.queued_at),
        ("submitted", claim.submitted_at),
        ("accepted by the clearinghouse", claim.clearinghouse_accepted_at),
        ("accepted by the payer", claim.accepted_at),
        ("rejected", claim.rejected_at),
        ("denied", claim.denied_at),
        ("paid", claim.paid_at),
    ]
    # At the same moment the later in this order says more ("submitted" over "sending").
    moments = [(entry.at, entry.action) for entry in claim.audit]
    moments += [(at, name) for name, at in milestones if at is not None]
    moments += [(a.posted_at, f"835 posted ({a.status})") for a in claim.adjudications]
    if claim.follow_up is not None:
        moments.append((claim.follow_up.at, "follow-up noted"))
    _, (at, action) = max(enumerate(moments), key=lambda indexed: (indexed[1][0], indexed[0]))
    return action, at


def ar_row(episode: Episode, claim: Claim) -> dict[str, Any] | None:
    if claim.closed or claim.frequency is ClaimFrequency.VOID:
        return None
    first = first_submitted(episode, claim)
    if first is None:
        return None
    adjudications = claim.own_adjudications()
    paid = sum(a.paid_cents for a in adjudications)
    adjusted = sum(a.charge_cents - a.paid_cents for a in adjudications if a.status != "denied")
    action, action_at = _last_action(claim)
    served = service_date(episode)
    denied = denied_on(claim)
    follow_up = claim.follow_up
    return {
        "claim_id": claim.claim_id,
        "episode_id": episode.episode_id,
        "payer_id": claim.payer_id,
        "rank": claim.rank.value,
        "frequency": claim.frequency.value,
        "status": claim.status.value,
        "first_submitted_at": first.isoformat(),
        "charge_cents": claim.total_charge_cents,
        "paid_cents": paid,
        "adjusted_cents": adjusted,
        "outstanding_cents": claim.total_charge_cents - paid - adjusted,
        "last_action": action,
        "last_action_at": action_at.isoformat(),
        "work": claim.work.kind if claim.work else None,
        "assigned_to": claim.work.assigned_to if claim.work else None,
        # the deadlines' inputs (deadlines.py): the terms are applied when listed
        "service_date": served.isoformat() if served else None,
        "filing_pending": claim.status in PENDING_FILING,
        "denied_on": denied.isoformat() if denied else None,
        "appealable": (claim.status is ClaimStatus.DENIED or bool(claim.denied_lines))
        and not under_appeal(claim),
        "follow_up": None
        if follow_up is None
        else {
            "note_id": follow_up.note_id,
            "next_action_on": follow_up.next_action_on.isoformat()
            if follow_up.next_action_on
            else None,
            "by": follow_up.by,
            "at": follow_up.at.isoformat(),
        },
    }


def ar_rows(episode: Episode) -> list[dict[str, Any]]:
    rows = (ar_row(episode, claim) for claim in episode.claims)
    return [row for row in rows if row is not None]


def next_deadline(row: dict[str, Any], table: DeadlineTable, today: date) -> dict[str, Any] | None:
    terms = table.of(row["payer_id"])
    found: list[tuple[date, DeadlineKind]] = []
    if row["filing_pending"] and row["service_date"]:
        filing = date.fromisoformat(row["service_date"]) + timedelta(terms.timely_filing_days)
        found.append((filing, DeadlineKind.TIMELY_FILING))
    if row["appealable"] and row["denied_on"]:
        appeal = date.fromisoformat(row["denied_on"]) + timedelta(terms.appeal_days)
        found.append((appeal, DeadlineKind.APPEAL))
    if not found:
        return None
    day, kind = min(found)
    return {"kind": kind.value, "deadline": day.isoformat(), "days_left": (day - today).days}


def followup_list(
    rows: Iterable[dict[str, Any]],
    table: DeadlineTable,
    today: date,
    *,
    payer_id: str | None = None,
    min_age_days: int = 0,
    min_outstanding_cents: int = 0,
    assigned_to: str | None = None,
    sort: SortBy = "dollars",
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The rows that pass the filters, with age, bucket and next deadline, largest
    balance (or oldest) first, at most `limit`."""
    listed = []
    for stored in rows:
        first = datetime.fromisoformat(stored["first_submitted_at"]).date()
        age = max(0, (today - first).days)
        if payer_id is not None and stored["payer_id"] != payer_id:
            continue
        if age < min_age_days or stored["outstanding_cents"] < min_outstanding_cents:
            continue
        if assigned_to is not None and stored.get("assigned_to") != assigned_to:
            continue
        deadline = next_deadline(stored, table, today)
        row = {
            key: value
            for key, value in stored.items()
            if key not in ("service_date", "filing_pending", "denied_on", "appealable")
        }
        listed.append({**row, "age_days": age, "bucket": bucket_of(age), "next_deadline": deadline})
    if sort == "age":
        listed.sort(key=lambda r: (-r["age_days"], -r["outstanding_cents"], r["claim_id"]))
    else:
        listed.sort(key=lambda r: (-r["outstanding_cents"], -r["age_days"], r["claim_id"]))
    return listed[:limit]


# --- a biller's follow-up note -----------------------------------------------------------


def record_follow_up(
    current: Episode | None,
    claim_id: str,
    note_id: str,
    next_action_on: date | None,
    biller_id: str,
    now: datetime,
) -> Decision[Episode, dict[str, Any]]:
    """The claim shows the note (by id) and the next action's date; the note's text is
    kept by the API in the claims store, never in the episode's events."""
    if current is None:
        raise NotFound(f"claim {claim_id} not found")
    episode = Episode.begin(current, current.episode_id)
    claim = episode.claim(claim_id)
    if claim.follow_up is not None and claim.follow_up.note_id == note_id:
        return unchanged(follow_up_view(claim))
    if claim.closed:
        raise Conflict(f"claim {claim_id} is closed ({claim.outcome}): nothing to follow up")
    claim.follow_up = FollowUp(note_id=note_id, next_action_on=next_action_on, by=biller_id, at=now)
    claim.audit.append(AuditEntry(at=now, action="follow-up noted", by=biller_id))
    return change(episode, [], follow_up_view(claim))


def follow_up_view(claim: Claim) -> dict[str, Any]:
    follow_up = claim.follow_up
    return {
        "claim_id": claim.claim_id,
        "note_id": follow_up.note_id if follow_up else None,
        "next_action_on": follow_up.next_action_on.isoformat()
        if follow_up and follow_up.next_action_on
        else None,
    }
