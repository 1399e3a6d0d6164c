"""The rules of an episode's claims, from the first 837P to the last closing. No I/O.

One aggregate per episode (collection "episodes") joins, in any order, what the claims
service hears about it: the patient (patient-registered), the coverages
(coverage-updated), a verdict per coverage (eligibility-verified / -failed) and the
codes (coding-completed / -corrected). It holds the episode's claims (`<episode_id>-<n>`),
every payment posting applied to them and a counter of closings.

Claim life: queued -> sending -> submitted -> accepted -> paid | denied, or rejected
(999, 277CA, or refused before sending: the claim could not be built or pyx12 refused
it). Separately from its status, a claim is open until it is closed, exactly once, with
an outcome: paid, denial-accepted or replaced (by a corrected or re-sent claim). Every
closing says how many of the episode's claims are still open, its sequence number in the
episode and all the postings applied so far, so collections knows when billing is over.

Each decision takes the stored document (or None) and returns a `Change` (new state and
the events to emit, written together) or None when there is nothing to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from rcm_contracts import Event
from rcm_contracts.claims import (
    AckStage,
    ClaimAccepted,
    ClaimClosed,
    ClaimDenied,
    ClaimFrequency,
    ClaimOutcome,
    ClaimPaid,
    ClaimRejected,
    ClaimResubmitted,
    ClaimSubmitted,
    DenialCategory,
    DeniedReason,
    SubmittedLine,
)
from rcm_contracts.coding import CodedEpisode, CodingCompleted, CodingCorrected
from rcm_contracts.eligibility import EligibilityFailed, EligibilityVerified
from rcm_contracts.payments import Adjustment, PaymentPosted, PostedClaimStatus
from rcm_contracts.registration import (
    Coverage,
    CoverageRank,
    CoverageUpdated,
    PatientRegistered,
    Person,
)
from rcm_shared.errors import PermanentError
from rcm_shared.store import Change, Decide, Document

from .edi import (
    MAX_MESSAGE,
    AckVerdict,
    BillingConfig,
    ClaimBuildError,
    PriorAdjudication,
    professional_claim,
)

RANK_ORDER = {CoverageRank.PRIMARY: 0, CoverageRank.SECONDARY: 1}
DENIAL_CATEGORIES = {
    "16": DenialCategory.DOCUMENTATION,
    "97": DenialCategory.CODING,
    "197": DenialCategory.AUTHORIZATION,
    "50": DenialCategory.OTHER,
}


class NotFound(LookupError):
    """No such episode or claim."""


class Conflict(ValueError):
    """The command does not fit the claim's state (HTTP 409)."""


class ClaimStillSending(RuntimeError):
    """An acknowledgment names a claim whose submission is not recorded yet: try later."""


class ClaimStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PAID = "paid"
    DENIED = "denied"


WorkKind = Literal["rejection", "denial"]


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Verdict(Model):
    """Eligibility's latest word on one coverage (coverage_id None: no coverage at all)."""

    coverage_id: str | None
    verified: bool
    self_pay: bool = False
    at: datetime


class WorkItem(Model):
    """An open item of the biller's rejection or denial queue."""

    kind: WorkKind
    stage: str  # 999, 277CA, build, pyx12, clearinghouse; 835 for denials
    opened_at: datetime
    message: str
    status_codes: list[str] = Field(default_factory=list)
    category: DenialCategory | None = None
    reasons: list[DeniedReason] = Field(default_factory=list)


class AuditEntry(Model):
    at: datetime
    action: str
    by: str | None = None
    note: str | None = None


