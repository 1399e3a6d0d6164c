"""Handlers on the in-memory aggregate port: redeliveries, requests and their answers."""

from __future__ import annotations

from typing import Any

import pytest
from rcm_collections import domain
from rcm_collections.handlers import SUBSCRIPTIONS, Handlers
from rcm_contracts import Event, Request
from rcm_contracts.coding import CodingCompleted
from rcm_contracts.collections import (
    AgencyPlacementRequested,
    AgencyRecallRequested,
    AgencyReturnRequested,
    BalanceWrittenOff,
    CollectionHoldRequested,
    DunningRequested,
    EstimateRequested,
    PaymentPlanCreated,
    PaymentPlanRequested,
    RefundRequested,
    StatementIssued,
    WriteOffReason,
    WriteOffRequested,
)
from rcm_contracts.eligibility import EligibilityVerified
from rcm_contracts.registration import CoverageRank, PatientRegistered
from rcm_shared.aggregates import InMemoryAggregates
from rcm_shared.envelope import Envelope
from rcm_shared.errors import Conflict, NotFound
from rcm_shared.requests import Reply

from .support import EPISODE, RULES, T0, closed, posting

PRIMARY = posting("R1-1", 5000, [("CO", "45", 3000), ("PR", "1", 2000)])


def envelope(data: Event, envelope_id: str | None = None) -> Envelope[Any]:
    if envelope_id is None:
        return Envelope(data=data, source="rcm/test")
    return Envelope(data=data, source="rcm/test", id=envelope_id)


def coding(total: int) -> CodingCompleted:
    return CodingCompleted.model_validate(
        {
            "episode_id": EPISODE,
            "coding_case_id": "K00000000000a",
            "diagnoses": ["J0190"],
            "charge_lines": [
                {
                    "line_number": 1,
                    "line_id": f"{EPISODE}-L1",
                    "code_set": "CPT",
                    "procedure_code": "99213",
                    "units": 1,
                    "charge_cents": total,
                    "diagnosis_pointers": [1],
                    "service_date": T0.date().isoformat(),
                }
            ],
            "total_charge_cents": total,
            "place_of_service": "11",
            "rendering_provider_npi": "1234567893",
            "coder_id": "C1",
            "completed_at": T0,
        }
    )


def verified() -> EligibilityVerified:
    return EligibilityVerified(
        episode_id=EPISODE,
        coverage_id="V00000000000a",
        rank=CoverageRank.PRIMARY,
        payer_id="ACME01",
        verified_at=T0,
        trace_number="T1",
    )


@pytest.fixture
def accounts() -> InMemoryAggregates[domain.Account]:
    return InMemoryAggregates(domain.Account)


@pytest.fixture
def handlers(accounts: InMemoryAggregates[domain.Account]) -> Handlers:
    return Handlers(accounts, RULES, clock=lambda: T0)


async def billed(handlers: Handlers) -> None:
    """Registered, insured, coded, paid by the primary, claims closed: 2000 owed."""
    registered = PatientRegistered.model_validate(
        {
            "episode_id": EPISODE,
            "patient_id": "P000000000001",
            "guarantor_id": "G00000000000a",
            "patient": {
                "first_name": "Test",
                "last_name": "Patient",
                "birth_date": "1980-01-02",
                "sex": "F",
                "address": {
                    "line1": "1 Main St",
                    "city": "Springfield",
                    "state": "IL",
                    "postal_code": "62701",
                },
            },
        }
    )
    await handlers.patient_registered(envelope(registered))
    await handlers.eligibility_verified(envelope(verified()))
    await handlers.coding_completed(envelope(coding(10000)))
    await handlers.payment_posted(envelope(PRIMARY))
    await handlers.claim_closed(envelope(closed(1, 0, ["R1-1"])))


def test_the_people_s_requests_are_subscribed() -> None:
    requests = {kind for kind in SUBSCRIPTIONS if issubclass(kind, Request)}
    assert requests == {
        PaymentPlanRequested,
        WriteOffRequested,
        RefundRequested,
        EstimateRequested,
        DunningRequested,
        AgencyPlacementRequested,
        CollectionHoldRequested,
        AgencyRecallRequested,
        AgencyReturnRequested,
    }


async def test_a_redelivered_event_changes_nothing(
    handlers: Handlers, accounts: InMemoryAggregates[domain.Account]
) -> None:
    coded = envelope(coding(10000))
    await handlers.coding_completed(coded)
    before = accounts.states[EPISODE].model_copy(deep=True)
    emitted = len(accounts.emitted)
    await handlers.coding_completed(coded)
    assert accounts.states[EPISODE] == before
    assert len(accounts.emitted) == emitted
    assert accounts.states[EPISODE].ledger.charges_cents == 10000


