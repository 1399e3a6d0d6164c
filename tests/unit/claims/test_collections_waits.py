"""Collections learns that billing is over only from claim-closed (open_claims and the
postings it names): driven by the claims rules, it does not bill the patient while a
split payment or a crossover leaves money with a payer."""

from __future__ import annotations

from rcm_claims import domain
from rcm_contracts.claims import ClaimClosed
from rcm_contracts.collections import StatementIssued
from rcm_contracts.payments import PaymentPosted
from rcm_contracts.registration import CoverageRank

from tests.unit.collections.support import EPISODE as ACCOUNT
from tests.unit.collections.support import Sim

from .builders import (
    CONFIG,
    EPISODE,
    NOW,
    Memory,
    adjustment,
    billed,
    paid_posting,
    split_posting,
    submit,
)

FIRST = f"{EPISODE}-1"


class Both:
    """The claims aggregate and the collections account of one episode, fed alike."""

    def __init__(self, secondary: bool) -> None:
        self.claims: Memory = billed(secondary=secondary)
        submit(self.claims)
        self.account = Sim()
        self.account.registered()
        self.account.verified()
        if secondary:
            self.account.verified(CoverageRank.SECONDARY)
        self.account.coding(17500)
        self.seen = 0

    def post(self, posting: PaymentPosted) -> None:
        self.claims.apply(domain.payment_posted, posting, CONFIG, NOW)
        self.account.posted(posting.model_copy(update={"episode_id": ACCOUNT}))
        for event in self.claims.events[self.seen :]:
            if isinstance(event, ClaimClosed):
                self.account.claim_closed(event.model_copy(update={"episode_id": ACCOUNT}))
        self.seen = len(self.claims.events)


def test_no_statement_while_a_split_payment_leaves_part_of_the_charge_with_the_payer() -> None:
    both = Both(secondary=False)
    both.post(split_posting(FIRST, "R1-T1-1", 10000, 6000, coinsurance=1000))
    assert not both.account.account.billing_over
    assert both.account.of_type(StatementIssued) == []
    both.post(split_posting(FIRST, "R2-T1-1", 7500, 5000, coinsurance=500))
    assert both.account.account.billing_over
    (statement,) = both.account.of_type(StatementIssued)
    assert statement.amount_due_cents == 1500


def test_no_statement_while_a_crossover_payer_has_not_answered() -> None:
    both = Both(secondary=True)
    both.post(paid_posting(FIRST, "R1-T1-1", crossover_payer_id="SUMMIT"))
    assert not both.account.account.billing_over
    assert both.account.of_type(StatementIssued) == []
    # the crossover payer pays the deductible and coinsurance; OA-23 is the primary's part
    secondary_835 = split_posting(
        FIRST, "R7-T1-1", 17500, 4400, payer="SUMMIT", rank=CoverageRank.SECONDARY
    )
    both.post(secondary_835.model_copy(update={"adjustments": [adjustment("OA", "23", 13100)]}))
    assert both.account.ledger.balance_cents == 0
    assert both.account.account.billing_over
