"""Refunds of credit balances through the running collections and payments services:
approved by a person in collections, issued once by payments, recorded on the ledger;
and PLB recoupment and interest on an episode's ledger."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from rcm_collections.app import Settings, build
from rcm_contracts.payments import (
    ProviderAdjustmentKind,
    ProviderAdjustmentPosted,
    RefundIssued,
)
from rcm_shared.auth import Role
from rcm_shared.kafka import Topics
from rcm_shared.service import Service

from tests.conftest import Infra

from .services import running, settings_for, signed_in
from .test_collections import NOW, Episode, account_when, events_of, fresh_key
from .test_payments import mailbox, payments_service

pytestmark = pytest.mark.integration

__all__ = ["mailbox"]  # the stand-in clearinghouse payments polls


@pytest.fixture
async def both(
    infra: Infra, topics: Topics, database: Any, mailbox: tuple[Any, str], tmp_path: Path
) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    """Collections (its client) and payments, each with its own database, one namespace."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    other = f"test_{uuid.uuid4().hex[:12]}"
    settings = settings_for(Settings, infra, topics.prefix, database.name)
    assert isinstance(settings, Settings)
    collections = build(settings)
    payments = payments_service(infra, topics, client[other], mailbox[1], tmp_path)
    try:
        async with running(payments), running(collections) as collections_client:
            yield collections, collections_client
    finally:
        await client.drop_database(other)
        await client.close()


async def billed_and_overpaid(service: Service, topics: Topics, episode_id: str) -> Episode:
    """Charges 20000, the payer pays 12000 (CO-45 4000, PR 4000), the patient pays 5000."""
    episode = Episode(service, topics, episode_id)
    await episode.registered()
    await episode.verified()
    await episode.coded(20000)
    await episode.send(episode.posting("R1-1", 12000, [("CO", "45", 4000), ("PR", "1", 4000)]))
    await episode.claim_closed(["R1-1"])
    await episode.patient_paid("PAY1", 5000)
    return episode


async def test_a_credit_balance_is_refunded_once_and_the_account_closes(
    infra: Infra, topics: Topics, both: tuple[Service, httpx.AsyncClient]
) -> None:
    service, client = both
    episode = await billed_and_overpaid(service, topics, "E00000000c001")
    account = await account_when(client, episode.id, lambda a: a["credit_balance_cents"] == 1000)
    assert account["refundable_cents"] == {"patient": 1000, "payer": 0}

    listed = (await client.get("/credit-balances")).json()
    assert [(a["episode_id"], a["credit_balance_cents"]) for a in listed["accounts"]] == [
        (episode.id, 1000)
    ]

    url = f"/accounts/{episode.id}/refunds"
    body = {"amount_cents": 1000, "recipient": "patient", "reason": "overpaid statement"}
    too_much = await client.post(url, json={**body, "amount_cents": 1001}, headers=fresh_key())
    assert too_much.status_code == 422, too_much.text
    no_key = await client.post(url, json=body)
    assert no_key.status_code == 400
    coder = signed_in("coder1", Role.CODER)
    forbidden = await client.post(url, json=body, headers={**coder, **fresh_key()})
    assert forbidden.status_code == 403

    collector = {**signed_in("col1", Role.COLLECTOR), **fresh_key()}
    approved = await client.post(url, json=body, headers=collector)
    assert approved.status_code == 201, approved.text
    refund = approved.json()["refund"]
    assert (refund["refund_id"], refund["approved_by"]) == (f"{episode.id}-F1", "col1")
    retried = await client.post(url, json=body, headers=collector)
    assert retried.status_code == 201
    assert retried.json()["refund"]["refund_id"] == refund["refund_id"]

    closed = await account_when(client, episode.id, lambda a: a["state"] == "closed")
    assert closed["totals"]["balance_cents"] == 0
    assert closed["totals"]["patient_paid_cents"] == 4000
    assert closed["invariant_holds"] is True
    assert [r["status"] for r in closed["refunds"]] == ["issued"]
    assert closed["pending_refund_id"] is None
    (issued,) = await events_of(infra, topics, RefundIssued, 1)
    assert (issued["refund_id"], issued["amount_cents"]) == (refund["refund_id"], 1000)
    assert (await client.get("/credit-balances")).json()["count"] == 0
    # Nothing is left to refund, and a second refund was never issued.
    late = await client.post(url, json=body, headers=fresh_key())
    assert late.status_code == 409, late.text


