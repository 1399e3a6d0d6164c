"""The biller's rejection and denial queue, and what the biller does with a claim:
correct it (with changes to its data), accept a denial, void it, or close what the payer
will not pay further.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rcm_contracts import Event
from rcm_contracts.claims import ClaimChanges, ClaimFrequency, ClaimOutcome
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Conflict, NotFound

from ..edi import BillingConfig
from .building import merge_changes, replace
from .model import (
    AuditEntry,
    Claim,
    ClaimStatus,
    Episode,
    WorkKind,
    change,
    close,
    close_crossover,
)
from .remittance import paid_in_full


def work_items(episode: Episode, kind: WorkKind | None = None) -> list[dict[str, Any]]:
    items = []
    for claim in episode.claims:
        if claim.work is None or (kind is not None and claim.work.kind != kind):
            continue
        item = claim.work.model_dump(mode="json")
        item.update(
            claim_id=claim.claim_id,
            episode_id=episode.episode_id,
            payer_id=claim.payer_id,
            rank=claim.rank.value,
            status=claim.status.value,
            frequency=claim.frequency.value,
        )
        items.append(item)
    return items


@dataclass(frozen=True)
class CommandResult:
    """What a command did, for its HTTP answer."""

    claim_id: str = ""
    new_claim_id: str | None = None
    frequency: ClaimFrequency | None = None
    outcome: ClaimOutcome | None = None
    payer_id: str | None = None
    changed: tuple[str, ...] = ()


def _load_claim(current: Episode | None, claim_id: str) -> tuple[Episode, Claim]:
    if current is None:
        raise NotFound(f"claim {claim_id} not found")
    episode = Episode.begin(current, current.episode_id)
    return episode, episode.claim(claim_id)


def correct(
    current: Episode | None,
    claim_id: str,
    biller_id: str,
    note: str,
    config: BillingConfig,
    now: datetime,
    changes: ClaimChanges | None = None,
) -> Decision[Episode, CommandResult]:
    """A rejected claim goes again as a new claim of its frequency (the payer never saw
    it); a denied one is replaced by a corrected claim (frequency 7). Either way the old
    claim closes as replaced. A biller's changes (line modifiers, units, charges, the
    prior authorization) stay on the episode's later claims until coding recodes it."""
    episode, claim = _load_claim(current, claim_id)
    if claim.closed:
        by = f" by {claim.replaced_by}" if claim.replaced_by else ""
        raise Conflict(f"claim {claim_id} is closed ({claim.outcome}){by}")
    if claim.status is ClaimStatus.REJECTED:
        frequency = claim.frequency  # a rejected replacement is sent again as one
    elif claim.status is ClaimStatus.DENIED and not claim.awaiting_recode:
        frequency = ClaimFrequency.REPLACEMENT
    elif claim.awaiting_recode:
        raise Conflict(f"claim {claim_id} was denied for coding: it waits for recoding")
    else:
        raise Conflict(f"claim {claim_id} is {claim.status.value}: nothing to correct")
    if episode.patient is None or episode.coding is None:
        raise Conflict(f"claim {claim_id}: the episode lacks patient or coding data")
    changed: list[str] = []
    if changes is not None:
        episode.billing_changes, changed = merge_changes(episode, changes)
    action = "corrected" + (f" ({', '.join(changed)})" if changed else "")
    claim.audit.append(AuditEntry(at=now, action=action, by=biller_id, note=note))
    new, events = replace(
        episode, config, claim, frequency, note, now, strict=True, changed=changed
    )
    result = CommandResult(claim_id, new.claim_id, frequency, changed=tuple(changed))
    return change(episode, events, result)


def corrected(episode: Episode, claim_id: str) -> CommandResult:
    """What a correction did, read from the state (a repeated request's answer)."""
    claim = episode.claim(claim_id)
    if claim.replaced_by is None:
        raise Conflict(f"claim {claim_id} was not corrected")
    new = episode.claim(claim.replaced_by)
    return CommandResult(claim_id, new.claim_id, new.frequency, changed=tuple(new.changed))


def accept_denial(
    current: Episode | None, claim_id: str, biller_id: str, note: str, now: datetime
) -> Decision[Episode, CommandResult]:
    episode, claim = _load_claim(current, claim_id)
    if claim.closed or claim.status is not ClaimStatus.DENIED:
        state = f"closed ({claim.outcome})" if claim.closed else claim.status.value
        raise Conflict(f"claim {claim_id} is {state}: only an open denial can be accepted")
    claim.audit.append(AuditEntry(at=now, action="denial accepted", by=biller_id, note=note))
    closed = close(episode, claim, ClaimOutcome.DENIAL_ACCEPTED, now)
    return change(episode, [closed], CommandResult(claim_id))


VOIDABLE = (
    ClaimStatus.SUBMITTED,
    ClaimStatus.ACCEPTED,
    ClaimStatus.PARTIALLY_PAID,
    ClaimStatus.PAID,
)