class Claim(Model):
    claim_id: str
    rank: CoverageRank  # billing order: the first payer billed is primary
    coverage_id: str
    payer_id: str
    frequency: ClaimFrequency
    replaces_claim_id: str | None = None
    replaced_by: str | None = None
    replaced_pccn: str | None = None  # REF*F8 of a replacement
    prior: PriorAdjudication | None = None
    total_charge_cents: int
    lines: list[SubmittedLine]
    x12: dict[str, Any] | None = None  # the ProfessionalClaim; None when it could not be built
    status: ClaimStatus
    closed: bool = False
    outcome: ClaimOutcome | None = None
    interchange_control_number: int | None = None
    transaction_control_number: str | None = None
    batch_id: str | None = None
    payer_claim_control_number: str | None = None
    awaiting_recode: bool = False
    work: WorkItem | None = None
    rejection: WorkItem | None = None
    denial_category: DenialCategory | None = None
    denial_reasons: list[DeniedReason] = Field(default_factory=list)
    paid_cents: int | None = None
    patient_responsibility_cents: int | None = None
    postings: list[str] = Field(default_factory=list)
    queued_at: datetime
    submitted_at: datetime | None = None
    clearinghouse_accepted_at: datetime | None = None
    accepted_at: datetime | None = None
    rejected_at: datetime | None = None
    denied_at: datetime | None = None
    paid_at: datetime | None = None
    closed_at: datetime | None = None
    audit: list[AuditEntry] = Field(default_factory=list)

    @property
    def unsent(self) -> bool:
        return not self.closed and self.status in (ClaimStatus.QUEUED, ClaimStatus.SENDING)

    def view(self, episode_id: str) -> dict[str, Any]:
        """What the biller sees: everything but the X12 (names, birth date)."""
        data = self.model_dump(mode="json", exclude={"x12", "prior"})
        data["episode_id"] = episode_id
        data["prior_payer_id"] = self.prior.payer_id if self.prior else None
        return data


class Episode(Model):
    episode_id: str
    patient: Person | None = None
    coverages: list[Coverage] | None = None  # None: coverage-updated not heard yet
    verdicts: list[Verdict] = Field(default_factory=list)
    coding: CodedEpisode | None = None
    coding_at: datetime | None = None
    claims: list[Claim] = Field(default_factory=list)
    posting_ids: list[str] = Field(default_factory=list)
    closings: int = 0

    @classmethod
    def load(cls, document: Document | None, episode_id: str) -> Episode:
        if document is None:
            return cls(episode_id=episode_id)
        return cls.model_validate(document)

    def state(self) -> Document:
        """The document fields; `unsent` and `work` are kept for the batch and work queries."""
        data = self.model_dump(mode="json")
        data["unsent"] = [c.claim_id for c in self.claims if c.unsent]
        data["work"] = [c.claim_id for c in self.claims if c.work is not None]
        return data

    def claim(self, claim_id: str) -> Claim:
        for claim in self.claims:
            if claim.claim_id == claim_id:
                return claim
        raise NotFound(f"claim {claim_id} not found")

    def find(self, claim_id: str) -> Claim | None:
        return next((c for c in self.claims if c.claim_id == claim_id), None)

    def open_claims(self) -> int:
        return sum(not c.closed for c in self.claims)

    def next_claim_id(self) -> str:
        return f"{self.episode_id}-{len(self.claims) + 1}"

    def verdict(self, coverage_id: str | None) -> Verdict | None:
        return next((v for v in self.verdicts if v.coverage_id == coverage_id), None)

    def ranked_coverages(self) -> list[Coverage]:
        return sorted(self.coverages or [], key=lambda c: RANK_ORDER[c.rank])

    def coverage(self, coverage_id: str) -> Coverage | None:
        return next((c for c in self.coverages or [] if c.coverage_id == coverage_id), None)


# --- when to bill ------------------------------------------------------------------------


@dataclass(frozen=True)
class Billing:
    """What the episode's billing waits for, or whom it bills first."""

    state: Literal["waiting", "self-pay", "insured"]
    coverage: Coverage | None = None
    waiting_for: tuple[str, ...] = ()


def billing(episode: Episode) -> Billing:
    """The first verified coverage in rank order, once every coverage ranked before it has
    a verdict; self-pay when eligibility said so and nothing is verified."""
    missing = [
        name
        for name, known in (("patient", episode.patient), ("coding", episode.coding))
        if known is None
    ]
    self_pay = any(v.self_pay and not v.verified for v in episode.verdicts)
    if episode.coverages is None:
        if self_pay:
            return Billing("self-pay")
        return Billing("waiting", waiting_for=(*missing, "coverages"))
    for coverage in episode.ranked_coverages():
        verdict = episode.verdict(coverage.coverage_id)
        if verdict is None:
            return Billing("waiting", waiting_for=(*missing, f"eligibility of {coverage.rank}"))
        if verdict.verified:
            if missing:
                return Billing("waiting", coverage, tuple(missing))
            return Billing("insured", coverage)
    if self_pay:
        return Billing("self-pay")
    return Billing("waiting", waiting_for=(*missing, "eligibility"))


