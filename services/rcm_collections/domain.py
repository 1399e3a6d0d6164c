"""The episode's patient account: ledger transitions, billing over, statements, plans.

Pure rules, no I/O. Every decision changes a copy of the `Account`, settles it (close,
small-balance write-off or statement when billing is over), checks the ledger and
returns the whole new state with the events it emits as one `Decision`. A change after
which the ledger does not hold is refused (`LedgerError`).

The ledger keeps its balance in two buckets moved by every transition, never computed
as a remainder: `insurance_balance` (charges not yet resolved by a payer) and
`patient_balance` (the patient's share less what the patient paid or was forgiven).
The check then compares them with the totals and the totals with the entries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, computed_field
from rcm_contracts import Event
from rcm_contracts.claims import ClaimClosed
from rcm_contracts.collections import (
    AccountPlacedWithAgency,
    AccountRecalledFromAgency,
    AccountReturnedByAgency,
    BalanceWrittenOff,
    DunningLevel,
    EpisodeClosed,
    EstimateKind,
    LedgerTotals,
    PatientEstimated,
    PaymentPlanCompleted,
    PaymentPlanCreated,
    PaymentPlanDefaulted,
    RefundApproved,
    StatementIssued,
    WriteOffReason,
)
from rcm_contracts.payments import (
    AdjustmentGroup,
    PatientPaymentReceived,
    PaymentPosted,
    PostedClaimStatus,
    ProviderAdjustmentKind,
    ProviderAdjustmentPosted,
    RefundIssued,
    RefundRecipient,
)
from rcm_contracts.registration import CoverageRank
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Conflict, Invalid, NotFound

from .estimates import Benefits, Breakdown, FeeSchedule, insured_estimate, self_pay_estimate

# BSON has no date type: a due date is stored (and shown) as an ISO string.
IsoDate = Annotated[date, PlainSerializer(lambda value: value.isoformat(), return_type=str)]

PRIOR_PAYER_REASON = "23"  # CARC 23: the impact of prior payer(s) adjudication


@dataclass(frozen=True)
class Rules:
    small_balance_cents: int = 500
    statement_due_days: int = 30
    # Dunning: the next statement this many days after the last while a balance is open.
    statement_cycle_days: int = 30
    plan_interval_days: int = 30  # between a plan's installments
    plan_grace_days: int = 15  # an installment this many days past due defaults the plan
    agency_after_days: int = 30  # after the final notice, unpaid and without a plan
    auto_agency_placement: bool = True
    collection_agency_id: str = "AGENCY01"


# The statement after each level; the final notice is followed by agency placement.
NEXT_LEVEL = {
    DunningLevel.FIRST_STATEMENT: DunningLevel.SECOND_NOTICE,
    DunningLevel.SECOND_NOTICE: DunningLevel.FINAL_NOTICE,
}
DUNNING_JOB = "collections-dunning"  # requested_by of the job's requests


class LedgerError(Conflict):
    """The change would break the ledger: nothing is stored."""


class AccountState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class CoverageStatus(StrEnum):
    UNKNOWN = "unknown"
    INSURED = "insured"
    SELF_PAY = "self-pay"


class EntryKind(StrEnum):
    CHARGE = "charge"
    PAYER_PAYMENT = "payer-payment"
    PAYER_REFUND = "payer-refund"
    ADJUSTMENT = "adjustment"
    PATIENT_PAYMENT = "patient-payment"
    PATIENT_REFUND = "patient-refund"
    WRITE_OFF = "write-off"
    # Not money in or out: moves an amount from the insurance to the patient bucket.
    PATIENT_SHARE = "patient-share"
    # Not counted at all: a secondary's OA-23, the primary's part of the claim.
    PRIOR_PAYER = "prior-payer"
    # A PLB recoupment (WO, FB, 72): payer money taken back, so counted in payer paid.
    PAYER_RECOUPMENT = "payer-recoupment"
    # PLB interest (L6): income beside the charges, so outside the ledger's equation.
    INTEREST = "interest"


TOTAL_KINDS: dict[str, frozenset[EntryKind]] = {
    "charges_cents": frozenset({EntryKind.CHARGE}),
    "payer_paid_cents": frozenset(
        {EntryKind.PAYER_PAYMENT, EntryKind.PAYER_REFUND, EntryKind.PAYER_RECOUPMENT}
    ),
    "adjustments_cents": frozenset({EntryKind.ADJUSTMENT}),
    "patient_paid_cents": frozenset({EntryKind.PATIENT_PAYMENT, EntryKind.PATIENT_REFUND}),
    "written_off_cents": frozenset({EntryKind.WRITE_OFF}),
    "patient_share_cents": frozenset({EntryKind.PATIENT_SHARE}),
    "interest_cents": frozenset({EntryKind.INTEREST}),
}


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Entry(Model):
    kind: EntryKind
    amount_cents: int
    reference: str
    at: datetime
    detail: str = ""


class Ledger(Model):
    charges_cents: int = 0
    payer_paid_cents: int = 0
    adjustments_cents: int = 0
    patient_paid_cents: int = 0
    written_off_cents: int = 0
    insurance_balance_cents: int = 0
    patient_balance_cents: int = 0
    patient_share_cents: int = 0
    interest_cents: int = 0
    entries: list[Entry] = Field(default_factory=list)

    @property
    def balance_cents(self) -> int:
        return self.insurance_balance_cents + self.patient_balance_cents

    def totals(self) -> LedgerTotals:
        return LedgerTotals(
            charges_cents=self.charges_cents,
            payer_paid_cents=self.payer_paid_cents,
            adjustments_cents=self.adjustments_cents,
            patient_paid_cents=self.patient_paid_cents,
            written_off_cents=self.written_off_cents,
            balance_cents=self.balance_cents,
        )

    def problems(self) -> list[str]:
        """Every way the ledger fails to hold; empty when it holds."""
        found = []
        accounted = (
            self.payer_paid_cents
            + self.adjustments_cents
            + self.patient_paid_cents
            + self.written_off_cents
            + self.balance_cents
        )
        if accounted != self.charges_cents:
            found.append(
                f"charges {self.charges_cents} != payer paid + adjustments + patient paid"
                f" + written off + balance = {accounted}"
            )
        for name, kinds in TOTAL_KINDS.items():
            kept = getattr(self, name)
            summed = sum(e.amount_cents for e in self.entries if e.kind in kinds)
            if kept != summed:
                found.append(f"{name} {kept} != its entries {summed}")
        for name in ("charges_cents", "patient_paid_cents", "written_off_cents"):
            if getattr(self, name) < 0:
                found.append(f"{name} {getattr(self, name)} < 0")
        return found

    def _entry(
        self, kind: EntryKind, amount: int, reference: str, at: datetime, detail: str = ""
    ) -> None:
        self.entries.append(
            Entry(kind=kind, amount_cents=amount, reference=reference, at=at, detail=detail)
        )

    def change_charges(self, delta: int, reference: str, at: datetime, detail: str) -> None:
        self.charges_cents += delta
        self.insurance_balance_cents += delta
        self._entry(EntryKind.CHARGE, delta, reference, at, detail)

    def post_payer(
        self,
        paid: int,
        adjustments: Sequence[tuple[str, int]],
        prior_payer: int,
        reference: str,
        at: datetime,
        detail: str,
    ) -> None:
        """A payer's posting resolves charges: paid and adjusted amounts leave insurance."""
        self.payer_paid_cents += paid
        self.insurance_balance_cents -= paid
        self._entry(EntryKind.PAYER_PAYMENT, paid, reference, at, detail)
        for code, amount in adjustments:
            self.adjustments_cents += amount
            self.insurance_balance_cents -= amount
            self._entry(EntryKind.ADJUSTMENT, amount, reference, at, code)
        if prior_payer:
            self._entry(EntryKind.PRIOR_PAYER, prior_payer, reference, at, "OA-23")

    def set_patient_share(self, share: int, reference: str, at: datetime, detail: str) -> None:
        delta = share - self.patient_share_cents
        if delta == 0:
            return
        self.patient_share_cents = share
        self.patient_balance_cents += delta
        self.insurance_balance_cents -= delta
        self._entry(EntryKind.PATIENT_SHARE, delta, reference, at, detail)

    def receive_from_patient(self, amount: int, reference: str, at: datetime, detail: str) -> None:
        self.patient_paid_cents += amount
        self.patient_balance_cents -= amount
        self._entry(EntryKind.PATIENT_PAYMENT, amount, reference, at, detail)

    def refund(self, recipient: RefundRecipient, amount: int, reference: str, at: datetime) -> None:
        if recipient is RefundRecipient.PATIENT:
            self.patient_paid_cents -= amount
            self.patient_balance_cents += amount
            self._entry(EntryKind.PATIENT_REFUND, -amount, reference, at, "patient")
        else:
            self.payer_paid_cents -= amount
            self.insurance_balance_cents += amount
            self._entry(EntryKind.PAYER_REFUND, -amount, reference, at, "payer")

    def recoup(self, amount: int, reference: str, at: datetime, detail: str) -> None:
        """A payer takes back what it paid: the charges it answered for are open again."""
        self.payer_paid_cents -= amount
        self.insurance_balance_cents += amount
        self._entry(EntryKind.PAYER_RECOUPMENT, -amount, reference, at, detail)

    def receive_interest(self, amount: int, reference: str, at: datetime, detail: str) -> None:
        self.interest_cents += amount
        self._entry(EntryKind.INTEREST, amount, reference, at, detail)

    def write_off(self, amount: int, reference: str, at: datetime, reason: str) -> None:
        """Forgives the patient's part first; any rest is what payers left unresolved."""
        from_patient = min(amount, max(self.patient_balance_cents, 0))
        self.written_off_cents += amount
        self.patient_balance_cents -= from_patient
        self.insurance_balance_cents -= amount - from_patient
        self._entry(EntryKind.WRITE_OFF, amount, reference, at, reason)