def void(
    current: Episode | None,
    claim_id: str,
    biller_id: str,
    reason: str,
    config: BillingConfig,
    now: datetime,
) -> Decision[Episode, CommandResult]:
    """A claim the payer has is voided: a frequency-8 claim names it (REF*F8), it closes
    as voided (a paid one a second time) and the void stays open until the payer's
    reversal of it is posted."""
    episode, claim = _load_claim(current, claim_id)
    if claim.frequency is ClaimFrequency.VOID:
        raise Conflict(f"claim {claim_id} is a void itself")
    if claim.replaced_by is not None:
        raise Conflict(f"claim {claim_id} was replaced by {claim.replaced_by}")
    if claim.status not in VOIDABLE or (claim.closed and claim.outcome is not ClaimOutcome.PAID):
        state = f"closed ({claim.outcome})" if claim.closed else claim.status.value
        raise Conflict(f"claim {claim_id} is {state}: only a claim the payer has can be voided")
    if episode.patient is None or episode.coding is None:
        raise Conflict(f"claim {claim_id}: the episode lacks patient or coding data")
    claim.audit.append(AuditEntry(at=now, action="voided", by=biller_id, note=reason))
    new, events = replace(
        episode,
        config,
        claim,
        ClaimFrequency.VOID,
        reason,
        now,
        strict=True,
        outcome=ClaimOutcome.VOIDED,
    )
    claim.voided_by = new.claim_id
    return change(episode, events, CommandResult(claim_id, new.claim_id, ClaimFrequency.VOID))


def voided(episode: Episode, claim_id: str) -> CommandResult:
    """What a void did, read from the state (a repeated request's answer)."""
    claim = episode.claim(claim_id)
    if claim.voided_by is None:
        raise Conflict(f"claim {claim_id} was not voided")
    return CommandResult(claim_id, claim.voided_by, ClaimFrequency.VOID)


def close_claim(
    current: Episode | None,
    claim_id: str,
    biller_id: str,
    note: str,
    config: BillingConfig,
    now: datetime,
) -> Decision[Episode, CommandResult]:
    """The payer will not pay further: an open crossover closes (paid if that payer paid
    anything), a partially paid or reversed claim closes as paid when it was paid
    something (the next payer is billed as for any paid claim), else as denial-accepted;
    an open denial as denial-accepted; an unanswered void as voided."""
    episode, claim = _load_claim(current, claim_id)
    crossover = claim.crossover
    events: list[Event]
    if crossover is not None and not crossover.closed:
        outcome = ClaimOutcome.PAID if crossover.paid_cents > 0 else ClaimOutcome.DENIAL_ACCEPTED
        payer_id = crossover.payer_id
        events = [close_crossover(episode, claim, outcome, now)]
    elif claim.closed:
        raise Conflict(f"claim {claim_id} is closed ({claim.outcome})")
    elif claim.frequency is ClaimFrequency.VOID and claim.status in (
        ClaimStatus.SUBMITTED,
        ClaimStatus.ACCEPTED,
    ):
        outcome, payer_id = ClaimOutcome.VOIDED, claim.payer_id
        events = [close(episode, claim, outcome, now)]
    elif (
        claim.status in (ClaimStatus.PARTIALLY_PAID, ClaimStatus.REVERSED)
        and (claim.paid_cents or 0) > 0
    ):
        outcome, payer_id = ClaimOutcome.PAID, claim.payer_id
        events = paid_in_full(episode, claim, config, now)
    elif claim.status in (ClaimStatus.PARTIALLY_PAID, ClaimStatus.REVERSED, ClaimStatus.DENIED):
        outcome, payer_id = ClaimOutcome.DENIAL_ACCEPTED, claim.payer_id
        events = [close(episode, claim, outcome, now)]
    else:
        raise Conflict(
            f"claim {claim_id} is {claim.status.value}: the payer has not answered for it"
        )
    action = f"closed by the biller ({outcome.value})"
    claim.audit.append(AuditEntry(at=now, action=action, by=biller_id, note=note))
    claim.biller_closed = (payer_id, outcome)
    return change(episode, events, closed_by_biller(episode, claim_id))


def closed_by_biller(episode: Episode, claim_id: str) -> CommandResult:
    """What a biller's closing did, read from the state (a repeated request's answer)."""
    claim = episode.claim(claim_id)
    if claim.biller_closed is None:
        raise Conflict(f"claim {claim_id} was not closed by a biller")
    payer_id, outcome = claim.biller_closed
    return CommandResult(claim_id, outcome=outcome, payer_id=payer_id)


def assign_work(
    current: Episode | None, claim_id: str, assigned_to: str | None, by: str, now: datetime
) -> Decision[Episode, dict[str, Any]]:
    """The claim's open work item goes to a biller (None: back to everyone)."""
    episode, claim = _load_claim(current, claim_id)
    if claim.work is None:
        raise Conflict(f"claim {claim_id} has no open work item")
    answer = {"claim_id": claim_id, "kind": claim.work.kind, "assigned_to": assigned_to}
    if claim.work.assigned_to == assigned_to:
        return Decision(result=answer)
    claim.work.assigned_to = assigned_to
    action = f"work assigned to {assigned_to}" if assigned_to else "work unassigned"
    claim.audit.append(AuditEntry(at=now, action=action, by=by))
    return change(episode, [], answer)
