"""Builders of collections' input events and an in-memory account that applies decisions
the way the aggregate port does (a decision's state, when there is one, is the new state)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rcm_collections import domain
from rcm_contracts import Event
from rcm_contracts.claims import ClaimClosed, ClaimOutcome
from rcm_contracts.collections import WriteOffReason
from rcm_contracts.payments import (
    Adjustment,
    AdjustmentGroup,
    PatientPaymentReceived,
    PatientResponsibility,
    PaymentMethod,
    PaymentPosted,
    PostedClaimStatus,
    RefundIssued,
    RefundRecipient,
)
from rcm_contracts.registration import CoverageRank
from rcm_shared.aggregates import Decision

EPISODE = "E0000000000a1"
T0 = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
RULES = domain.Rules(small_balance_cents=500, statement_due_days=30)

_clock = itertools.count()


def later() -> datetime:
    return T0 + timedelta(minutes=next(_clock))


def adjustment(group: str, code: str, cents: int) -> Adjustment:
    return Adjustment(group=AdjustmentGroup(group), reason_code=code, amount_cents=cents)


def posting(
    posting_id: str,
    paid: int,
    adjustments: Sequence[tuple[str, str, int]],
    rank: CoverageRank = CoverageRank.PRIMARY,
    claim_id: str = f"{EPISODE}-1",
    status: PostedClaimStatus = PostedClaimStatus.PAID,
    charge: int | None = None,
    episode_id: str = EPISODE,
) -> PaymentPosted:
    adjusts = [adjustment(group, code, cents) for group, code, cents in adjustments]
    total = paid + sum(a.amount_cents for a in adjusts)
    pr = {a.reason_code: a.amount_cents for a in adjusts if a.group.value == "PR"}
    return PaymentPosted(
        episode_id=episode_id,
        posting_id=posting_id,
        claim_id=claim_id,
        payer_id="ACME01" if rank is CoverageRank.PRIMARY else "SUMMIT",
        rank=rank,
        remittance_id=posting_id.rsplit("-", 1)[0],
        payment_trace_number="TRACE1",
        status=status,
        charge_cents=total if charge is None else charge,
        paid_cents=paid,
        adjustments=adjusts,
        patient_responsibility=PatientResponsibility(
            deductible_cents=pr.get("1", 0),
            coinsurance_cents=pr.get("2", 0),
            copay_cents=pr.get("3", 0),
        ),
        posted_at=later(),
    )


def reversal_of(original: PaymentPosted, posting_id: str) -> PaymentPosted:
    return original.model_copy(
        update={
            "posting_id": posting_id,
            "status": PostedClaimStatus.REVERSED,
            "charge_cents": -original.charge_cents,
            "paid_cents": -original.paid_cents,
            "adjustments": [
                a.model_copy(update={"amount_cents": -a.amount_cents}) for a in original.adjustments
            ],
        }
    )


def closed(
    sequence: int, open_claims: int, posting_ids: Sequence[str], episode_id: str = EPISODE
) -> ClaimClosed:
    return ClaimClosed(
        episode_id=episode_id,
        claim_id=f"{episode_id}-{sequence}",
        payer_id="ACME01",
        outcome=ClaimOutcome.PAID,
        open_claims=open_claims,
        sequence=sequence,
        posting_ids=list(posting_ids),
        closed_at=later(),
    )


def patient_payment(payment_id: str, cents: int) -> PatientPaymentReceived:
    return PatientPaymentReceived(
        episode_id=EPISODE,
        payment_id=payment_id,
        amount_cents=cents,
        method=PaymentMethod.CARD,
        received_at=later(),
    )


def refund(refund_id: str, cents: int) -> RefundIssued:
    return RefundIssued(
        episode_id=EPISODE,
        refund_id=refund_id,
        amount_cents=cents,
        recipient=RefundRecipient.PATIENT,
        reason="overpayment",
        issued_at=later(),
    )


Decide = Callable[[domain.Account | None, datetime], Decision[domain.Account, Any]]


@dataclass
class Sim:
    """One account and everything it emitted."""

    rules: domain.Rules = RULES
    state: domain.Account | None = None
    events: list[Event] = field(default_factory=list)

    def run(self, decide: Decide) -> bool:
        """Apply a decision; True when it changed the account."""
        decision = decide(self.state, later())
        if decision.state is None and not decision.events:
            return False
        self.state = decision.state or self.state
        self.events.extend(decision.events)
        return True

    def snapshot(self) -> domain.Account | None:
        """The state as it is now, safe from any change made to the state in place."""
        return None if self.state is None else self.state.model_copy(deep=True)

    @property
    def account(self) -> domain.Account:
        return self.state or domain.Account(episode_id=EPISODE)

    @property
    def ledger(self) -> domain.Ledger:
        return self.account.ledger

    def of_type(self, kind: type[Any]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]

    # one method per input, like the handlers
    def coding(self, total: int, corrected: bool = False, at: datetime | None = None) -> bool:
        when = at or later()
        return self.run(
            lambda a, now: domain.record_coding(
                a, EPISODE, "K00000000000a", total, corrected, when, self.rules, now
            )
        )

    def verified(self, rank: CoverageRank = CoverageRank.PRIMARY) -> bool:
        return self.run(
            lambda a, now: domain.record_eligibility(
                a, EPISODE, rank, False, "V00000000000a", later(), self.rules, now
            )
        )

    def failed(self, self_pay: bool = True) -> bool:
        return self.run(
            lambda a, now: domain.record_eligibility(
                a, EPISODE, None, self_pay, "no-coverage", later(), self.rules, now
            )
        )

    def registered(self, guarantor_id: str = "G00000000000a") -> bool:
        return self.run(
            lambda a, now: domain.record_guarantor(a, EPISODE, guarantor_id, self.rules, now)
        )

    def posted(self, event: PaymentPosted) -> bool:
        return self.run(lambda a, now: domain.record_posting(a, event, self.rules, now))

    def claim_closed(self, event: ClaimClosed) -> bool:
        return self.run(lambda a, now: domain.record_claim_closed(a, event, self.rules, now))

    def paid(self, event: PatientPaymentReceived) -> bool:
        return self.run(lambda a, now: domain.record_patient_payment(a, event, self.rules, now))

    def refunded(self, event: RefundIssued) -> bool:
        return self.run(lambda a, now: domain.record_refund(a, event, self.rules, now))

    def cancelled(self) -> bool:
        return self.run(lambda a, now: domain.record_cancellation(a, EPISODE, self.rules, now))

    def write_off(
        self, cents: int, reason: str = "bad-debt", write_off_id: str | None = None
    ) -> Decision[domain.Account, domain.WriteOff]:
        decision = domain.write_off(
            self.state,
            EPISODE,
            cents,
            WriteOffReason(reason),
            "U1",
            write_off_id,
            self.rules,
            later(),
        )
        self.run(lambda _a, _now: decision)
        return decision

    def plan(self, installments: int) -> Decision[domain.Account, domain.PaymentPlan]:
        decision = domain.create_payment_plan(
            self.state, EPISODE, installments, self.rules, later()
        )
        self.run(lambda _a, _now: decision)
        return decision
