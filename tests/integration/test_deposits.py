"""Payment-to-deposit reconciliation on the running payments service (Kafka, FerretDB):
835 payments (remittance-processed) meet deposits entered by a biller or read from a
bank file, by trace number; what does not reconcile is in the queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from rcm_contracts.payments import RemittanceProcessed
from rcm_payments.app import Settings, build
from rcm_shared.auth import Role
from rcm_shared.envelope import Envelope
from rcm_shared.kafka import Topics
from rcm_shared.service import Service

from tests.conftest import Infra

from .helpers import eventually
from .services import running, settings_for, signed_in
from .test_payments import mailbox

pytestmark = pytest.mark.integration

__all__ = ["mailbox"]  # the stand-in clearinghouse payments polls


@pytest.fixture
async def payments(
    infra: Infra, topics: Topics, database: Any, mailbox: tuple[Any, str], tmp_path: Path
) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    settings = settings_for(
        Settings,
        infra,
        topics.prefix,
        database.name,
        RCM_CLEARINGHOUSE_URL=mailbox[1],
        RCM_X12_ARCHIVE_DIR=str(tmp_path),
        deposit_wait_days=0,  # every payment without a deposit is queued at once
    )
    assert isinstance(settings, Settings)
    service = build(settings)
    async with running(service) as client:
        yield service, client


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def remitted(service: Service, remittance_id: str, trace: str, cents: int) -> None:
    processed = RemittanceProcessed(
        remittance_id=remittance_id,
        payer_id="ACME01",
        payment_trace_number=trace,
        payment_cents=cents,
        claims_posted=1,
        claims_unpostable=0,
        provider_adjustments_cents=0,
        processed_at=datetime.now(UTC),
    )
    await service.publisher.publish(Envelope(data=processed, source="rcm/test"))


async def reconciliation_when(client: httpx.AsyncClient, trace: str, status: str) -> Any:
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        response = await client.get(f"/reconciliation/{trace}")
        seen.update(response.json() if response.status_code == 200 else {})
        return response.status_code == 200 and seen["status"] == status

    try:
        await eventually(reached)
    except AssertionError as error:
        raise AssertionError(f"{error}; {trace} was {seen or 'not there'}") from None
    return seen


async def test_deposits_and_a_bank_file_reconcile_with_835_payments_by_trace(
    payments: tuple[Service, httpx.AsyncClient],
) -> None:
    service, client = payments
    suffix = uuid.uuid4().hex[:6].upper()
    eft, check, lonely = f"EFT{suffix}", f"CHK{suffix}", f"NOPAY{suffix}"
    await remitted(service, f"R{suffix}1", eft, 125000)
    await remitted(service, f"R{suffix}2", check, 100000)
    await remitted(service, f"R{suffix}3", lonely, 5000)
    await reconciliation_when(client, eft, "awaiting-deposit")

    body = {
        "deposit_id": f"D{suffix}1",
        "amount_cents": 125000,
        "trace_number": eft.lower(),
        "deposit_date": "2025-03-05",
        "payer_id": "ACME01",
    }
    coder = signed_in("coder1", Role.CODER)
    assert (
        await client.post("/deposits", json=body, headers={**coder, **key()})
    ).status_code == 403
    assert (await client.post("/deposits", json=body)).status_code == 400
    recorded = await client.post("/deposits", json=body, headers=key())
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["status"] == "matched"
    again = await client.post("/deposits", json=body, headers=key())
    assert again.status_code == 200
    other = await client.post("/deposits", json={**body, "amount_cents": 1}, headers=key())
    assert other.status_code == 409

    content = (
        "deposit_id,deposit_date,trace_number,amount,payer_id\n"
        f"D{suffix}2,2025-03-05,{check},990.00,ACME01\n"
        f"D{suffix}3,2025-03-05,UNKNOWN{suffix},42.00,\n"
    )
    file_key = key()
    imported = await client.post(
        "/deposit-files", json={"name": "bank-0305.csv", "content": content}, headers=file_key
    )
    assert imported.status_code == 200, imported.text
    assert (imported.json()["deposits"], imported.json()["new"]) == (2, 2)
    resent = await client.post(
        "/deposit-files", json={"name": "bank-0305.csv", "content": content}, headers=key()
    )
    assert resent.json()["new"] == 0  # the same file again records nothing twice
    bad = await client.post(
        "/deposit-files",
        json={
            "name": "bad.csv",
            "content": "deposit_id,deposit_date,trace_number,amount,payer_id\nX,no,T,1,\n",
        },
        headers=key(),
    )
    assert bad.status_code == 422

    mismatch = await reconciliation_when(client, check, "exception")
    assert mismatch["reasons"] == ["amount: deposited 99000 != remitted 100000 (difference -1000)"]
    queue = (await client.get("/reconciliation")).json()
    assert [r["trace_number"] for r in queue["exceptions"]] == [check]
    assert [r["trace_number"] for r in queue["unmatched_deposits"]] == [f"UNKNOWN{suffix}"]
    assert [r["trace_number"] for r in queue["unmatched_remittances"]] == [lonely]
    matched = (await client.get(f"/reconciliation/{eft}")).json()
    assert (matched["remitted_cents"], matched["deposited_cents"]) == (125000, 125000)