async def test_the_clock_given_dates_what_the_account_emits(
    handlers: Handlers, accounts: InMemoryAggregates[domain.Account]
) -> None:
    await billed(handlers)
    (statement,) = [e for e in accounts.emitted if isinstance(e, StatementIssued)]
    assert statement.issued_at == T0
    assert statement.amount_due_cents == 2000


async def test_a_plan_request_answers_201_then_200_and_a_retry_the_same(
    handlers: Handlers, accounts: InMemoryAggregates[domain.Account]
) -> None:
    await billed(handlers)
    request = envelope(PaymentPlanRequested(episode_id=EPISODE, requested_by="api", installments=3))
    first = await handlers.payment_plan_requested(request)
    assert isinstance(first, Reply)
    assert first.status == 201
    assert first.body["episode_id"] == EPISODE
    assert (first.body["installments"], first.body["installment_cents"]) == (3, 667)
    # the same request again (an Idempotency-Key retry) is answered from the state
    retried = await handlers.payment_plan_requested(request)
    assert retried == first
    # another request for the same plan: it exists, nothing changes
    again = await handlers.payment_plan_requested(
        envelope(PaymentPlanRequested(episode_id=EPISODE, requested_by="api", installments=3))
    )
    assert again == first.body
    assert len([e for e in accounts.emitted if isinstance(e, PaymentPlanCreated)]) == 1


async def test_a_refused_request_leaves_the_account_as_it_was(
    handlers: Handlers, accounts: InMemoryAggregates[domain.Account]
) -> None:
    await handlers.eligibility_verified(envelope(verified()))
    await handlers.coding_completed(envelope(coding(10000)))
    before = accounts.states[EPISODE].model_copy(deep=True)
    emitted = len(accounts.emitted)
    write_off = WriteOffRequested(
        episode_id=EPISODE, requested_by="U1", amount_cents=100, reason=WriteOffReason.CHARITY
    )
    with pytest.raises(Conflict, match="billing is not over"):
        await handlers.write_off_requested(envelope(write_off))
    with pytest.raises(Conflict, match="no open statement"):
        await handlers.payment_plan_requested(
            envelope(PaymentPlanRequested(episode_id=EPISODE, requested_by="api", installments=3))
        )
    assert accounts.states[EPISODE] == before
    assert len(accounts.emitted) == emitted
    with pytest.raises(NotFound):
        await handlers.write_off_requested(
            envelope(write_off.model_copy(update={"episode_id": "E00000000ffff"}))
        )
    assert "E00000000ffff" not in accounts.states


async def test_a_write_off_request_answers_the_record_and_the_account(
    handlers: Handlers, accounts: InMemoryAggregates[domain.Account]
) -> None:
    await billed(handlers)
    request = envelope(
        WriteOffRequested(
            episode_id=EPISODE,
            requested_by="U1",
            amount_cents=1000,
            reason=WriteOffReason.CHARITY,
        )
    )
    first = await handlers.write_off_requested(request)
    assert isinstance(first, Reply)
    assert first.status == 201
    assert first.body["write_off"]["write_off_id"] == f"{EPISODE}-W1"
    assert first.body["write_off"]["user_id"] == "U1"
    assert first.body["account"]["totals"]["written_off_cents"] == 1000
    retried = await handlers.write_off_requested(request)
    assert isinstance(retried, Reply)
    assert (retried.status, retried.body["write_off"]) == (201, first.body["write_off"])
    written = [e for e in accounts.emitted if isinstance(e, BalanceWrittenOff)]
    assert [w.amount_cents for w in written] == [1000]


async def test_a_write_off_with_an_id_sent_twice_counts_once(handlers: Handlers) -> None:
    await billed(handlers)

    def request(cents: int) -> Envelope[Any]:
        return envelope(
            WriteOffRequested(
                episode_id=EPISODE,
                requested_by="U1",
                amount_cents=cents,
                reason=WriteOffReason.BAD_DEBT,
                write_off_id="WO-1",
            )
        )

    first = await handlers.write_off_requested(request(1000))
    assert isinstance(first, Reply)
    assert first.status == 201
    again = await handlers.write_off_requested(request(1000))
    assert not isinstance(again, Reply)  # 200
    assert again["write_off"] == first.body["write_off"]
    assert again["account"]["totals"]["written_off_cents"] == 1000
    with pytest.raises(Conflict, match="other values"):
        await handlers.write_off_requested(request(1500))
