"""The episode (the aggregate) and the life of its claims.

Claim life: queued -> sending -> submitted -> accepted -> partially-paid -> paid | denied,
or rejected (999, 277CA, or refused before sending: the claim could not be built or pyx12
refused it); a paid claim the payer takes back is reversed until it is paid again.
Separately from its status, a claim is open until it is closed with an outcome: paid,
denial-accepted, replaced (by a corrected or re-sent claim) or voided; a paid claim that
is voided later closes a second time, as voided. A crossover (the primary payer forwarded
the claim to another payer) is open on its claim until that payer's own 835 is posted,
and is counted and closed like a claim. Every closing says how many of the episode's
claims are still open, its sequence number in the episode and all the postings applied
so far, so collections knows when billing is over.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, computed_field
from rcm_contracts import Event
from rcm_contracts.claims import (
    ClaimChanges,
    ClaimClosed,
    ClaimFrequency,
    ClaimOutcome,
    DenialCategory,
    DeniedReason,
    ReasonCategory,
    Remark,
    SubmittedLine,
)
from rcm_contracts.coding import CodedEpisode, EditHit
from rcm_contracts.payments import Adjustment as PostedAdjustment
from rcm_contracts.registration import Coverage, CoverageRank, Person
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Conflict, NotFound

from ..edi import MAX_MESSAGE, PriorAdjudication
from .appeal_state import Appeal

RANK_ORDER = {CoverageRank.PRIMARY: 0, CoverageRank.SECONDARY: 1}


R = TypeVar("R")


class ClaimStillSending(Conflict):
    """An acknowledgment names a claim whose submission is not recorded yet: try later."""

    def __init__(self, claim_id: str) -> None:
        super().__init__(f"claim {claim_id} is still being sent")
        self.claim_id = claim_id


class ClaimStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PARTIALLY_PAID = "partially-paid"  # the payer has answered for part of the charge
    PAID = "paid"
    DENIED = "denied"
    REVERSED = "reversed"  # the payer took back its payment; a repost may follow


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
    reason_category: ReasonCategory | None = None  # the CARC list's, finer than category
    remarks: list[Remark] = Field(default_factory=list)  # the 835's RARCs, described
    edit_hits: list[EditHit] = Field(default_factory=list)  # held by the scrub (edits.py)
    assigned_to: str | None = None  # the biller working it (bulk reassign)


class AuditEntry(Model):
    at: datetime
    action: str
    by: str | None = None
    note: str | None = None


class Adjudication(Model):
    """One payer's posting applied to a claim; reversals carry negative amounts, so sums
    over a payer's adjudications are what that payer stands by now."""

    posting_id: str
    payer_id: str
    status: str  # PostedClaimStatus
    charge_cents: int
    paid_cents: int
    patient_responsibility_cents: int
    payer_claim_control_number: str | None = None
    adjustments: list[PostedAdjustment] = Field(default_factory=list)
    posted_at: datetime


class Crossover(Model):
    """The primary payer forwarded the claim to another payer (835 NM1*TT): that payer
    answers with its own 835 naming our claim id; we send it no claim of our own."""

    payer_id: str
    payer_name: str | None = None
    coverage_id: str | None = None  # the episode's coverage with that payer, if any
    recorded_at: datetime
    status: Literal["forwarded", "paid", "denied"] = "forwarded"
    paid_cents: int = 0
    patient_responsibility_cents: int = 0
    postings: list[str] = Field(default_factory=list)
    closed: bool = False
    outcome: ClaimOutcome | None = None
    closed_at: datetime | None = None


class FollowUp(Model):
    """A biller's follow-up on a claim: the note's text is in the claims store by id."""

    note_id: str
    next_action_on: date | None = None
    by: str
    at: datetime


