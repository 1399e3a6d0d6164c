"""What the API shows: an episode's billing and claims, and the claim counts for stats."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rcm_contracts.claims import ClaimOutcome

from .building import billing
from .model import Claim, ClaimStatus, Episode


def episode_view(episode: Episode) -> dict[str, Any]:
    decision = billing(episode)
    return {
        "episode_id": episode.episode_id,
        "billing": "billed" if episode.claims else decision.state,
        "waiting_for": list(decision.waiting_for) if not episode.claims else [],
        "open_claims": episode.open_claims(),
        "closings": episode.closings,
        "posting_ids": episode.posting_ids,
        "claims": [claim.view(episode.episode_id) for claim in episode.claims],
    }


MILESTONES = {
    "submitted": "submitted_at",
    "clearinghouse_accepted": "clearinghouse_accepted_at",
    "accepted": "accepted_at",
    "rejected": "rejected_at",
    "denied": "denied_at",
    "paid": "paid_at",
}


def count(claims: Iterable[Claim]) -> dict[str, Any]:
    """Claims that reached each milestone, current statuses, closings by outcome."""
    stats: dict[str, Any] = {name: 0 for name in MILESTONES}
    stats["claims"] = 0
    stats["open"] = 0
    stats["status"] = {status.value: 0 for status in ClaimStatus}
    stats["closed"] = {outcome.value: 0 for outcome in ClaimOutcome}
    for claim in claims:
        stats["claims"] += 1
        for name, attribute in MILESTONES.items():
            if getattr(claim, attribute) is not None:
                stats[name] += 1
        stats["status"][claim.status.value] += 1
        if claim.closed and claim.outcome is not None:
            stats["closed"][claim.outcome.value] += 1
        else:
            stats["open"] += 1
    return stats
