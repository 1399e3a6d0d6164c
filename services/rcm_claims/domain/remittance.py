"""Postings from the 835: each is recorded once on the episode and its claim.

A claim's amounts are the sums of its payer's postings (a reversal carries negative
amounts, so after a reversal and a repost they are the repost's). A claim is paid once
the charges its payer answered for cover the charge submitted (a split or partial
payment leaves it with the payer); then it bills the next verified coverage, unless the
payer forwarded it there itself (a crossover, which stays open until that payer's own
835 is posted). A denied claim waits for recoding or goes to the biller's denial queue;
a paid one with a line denied for coding tells coding (line-denied).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rcm_codes import Category, carc, rarc
from rcm_contracts import Event
from rcm_contracts.claims import (
    ClaimDenied,
    ClaimFrequency,
    ClaimOutcome,
    ClaimPaid,
    DenialCategory,
    DeniedReason,
    LineDenied,
    ReasonCategory,
    Remark,
)
from rcm_contracts.payments import (
    Adjustment,
    AdjustmentGroup,
    PaymentPosted,
    PostedClaimStatus,
)
from rcm_contracts.registration import Coverage, CoverageRank
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Invalid, NotFound

from ..edi import MAX_MESSAGE, BillingConfig, PriorAdjudication
from .building import new_claim, next_verified, replace
from .model import (
    Adjudication,
    AuditEntry,
    Claim,
    ClaimStatus,
    Crossover,
    Episode,
    WorkItem,
    change,
    close,
    close_crossover,
    unchanged,
)

# Who works a denial comes from the CARC list (rcm_codes): its coding codes go to a coder
# (a denied claim waits for recoding, a denied line is line-denied), the rest to the
# biller's queue with the category and the codes' descriptions.
CODING_CARCS = frozenset(c.code for c in carc().codes.values() if c.category is Category.CODING)
PAYER_GROUPS = (AdjustmentGroup.CONTRACTUAL, AdjustmentGroup.PAYER_INITIATED)


def reason_category(reasons: Iterable[DeniedReason | Adjustment]) -> ReasonCategory:
    """The category of the first CARC the list puts in one that is not contractual or
    the patient's share (those come with any denial); else that of the first CARC."""
    codes = [r.reason_code for r in reasons]
    categories = [ReasonCategory(carc().category(code).value) for code in codes]
    incidental = (ReasonCategory.CONTRACTUAL, ReasonCategory.PATIENT_RESPONSIBILITY)
    return next(
        (c for c in categories if c not in incidental),
        categories[0] if categories else ReasonCategory.OTHER,
    )


def denial_category(adjustments: Iterable[Adjustment]) -> DenialCategory:
    """The v1 category of ClaimDenied (its new kinds are `other` there)."""
    return reason_category(adjustments).v1


def remarks(codes: Iterable[str]) -> list[Remark]:
    listed = rarc()
    return [Remark(code=code, description=listed.describe(code)) for code in codes]


def _patient_share(event: PaymentPosted) -> int:
    share = event.patient_responsibility
    return share.deductible_cents + share.coinsurance_cents + share.copay_cents + share.other_cents


def payment_posted(
    current: Episode | None, event: PaymentPosted, config: BillingConfig, now: datetime
) -> Decision[Episode, None]:
    if current is None:
        raise NotFound(f"posting {event.posting_id}: unknown episode {event.episode_id}")
    episode = Episode.begin(current, event.episode_id)
    if event.posting_id in episode.posting_ids:
        return unchanged()
    claim = episode.find(event.claim_id)
    if claim is None:
        raise NotFound(f"posting {event.posting_id}: unknown claim {event.claim_id}")
    episode.posting_ids.append(event.posting_id)
    claim.postings.append(event.posting_id)
    if _crossover_answer(claim, event):
        return change(episode, _crossover_posted(episode, claim, event, now))
    _record(claim, event)
    if claim.frequency is ClaimFrequency.VOID:
        # A payer that answers the void under its own claim id: the void is done.
        done = [] if claim.closed else [close(episode, claim, ClaimOutcome.VOIDED, now)]
        return change(episode, done)
    if event.crossover_payer_id and event.status is not PostedClaimStatus.REVERSED:
        _record_crossover(episode, claim, event, now)
    if event.status is PostedClaimStatus.REVERSED:
        return change(episode, _reversed(episode, claim, now))
    events: list[Event] = []
    if event.status is PostedClaimStatus.PAID:
        events += _line_denials(episode, claim, event, now)
        if claim.closed:  # a repost after a reversal: the amounts are the repost's now
            if claim.status is ClaimStatus.REVERSED:
                claim.status = ClaimStatus.PAID
                claim.paid_at = now
                events.append(_claim_paid(episode, claim, event.payer_id, claim.rank, now))
            return change(episode, events)
        return change(episode, events + _paid(episode, claim, event, config, now))
    if claim.closed:
        return change(episode)  # recorded; the claim's course does not change
    return change(episode, _denied(episode, claim, event, now))