class X12Answer(Model):
    """A 999 or 277CA document that answered the claim (its text is in the X12 archive)."""

    kind: str  # 999 | 277CA
    document_id: str  # the clearinghouse mailbox id, the archive's reference
    received_at: datetime
    accepted: bool
    status_codes: list[str] = Field(default_factory=list)
    interchange_control_number: int | None = None
    payer_claim_control_number: str | None = None


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
    edit_pack_version: str | None = None  # the edit pack it was scrubbed with
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
    adjudications: list[Adjudication] = Field(default_factory=list)
    crossover: Crossover | None = None
    denied_lines: list[str] = Field(default_factory=list)  # lines that went to coding
    line_recode: bool = False  # a line denied for coding: new codes replace the claim
    changes: ClaimChanges | None = None  # a biller's changes to the coded data
    changed: list[str] = Field(default_factory=list)  # what its correction changed (names)
    voided_by: str | None = None
    biller_closed: tuple[str, ClaimOutcome] | None = None  # (payer id, outcome) of a close
    queued_at: datetime
    submitted_at: datetime | None = None
    clearinghouse_accepted_at: datetime | None = None
    accepted_at: datetime | None = None
    rejected_at: datetime | None = None
    denied_at: datetime | None = None
    paid_at: datetime | None = None
    closed_at: datetime | None = None
    audit: list[AuditEntry] = Field(default_factory=list)
    appeals: list[Appeal] = Field(default_factory=list)
    alerts: list[str] = Field(default_factory=list)  # deadline kinds already alerted
    follow_up: FollowUp | None = None  # a biller's latest (followup.py)
    x12_documents: list[X12Answer] = Field(default_factory=list)  # 999s, 277CAs (history.py)

    @property
    def unsent(self) -> bool:
        return not self.closed and self.status in (ClaimStatus.QUEUED, ClaimStatus.SENDING)

    def awaits_answer(self, appeal: Appeal) -> bool:
        """An appeal sent and not answered that still matters: the claim is open, or it is
        a line's appeal on a claim closed as paid and not replaced."""
        if appeal.status != "sent":
            return False
        if not self.closed:
            return True
        line_of_paid = self.outcome is ClaimOutcome.PAID and self.replaced_by is None
        return appeal.line_id is not None and line_of_paid

    def own_adjudications(self) -> list[Adjudication]:
        """The postings of the payer billed: a crossover payer's are kept on the crossover."""
        return list(self.adjudications)

    def answered_charge_cents(self) -> int:
        """The part of the charge the payer has answered for: CLP03 summed over its
        postings (a reversal's is negative), so a split payment shows as less than the
        total."""
        return sum(a.charge_cents for a in self.own_adjudications())

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
    billing_changes: ClaimChanges | None = None  # a biller's, until coding changes the codes

    @classmethod
    def begin(cls, episode: Episode | None, episode_id: str) -> Episode:
        """A copy of the current state to decide on (a new episode when there is none): a
        decision that refuses halfway leaves the state it was given as it was."""
        if episode is None:
            return cls(episode_id=episode_id)
        return episode.model_copy(deep=True)

    # Stored with the state (not read back): the sender's sweep and the work queue query them.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def unsent(self) -> list[str]:
        return [c.claim_id for c in self.claims if c.unsent]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def work(self) -> list[str]:
        return [c.claim_id for c in self.claims if c.work is not None]

    # Flags beside the lists: an indexed equality is a lookup on FerretDB too, where a
    # filter on a list's length reads every episode.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_unsent(self) -> bool:
        return bool(self.unsent)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_work(self) -> bool:
        return bool(self.work)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_pending_appeal(self) -> bool:
        """An appeal the payer has not answered: the deadline watch reads these too."""
        return any(c.awaits_answer(a) for c in self.claims for a in c.appeals)

    def claim(self, claim_id: str) -> Claim:
        for claim in self.claims:
            if claim.claim_id == claim_id:
                return claim
        raise NotFound(f"claim {claim_id} not found")

    def find(self, claim_id: str) -> Claim | None:
        return next((c for c in self.claims if c.claim_id == claim_id), None)

    def open_claims(self) -> int:
        """Claims still with a payer, crossovers included."""
        return sum(not c.closed for c in self.claims) + sum(
            c.crossover is not None and not c.crossover.closed for c in self.claims
        )

    def next_claim_id(self) -> str:
        return f"{self.episode_id}-{len(self.claims) + 1}"

    def verdict(self, coverage_id: str | None) -> Verdict | None:
        return next((v for v in self.verdicts if v.coverage_id == coverage_id), None)

    def ranked_coverages(self) -> list[Coverage]:
        return sorted(self.coverages or [], key=lambda c: RANK_ORDER[c.rank])

    def coverage(self, coverage_id: str) -> Coverage | None:
        return next((c for c in self.coverages or [] if c.coverage_id == coverage_id), None)

    # The A/R follow-up list's read model, kept in the episode's own write (followup.py).
    @computed_field  # type: ignore[prop-decorator]
    @property
    def ar_rows(self) -> list[dict[str, Any]]:
        from .followup import ar_rows

        return ar_rows(self)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_open_ar(self) -> bool:
        return bool(self.ar_rows)


def reject(claim: Claim, stage: str, codes: list[str], message: str, now: datetime) -> None:
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


def close(episode: Episode, claim: Claim, outcome: ClaimOutcome, now: datetime) -> ClaimClosed:
    """Closes a claim; call it after queueing any claim that takes its place, so that
    `open_claims` counts it. Only a paid claim closes again, when it is voided."""
    if claim.closed and not (claim.outcome is ClaimOutcome.PAID and outcome is ClaimOutcome.VOIDED):
        raise AssertionError(f"claim {claim.claim_id} is closed already")
    claim.closed = True
    claim.outcome = outcome
    claim.closed_at = now
    claim.work = None
    claim.awaiting_recode = False
    return _closing(episode, claim.claim_id, claim.payer_id, outcome, now)


def close_crossover(
    episode: Episode, claim: Claim, outcome: ClaimOutcome, now: datetime
) -> ClaimClosed:
    """The crossover payer answered (or a biller gave up on it): it is no longer open."""
    crossover = claim.crossover
    if crossover is None or crossover.closed:
        raise AssertionError(f"claim {claim.claim_id} has no open crossover")
    crossover.closed = True
    crossover.outcome = outcome
    crossover.closed_at = now
    if claim.work is not None and claim.closed:
        claim.work = None  # a crossover denial was the only work left on it
    return _closing(episode, claim.claim_id, crossover.payer_id, outcome, now)


def _closing(
    episode: Episode, claim_id: str, payer_id: str, outcome: ClaimOutcome, now: datetime
) -> ClaimClosed:
    episode.closings += 1
    return ClaimClosed(
        episode_id=episode.episode_id,
        claim_id=claim_id,
        payer_id=payer_id,
        outcome=outcome,
        open_claims=episode.open_claims(),
        sequence=episode.closings,
        posting_ids=list(episode.posting_ids),
        closed_at=now,
    )


def change(
    episode: Episode, events: Iterable[Event] = (), result: R | None = None
) -> Decision[Episode, R]:
    """The episode's new state and the events written with it."""
    return Decision(state=episode, events=list(events), result=result)


def unchanged(result: R | None = None) -> Decision[Episode, R]:
    return Decision(result=result)
