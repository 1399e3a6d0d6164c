"""The biller's rejection and denial queue, and what the biller does with an item:
correct the claim or accept the denial.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rcm_contracts.claims import ClaimFrequency, ClaimOutcome
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Conflict, NotFound

from ..edi import BillingConfig
from .building import replace
from .model import (
    AuditEntry,
    Claim,
    ClaimStatus,
    Episode,
    WorkKind,
    change,
    close,
)


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
) -> Decision[Episode, CommandResult]:
    """A rejected claim goes again as a new claim of its frequency (the payer never saw
    it); a denied one is replaced by a corrected claim (frequency 7). Either way the old
    claim closes as replaced."""
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
    claim.audit.append(AuditEntry(at=now, action="corrected", by=biller_id, note=note))
    new, events = replace(episode, config, claim, frequency, note, now, strict=True)
    return change(episode, events, CommandResult(claim_id, new.claim_id, frequency))


def corrected(episode: Episode, claim_id: str) -> CommandResult:
    """What a correction did, read from the state (a repeated request's answer)."""
    claim = episode.claim(claim_id)
    if claim.replaced_by is None:
        raise Conflict(f"claim {claim_id} was not corrected")
    return CommandResult(claim_id, claim.replaced_by, episode.claim(claim.replaced_by).frequency)


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