def _next_verified(episode: Episode, coverage_id: str) -> Coverage | None:
    """The verified coverage ranked after the one billed, for a secondary claim."""
    ranked = episode.ranked_coverages()
    ids = [c.coverage_id for c in ranked]
    if coverage_id not in ids:
        return None
    for coverage in ranked[ids.index(coverage_id) + 1 :]:
        verdict = episode.verdict(coverage.coverage_id)
        if verdict is not None and verdict.verified:
            return coverage
    return None


def _bill_if_ready(episode: Episode, config: BillingConfig, now: datetime) -> None:
    if episode.claims:
        return
    decision = billing(episode)
    if decision.state == "insured" and decision.coverage is not None:
        episode.claims.append(
            _new_claim(episode, config, CoverageRank.PRIMARY, decision.coverage, now)
        )


# --- building claims ---------------------------------------------------------------------


def _new_claim(
    episode: Episode,
    config: BillingConfig,
    rank: CoverageRank,
    coverage: Coverage,
    now: datetime,
    *,
    frequency: ClaimFrequency = ClaimFrequency.ORIGINAL,
    replaces: Claim | None = None,
    prior: PriorAdjudication | None = None,
    strict: bool = False,
) -> Claim:
    """A queued claim, or, when it cannot be built, one rejected into the work queue
    (strict: raise Conflict instead and change nothing)."""
    if episode.patient is None or episode.coding is None:
        raise AssertionError("a claim needs the patient and the coding")
    claim_id = episode.next_claim_id()
    replaced_pccn = None
    if frequency is ClaimFrequency.REPLACEMENT and replaces is not None:
        # REF*F8 names the payer's claim; our own id if the payer never told us its number.
        # A rejected replacement never reached the payer: its successor names the same claim.
        rejected = replaces.status is ClaimStatus.REJECTED
        replaced_pccn = (
            (replaces.replaced_pccn if rejected else None)
            or replaces.payer_claim_control_number
            or replaces.claim_id
        )
    coding = episode.coding
    claim = Claim(
        claim_id=claim_id,
        rank=rank,
        coverage_id=coverage.coverage_id,
        payer_id=coverage.payer_id,
        frequency=frequency,
        replaces_claim_id=replaces.claim_id if replaces else None,
        replaced_pccn=replaced_pccn,
        prior=prior,
        total_charge_cents=sum(line.charge_cents for line in coding.charge_lines),
        lines=[
            SubmittedLine(
                line_id=line.line_id,
                procedure_code=line.procedure_code,
                modifiers=line.modifiers,
                units=line.units,
                charge_cents=line.charge_cents,
            )
            for line in sorted(coding.charge_lines, key=lambda line: line.line_number)
        ],
        status=ClaimStatus.QUEUED,
        queued_at=now,
    )
    try:
        x12 = professional_claim(
            config=config,
            claim_id=claim_id,
            patient=episode.patient,
            coverage=coverage,
            coding=coding,
            responsibility="P" if rank is CoverageRank.PRIMARY else "S",
            frequency=frequency.value,
            replaced_pccn=replaced_pccn,
            prior=prior,
        )
    except ClaimBuildError as error:
        if strict:
            raise Conflict(f"the corrected claim cannot be built: {error}") from None
        _reject(claim, "build", ["BUILD"], f"claim cannot be built: {error}", now)
        return claim
    claim.x12 = x12.model_dump(mode="json")
    return claim


def _reject(claim: Claim, stage: str, codes: list[str], message: str, now: datetime) -> None:
    item = WorkItem(
        kind="rejection",
        stage=stage,
        opened_at=now,
        message=message[:MAX_MESSAGE],
        status_codes=codes,
    )
    claim.status = ClaimStatus.REJECTED
    claim.rejected_at = now
    claim.rejection = item
    claim.work = item


