"""Payment-to-deposit reconciliation: matched by trace number and amount, by key."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from rcm_contracts.payments import (
    DepositRecordRequested,
    RemittanceDepositExpected,
    RemittanceProcessed,
    trace_key,
)
from rcm_payments import deposits
from rcm_payments.deposits import (
    DepositHandlers,
    Reconciliation,
    ReconciliationStatus,
    RemittanceNotice,
)
from rcm_shared.aggregates import InMemoryAggregates
from rcm_shared.envelope import Envelope
from rcm_shared.errors import Conflict, Invalid

NOW = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


def processed(remittance_id: str, trace: str, cents: int) -> RemittanceProcessed:
    return RemittanceProcessed(
        remittance_id=remittance_id,
        payer_id="ACME01",
        payment_trace_number=trace,
        payment_cents=cents,
        claims_posted=1,
        claims_unpostable=0,
        provider_adjustments_cents=0,
        processed_at=NOW,
    )


def deposit(
    deposit_id: str, trace: str, cents: int, payer_id: str | None = "ACME01"
) -> DepositRecordRequested:
    return DepositRecordRequested(
        requested_by="biller1",
        deposit_id=deposit_id,
        trace_number=trace,
        amount_cents=cents,
        deposit_date=date(2025, 3, 5),
        payer_id=payer_id,
        source="api",
    )


class Bench:
    def __init__(self) -> None:
        self.notices = InMemoryAggregates(RemittanceNotice)
        self.reconciliations = InMemoryAggregates(Reconciliation)
        self.handlers = DepositHandlers(self.notices, self.reconciliations, clock=lambda: NOW)

    async def remitted(self, event: RemittanceProcessed) -> None:
        """remittance-processed, then what it emitted, as the relay would deliver it."""
        before = len(self.notices.emitted)
        await self.handlers.remittance_processed(Envelope(data=event, source="rcm/test"))
        for emitted in self.notices.emitted[before:]:
            assert isinstance(emitted, RemittanceDepositExpected)
            envelope = Envelope(data=emitted, source="rcm/test")
            await self.handlers.remittance_deposit_expected(envelope)
            await self.handlers.remittance_deposit_expected(envelope)  # redelivered

    async def deposited(self, request: DepositRecordRequested) -> int:
        envelope = Envelope(data=request, source="rcm/test")
        reply = await self.handlers.deposit_record_requested(envelope)
        return reply.status

    def of(self, trace: str) -> Reconciliation:
        return self.reconciliations.states[trace_key(trace)]


async def test_a_deposit_matches_the_835_with_its_trace_number_and_amount() -> None:
    bench = Bench()
    await bench.remitted(processed("R1", "EFT0001", 125000))
    assert bench.of("EFT0001").status is ReconciliationStatus.AWAITING_DEPOSIT
    assert await bench.deposited(deposit("D1", " eft0001 ", 125000)) == 201
    found = bench.of("EFT0001")
    assert found.status is ReconciliationStatus.MATCHED
    assert found.reasons == []
    assert await bench.deposited(deposit("D1", "EFT0001", 125000)) == 200  # sent again
    assert len(bench.of("EFT0001").deposits) == 1
    with pytest.raises(Conflict, match="other values"):
        await bench.deposited(deposit("D1", "EFT0001", 125001))


async def test_an_amount_that_differs_is_an_exception_with_its_reason() -> None:
    bench = Bench()
    await bench.deposited(deposit("D1", "CHK77", 99000))
    assert bench.of("CHK77").status is ReconciliationStatus.AWAITING_REMITTANCE
    await bench.remitted(processed("R1", "CHK77", 100000))
    found = bench.of("CHK77")
    assert found.status is ReconciliationStatus.EXCEPTION
    assert found.reasons == ["amount: deposited 99000 != remitted 100000 (difference -1000)"]
    assert found.since == NOW  # ages from the 835


async def test_two_transactions_under_one_trace_match_one_deposit_and_count_once() -> None:
    bench = Bench()
    await bench.remitted(processed("R1", "T9", 6000))
    await bench.remitted(processed("R1", "T9", 6000))  # the same remittance again
    assert bench.of("T9").remitted_cents == 6000
    await bench.remitted(processed("R2", "T9", 4000))
    await bench.deposited(deposit("D1", "T9", 10000))
    assert bench.of("T9").status is ReconciliationStatus.MATCHED


async def test_a_deposit_from_another_payer_and_a_zero_payment() -> None:
    bench = Bench()
    await bench.remitted(processed("R1", "T1", 500))
    await bench.deposited(deposit("D1", "T1", 500, payer_id="SUMMIT"))
    assert bench.of("T1").status is ReconciliationStatus.EXCEPTION
    assert bench.of("T1").reasons[0].startswith("payer:")
    await bench.remitted(processed("R2", "T2", 0))  # all denied: no money to deposit
    assert bench.of("T2").status is ReconciliationStatus.MATCHED


def test_trace_keys_ignore_case_and_blanks_and_stay_ids() -> None:
    assert trace_key("1abc 23") == trace_key("1ABC23") == "T-1ABC23"
    odd = trace_key("12/34#5")
    assert odd.startswith("TH-")
    assert odd == trace_key("12/34#5")
    assert odd != trace_key("12/34#6")


def test_a_bank_file_is_read_or_refused_whole_naming_each_bad_line() -> None:
    good = (
        "deposit_id,deposit_date,trace_number,amount,payer_id\n"
        "D1,2025-03-05,EFT0001,1250.00,ACME01\n"
        "\n"
        "D2,2025-03-05,CHK77,990.50,\n"
    )
    lines = deposits.parse_deposit_file(good)
    assert [(x.deposit_id, x.amount_cents, x.payer_id) for x in lines] == [
        ("D1", 125000, "ACME01"),
        ("D2", 99050, None),
    ]
    bad = (
        "deposit_id,deposit_date,trace_number,amount,payer_id\n"
        "D1,2025-13-05,EFT0001,1250,ACME01\n"
        "D2,2025-03-05,T2,10.00\n"
        "D3,2025-03-05,T3,10.00,ACME01\n"
        "D3,2025-03-05,T4,10.00,ACME01\n"
    )
    with pytest.raises(Invalid) as refused:
        deposits.parse_deposit_file(bad)
    assert refused.value.reasons == [
        "line 2: deposit_date is not YYYY-MM-DD",
        "line 2: amount must be dollars with 2 decimals, above 0.00",
        "line 3: 4 columns, not 5",
        "line 5: deposit_id appears twice in the file",
    ]
    with pytest.raises(Invalid, match="header"):
        deposits.parse_deposit_file("D1,2025-03-05,T,1.00,\n")