async def test_a_second_approval_while_one_is_pending_is_refused(
    topics: Topics, collections_only: tuple[Service, httpx.AsyncClient]
) -> None:
    service, client = collections_only
    episode = await billed_and_overpaid(service, topics, "E00000000c002")
    await account_when(client, episode.id, lambda a: a["credit_balance_cents"] == 1000)
    url = f"/accounts/{episode.id}/refunds"
    body = {"amount_cents": 400, "recipient": "patient", "reason": "overpaid"}
    first = await client.post(url, json=body, headers=fresh_key())
    assert first.status_code == 201, first.text
    second = await client.post(url, json=body, headers=fresh_key())
    assert second.status_code == 409
    # No payments service runs here: the refund stays approved, the ledger untouched.
    account = (await client.get(f"/accounts/{episode.id}")).json()
    assert account["pending_refund_id"] == f"{episode.id}-F1"
    assert account["credit_balance_cents"] == 1000


@pytest.fixture
async def collections_only(
    infra: Infra, topics: Topics, database: Any
) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    settings = settings_for(Settings, infra, topics.prefix, database.name)
    assert isinstance(settings, Settings)
    service = build(settings)
    async with running(service) as client:
        yield service, client


async def test_plb_recoupment_and_interest_reach_the_episode_ledger_once(
    topics: Topics, collections_only: tuple[Service, httpx.AsyncClient]
) -> None:
    service, client = collections_only
    episode = Episode(service, topics, "E00000000c003")
    await episode.registered()
    await episode.verified()
    await episode.coded(20000)
    await episode.send(episode.posting("R1-1", 12000, [("CO", "45", 4000), ("PR", "1", 4000)]))
    await episode.claim_closed(["R1-1"])
    await episode.patient_paid("PAY1", 4000)
    before = await account_when(client, episode.id, lambda a: a["state"] == "closed")

    def plb(index: int, reason: str, cents: int, kind: ProviderAdjustmentKind) -> Any:
        return ProviderAdjustmentPosted(
            adjustment_id=f"R9-P{index}",
            remittance_id="R9",
            payer_id="ACME01",
            provider_id="1100000003",
            fiscal_period_date=date(2025, 12, 31),
            reason_code=reason,
            reference=f"{episode.id}-1",
            amount_cents=cents,
            kind=kind,
            episode_id=episode.id,
            claim_id=f"{episode.id}-1",
            posted_at=NOW,
        )

    recoupment = plb(1, "WO", 3000, ProviderAdjustmentKind.RECOUPMENT)
    await episode.send(recoupment)
    await episode.send(recoupment)  # the payments relay may publish it twice
    await episode.send(plb(2, "L6", -125, ProviderAdjustmentKind.INTEREST))
    account = await account_when(client, episode.id, lambda a: a["interest_cents"] == 125)
    assert len(account["provider_adjustments"]) == 2
    assert account["totals"]["payer_paid_cents"] == 9000
    assert account["insurance_balance_cents"] == 3000
    assert account["patient_balance_cents"] == 0
    assert account["state"] == "open"
    assert account["invariant_holds"] is True
    # The payer owes the 3000, not the patient: no statement for it.
    assert account["statements"] == before["statements"]
    kinds = [e["kind"] for e in account["entries"]]
    assert kinds.count("payer-recoupment") == 1
    assert kinds.count("interest") == 1