def _close(episode: Episode, claim: Claim, outcome: ClaimOutcome, now: datetime) -> ClaimClosed:
    """Closes a claim; call it after queueing any claim that takes its place, so that
    `open_claims` counts it."""
    if claim.closed:
        raise AssertionError(f"claim {claim.claim_id} is closed already")
    claim.closed = True
    claim.outcome = outcome
    claim.closed_at = now
    claim.work = None
    claim.awaiting_recode = False
    episode.closings += 1
    return ClaimClosed(
        episode_id=episode.episode_id,
        claim_id=claim.claim_id,
        payer_id=claim.payer_id,
        outcome=outcome,
        open_claims=episode.open_claims(),
        sequence=episode.closings,
        posting_ids=list(episode.posting_ids),
        closed_at=now,
    )


def _replace(
    episode: Episode,
    config: BillingConfig,
    old: Claim,
    frequency: ClaimFrequency,
    reason: str,
    now: datetime,
    *,
    strict: bool = False,
) -> tuple[Claim, list[Event]]:
    """Queue the claim that takes `old`'s place (same payer and rank), close `old`."""
    coverage = episode.coverage(old.coverage_id) or _coverage_like(episode, old)
    if coverage is None:
        raise Conflict(f"claim {old.claim_id}: its coverage is no longer on the episode")
    new = _new_claim(
        episode,
        config,
        old.rank,
        coverage,
        now,
        frequency=frequency,
        replaces=old,
        prior=old.prior,
        strict=strict,
    )
    episode.claims.append(new)
    old.replaced_by = new.claim_id
    resubmitted = ClaimResubmitted(
        episode_id=episode.episode_id,
        claim_id=new.claim_id,
        replaces_claim_id=old.claim_id,
        frequency=frequency,
        payer_claim_control_number=new.replaced_pccn,
        reason=reason[:300],
        resubmitted_at=now,
    )
    return new, [resubmitted, _close(episode, old, ClaimOutcome.REPLACED, now)]


def _coverage_like(episode: Episode, old: Claim) -> Coverage | None:
    """After registration replaced the coverages: the one now in the claim's position."""
    decision = billing(episode)
    if decision.coverage is None:
        return None
    if old.rank is CoverageRank.PRIMARY:
        return decision.coverage
    return _next_verified(episode, decision.coverage.coverage_id)


def _changed(episode: Episode, events: Iterable[Event] = ()) -> Change:
    return Change(set=episode.state(), events=list(events))


# --- joining the inputs ------------------------------------------------------------------


def patient_registered(event: PatientRegistered, config: BillingConfig, now: datetime) -> Decide:
    def decide(document: Document | None) -> Change:
        episode = Episode.load(document, event.episode_id)
        episode.patient = event.patient
        _bill_if_ready(episode, config, now)
        return _changed(episode)

    return decide


def coverage_updated(event: CoverageUpdated, config: BillingConfig, now: datetime) -> Decide:
    def decide(document: Document | None) -> Change:
        episode = Episode.load(document, event.episode_id)
        episode.coverages = list(event.coverages)
        _bill_if_ready(episode, config, now)
        return _changed(episode)

    return decide


def _record_verdict(episode: Episode, verdict: Verdict) -> None:
    current = episode.verdict(verdict.coverage_id)
    if current is not None and current.at > verdict.at:
        return  # an older check arriving late
    episode.verdicts = [v for v in episode.verdicts if v is not current] + [verdict]


def eligibility_verified(
    event: EligibilityVerified, config: BillingConfig, now: datetime
) -> Decide:
    def decide(document: Document | None) -> Change:
        episode = Episode.load(document, event.episode_id)
        _record_verdict(
            episode, Verdict(coverage_id=event.coverage_id, verified=True, at=event.verified_at)
        )
        _bill_if_ready(episode, config, now)
        return _changed(episode)

    return decide


def eligibility_failed(event: EligibilityFailed, config: BillingConfig, now: datetime) -> Decide:
    def decide(document: Document | None) -> Change:
        episode = Episode.load(document, event.episode_id)
        verdict = Verdict(
            coverage_id=event.coverage_id,
            verified=False,
            self_pay=event.self_pay,
            at=event.checked_at,
        )
        _record_verdict(episode, verdict)
        _bill_if_ready(episode, config, now)
        return _changed(episode)

    return decide


def coding_completed(event: CodingCompleted, config: BillingConfig, now: datetime) -> Decide:
    def decide(document: Document | None) -> Change:
        episode = Episode.load(document, event.episode_id)
        if episode.coding_at is None or episode.coding_at <= event.completed_at:
            episode.coding = CodedEpisode.model_validate(event.model_dump())
            episode.coding_at = event.completed_at
        _bill_if_ready(episode, config, now)
        return _changed(episode)

    return decide


