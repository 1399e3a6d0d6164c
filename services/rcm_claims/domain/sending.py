"""The claims' side of a send round (see jobs.py): refused before sending, marked
sending in an interchange, recorded as submitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rcm_contracts import Event
from rcm_contracts.claims import ClaimSubmitted
from rcm_shared.aggregates import Decision

from .model import AuditEntry, ClaimStatus, Episode, change, reject, unchanged


def refuse(
    current: Episode | None, refusals: Mapping[str, list[str]], stage: str, now: datetime
) -> Decision[Episode, None]:
    """Claims that must not be sent (pyx12 or the clearinghouse refused them) go to the
    rejection queue with the reasons."""
    if current is None:
        return unchanged()
    episode = Episode.begin(current, current.episode_id)
    changed = False
    for claim_id, problems in refusals.items():
        claim = episode.find(claim_id)
        if claim is None or not claim.unsent:
            continue
        message = f"{stage} refused the claim: " + "; ".join(problems)
        reject(claim, stage, [stage.upper()], message, now)
        changed = True
    return change(episode) if changed else unchanged()


Marked = list[tuple[str, str, dict[str, Any]]]  # (claim_id, st, x12)


def mark_sending(
    current: Episode | None,
    numbers: Mapping[str, str],
    interchange_control_number: int,
    now: datetime,
) -> Decision[Episode, Marked]:
    """Before the HTTP call: these claims go out in interchange N as transaction set ST.
    The result lists (claim_id, st, x12) of the claims actually marked."""
    if current is None:
        return unchanged([])
    episode = Episode.begin(current, current.episode_id)
    marked: Marked = []
    for claim_id, st in numbers.items():
        claim = episode.find(claim_id)
        if claim is None or not claim.unsent or claim.x12 is None:
            continue
        claim.status = ClaimStatus.SENDING
        claim.interchange_control_number = interchange_control_number
        claim.transaction_control_number = st
        claim.audit.append(
            AuditEntry(at=now, action=f"sending in interchange {interchange_control_number}")
        )
        marked.append((claim_id, st, claim.x12))
    return change(episode, (), marked) if marked else unchanged(marked)


def mark_submitted(
    current: Episode | None, interchange_control_number: int, batch_id: str, now: datetime
) -> Decision[Episode, None]:
    """The clearinghouse took interchange N: claim-submitted, once per claim."""
    if current is None:
        return unchanged()
    episode = Episode.begin(current, current.episode_id)
    events: list[Event] = []
    for claim in episode.claims:
        if (
            claim.interchange_control_number != interchange_control_number
            or claim.submitted_at is not None
        ):
            continue
        if claim.status is ClaimStatus.SENDING:
            claim.status = ClaimStatus.SUBMITTED
        claim.submitted_at = now
        claim.batch_id = batch_id
        events.append(
            ClaimSubmitted(
                episode_id=episode.episode_id,
                claim_id=claim.claim_id,
                payer_id=claim.payer_id,
                rank=claim.rank,
                frequency=claim.frequency,
                total_charge_cents=claim.total_charge_cents,
                lines=claim.lines,
                interchange_control_number=f"{interchange_control_number:09d}",
                submitted_at=now,
                edit_pack_version=claim.edit_pack_version,
            )
        )
    return change(episode, events) if events else unchanged()