class CodingRef(Model):
    coding_case_id: str
    corrected: bool
    total_charge_cents: int
    at: datetime

    def replaces(self, other: CodingRef) -> bool:
        """A correction replaces any completion; among the same kind, the later wins."""
        return (self.corrected, self.at) > (other.corrected, other.at)


class ClaimsProgress(Model):
    """The newest claim-closed of the episode (highest sequence)."""

    sequence: int
    open_claims: int
    posting_ids: list[str]
    claim_id: str | None = None
    outcome: str | None = None  # of that closing: paid, voided, ...


class PostingRecord(Model):
    posting_id: str
    claim_id: str
    payer_id: str
    rank: CoverageRank
    status: PostedClaimStatus
    reversal: bool
    paid_cents: int
    adjustments_cents: int
    patient_responsibility_cents: int
    prior_payer_cents: int
    posted_at: datetime
    charge_cents: int = 0
    submitted_charge_cents: int | None = None
    crossover_payer_id: str | None = None


class StatementStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Statement(Model):
    statement_id: str
    sequence: int
    guarantor_id: str
    amount_due_cents: int = Field(description="At issue; what is due now is the balance.")
    due_date: IsoDate
    issued_at: datetime
    status: StatementStatus = StatementStatus.OPEN
    # None on statements stored before dunning levels: those were first statements.
    dunning_level: DunningLevel | None = None

    @property
    def level(self) -> DunningLevel:
        return self.dunning_level or DunningLevel.FIRST_STATEMENT


class PlanStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    DEFAULTED = "defaulted"


class PaymentPlan(Model):
    plan_id: str
    total_cents: int
    installments: int
    installment_cents: int
    last_installment_cents: int
    first_due_date: IsoDate
    created_at: datetime
    interval_days: int = 30
    # Patient payments received after the plan was made count toward it.
    paid_cents: int = 0
    status: PlanStatus = PlanStatus.ACTIVE
    ended_at: datetime | None = None

    def due_date(self, installment: int) -> date:
        return self.first_due_date + timedelta(days=self.interval_days * (installment - 1))

    def due_through(self, installment: int) -> int:
        """What the plan expects paid once that installment is due."""
        if installment >= self.installments:
            return self.total_cents
        return self.installment_cents * installment

    def first_unpaid(self) -> int | None:
        """The first installment not yet covered by what was paid, or None."""
        for installment in range(1, self.installments + 1):
            if self.paid_cents < self.due_through(installment):
                return installment
        return None

    def schedule(self) -> list[dict[str, Any]]:
        return [
            {
                "installment": n,
                "due_date": self.due_date(n).isoformat(),
                "amount_cents": self.installment_cents
                if n < self.installments
                else self.last_installment_cents,
                "paid": self.paid_cents >= self.due_through(n),
            }
            for n in range(1, self.installments + 1)
        ]


class PlacementStatus(StrEnum):
    PLACED = "placed"
    RECALLED = "recalled"
    RETURNED = "returned"  # uncollectable: written off to bad debt
    PAID = "paid"  # the balance reached zero while placed


class AgencyPlacement(Model):
    placement_id: str
    agency_id: str
    balance_cents: int
    automatic: bool
    placed_by: str | None = None
    placed_at: datetime
    status: PlacementStatus = PlacementStatus.PLACED
    ended_at: datetime | None = None


class Estimate(Model):
    estimate_id: str
    kind: EstimateKind
    payer_id: str | None = None
    breakdown: Breakdown
    estimated_by: str
    estimated_at: datetime


class WriteOff(Model):
    write_off_id: str
    amount_cents: int
    reason: WriteOffReason
    user_id: str | None = None
    at: datetime


class RefundStatus(StrEnum):
    PENDING = "pending"
    ISSUED = "issued"


class Refund(Model):
    refund_id: str
    amount_cents: int
    recipient: RefundRecipient
    reason: str
    approved_by: str | None = None
    approved_at: datetime | None = None
    status: RefundStatus = RefundStatus.PENDING
    issued_at: datetime | None = None