def coding_corrected(event: CodingCorrected, config: BillingConfig, now: datetime) -> Decide:
    """New codes; a claim denied for coding is replaced by a corrected claim (frequency 7)."""

    def decide(document: Document | None) -> Change:
        episode = Episode.load(document, event.episode_id)
        if episode.coding_at is not None and episode.coding_at > event.corrected_at:
            return _changed(episode)  # older than what we have: only mark it applied
        episode.coding = CodedEpisode.model_validate(event.model_dump())
        episode.coding_at = event.corrected_at
        events: list[Event] = []
        for claim in list(episode.claims):
            if claim.awaiting_recode and not claim.closed and episode.patient is not None:
                _, replaced = _replace(
                    episode,
                    config,
                    claim,
                    ClaimFrequency.REPLACEMENT,
                    f"recoded after a coding denial ({event.reason})",
                    now,
                )
                events += replaced
        _bill_if_ready(episode, config, now)
        return _changed(episode, events)

    return decide


# --- payments ----------------------------------------------------------------------------


def denial_category(adjustments: Iterable[Adjustment]) -> DenialCategory:
    """From the first CARC that names a category: 16 documentation, 97 coding,
    197 authorization, 50 other; anything else is other."""
    for adjustment in adjustments:
        category = DENIAL_CATEGORIES.get(adjustment.reason_code)
        if category is not None:
            return category
    return DenialCategory.OTHER


def _patient_share(event: PaymentPosted) -> int:
    share = event.patient_responsibility
    return share.deductible_cents + share.coinsurance_cents + share.copay_cents + share.other_cents


def payment_posted(event: PaymentPosted, config: BillingConfig, now: datetime) -> Decide:
    def decide(document: Document | None) -> Change | None:
        if document is None:
            raise PermanentError(f"posting {event.posting_id}: unknown episode {event.episode_id}")
        episode = Episode.load(document, event.episode_id)
        if event.posting_id in episode.posting_ids:
            return None
        claim = episode.find(event.claim_id)
        if claim is None:
            raise PermanentError(f"posting {event.posting_id}: unknown claim {event.claim_id}")
        episode.posting_ids.append(event.posting_id)
        claim.postings.append(event.posting_id)
        if event.payer_claim_control_number and event.status is not PostedClaimStatus.REVERSED:
            # The 835 is authoritative, and may come before the 277CA that also names it.
            claim.payer_claim_control_number = event.payer_claim_control_number
        if claim.closed or event.status is PostedClaimStatus.REVERSED:
            return _changed(episode)  # recorded; the claim's course does not change
        if event.status is PostedClaimStatus.PAID:
            return _changed(episode, _paid(episode, claim, event, config, now))
        return _changed(episode, _denied(episode, claim, event, now))

    return decide


def _paid(
    episode: Episode, claim: Claim, event: PaymentPosted, config: BillingConfig, now: datetime
) -> list[Event]:
    share = _patient_share(event)
    claim.status = ClaimStatus.PAID
    claim.paid_at = now
    claim.paid_cents = event.paid_cents
    claim.patient_responsibility_cents = share
    events: list[Event] = [
        ClaimPaid(
            episode_id=episode.episode_id,
            claim_id=claim.claim_id,
            payer_id=claim.payer_id,
            rank=claim.rank,
            paid_cents=event.paid_cents,
            patient_responsibility_cents=max(share, 0),
            paid_at=now,
        )
    ]
    secondary = _next_verified(episode, claim.coverage_id)
    has_secondary = any(
        c.rank is CoverageRank.SECONDARY and c.outcome is not ClaimOutcome.REPLACED
        for c in episode.claims
    )
    primary = episode.coverage(claim.coverage_id)
    if (
        claim.rank is CoverageRank.PRIMARY
        and share > 0
        and secondary is not None
        and primary is not None
        and not has_secondary
        and episode.patient is not None
        and episode.coding is not None
    ):
        prior = PriorAdjudication(
            claim_id=claim.claim_id,
            payer_id=claim.payer_id,
            payer_name=primary.payer_name,
            member_id=primary.member_id,
            group_number=primary.group_number,
            paid_cents=event.paid_cents,
            patient_responsibility_cents=share,
            adjustments=event.adjustments,
            adjudicated_on=event.posted_at.date(),
            payer_claim_control_number=claim.payer_claim_control_number,
        )
        episode.claims.append(
            _new_claim(episode, config, CoverageRank.SECONDARY, secondary, now, prior=prior)
        )
    events.append(_close(episode, claim, ClaimOutcome.PAID, now))
    return events


