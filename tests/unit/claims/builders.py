"""Events and an in-memory stand-in for one aggregate, for the claims domain tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rcm_claims import domain
from rcm_claims.edi import BillingConfig
from rcm_contracts import Event
from rcm_contracts.claims import ClaimClosed
from rcm_contracts.coding import ChargeLine, CodingCompleted, CodingCorrected, ProcedureCodeSet
from rcm_contracts.eligibility import (
    EligibilityFailed,
    EligibilityFailureReason,
    EligibilityVerified,
)
from rcm_contracts.payments import (
    Adjustment,
    AdjustmentGroup,
    PatientResponsibility,
    PaymentPosted,
    PostedClaimStatus,
    PostedLine,
)
from rcm_contracts.registration import (
    Address,
    Coverage,
    CoverageRank,
    CoverageUpdated,
    PatientRegistered,
    Person,
    Relationship,
    Sex,
)
from rcm_shared.aggregates import Decision
from rcm_x12 import Address as X12Address
from rcm_x12 import BillingProvider, RenderingProvider

EPISODE = "E0123456789ab"
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SERVICE_DATE = date(2026, 3, 2)
PRIMARY = "V00000000000a"
SECONDARY = "V00000000000b"
RENDERING_NPI = "1234567893"

CONFIG = BillingConfig(
    provider=BillingProvider(
        name="RCM MEDICAL GROUP",
        npi="1100000003",
        tax_id="123456789",
        address=X12Address(
            line1="100 MAIN ST", city="SPRINGFIELD", state="MA", postal_code="01103"
        ),
    ),
    rendering={
        RENDERING_NPI: RenderingProvider(last_name="OKAFOR", first_name="GRACE", npi=RENDERING_NPI)
    },
)


def person(state: str = "MA", last_name: str = "Doe") -> Person:
    return Person(
        first_name="Jane",
        last_name=last_name,
        birth_date=date(1980, 5, 1),
        sex=Sex.FEMALE,
        address=Address(line1="12 Elm St", city="Boston", state=state, postal_code="02110"),
    )


def registered(patient: Person | None = None, episode: str = EPISODE) -> PatientRegistered:
    return PatientRegistered(
        episode_id=episode,
        patient_id="P0123456789ab",
        patient=patient or person(),
        guarantor_id="G0123456789ab",
    )


def coverage(rank: CoverageRank, coverage_id: str, payer: str, name: str) -> Coverage:
    return Coverage(
        coverage_id=coverage_id,
        rank=rank,
        payer_id=payer,
        payer_name=name,
        member_id="AB123456789" if rank is CoverageRank.PRIMARY else "CD987654321",
        group_number="GRP10001",
        relationship=Relationship.SELF,
    )


PRIMARY_COVERAGE = coverage(CoverageRank.PRIMARY, PRIMARY, "ACME01", "Acme Health Plan")
SECONDARY_COVERAGE = coverage(CoverageRank.SECONDARY, SECONDARY, "SUMMIT", "Summit Mutual")


def coverages(*items: Coverage, episode: str = EPISODE) -> CoverageUpdated:
    return CoverageUpdated(episode_id=episode, patient_id="P0123456789ab", coverages=list(items))


def verified(item: Coverage, at: datetime = NOW, episode: str = EPISODE) -> EligibilityVerified:
    return EligibilityVerified(
        episode_id=episode,
        coverage_id=item.coverage_id,
        rank=item.rank,
        payer_id=item.payer_id,
        verified_at=at,
        trace_number="T1",
    )


def failed(
    item: Coverage | None, self_pay: bool, at: datetime = NOW, episode: str = EPISODE
) -> EligibilityFailed:
    return EligibilityFailed(
        episode_id=episode,
        coverage_id=item.coverage_id if item else None,
        payer_id=item.payer_id if item else None,
        reason=(
            EligibilityFailureReason.INACTIVE if item else EligibilityFailureReason.NO_COVERAGE
        ),
        self_pay=self_pay,
        checked_at=at,
    )


LINES = [
    ("99213", ["25"], 1, 15000),
    ("36415", [], 1, 2500),
]


def charge_lines(
    lines: Sequence[tuple[str, list[str], int, int]] = LINES, episode: str = EPISODE
) -> list[ChargeLine]:
    return [
        ChargeLine(
            line_number=n,
            line_id=f"{episode}-L{n}",
            code_set=ProcedureCodeSet.CPT,
            procedure_code=code,
            modifiers=modifiers,
            units=units,
            charge_cents=cents,
            diagnosis_pointers=[1],
            service_date=SERVICE_DATE,
        )
        for n, (code, modifiers, units, cents) in enumerate(lines, start=1)
    ]


def coded(
    npi: str = RENDERING_NPI,
    place: str = "11",
    at: datetime = NOW,
    episode: str = EPISODE,
    lines: Sequence[tuple[str, list[str], int, int]] = LINES,
) -> CodingCompleted:
    charges = charge_lines(lines, episode)
    return CodingCompleted(
        episode_id=episode,
        coding_case_id="K0123456789ab",
        diagnoses=["J069", "R05"],
        charge_lines=charges,
        total_charge_cents=sum(line.charge_cents for line in charges),
        place_of_service=place,
        rendering_provider_npi=npi,
        coder_id="coder-1",
        completed_at=at,
    )


def recoded(at: datetime = NOW + timedelta(days=20), episode: str = EPISODE) -> CodingCorrected:
    charges = charge_lines([("99214", ["25"], 1, 18000), ("36415", [], 1, 2500)], episode)
    return CodingCorrected(
        episode_id=episode,
        coding_case_id="K0123456789ab",
        diagnoses=["J069"],
        charge_lines=charges,
        total_charge_cents=sum(line.charge_cents for line in charges),
        place_of_service="11",
        rendering_provider_npi=RENDERING_NPI,
        coder_id="coder-2",
        reason="coding-denial",
        corrected_at=at,
    )


def adjustment(group: str, reason: str, cents: int, line: str | None = None) -> Adjustment:
    return Adjustment(
        group=AdjustmentGroup(group), reason_code=reason, amount_cents=cents, line_id=line
    )


def paid_posting(
    claim_id: str,
    posting_id: str = "R000000001-T1-1",
    *,
    patient_share: bool = True,
    rank: CoverageRank = CoverageRank.PRIMARY,
    episode: str = EPISODE,
    crossover_payer_id: str | None = None,
    payer_claim_control_number: str | None = None,
) -> PaymentPosted:
    """Line-level adjudication of the two LINES: allowed 100.00 and 20.00."""
    l1, l2 = f"{episode}-L1", f"{episode}-L2"
    adjustments = [adjustment("CO", "45", 5000, l1), adjustment("CO", "45", 500, l2)]
    deductible = 3000 if patient_share else 0
    coinsurance = 1400 if patient_share else 0
    if patient_share:
        adjustments += [
            adjustment("PR", "1", deductible, l1),
            adjustment("PR", "2", coinsurance, l1),
        ]
    charge = 17500
    paid = charge - sum(a.amount_cents for a in adjustments)
    return PaymentPosted(
        episode_id=episode,
        posting_id=posting_id,
        claim_id=claim_id,
        payer_id="ACME01",
        rank=rank,
        remittance_id="R000000001-T1",
        payment_trace_number="T1",
        status=PostedClaimStatus.PAID,
        charge_cents=charge,
        paid_cents=paid,
        allowed_cents=12000,
        adjustments=adjustments,
        patient_responsibility=PatientResponsibility(
            deductible_cents=deductible, coinsurance_cents=coinsurance
        ),
        posted_at=NOW + timedelta(days=14),
        crossover_payer_id=crossover_payer_id,
        payer_claim_control_number=payer_claim_control_number,
        submitted_charge_cents=charge,
    )


def split_posting(
    claim_id: str,
    posting_id: str,
    charge: int,
    paid: int,
    *,
    status: PostedClaimStatus = PostedClaimStatus.PAID,
    coinsurance: int = 0,
    pccn: str | None = None,
    payer: str = "ACME01",
    rank: CoverageRank = CoverageRank.PRIMARY,
    lines: Sequence[PostedLine] = (),
    submitted: int | None = 17500,
    episode: str = EPISODE,
) -> PaymentPosted:
    """A claim-level posting of `charge` (CLP03): paid, PR-2 coinsurance, CO-45 the rest."""
    adjustments = [adjustment("CO", "45", charge - paid - coinsurance)]
    if coinsurance:
        adjustments.append(adjustment("PR", "2", coinsurance))
    return PaymentPosted(
        episode_id=episode,
        posting_id=posting_id,
        claim_id=claim_id,
        payer_id=payer,
        rank=rank,
        remittance_id=posting_id.rpartition("-")[0] or posting_id,
        payment_trace_number="T9",
        payer_claim_control_number=pccn,
        status=status,
        charge_cents=charge,
        paid_cents=paid,
        adjustments=[a for a in adjustments if a.amount_cents != 0],
        patient_responsibility=PatientResponsibility(coinsurance_cents=coinsurance),
        posted_at=NOW + timedelta(days=14),
        lines=list(lines),
        submitted_charge_cents=submitted,
    )


def denial_posting(
    claim_id: str,
    carc: str,
    posting_id: str = "R000000002-T2-1",
    status: PostedClaimStatus = PostedClaimStatus.DENIED,
    episode: str = EPISODE,
) -> PaymentPosted:
    cents = 17500 if status is PostedClaimStatus.DENIED else -17500
    return PaymentPosted(
        episode_id=episode,
        posting_id=posting_id,
        claim_id=claim_id,
        payer_id="ACME01",
        rank=CoverageRank.PRIMARY,
        remittance_id="R000000002-T2",
        payment_trace_number="T2",
        status=status,
        charge_cents=cents,
        paid_cents=0,
        adjustments=[adjustment("CO", carc, cents)],
        patient_responsibility=PatientResponsibility(),
        posted_at=NOW + timedelta(days=14),
    )


@dataclass
class Memory:
    """One aggregate as the store keeps it: the state, the events emitted in order."""

    state: domain.Episode | None = None
    events: list[Event] = field(default_factory=list)
    changes: list[list[Event]] = field(default_factory=list)

    def apply(
        self, decide: Callable[..., Decision[domain.Episode, Any]], *args: Any
    ) -> Decision[domain.Episode, Any] | None:
        """`decide(state, *args)`; None when the decision changes nothing. The state is
        given as a copy, so a decision that changes it in place would be caught."""
        before = None if self.state is None else self.state.model_copy(deep=True)
        decision = decide(before, *args)
        if before is not None:
            assert before == self.state, "a decision changed the state it was given"
        if decision.state is None and not decision.events:
            return None
        if decision.state is not None:
            self.state = decision.state
        self.events += list(decision.events)
        self.changes.append(list(decision.events))
        return decision

    def result(self, decide: Callable[..., Decision[domain.Episode, Any]], *args: Any) -> Any:
        decision = self.apply(decide, *args)
        assert decision is not None
        return decision.result

    @property
    def episode(self) -> domain.Episode:
        return self.state or domain.Episode(episode_id=EPISODE)

    def claim(self, claim_id: str) -> domain.Claim:
        return self.episode.claim(claim_id)

    def closings(self) -> list[ClaimClosed]:
        return [e for e in self.events if isinstance(e, ClaimClosed)]

    def of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]


def submit(memory: Memory, icn: int = 42, episode: str = EPISODE) -> None:
    """Send every unsent claim in interchange `icn` and record it (what the sender does)."""
    numbers = {
        claim.claim_id: f"{n:04d}"
        for n, claim in enumerate(memory.episode.claims, start=1)
        if claim.unsent and claim.x12 is not None
    }
    memory.apply(domain.mark_sending, numbers, icn, NOW)
    memory.apply(domain.mark_submitted, icn, f"B{icn}", NOW)


def billed(memory: Memory | None = None, secondary: bool = True) -> Memory:
    """An episode with a primary claim queued (and a verified secondary coverage)."""
    memory = memory or Memory()
    items = [PRIMARY_COVERAGE, SECONDARY_COVERAGE] if secondary else [PRIMARY_COVERAGE]
    memory.apply(domain.patient_registered, registered(), CONFIG, NOW)
    memory.apply(domain.coverage_updated, coverages(*items), CONFIG, NOW)
    for item in items:
        memory.apply(domain.eligibility_verified, verified(item), CONFIG, NOW)
    memory.apply(domain.coding_completed, coded(), CONFIG, NOW)
    return memory