class ProviderAdjustment(Model):
    """A PLB entry of a remittance tied to this episode."""

    adjustment_id: str
    remittance_id: str
    payer_id: str
    reason_code: str
    reference: str | None
    amount_cents: int
    kind: ProviderAdjustmentKind
    claim_id: str | None
    posted_at: datetime


class Account(Model):
    episode_id: str
    state: AccountState = AccountState.OPEN
    cancelled: bool = False
    coding: CodingRef | None = None
    verified_ranks: list[CoverageRank] = Field(default_factory=list)
    self_pay_failure: bool = False
    guarantor_id: str | None = None
    claims: ClaimsProgress | None = None
    postings: list[PostingRecord] = Field(default_factory=list)
    payment_ids: list[str] = Field(default_factory=list)
    refund_ids: list[str] = Field(default_factory=list)
    refunds: list[Refund] = Field(default_factory=list)
    provider_adjustments: list[ProviderAdjustment] = Field(default_factory=list)
    write_offs: list[WriteOff] = Field(default_factory=list)
    statements: list[Statement] = Field(default_factory=list)
    plan: PaymentPlan | None = None
    past_plans: list[PaymentPlan] = Field(default_factory=list)
    benefits: Benefits | None = None
    estimates: list[Estimate] = Field(default_factory=list)
    placements: list[AgencyPlacement] = Field(default_factory=list)
    collection_hold: bool = False
    # Indexed: the day the dunning job next has something to do here (None: nothing).
    next_dunning_on: IsoDate | None = None
    ledger: Ledger = Field(default_factory=Ledger)
    closed_at: datetime | None = None

    # Stored beside the state (ignored when loaded) for the list views and the summary.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def totals(self) -> LedgerTotals:
        return self.ledger.totals()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def open_statement_id(self) -> str | None:
        statement = self.open_statement
        return statement.statement_id if statement else None

    # An indexed equality finds these on FerretDB too, where `$ne: None` reads every account.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_open_statement(self) -> bool:
        return self.open_statement is not None

    # Indexed, for the credit-balance work list (GET /credit-balances).
    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_credit_balance(self) -> bool:
        return self.ledger.balance_cents < 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def invariant_holds(self) -> bool:
        return not self.ledger.problems()

    @property
    def coverage(self) -> CoverageStatus:
        if self.verified_ranks:
            return CoverageStatus.INSURED
        if self.self_pay_failure:
            return CoverageStatus.SELF_PAY
        return CoverageStatus.UNKNOWN

    @property
    def open_statement(self) -> Statement | None:
        return next((s for s in self.statements if s.status is StatementStatus.OPEN), None)

    @property
    def active_plan(self) -> PaymentPlan | None:
        return self.plan if self.plan and self.plan.status is PlanStatus.ACTIVE else None

    @property
    def placement(self) -> AgencyPlacement | None:
        """The placement the agency is working now."""
        last = self.placements[-1] if self.placements else None
        return last if last and last.status is PlacementStatus.PLACED else None

    @property
    def patient_due_cents(self) -> int:
        """The patient's part of what is owed: never what a payer still owes."""
        return max(min(self.ledger.balance_cents, self.ledger.patient_balance_cents), 0)

    def dunning_due_date(self, rules: Rules) -> date | None:
        """When the dunning job next acts: a missed installment's default, the next
        statement, or the agency placement after the final notice."""
        statement = self.open_statement
        if self.state is AccountState.CLOSED or statement is None or self.placement:
            return None
        if self.ledger.insurance_balance_cents > 0 or self.patient_due_cents <= 0:
            return None  # a payer owes part: the patient is not dunned meanwhile
        plan = self.active_plan
        if plan is not None:
            unpaid = plan.first_unpaid()
            if unpaid is None:
                return None
            return plan.due_date(unpaid) + timedelta(days=rules.plan_grace_days)
        if statement.level is not DunningLevel.FINAL_NOTICE:
            return statement.issued_at.date() + timedelta(days=rules.statement_cycle_days)
        if self.collection_hold or not rules.auto_agency_placement:
            return None
        return statement.issued_at.date() + timedelta(days=rules.agency_after_days)

    @property
    def posted_ids(self) -> set[str]:
        return {posting.posting_id for posting in self.postings}

    @property
    def pending_refund(self) -> Refund | None:
        return next((r for r in self.refunds if r.status is RefundStatus.PENDING), None)

    def refundable_cents(self, recipient: RefundRecipient) -> int:
        """The credit on the recipient's side, no more than the account's credit: a
        refund never makes the account owe."""
        ledger = self.ledger
        side = (
            ledger.patient_balance_cents
            if recipient is RefundRecipient.PATIENT
            else ledger.insurance_balance_cents
        )
        return min(max(-side, 0), max(-ledger.balance_cents, 0))

    @property
    def awaited_crossovers(self) -> list[str]:
        """Claims a payer forwarded to another (crossover) whose secondary posting has not
        come: that payer will answer for them, so billing waits."""
        standing: dict[tuple[str, CoverageRank], int] = {}
        for p in self.postings:
            key = (p.claim_id, p.rank)
            standing[key] = standing.get(key, 0) + (-1 if p.reversal else 1)
        return sorted(
            {
                p.claim_id
                for p in self.postings
                if p.crossover_payer_id
                and not p.reversal
                and standing.get((p.claim_id, p.rank), 0) > 0
                and standing.get((p.claim_id, CoverageRank.SECONDARY), 0) <= 0
                and p.rank is CoverageRank.PRIMARY
            }
        )

    @property
    def billing_over(self) -> bool:
        if self.cancelled:
            return True
        if self.coding is None:
            return False
        if self.coverage is CoverageStatus.SELF_PAY:
            return True
        if self.coverage is CoverageStatus.INSURED and self.claims is not None:
            return (
                self.claims.open_claims == 0
                and set(self.claims.posting_ids) <= self.posted_ids
                and not self.awaited_crossovers
            )
        return False

    def target_patient_share(self) -> int:
        """Self-pay: all charges. Insured: the newest payer's PR (a secondary's replaces
        the primary's); a rank counts while it has more postings than reversals."""
        if self.coverage is CoverageStatus.SELF_PAY:
            return self.ledger.charges_cents
        if self.coverage is CoverageStatus.UNKNOWN:
            return 0
        for rank in (CoverageRank.SECONDARY, CoverageRank.PRIMARY):
            # A denial by the secondary leaves the patient's share where the primary put it.
            of_rank = [
                p
                for p in self.postings
                if p.rank is rank
                and not (rank is CoverageRank.SECONDARY and p.status is PostedClaimStatus.DENIED)
            ]
            standing = sum(-1 if p.reversal else 1 for p in of_rank)
            if standing > 0:
                return sum(p.patient_responsibility_cents for p in of_rank)
        return 0

    def reshare(self, reference: str, at: datetime, detail: str) -> None:
        self.ledger.set_patient_share(self.target_patient_share(), reference, at, detail)

    # --- settling: what billing-over means for the account ------------------------------

    def settle(self, rules: Rules, now: datetime) -> list[Event]:
        """Close at zero, write off a small balance, or bill the patient once."""
        balance = self.ledger.balance_cents
        if self.state is AccountState.CLOSED:
            if balance == 0:
                return []
            # Money moved after closing (a late posting or payment): open again.
            self.state = AccountState.OPEN
            self.closed_at = None
        if not self.billing_over or balance < 0:
            return []  # a negative balance is a credit: it stays open until refunded
        if self.ledger.insurance_balance_cents > 0:
            # A payer still owes part (a split payment closed early, a recoupment, a
            # void): never the patient's to pay. A later posting or a person resolves it.
            return []
        events: list[Event] = []
        plan = self.active_plan
        if plan is not None and (plan.paid_cents >= plan.total_cents or balance <= 0):
            plan.status = PlanStatus.COMPLETED
            plan.ended_at = now
            events.append(
                PaymentPlanCompleted(
                    episode_id=self.episode_id,
                    plan_id=plan.plan_id,
                    paid_cents=plan.paid_cents,
                    completed_at=now,
                )
            )
        if 0 < balance <= rules.small_balance_cents:
            events.append(
                self.write_off_balance(
                    self.next_write_off_id(), balance, WriteOffReason.SMALL_BALANCE, None, now
                )
            )
        if self.ledger.balance_cents == 0:
            events.append(self.close(now))
        elif self.open_statement is None and self.guarantor_id is not None:
            events.append(self.issue_statement(rules, now))
        return events

    def write_off_balance(
        self,
        write_off_id: str,
        amount: int,
        reason: WriteOffReason,
        user_id: str | None,
        now: datetime,
    ) -> BalanceWrittenOff:
        self.ledger.write_off(amount, write_off_id, now, reason.value)
        self.write_offs.append(
            WriteOff(
                write_off_id=write_off_id,
                amount_cents=amount,
                reason=reason,
                user_id=user_id,
                at=now,
            )
        )
        return BalanceWrittenOff(
            episode_id=self.episode_id,
            write_off_id=write_off_id,
            amount_cents=amount,
            reason=reason,
            written_off_at=now,
        )

    def close(self, now: datetime) -> EpisodeClosed:
        self.state = AccountState.CLOSED
        self.closed_at = now
        placement = self.placement
        if placement is not None:
            placement.status = PlacementStatus.PAID
            placement.ended_at = now
        for statement in self.statements:
            statement.status = StatementStatus.CLOSED
        return EpisodeClosed(episode_id=self.episode_id, totals=self.ledger.totals(), closed_at=now)

    def issue_statement(
        self, rules: Rules, now: datetime, level: DunningLevel = DunningLevel.FIRST_STATEMENT
    ) -> StatementIssued:
        """A new statement replaces the open one (closed): one open at a time."""
        assert self.guarantor_id is not None
        for earlier in self.statements:
            earlier.status = StatementStatus.CLOSED
        sequence = len(self.statements) + 1
        statement = Statement(
            statement_id=f"{self.episode_id}-S{sequence}",
            sequence=sequence,
            guarantor_id=self.guarantor_id,
            amount_due_cents=self.ledger.balance_cents,
            due_date=now.date() + timedelta(days=rules.statement_due_days),
            issued_at=now,
            dunning_level=level,
        )
        self.statements.append(statement)
        return StatementIssued(
            episode_id=self.episode_id,
            statement_id=statement.statement_id,
            guarantor_id=statement.guarantor_id,
            sequence=sequence,
            amount_due_cents=statement.amount_due_cents,
            due_date=statement.due_date,
            issued_at=now,
            dunning_level=level,
        )

    def next_write_off_id(self) -> str:
        return f"{self.episode_id}-W{len(self.write_offs) + 1}"