def _denied(episode: Episode, claim: Claim, event: PaymentPosted, now: datetime) -> list[Event]:
    if not event.adjustments:
        raise PermanentError(f"posting {event.posting_id}: a denial without adjustments")
    category = denial_category(event.adjustments)
    reasons = [
        DeniedReason(
            group_code=a.group.value, reason_code=a.reason_code, amount_cents=a.amount_cents
        )
        for a in event.adjustments
    ]
    claim.status = ClaimStatus.DENIED
    claim.denied_at = now
    claim.denial_category = category
    claim.denial_reasons = reasons
    if category is DenialCategory.CODING:
        claim.awaiting_recode = True  # coding recodes; coding-corrected brings the new codes
        claim.work = None
    else:
        codes = [f"{a.group.value}-{a.reason_code}" for a in event.adjustments]
        claim.work = WorkItem(
            kind="denial",
            stage="835",
            opened_at=now,
            message=f"denied by {claim.payer_id}: {category.value} ({', '.join(codes)})"[
                :MAX_MESSAGE
            ],
            status_codes=codes,
            category=category,
            reasons=reasons,
        )
    return [
        ClaimDenied(
            episode_id=episode.episode_id,
            claim_id=claim.claim_id,
            payer_id=claim.payer_id,
            category=category,
            reasons=reasons,
            denied_at=now,
        )
    ]


# --- sending -----------------------------------------------------------------------------


def refuse(episode_id: str, refusals: Mapping[str, list[str]], stage: str, now: datetime) -> Decide:
    """Claims that must not be sent (pyx12 or the clearinghouse refused them) go to the
    rejection queue with the reasons."""

    def decide(document: Document | None) -> Change | None:
        if document is None:
            return None
        episode = Episode.load(document, episode_id)
        changed = False
        for claim_id, problems in refusals.items():
            claim = episode.find(claim_id)
            if claim is None or not claim.unsent:
                continue
            message = f"{stage} refused the claim: " + "; ".join(problems)
            _reject(claim, stage, [stage.upper()], message, now)
            changed = True
        return _changed(episode) if changed else None

    return decide


def mark_sending(
    episode_id: str,
    numbers: Mapping[str, str],
    interchange_control_number: int,
    now: datetime,
    marked: list[tuple[str, str, dict[str, Any]]],
) -> Decide:
    """Before the HTTP call: these claims go out in interchange N as transaction set ST.
    `marked` receives (claim_id, st, x12) of the claims actually marked."""

    def decide(document: Document | None) -> Change | None:
        marked.clear()
        if document is None:
            return None
        episode = Episode.load(document, episode_id)
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
        return _changed(episode) if marked else None

    return decide


def mark_submitted(
    episode_id: str, interchange_control_number: int, batch_id: str, now: datetime
) -> Decide:
    """The clearinghouse took interchange N: claim-submitted, once per claim."""

    def decide(document: Document | None) -> Change | None:
        if document is None:
            return None
        episode = Episode.load(document, episode_id)
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
                )
            )
        return _changed(episode, events) if events else None

    return decide


# --- acknowledgments ---------------------------------------------------------------------