def _crossover_answer(claim: Claim, event: PaymentPosted) -> bool:
    """The crossover payer's own 835: our primary claim's id, another payer, secondary."""
    return (
        claim.rank is CoverageRank.PRIMARY
        and event.rank is CoverageRank.SECONDARY
        and event.payer_id != claim.payer_id
    )


def _record(claim: Claim, event: PaymentPosted) -> None:
    """The posting joins the claim's history; the amounts are its payer's sums."""
    claim.adjudications.append(
        Adjudication(
            posting_id=event.posting_id,
            payer_id=event.payer_id,
            status=event.status.value,
            charge_cents=event.charge_cents,
            paid_cents=event.paid_cents,
            patient_responsibility_cents=_patient_share(event),
            payer_claim_control_number=event.payer_claim_control_number,
            adjustments=event.adjustments,
            posted_at=event.posted_at,
        )
    )
    own = claim.own_adjudications()
    claim.paid_cents = sum(a.paid_cents for a in own)
    claim.patient_responsibility_cents = sum(a.patient_responsibility_cents for a in own)
    if event.payer_claim_control_number and event.status is not PostedClaimStatus.REVERSED:
        # The 835 is authoritative, and may come before the 277CA that also names it.
        claim.payer_claim_control_number = event.payer_claim_control_number


def _reversed(episode: Episode, claim: Claim, now: datetime) -> list[Event]:
    """The payer took its adjudication back. A paid claim is reversed until a repost; a
    voided claim's reversal is the answer to the void, which then closes."""
    if claim.status in (ClaimStatus.PAID, ClaimStatus.PARTIALLY_PAID):
        claim.status = ClaimStatus.REVERSED
    claim.audit.append(AuditEntry(at=now, action="reversed by the payer"))
    if claim.outcome is ClaimOutcome.VOIDED and claim.voided_by is not None:
        void = episode.find(claim.voided_by)
        while void is not None and void.replaced_by is not None:
            void = episode.find(void.replaced_by)  # a rejected void sent again
        if void is not None and not void.closed:
            return [close(episode, void, ClaimOutcome.VOIDED, now)]
    return []


def _claim_paid(
    episode: Episode, claim: Claim, payer_id: str, rank: CoverageRank, now: datetime
) -> ClaimPaid:
    return ClaimPaid(
        episode_id=episode.episode_id,
        claim_id=claim.claim_id,
        payer_id=payer_id,
        rank=rank,
        paid_cents=claim.paid_cents or 0,
        patient_responsibility_cents=max(claim.patient_responsibility_cents or 0, 0),
        paid_at=now,
    )


def _paid(
    episode: Episode, claim: Claim, event: PaymentPosted, config: BillingConfig, now: datetime
) -> list[Event]:
    answered = claim.answered_charge_cents()
    if answered < claim.total_charge_cents:
        claim.status = ClaimStatus.PARTIALLY_PAID
        claim.audit.append(
            AuditEntry(
                at=now,
                action=f"partially paid: {answered} of {claim.total_charge_cents} cents answered",
            )
        )
        return []
    return paid_in_full(episode, claim, config, now)


def paid_in_full(
    episode: Episode, claim: Claim, config: BillingConfig, now: datetime
) -> list[Event]:
    """The payer is done with the claim: claim-paid, the next payer billed (or its claim
    corrected), closed."""
    claim.status = ClaimStatus.PAID
    claim.paid_at = now
    events: list[Event] = [_claim_paid(episode, claim, claim.payer_id, claim.rank, now)]
    _bill_secondary(episode, claim, config, now)
    events += _rebill_secondary(episode, config, now, paying=claim)
    events.append(close(episode, claim, ClaimOutcome.PAID, now))
    return events


def prior_adjudication(episode: Episode, claim: Claim) -> PriorAdjudication | None:
    """The primary's answer as it stands, for a secondary claim's 2320/2430."""
    primary = episode.coverage(claim.coverage_id)
    own = claim.own_adjudications()
    if primary is None or not own:
        return None
    return PriorAdjudication(
        claim_id=claim.claim_id,
        payer_id=claim.payer_id,
        payer_name=primary.payer_name,
        member_id=primary.member_id,
        group_number=primary.group_number,
        paid_cents=claim.paid_cents or 0,
        patient_responsibility_cents=claim.patient_responsibility_cents or 0,
        adjustments=[a for adjudication in own for a in adjudication.adjustments],
        adjudicated_on=max(a.posted_at for a in own).date(),
        payer_claim_control_number=claim.payer_claim_control_number,
        relationship=primary.relationship,
        subscriber=primary.subscriber,
    )