# --- decisions ------------------------------------------------------------------------

# Changes the account and returns the events it emits, or None when nothing changes.
Mutation = Callable[[Account], list[Event] | None]


def decide(
    account: Account | None, episode_id: str, mutate: Mutation, rules: Rules, now: datetime
) -> Decision[Account, None]:
    """Apply one input to the account, settle it and check the ledger before storing."""
    # A copy: the state given is what is stored until the decision is saved.
    candidate = Account(episode_id=episode_id) if account is None else account.model_copy(deep=True)
    events = mutate(candidate)
    if events is None:
        return Decision()
    events += candidate.settle(rules, now)
    due = candidate.dunning_due_date(rules)
    # Never a day before this one: the job looks days up by equality and has passed them.
    candidate.next_dunning_on = None if due is None else max(due, now.date())
    problems = candidate.ledger.problems()
    if problems:
        raise LedgerError(f"episode {episode_id}: refused, the ledger would break: {problems}")
    return Decision(state=candidate, events=events)


def record_coding(
    account: Account | None,
    episode_id: str,
    coding_case_id: str,
    total_charge_cents: int,
    corrected: bool,
    at: datetime,
    rules: Rules,
    now: datetime,
) -> Decision[Account, None]:
    """Charges are the latest coding's total; a correction replaces them."""
    incoming = CodingRef(
        coding_case_id=coding_case_id,
        corrected=corrected,
        total_charge_cents=total_charge_cents,
        # BSON keeps milliseconds: compare what will be stored with what was stored
        at=at.replace(microsecond=at.microsecond // 1000 * 1000),
    )

    def mutate(account: Account) -> list[Event] | None:
        if account.cancelled:
            raise Conflict(f"episode {episode_id} was cancelled and cannot have charges")
        if account.coding is not None and not incoming.replaces(account.coding):
            return None
        account.coding = incoming
        delta = total_charge_cents - account.ledger.charges_cents
        if delta:
            detail = "coding-corrected" if corrected else "coding-completed"
            account.ledger.change_charges(delta, coding_case_id, at, detail)
        account.reshare(coding_case_id, at, "charges")
        return []

    return decide(account, episode_id, mutate, rules, now)


def record_eligibility(
    account: Account | None,
    episode_id: str,
    verified_rank: CoverageRank | None,
    self_pay: bool,
    reference: str,
    at: datetime,
    rules: Rules,
    now: datetime,
    benefits: Benefits | None = None,
) -> Decision[Account, None]:
    """A verified coverage makes the episode insured; a failure that says self-pay makes
    it self-pay unless some coverage was verified. The primary's benefits are kept for
    estimates."""

    def mutate(account: Account) -> list[Event] | None:
        if verified_rank is not None:
            new_benefits = (
                benefits is not None
                and verified_rank is CoverageRank.PRIMARY
                and account.benefits != benefits
            )
            if new_benefits:
                account.benefits = benefits
            if verified_rank in account.verified_ranks:
                return [] if new_benefits else None
            account.verified_ranks.append(verified_rank)
        else:
            if not self_pay or account.self_pay_failure:
                return None
            account.self_pay_failure = True
        account.reshare(reference, at, f"coverage {account.coverage.value}")
        return []

    return decide(account, episode_id, mutate, rules, now)


def record_guarantor(
    account: Account | None, episode_id: str, guarantor_id: str, rules: Rules, now: datetime
) -> Decision[Account, None]:
    def mutate(account: Account) -> list[Event] | None:
        if account.guarantor_id == guarantor_id:
            return None
        account.guarantor_id = guarantor_id
        return []

    return decide(account, episode_id, mutate, rules, now)


def record_posting(
    account: Account | None, event: PaymentPosted, rules: Rules, now: datetime
) -> Decision[Account, None]:
    """CO/OA/PI are adjustments, except a secondary's OA-23 (the primary's part); PR is
    the patient's share; a reversal (negative amounts) undoes its posting."""
    adjusted = sum(adjustment.amount_cents for adjustment in event.adjustments)
    if event.paid_cents + adjusted != event.charge_cents:
        raise Invalid(
            f"posting {event.posting_id} does not balance: charge {event.charge_cents}"
            f" != paid {event.paid_cents} + adjustments {adjusted}"
        )

    def mutate(account: Account) -> list[Event] | None:
        if event.posting_id in account.posted_ids:
            return None
        counted, patient_responsibility, prior_payer = _split(
            event, _secondary_denial(account, event)
        )
        account.postings.append(
            PostingRecord(
                posting_id=event.posting_id,
                claim_id=event.claim_id,
                payer_id=event.payer_id,
                rank=event.rank,
                status=event.status,
                reversal=event.status is PostedClaimStatus.REVERSED or event.charge_cents < 0,
                paid_cents=event.paid_cents,
                adjustments_cents=sum(counted.values()),
                patient_responsibility_cents=patient_responsibility,
                prior_payer_cents=prior_payer,
                posted_at=event.posted_at,
                charge_cents=event.charge_cents,
                submitted_charge_cents=event.submitted_charge_cents,
                crossover_payer_id=event.crossover_payer_id,
            )
        )
        detail = f"{event.payer_id} {event.rank.value} {event.status.value} {event.claim_id}"
        account.ledger.post_payer(
            event.paid_cents,
            sorted(counted.items()),
            prior_payer,
            event.posting_id,
            event.posted_at,
            detail,
        )
        account.reshare(event.posting_id, event.posted_at, f"PR {event.rank.value}")
        return []

    return decide(account, event.episode_id, mutate, rules, now)


def _secondary_denial(account: Account, event: PaymentPosted) -> bool:
    """A secondary's denial, or the reversal of one: the secondary adjusts the whole claim
    as it sees it, the part the primary resolved included, and none of that is the
    episode's to adjust again."""
    if event.rank is not CoverageRank.SECONDARY:
        return False
    if event.status is PostedClaimStatus.DENIED:
        return True
    return event.status is PostedClaimStatus.REVERSED and any(
        p.rank is CoverageRank.SECONDARY
        and p.claim_id == event.claim_id
        and p.status is PostedClaimStatus.DENIED
        for p in account.postings
    )


def _split(event: PaymentPosted, uncounted: bool) -> tuple[dict[str, int], int, int]:
    """The posting's counted adjustments by code, its patient share (PR) and what is not
    the episode's to count: a secondary's OA-23 (the primary's part), or all of an
    `uncounted` (secondary denial) posting's adjustments."""
    counted: dict[str, int] = {}
    patient_responsibility = prior_payer = 0
    for adjustment in event.adjustments:
        if adjustment.group is AdjustmentGroup.PATIENT_RESPONSIBILITY:
            patient_responsibility += adjustment.amount_cents
        elif uncounted or (
            event.rank is CoverageRank.SECONDARY
            and adjustment.group is AdjustmentGroup.OTHER
            and adjustment.reason_code == PRIOR_PAYER_REASON
        ):
            prior_payer += adjustment.amount_cents
        else:
            code = f"{adjustment.group.value}-{adjustment.reason_code}"
            counted[code] = counted.get(code, 0) + adjustment.amount_cents
    return counted, patient_responsibility, prior_payer


def record_claim_closed(
    account: Account | None, event: ClaimClosed, rules: Rules, now: datetime
) -> Decision[Account, None]:
    """Only the newest closing (highest sequence) speaks for the episode."""

    def mutate(account: Account) -> list[Event] | None:
        if account.claims is not None and event.sequence <= account.claims.sequence:
            return None
        account.claims = ClaimsProgress(
            sequence=event.sequence,
            open_claims=event.open_claims,
            posting_ids=list(event.posting_ids),
            claim_id=event.claim_id,
            outcome=event.outcome.value,
        )
        return []

    return decide(account, event.episode_id, mutate, rules, now)


def record_patient_payment(
    account: Account | None, event: PatientPaymentReceived, rules: Rules, now: datetime
) -> Decision[Account, None]:
    def mutate(account: Account) -> list[Event] | None:
        if event.payment_id in account.payment_ids:
            return None
        account.payment_ids.append(event.payment_id)
        account.ledger.receive_from_patient(
            event.amount_cents, event.payment_id, event.received_at, event.method.value
        )
        plan = account.active_plan
        if plan is not None:
            plan.paid_cents += event.amount_cents
        return []

    return decide(account, event.episode_id, mutate, rules, now)


def record_refund(
    account: Account | None, event: RefundIssued, rules: Rules, now: datetime
) -> Decision[Account, None]:
    """A refund to the patient reduces patient paid (one beyond it breaks the ledger); the
    approved refund it issues is pending no more."""

    def mutate(account: Account) -> list[Event] | None:
        if event.refund_id in account.refund_ids:
            return None
        account.refund_ids.append(event.refund_id)
        account.ledger.refund(event.recipient, event.amount_cents, event.refund_id, event.issued_at)
        approved = next((r for r in account.refunds if r.refund_id == event.refund_id), None)
        if approved is None:
            account.refunds.append(
                Refund(
                    refund_id=event.refund_id,
                    amount_cents=event.amount_cents,
                    recipient=event.recipient,
                    reason=event.reason,
                    status=RefundStatus.ISSUED,
                    issued_at=event.issued_at,
                )
            )
        else:
            approved.status = RefundStatus.ISSUED
            approved.issued_at = event.issued_at
        return []

    return decide(account, event.episode_id, mutate, rules, now)


def record_provider_adjustment(
    account: Account | None, event: ProviderAdjustmentPosted, rules: Rules, now: datetime
) -> Decision[Account, None]:
    """A PLB entry tied to the episode, once per adjustment id: a recoupment takes back
    payer money (positive: the charges it answered for are owed again, or a credit is
    resolved); interest (L6, negative in the 835) is income that leaves what anyone owes
    as it was; `other` (a balance forward, a WO collecting a reversal) is cash the claim's
    own postings already account for: kept for the view, it moves nothing. So is a
    recoupment of a claim whose payment a reversal already took back (an earlier 835
    reprocessed it; the PLB only collects the cash)."""
    if event.episode_id is None:
        return Decision()  # provider-level: the remittance's cash, not an episode's
    episode_id = event.episode_id
    record = ProviderAdjustment(
        adjustment_id=event.adjustment_id,
        remittance_id=event.remittance_id,
        payer_id=event.payer_id,
        reason_code=event.reason_code,
        reference=event.reference,
        amount_cents=event.amount_cents,
        kind=event.kind,
        claim_id=event.claim_id,
        posted_at=event.posted_at,
    )

    def mutate(account: Account) -> list[Event] | None:
        if any(a.adjustment_id == event.adjustment_id for a in account.provider_adjustments):
            return None
        account.provider_adjustments.append(record)
        detail = f"{event.payer_id} PLB {event.reason_code} {event.claim_id or ''}".strip()
        reversed_before = any(p.reversal and p.claim_id == event.claim_id for p in account.postings)
        if event.kind is ProviderAdjustmentKind.RECOUPMENT and not reversed_before:
            account.ledger.recoup(event.amount_cents, event.adjustment_id, event.posted_at, detail)
        elif event.kind is ProviderAdjustmentKind.INTEREST:
            account.ledger.receive_interest(
                -event.amount_cents, event.adjustment_id, event.posted_at, detail
            )
        return []

    return decide(account, episode_id, mutate, rules, now)


def record_cancellation(
    account: Account | None, episode_id: str, rules: Rules, now: datetime
) -> Decision[Account, None]:
    """A visit cancelled before any coding: nothing was billed; the episode closes at zero."""

    def mutate(account: Account) -> list[Event] | None:
        if account.cancelled:
            return None
        if account.coding is not None:
            raise Conflict(f"episode {episode_id} has charges and cannot be cancelled")
        account.cancelled = True
        return []

    return decide(account, episode_id, mutate, rules, now)


# --- requests (people) ----------------------------------------------------------------


def _existing(account: Account | None, episode_id: str) -> Account:
    if account is None:
        raise NotFound(f"no account for episode {episode_id}")
    return account


def split_installments(balance: int, installments: int) -> tuple[int, int]:
    """Equal installments rounded up, the last one smaller: (each, last)."""
    each = -(-balance // installments)
    last = balance - each * (installments - 1)
    if last <= 0:
        raise Invalid(
            f"installments: a balance of {balance} cents cannot be split into"
            f" {installments} installments"
        )
    return each, last


def create_payment_plan(
    account: Account | None, episode_id: str, installments: int, rules: Rules, now: datetime
) -> Decision[Account, PaymentPlan]:
    """One plan per episode, only while a statement is open; asking again is harmless
    (no new state: the plan that exists is the result)."""
    existing = _existing(account, episode_id)
    active = existing.active_plan
    if active is not None:
        if active.installments == installments:
            return Decision(result=active)
        raise Conflict(
            f"episode {episode_id} already has a plan of {active.installments} installments"
        )
    statement = existing.open_statement
    if existing.state is AccountState.CLOSED or statement is None:
        raise Conflict(f"episode {episode_id} has no open statement")
    if existing.placement is not None:
        raise Conflict(f"episode {episode_id} is placed with an agency: recall it first")
    balance = existing.ledger.balance_cents
    if balance <= 0:
        raise Conflict(f"episode {episode_id} owes nothing (balance {balance})")
    each, last = split_installments(balance, installments)
    plan = PaymentPlan(
        plan_id=f"{episode_id}-P{len(existing.past_plans) + (existing.plan is not None) + 1}",
        total_cents=balance,
        installments=installments,
        installment_cents=each,
        last_installment_cents=last,
        # a plan made after a default starts from now, not from a passed due date
        first_due_date=statement.due_date
        if statement.due_date >= now.date()
        else now.date() + timedelta(days=rules.plan_interval_days),
        created_at=now,
        interval_days=rules.plan_interval_days,
    )

    def mutate(candidate: Account) -> list[Event] | None:
        if candidate.plan is not None:
            candidate.past_plans.append(candidate.plan)
        candidate.plan = plan
        return [
            PaymentPlanCreated(
                episode_id=episode_id,
                plan_id=plan.plan_id,
                total_cents=plan.total_cents,
                installments=installments,
                installment_cents=each,
                first_due_date=plan.first_due_date,
                created_at=now,
            )
        ]

    decision = decide(existing, episode_id, mutate, rules, now)
    return Decision(state=decision.state, events=decision.events, result=plan)


def write_off(
    account: Account | None,
    episode_id: str,
    amount_cents: int,
    reason: WriteOffReason,
    user_id: str,
    write_off_id: str | None,
    rules: Rules,
    now: datetime,
) -> Decision[Account, WriteOff]:
    """A person forgives part or all of what is owed, once billing is over. The same
    write-off (id and values) submitted again changes nothing and is the result."""
    existing = _existing(account, episode_id)
    known = next((w for w in existing.write_offs if w.write_off_id == write_off_id), None)
    if known is not None:
        if (known.amount_cents, known.reason, known.user_id) == (amount_cents, reason, user_id):
            return Decision(result=known)
        raise Conflict(f"write-off {write_off_id} exists with other values")
    if existing.state is AccountState.CLOSED:
        raise Conflict(f"episode {episode_id} is closed")
    if not existing.billing_over:
        raise Conflict(f"episode {episode_id}: billing is not over, payers may still pay")
    balance = existing.ledger.balance_cents
    if balance <= 0:
        raise Conflict(f"episode {episode_id} owes nothing (balance {balance})")
    if amount_cents > balance:
        raise Invalid(f"amount_cents: {amount_cents} is more than the balance {balance}")
    if reason is WriteOffReason.SMALL_BALANCE and amount_cents > rules.small_balance_cents:
        raise Invalid(
            f"reason: small-balance is for at most {rules.small_balance_cents} cents,"
            f" not {amount_cents}"
        )
    chosen_id = write_off_id or existing.next_write_off_id()

    def mutate(candidate: Account) -> list[Event] | None:
        return [candidate.write_off_balance(chosen_id, amount_cents, reason, user_id, now)]

    decision = decide(existing, episode_id, mutate, rules, now)
    record = WriteOff(
        write_off_id=chosen_id, amount_cents=amount_cents, reason=reason, user_id=user_id, at=now
    )
    return Decision(state=decision.state, events=decision.events, result=record)


def approve_refund(
    account: Account | None,
    episode_id: str,
    amount_cents: int,
    recipient: RefundRecipient,
    reason: str,
    user_id: str,
    rules: Rules,
    now: datetime,
) -> Decision[Account, Refund]:
    """A person approves paying back a credit, once billing is over (payers may still
    change what is owed): at most the credit, one pending at a time. Nothing moves in the
    ledger until payments issues it (refund-issued)."""
    existing = _existing(account, episode_id)
    pending = existing.pending_refund
    if pending is not None:
        raise Conflict(f"episode {episode_id}: refund {pending.refund_id} is pending")
    if not existing.billing_over:
        raise Conflict(f"episode {episode_id}: billing is not over, payers may still pay")
    credit = existing.refundable_cents(recipient)
    if credit <= 0:
        raise Conflict(f"episode {episode_id} has no {recipient.value} credit to refund")
    if amount_cents > credit:
        raise Invalid(f"amount_cents: {amount_cents} is more than the credit {credit}")
    refund = Refund(
        refund_id=f"{episode_id}-F{len(existing.refunds) + 1}",
        amount_cents=amount_cents,
        recipient=recipient,
        reason=reason,
        approved_by=user_id,
        approved_at=now,
    )

    def mutate(candidate: Account) -> list[Event] | None:
        candidate.refunds.append(refund)
        return [
            RefundApproved(
                episode_id=episode_id,
                refund_id=refund.refund_id,
                amount_cents=amount_cents,
                recipient=recipient,
                reason=reason,
                approved_by=user_id,
                approved_at=now,
            )
        ]

    decision = decide(existing, episode_id, mutate, rules, now)
    return Decision(state=decision.state, events=decision.events, result=refund)


def approved_refund(
    account: Account, amount_cents: int, recipient: RefundRecipient, reason: str, user_id: str
) -> Refund | None:
    """The refund an applied request approved, to answer it again: the latest with its values."""
    for refund in reversed(account.refunds):
        if (refund.amount_cents, refund.recipient, refund.reason, refund.approved_by) == (
            amount_cents,
            recipient,
            reason,
            user_id,
        ):
            return refund
    return None


def written_off(
    account: Account,
    amount_cents: int,
    reason: WriteOffReason,
    user_id: str,
    write_off_id: str | None,
) -> WriteOff | None:
    """The write-off an applied request made, to answer it again: by its id, else the
    latest with its values."""
    for record in reversed(account.write_offs):
        if write_off_id is not None:
            if record.write_off_id == write_off_id:
                return record
        elif (record.amount_cents, record.reason, record.user_id) == (
            amount_cents,
            reason,
            user_id,
        ):
            return record
    return None


# --- estimates, dunning, agency placement ---------------------------------------------


def estimate(
    account: Account | None,
    episode_id: str,
    procedures: Sequence[tuple[str, int]],
    fees: FeeSchedule,
    user_id: str,
    rules: Rules,
    now: datetime,
) -> Decision[Account, Estimate]:
    """What the patient will owe for the scheduled services, kept on the account for
    point-of-service collection: from the primary's verified benefits, or a good-faith
    estimate when the episode is self-pay. Moves no money."""
    existing = _existing(account, episode_id)
    if existing.state is AccountState.CLOSED:
        raise Conflict(f"episode {episode_id} is closed")
    if existing.coverage is CoverageStatus.SELF_PAY:
        breakdown = self_pay_estimate(procedures, fees)
        kind, payer_id = EstimateKind.SELF_PAY, None
    elif existing.coverage is CoverageStatus.INSURED and existing.benefits is not None:
        breakdown = insured_estimate(procedures, existing.benefits, fees)
        kind, payer_id = EstimateKind.INSURED, existing.benefits.payer_id
    else:
        raise Conflict(f"episode {episode_id}: eligibility is not verified yet")
    record = Estimate(
        estimate_id=f"{episode_id}-X{len(existing.estimates) + 1}",
        kind=kind,
        payer_id=payer_id,
        breakdown=breakdown,
        estimated_by=user_id,
        estimated_at=now,
    )

    def mutate(candidate: Account) -> list[Event] | None:
        candidate.estimates.append(record)
        return [
            PatientEstimated(
                episode_id=episode_id,
                estimate_id=record.estimate_id,
                kind=kind,
                payer_id=payer_id,
                charges_cents=breakdown.charges_cents,
                allowed_cents=breakdown.allowed_cents,
                patient_cents=breakdown.patient_cents,
                insurance_cents=breakdown.insurance_cents,
                estimated_at=now,
            )
        ]

    decision = decide(existing, episode_id, mutate, rules, now)
    return Decision(state=decision.state, events=decision.events, result=record)


def _place(
    account: Account, agency_id: str, automatic: bool, user_id: str | None, now: datetime
) -> AccountPlacedWithAgency:
    placement = AgencyPlacement(
        placement_id=f"{account.episode_id}-A{len(account.placements) + 1}",
        agency_id=agency_id,
        balance_cents=account.patient_due_cents,
        automatic=automatic,
        placed_by=user_id,
        placed_at=now,
    )
    account.placements.append(placement)
    return AccountPlacedWithAgency(
        episode_id=account.episode_id,
        placement_id=placement.placement_id,
        agency_id=agency_id,
        balance_cents=placement.balance_cents,
        automatic=automatic,
        placed_at=now,
    )


def run_dunning(
    account: Account | None, episode_id: str, as_of: date, rules: Rules, now: datetime
) -> Decision[Account, str]:
    """Do what is due on `as_of`, once: a missed installment defaults the plan and dunning
    resumes with the next notice; otherwise the next statement at the next level; after
    the final notice, placement with the agency. The result says what was done."""
    existing = _existing(account, episode_id)
    due = existing.dunning_due_date(rules)
    if due is None or as_of < due:
        return Decision(result="nothing due")
    done: list[str] = []

    def mutate(candidate: Account) -> list[Event] | None:
        statement = candidate.open_statement
        assert statement is not None  # a due date needs an open statement
        events: list[Event] = []
        plan = candidate.active_plan
        if plan is not None:
            missed = plan.first_unpaid()
            assert missed is not None
            plan.status = PlanStatus.DEFAULTED
            plan.ended_at = now
            events.append(
                PaymentPlanDefaulted(
                    episode_id=episode_id,
                    plan_id=plan.plan_id,
                    installment=missed,
                    due_date=plan.due_date(missed),
                    paid_cents=plan.paid_cents,
                    remaining_cents=candidate.patient_due_cents,
                    defaulted_at=now,
                )
            )
            done.append("plan defaulted")
        if statement.level is DunningLevel.FINAL_NOTICE and plan is None:
            events.append(_place(candidate, rules.collection_agency_id, True, None, now))
            done.append("placed with agency")
        else:
            level = NEXT_LEVEL.get(statement.level, DunningLevel.FINAL_NOTICE)
            events.append(candidate.issue_statement(rules, now, level))
            done.append(level.value)
        return events

    decision = decide(existing, episode_id, mutate, rules, now)
    return Decision(state=decision.state, events=decision.events, result=", ".join(done))


def _placeable(account: Account, episode_id: str) -> None:
    if account.state is AccountState.CLOSED or account.open_statement is None:
        raise Conflict(f"episode {episode_id} has no open statement")
    if account.ledger.insurance_balance_cents > 0 or account.patient_due_cents <= 0:
        raise Conflict(f"episode {episode_id}: the patient owes nothing now")


def place_with_agency(
    account: Account | None,
    episode_id: str,
    agency_id: str,
    user_id: str,
    rules: Rules,
    now: datetime,
) -> Decision[Account, AgencyPlacement]:
    """A collector places the patient balance with an agency now (a hold does not stop a
    person). Moves no money. Placing it again with the same agency is the result."""
    existing = _existing(account, episode_id)
    current = existing.placement
    if current is not None:
        if current.agency_id == agency_id:
            return Decision(result=current)
        raise Conflict(f"episode {episode_id} is placed with agency {current.agency_id}")
    _placeable(existing, episode_id)
    if existing.active_plan is not None:
        raise Conflict(f"episode {episode_id} has an active payment plan")

    def mutate(candidate: Account) -> list[Event] | None:
        candidate.collection_hold = False
        return [_place(candidate, agency_id, False, user_id, now)]

    decision = decide(existing, episode_id, mutate, rules, now)
    assert decision.state is not None
    return Decision(
        state=decision.state, events=decision.events, result=decision.state.placements[-1]
    )


def hold_collection(
    account: Account | None, episode_id: str, hold: bool, rules: Rules, now: datetime
) -> Decision[Account, bool]:
    """Hold (or release) automatic agency placement; statements go on."""
    existing = _existing(account, episode_id)
    if existing.collection_hold == hold:
        return Decision(result=hold)

    def mutate(candidate: Account) -> list[Event] | None:
        candidate.collection_hold = hold
        return []

    decision = decide(existing, episode_id, mutate, rules, now)
    return Decision(state=decision.state, events=decision.events, result=hold)


def _placed(account: Account | None, episode_id: str) -> Account:
    existing = _existing(account, episode_id)
    if existing.placement is None:
        raise Conflict(f"episode {episode_id} is not placed with an agency")
    return existing


def recall_from_agency(
    account: Account | None, episode_id: str, rules: Rules, now: datetime
) -> Decision[Account, AgencyPlacement]:
    """Take the account back: it is held in house (no automatic placement) until a person
    releases the hold or places it again."""
    existing = _placed(account, episode_id)

    def mutate(candidate: Account) -> list[Event] | None:
        recalled = candidate.placements[-1]
        recalled.status = PlacementStatus.RECALLED
        recalled.ended_at = now
        candidate.collection_hold = True
        return [
            AccountRecalledFromAgency(
                episode_id=episode_id,
                placement_id=recalled.placement_id,
                agency_id=recalled.agency_id,
                balance_cents=candidate.patient_due_cents,
                recalled_at=now,
            )
        ]

    decision = decide(existing, episode_id, mutate, rules, now)
    assert decision.state is not None
    return Decision(
        state=decision.state, events=decision.events, result=decision.state.placements[-1]
    )


def return_from_agency(
    account: Account | None, episode_id: str, rules: Rules, now: datetime
) -> Decision[Account, AgencyPlacement]:
    """The agency returns the account uncollectable: what the patient owes is written
    off to bad debt (a write-off, so the ledger holds) and the account closes at zero
    unless a payer still owes."""
    existing = _placed(account, episode_id)

    def mutate(candidate: Account) -> list[Event] | None:
        returned = candidate.placements[-1]
        returned.status = PlacementStatus.RETURNED
        returned.ended_at = now
        owed = candidate.patient_due_cents
        events: list[Event] = [
            AccountReturnedByAgency(
                episode_id=episode_id,
                placement_id=returned.placement_id,
                agency_id=returned.agency_id,
                balance_cents=owed,
                returned_at=now,
            )
        ]
        if owed > 0:
            events.append(
                candidate.write_off_balance(
                    candidate.next_write_off_id(), owed, WriteOffReason.BAD_DEBT, None, now
                )
            )
        return events

    decision = decide(existing, episode_id, mutate, rules, now)
    assert decision.state is not None
    return Decision(
        state=decision.state, events=decision.events, result=decision.state.placements[-1]
    )


# --- views ----------------------------------------------------------------------------


def account_view(account: Account) -> dict[str, Any]:
    ledger = account.ledger
    balance = ledger.balance_cents
    problems = ledger.problems()
    return {
        "episode_id": account.episode_id,
        "state": account.state.value,
        "coverage": account.coverage.value,
        "billing_over": account.billing_over,
        "cancelled": account.cancelled,
        "guarantor_id": account.guarantor_id,
        "totals": ledger.totals().model_dump(),
        "insurance_balance_cents": ledger.insurance_balance_cents,
        "patient_balance_cents": ledger.patient_balance_cents,
        "patient_share_cents": ledger.patient_share_cents,
        "credit_balance_cents": max(-balance, 0),
        "refundable_cents": {r.value: account.refundable_cents(r) for r in RefundRecipient},
        "interest_cents": ledger.interest_cents,
        "invariant_holds": not problems,
        "invariant_problems": problems,
        "coding": account.coding.model_dump(mode="json") if account.coding else None,
        "claims": account.claims.model_dump(mode="json") if account.claims else None,
        "postings": [p.model_dump(mode="json") for p in account.postings],
        "entries": [e.model_dump(mode="json") for e in ledger.entries],
        "statements": [s.model_dump(mode="json") for s in account.statements],
        "plan": plan_view(account.plan) if account.plan else None,
        "past_plans": [plan_view(plan) for plan in account.past_plans],
        "estimate": account.estimates[-1].model_dump(mode="json") if account.estimates else None,
        "dunning_level": account.open_statement.level.value if account.open_statement else None,
        "next_dunning_on": account.next_dunning_on.isoformat() if account.next_dunning_on else None,
        "collection_hold": account.collection_hold,
        "placement": account.placements[-1].model_dump(mode="json") if account.placements else None,
        "write_offs": [w.model_dump(mode="json") for w in account.write_offs],
        "refunds": [r.model_dump(mode="json") for r in account.refunds],
        "pending_refund_id": account.pending_refund.refund_id if account.pending_refund else None,
        "provider_adjustments": [a.model_dump(mode="json") for a in account.provider_adjustments],
        "awaited_crossovers": account.awaited_crossovers,
        "closed_at": account.closed_at.isoformat() if account.closed_at else None,
    }


def statement_views(account: Account, wanted: StatementStatus) -> list[dict[str, Any]]:
    balance = account.ledger.balance_cents
    # The patient's part of what is owed: never what a payer still owes (a recoupment).
    due = max(min(balance, account.ledger.patient_balance_cents), 0)
    return [
        {
            "episode_id": account.episode_id,
            "statement_id": statement.statement_id,
            "sequence": statement.sequence,
            "guarantor_id": statement.guarantor_id,
            "status": statement.status.value,
            # what is due is what is owed now, not what the statement said at issue
            "amount_due_cents": due if statement.status is StatementStatus.OPEN else 0,
            "credit_balance_cents": max(-balance, 0),
            "issued_amount_cents": statement.amount_due_cents,
            "due_date": statement.due_date.isoformat(),
            "issued_at": statement.issued_at.isoformat(),
            "plan_id": account.plan.plan_id if account.plan else None,
            "dunning_level": statement.level.value,
            "placed_with_agency": account.placement is not None,
        }
        for statement in account.statements
        if statement.status is wanted
    ]


def plan_view(plan: PaymentPlan) -> dict[str, Any]:
    return {**plan.model_dump(mode="json"), "schedule": plan.schedule()}


def credit_balance_view(account: Account) -> dict[str, Any]:
    pending = account.pending_refund
    return {
        "episode_id": account.episode_id,
        "state": account.state.value,
        "billing_over": account.billing_over,
        "credit_balance_cents": max(-account.ledger.balance_cents, 0),
        "refundable_cents": {r.value: account.refundable_cents(r) for r in RefundRecipient},
        "pending_refund": pending.model_dump(mode="json") if pending else None,
    }