def acknowledge(
    episode_id: str,
    stage: AckStage,
    verdicts: Mapping[str, AckVerdict],
    now: datetime,
    interchange_control_number: int | None = None,
) -> Decide:
    """Apply 999 or 277CA verdicts to the episode's claims. A 999 counts only for the
    interchange the claim was last sent in; a claim still marked sending makes the caller
    wait (ClaimStillSending) until its submission is recorded."""

    def decide(document: Document | None) -> Change | None:
        if document is None:
            return None
        episode = Episode.load(document, episode_id)
        events: list[Event] = []
        changed = False
        for claim_id, verdict in verdicts.items():
            claim = episode.find(claim_id)
            if claim is None:
                continue
            if stage is AckStage.CLEARINGHOUSE and (
                claim.interchange_control_number != interchange_control_number
            ):
                continue  # an answer to an earlier attempt
            if claim.status is ClaimStatus.SENDING:
                raise ClaimStillSending(claim_id)
            pccn = verdict.payer_claim_control_number
            if pccn and claim.payer_claim_control_number is None:
                claim.payer_claim_control_number = pccn
                changed = True
            if claim.closed or claim.status is not ClaimStatus.SUBMITTED:
                # Answered already, or the claim has moved on: an 835 can overtake the
                # 277CA. The acceptance still happened; it is recorded, not announced.
                moved_on = claim.status in (ClaimStatus.PAID, ClaimStatus.DENIED) or claim.closed
                if verdict.accepted and moved_on:
                    milestone = (
                        "clearinghouse_accepted_at"
                        if stage is AckStage.CLEARINGHOUSE
                        else "accepted_at"
                    )
                    if getattr(claim, milestone) is None:
                        setattr(claim, milestone, now)
                        changed = True
                continue
            if not verdict.accepted:
                codes = list(verdict.status_codes) or [stage.value]
                _reject(claim, stage.value, codes, verdict.message, now)
                events.append(
                    ClaimRejected(
                        episode_id=episode.episode_id,
                        claim_id=claim_id,
                        stage=stage,
                        status_codes=codes,
                        message=verdict.message[:MAX_MESSAGE] or f"rejected at {stage.value}",
                        rejected_at=now,
                    )
                )
            elif stage is AckStage.CLEARINGHOUSE:
                if claim.clearinghouse_accepted_at is not None:
                    continue
                claim.clearinghouse_accepted_at = now
                events.append(_accepted(episode, claim, stage, now))
            else:
                claim.status = ClaimStatus.ACCEPTED
                claim.accepted_at = now
                events.append(_accepted(episode, claim, stage, now))
        return _changed(episode, events) if events or changed else None

    return decide


def _accepted(episode: Episode, claim: Claim, stage: AckStage, now: datetime) -> ClaimAccepted:
    return ClaimAccepted(
        episode_id=episode.episode_id,
        claim_id=claim.claim_id,
        stage=stage,
        payer_claim_control_number=claim.payer_claim_control_number,
        accepted_at=now,
    )


# --- the biller's commands ---------------------------------------------------------------


@dataclass
class CommandResult:
    """What a command did, for its HTTP answer."""

    claim_id: str = ""
    new_claim_id: str | None = None
    frequency: ClaimFrequency | None = None


def _load_claim(document: Document | None, claim_id: str) -> tuple[Episode, Claim]:
    if document is None:
        raise NotFound(f"claim {claim_id} not found")
    episode = Episode.model_validate(document)
    return episode, episode.claim(claim_id)


def correct(
    claim_id: str,
    biller_id: str,
    note: str,
    config: BillingConfig,
    now: datetime,
    result: CommandResult,
) -> Decide:
    """A rejected claim goes again as a new claim of its frequency (the payer never saw
    it); a denied one is replaced by a corrected claim (frequency 7). Either way the old
    claim closes as replaced."""

    def decide(document: Document | None) -> Change:
        episode, claim = _load_claim(document, claim_id)
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
        new, events = _replace(episode, config, claim, frequency, note, now, strict=True)
        result.claim_id = claim_id
        result.new_claim_id = new.claim_id
        result.frequency = frequency
        return _changed(episode, events)

    return decide


def accept_denial(
    claim_id: str, biller_id: str, note: str, now: datetime, result: CommandResult
) -> Decide:
    def decide(document: Document | None) -> Change:
        episode, claim = _load_claim(document, claim_id)
        if claim.closed or claim.status is not ClaimStatus.DENIED:
            state = f"closed ({claim.outcome})" if claim.closed else claim.status.value
            raise Conflict(f"claim {claim_id} is {state}: only an open denial can be accepted")
        claim.audit.append(AuditEntry(at=now, action="denial accepted", by=biller_id, note=note))
        result.claim_id = claim_id
        return _changed(episode, [_close(episode, claim, ClaimOutcome.DENIAL_ACCEPTED, now)])

    return decide


# --- reading -----------------------------------------------------------------------------


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