def _bill_secondary(episode: Episode, claim: Claim, config: BillingConfig, now: datetime) -> None:
    share = claim.patient_responsibility_cents or 0
    secondary = next_verified(episode, claim.coverage_id)
    has_secondary = any(
        c.rank is CoverageRank.SECONDARY and c.outcome is not ClaimOutcome.REPLACED
        for c in episode.claims
    )
    prior = prior_adjudication(episode, claim)
    if (
        claim.rank is not CoverageRank.PRIMARY
        or claim.crossover is not None  # the payer sent it on: billing it too is a duplicate
        or share <= 0
        or secondary is None
        or prior is None
        or has_secondary
        or episode.patient is None
        or episode.coding is None
    ):
        return
    episode.claims.append(
        new_claim(episode, config, CoverageRank.SECONDARY, secondary, now, prior=prior)
    )


def _current_primary(episode: Episode) -> Claim | None:
    """The primary claim whose answer stands: paid, not replaced, not voided."""
    paid = [
        c
        for c in episode.claims
        if c.rank is CoverageRank.PRIMARY
        and c.status is ClaimStatus.PAID
        and c.replaced_by is None
        and c.voided_by is None
        and c.frequency is not ClaimFrequency.VOID
    ]
    return paid[-1] if paid else None


def _rebill_secondary(
    episode: Episode, config: BillingConfig, now: datetime, paying: Claim
) -> list[Event]:
    """A secondary billed on a primary answer that no longer stands (the primary was
    corrected after a line denied for coding and paid again) is replaced by a corrected
    claim (frequency 7) carrying the primary's answer as it is now, as a billing office
    sends the secondary a corrected claim after the primary's corrected 835. Only once
    the secondary has answered the first: replacing a claim still being adjudicated
    would have the payer answer both. Its payer takes back what it paid on the old
    answer and pays on the new one, so the insurance side reaches zero. `paying` (the
    claim being paid now) is closed by the caller, as paid."""
    primary = _current_primary(episode)
    if primary is None or primary.crossover is not None:
        return []
    for secondary in episode.claims:
        stale = (
            secondary.rank is CoverageRank.SECONDARY
            and secondary.replaced_by is None
            and secondary.voided_by is None
            and secondary.frequency is not ClaimFrequency.VOID
            and secondary.prior is not None
            and secondary.prior.claim_id != primary.claim_id
            and secondary.status in (ClaimStatus.PAID, ClaimStatus.PARTIALLY_PAID)
        )
        prior = prior_adjudication(episode, primary) if stale else None
        if prior is None or episode.patient is None or episode.coding is None:
            continue
        secondary.audit.append(
            AuditEntry(at=now, action=f"primary answer changed ({primary.claim_id})")
        )
        _, events = replace(
            episode,
            config,
            secondary,
            ClaimFrequency.REPLACEMENT,
            f"the primary's corrected claim {primary.claim_id} was adjudicated again",
            now,
            prior=prior,
            close_old=secondary is not paying,
        )
        return events
    return []


# --- crossovers ---------------------------------------------------------------------------


def _crossover_coverage(episode: Episode, payer_id: str) -> Coverage | None:
    """The episode's coverage with the crossover payer, a secondary one first."""
    matches = [c for c in episode.ranked_coverages() if c.payer_id == payer_id]
    return next((c for c in matches if c.rank is CoverageRank.SECONDARY), None) or next(
        iter(matches), None
    )


def _record_crossover(episode: Episode, claim: Claim, event: PaymentPosted, now: datetime) -> None:
    payer_id = event.crossover_payer_id
    if payer_id is None or claim.crossover is not None or claim.rank is not CoverageRank.PRIMARY:
        return  # recorded already (its payer's 835 may have come first)
    coverage = _crossover_coverage(episode, payer_id)
    claim.crossover = Crossover(
        payer_id=payer_id,
        payer_name=event.crossover_payer_name,
        coverage_id=coverage.coverage_id if coverage else None,
        recorded_at=now,
    )
    claim.audit.append(AuditEntry(at=now, action=f"crossed over to {payer_id}"))


