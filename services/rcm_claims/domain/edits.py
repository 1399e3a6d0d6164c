"""The scrub before a claim is built: the edits of the pack in force on the date of
service (rcm_edits) run over the claim's lines as they would be billed. A claim that
breaks an edit with severity error is held in the billers' work queue (a rejection at
stage `scrub`, with the hits) instead of being sent; claim-edit-failed says so.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from rcm_contracts.claims import ClaimEditFailed
from rcm_contracts.coding import ChargeLine, CodedEpisode, EditHit
from rcm_edits import ClaimFacts, Library, LineFacts, check, errors

from .model import Claim, Episode, reject

STAGE = "scrub"


def scrub(packs: Library | None, coding: CodedEpisode) -> tuple[str | None, list[EditHit]]:
    """The version of the pack in force (of the claim's first date of service) and the
    hits, each date of service checked with its own pack."""
    by_day: dict[date, list[ChargeLine]] = defaultdict(list)
    for line in coding.charge_lines:
        by_day[line.service_date].append(line)
    version = None
    hits: list[EditHit] = []
    for day in sorted(by_day):
        pack = packs.for_date(day) if packs is not None else None
        if pack is None:
            continue
        version = version or pack.version
        facts = ClaimFacts(
            service_date=day,
            diagnoses=len(coding.diagnoses),
            lines=tuple(
                LineFacts(
                    number=line.line_number,
                    procedure_code=line.procedure_code,
                    modifiers=tuple(line.modifiers),
                    units=line.units,
                    diagnosis_pointers=tuple(line.diagnosis_pointers),
                    charge_cents=line.charge_cents,
                )
                for line in by_day[day]
            ),
        )
        hits += check(pack, facts)
    return version, hits


def hold(claim: Claim, hits: list[EditHit], now: datetime) -> None:
    """Into the billers' rejection queue with the hard hits, not sent."""
    hard = errors(hits)
    rules = sorted({hit.rule.upper() for hit in hard})
    reject(claim, STAGE, rules, "edits failed: " + "; ".join(h.message for h in hard), now)
    if claim.work is not None:
        claim.work.edit_hits = hard


def held(claim: Claim) -> bool:
    return claim.work is not None and claim.work.stage == STAGE and bool(claim.work.edit_hits)


def with_edit_failures(
    before: Episode | None, after: Episode | None, now: datetime
) -> list[ClaimEditFailed]:
    """claim-edit-failed for each claim a decision queued and the scrub held (`after`:
    the decision's state): claims are scrubbed once, when they are made, so a claim that
    is new and held is news."""
    if after is None:
        return []
    known = {claim.claim_id for claim in before.claims} if before is not None else set()
    return [
        ClaimEditFailed(
            episode_id=after.episode_id,
            claim_id=claim.claim_id,
            payer_id=claim.payer_id,
            edit_pack_version=claim.edit_pack_version or "",
            hits=claim.work.edit_hits,
            failed_at=now,
        )
        for claim in after.claims
        if claim.claim_id not in known and held(claim) and claim.work is not None
    ]