def _crossover_posted(
    episode: Episode, claim: Claim, event: PaymentPosted, now: datetime
) -> list[Event]:
    """The crossover payer's own adjudication of our primary claim."""
    if claim.crossover is None:  # its 835 came before the primary's
        coverage = _crossover_coverage(episode, event.payer_id)
        claim.crossover = Crossover(
            payer_id=event.payer_id,
            coverage_id=coverage.coverage_id if coverage else None,
            recorded_at=now,
        )
    crossover = claim.crossover
    crossover.postings.append(event.posting_id)
    crossover.paid_cents += event.paid_cents
    crossover.patient_responsibility_cents += _patient_share(event)
    if event.status is PostedClaimStatus.REVERSED or crossover.closed:
        return []
    if event.status is PostedClaimStatus.PAID:
        crossover.status = "paid"
        paid = ClaimPaid(
            episode_id=episode.episode_id,
            claim_id=claim.claim_id,
            payer_id=crossover.payer_id,
            rank=CoverageRank.SECONDARY,
            paid_cents=crossover.paid_cents,
            patient_responsibility_cents=max(crossover.patient_responsibility_cents, 0),
            paid_at=now,
        )
        return [paid, close_crossover(episode, claim, ClaimOutcome.PAID, now)]
    crossover.status = "denied"
    codes = [f"{a.group.value}-{a.reason_code}" for a in event.adjustments]
    claim.work = WorkItem(
        kind="denial",
        stage="835",
        opened_at=now,
        message=f"crossover denied by {crossover.payer_id} ({', '.join(codes)})"[:MAX_MESSAGE],
        status_codes=codes,
        category=denial_category(event.adjustments),
        reasons=_reasons(event.adjustments),
        reason_category=reason_category(event.adjustments),
        remarks=remarks(event.remark_codes),
    )
    return []


# --- denials -----------------------------------------------------------------------------


def _reasons(adjustments: Iterable[Adjustment]) -> list[DeniedReason]:
    listed = carc()
    return [
        DeniedReason(
            group_code=a.group.value,
            reason_code=a.reason_code,
            amount_cents=a.amount_cents,
            description=listed.describe(a.reason_code),
            reason_category=ReasonCategory(listed.category(a.reason_code).value),
        )
        for a in adjustments
    ]


def _line_denials(
    episode: Episode, claim: Claim, event: PaymentPosted, now: datetime
) -> list[Event]:
    """line-denied once per line the payer denied for coding on a paid claim."""
    events: list[Event] = []
    for line in event.lines:
        coding = [
            a
            for a in line.adjustments
            if a.group in PAYER_GROUPS and a.reason_code in CODING_CARCS and a.amount_cents > 0
        ]
        procedure = line.billed_procedure_code or line.procedure_code
        key = line.line_id or procedure
        if not coding or key in claim.denied_lines:
            continue
        claim.denied_lines.append(key)
        claim.line_recode = True
        claim.audit.append(AuditEntry(at=now, action=f"line {key} denied for coding"))
        events.append(
            LineDenied(
                episode_id=episode.episode_id,
                claim_id=claim.claim_id,
                payer_id=event.payer_id,
                line_id=line.line_id,
                procedure_code=procedure,
                category=DenialCategory.CODING,
                reasons=_reasons(coding),
                posting_id=event.posting_id,
                denied_at=now,
            )
        )
    return events


def _denied(episode: Episode, claim: Claim, event: PaymentPosted, now: datetime) -> list[Event]:
    if not event.adjustments:
        raise Invalid(f"posting {event.posting_id}: a denial without adjustments")
    detail = reason_category(event.adjustments)
    category = detail.v1
    reasons = _reasons(event.adjustments)
    remarked = remarks(event.remark_codes)
    claim.status = ClaimStatus.DENIED
    claim.denied_at = now
    claim.denial_category = category
    claim.denial_reasons = reasons
    if detail is ReasonCategory.CODING:
        claim.awaiting_recode = True  # coding recodes; coding-corrected brings the new codes
        claim.work = None
    else:
        codes = [f"{a.group.value}-{a.reason_code}" for a in event.adjustments]
        claim.work = WorkItem(
            kind="denial",
            stage="835",
            opened_at=now,
            message=f"denied by {claim.payer_id}: {detail.value} ({', '.join(codes)})"[
                :MAX_MESSAGE
            ],
            status_codes=codes,
            category=category,
            reasons=reasons,
            reason_category=detail,
            remarks=remarked,
        )
    return [
        ClaimDenied(
            episode_id=episode.episode_id,
            claim_id=claim.claim_id,
            payer_id=claim.payer_id,
            category=category,
            reasons=reasons,
            denied_at=now,
            reason_category=detail,
            remarks=remarked,
        )
    ]
