"""The collections service on real Kafka and FerretDB: events in, ledger, events out."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from rcm_collections.app import Settings, build
from rcm_contracts import Event
from rcm_contracts.claims import ClaimClosed, ClaimOutcome
from rcm_contracts.coding import ChargeLine, CodingCompleted, ProcedureCodeSet
from rcm_contracts.collections import (
    BalanceWrittenOff,
    EpisodeClosed,
    PaymentPlanCreated,
    StatementIssued,
)
from rcm_contracts.eligibility import (
    EligibilityFailed,
    EligibilityFailureReason,
    EligibilityVerified,
)
from rcm_contracts.payments import (
    Adjustment,
    AdjustmentGroup,
    PatientPaymentReceived,
    PatientResponsibility,
    PaymentMethod,
    PaymentPosted,
    PostedClaimStatus,
)
from rcm_contracts.registration import Address, CoverageRank, PatientRegistered, Person, Sex
from rcm_shared.auth import Role
from rcm_shared.envelope import Envelope
from rcm_shared.http import MAX_AMOUNT_CENTS
from rcm_shared.kafka import EventPublisher, Topics
from rcm_shared.service import Service

from tests.conftest import Infra

from .helpers import eventually, read_topic
from .services import running, settings_for, signed_in

pytestmark = pytest.mark.integration

NOW = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)


class Episode:
    """Input events of one episode, published as the other services would."""

    def __init__(self, service: Service, topics: Topics, episode_id: str) -> None:
        self.publisher = EventPublisher(service.broker, topics)
        self.id = episode_id

    async def send(self, event: Event, envelope_id: str | None = None) -> Envelope[Any]:
        envelope = Envelope(data=event, source="rcm/test")
        if envelope_id is not None:
            envelope = Envelope(data=event, source="rcm/test", id=envelope_id)
        await self.publisher.publish(envelope)
        return envelope

    async def registered(self) -> None:
        person = Person(
            first_name="Test",
            last_name="Patient",
            birth_date=date(1980, 1, 2),
            sex=Sex.FEMALE,
            address=Address(line1="1 Main St", city="Springfield", state="IL", postal_code="62701"),
        )
        await self.send(
            PatientRegistered(
                episode_id=self.id,
                patient_id="P000000000001",
                patient=person,
                guarantor_id="G000000000001",
            )
        )

    async def verified(self) -> None:
        await self.send(
            EligibilityVerified(
                episode_id=self.id,
                coverage_id="V000000000001",
                rank=CoverageRank.PRIMARY,
                payer_id="ACME01",
                verified_at=NOW,
                trace_number="T1",
            )
        )

    async def self_pay(self) -> None:
        await self.send(
            EligibilityFailed(
                episode_id=self.id,
                reason=EligibilityFailureReason.NO_COVERAGE,
                self_pay=True,
                checked_at=NOW,
            )
        )

    async def coded(self, charges: int) -> None:
        line = ChargeLine(
            line_number=1,
            line_id=f"{self.id}-L1",
            code_set=ProcedureCodeSet.CPT,
            procedure_code="99213",
            units=1,
            charge_cents=charges,
            diagnosis_pointers=[1],
            service_date=NOW.date(),
        )
        await self.send(
            CodingCompleted(
                episode_id=self.id,
                coding_case_id="K000000000001",
                diagnoses=["J0190"],
                charge_lines=[line],
                total_charge_cents=charges,
                place_of_service="11",
                rendering_provider_npi="1234567893",
                coder_id="C1",
                completed_at=NOW,
            )
        )

    def posting(
        self,
        posting_id: str,
        paid: int,
        adjustments: list[tuple[str, str, int]],
        rank: CoverageRank = CoverageRank.PRIMARY,
    ) -> PaymentPosted:
        adjusts = [
            Adjustment(group=AdjustmentGroup(group), reason_code=code, amount_cents=cents)
            for group, code, cents in adjustments
        ]
        return PaymentPosted(
            episode_id=self.id,
            posting_id=posting_id,
            claim_id=f"{self.id}-1",
            payer_id="ACME01",
            rank=rank,
            remittance_id=posting_id.rsplit("-", 1)[0],
            payment_trace_number="EFT1",
            status=PostedClaimStatus.PAID,
            charge_cents=paid + sum(a.amount_cents for a in adjusts),
            paid_cents=paid,
            adjustments=adjusts,
            patient_responsibility=PatientResponsibility(
                deductible_cents=sum(a.amount_cents for a in adjusts if a.group.value == "PR")
            ),
            posted_at=NOW,
        )

    async def claim_closed(self, posting_ids: list[str]) -> None:
        await self.send(
            ClaimClosed(
                episode_id=self.id,
                claim_id=f"{self.id}-1",
                payer_id="ACME01",
                outcome=ClaimOutcome.PAID,
                open_claims=0,
                sequence=1,
                posting_ids=posting_ids,
                closed_at=NOW,
            )
        )

    async def patient_paid(self, payment_id: str, cents: int) -> None:
        await self.send(
            PatientPaymentReceived(
                episode_id=self.id,
                payment_id=payment_id,
                amount_cents=cents,
                method=PaymentMethod.PORTAL,
                received_at=NOW,
            )
        )


@pytest.fixture
async def collections(
    infra: Infra, topics: Topics, database: Any
) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    settings = settings_for(Settings, infra, topics.prefix, database.name)
    assert isinstance(settings, Settings)
    service = build(settings)
    async with running(service) as client:
        yield service, client


def fresh_key() -> dict[str, str]:
    """An Idempotency-Key of its own: a new command, as a person's second click is."""
    return {"Idempotency-Key": uuid.uuid4().hex}


async def account_when(client: httpx.AsyncClient, episode_id: str, check: Any) -> dict[str, Any]:
    """The account once `check(account)` holds."""
    seen: dict[str, Any] = {}

    async def ready() -> bool:
        response = await client.get(f"/accounts/{episode_id}")
        if response.status_code != 200:
            return False
        seen.update(response.json())
        return bool(check(seen))

    try:
        await eventually(ready)
    except AssertionError as error:
        raise AssertionError(f"{error}; the account was {seen or 'not there'}") from None
    return seen


async def events_of(infra: Infra, topics: Topics, kind: type[Event], count: int) -> list[Any]:
    records = await read_topic(infra.kafka, topics.of(kind), count)
    return [json.loads(record.value) for record in records]


async def test_events_in_any_order_bill_the_patient_and_a_payment_closes_the_episode(
    infra: Infra, topics: Topics, collections: tuple[Service, httpx.AsyncClient]
) -> None:
    service, client = collections
    episode = Episode(service, topics, "E00000000a001")
    primary = episode.posting(
        "R1-1", 12000, [("CO", "45", 4000), ("PR", "1", 2500), ("PR", "3", 1500)]
    )
    # the closing and the posting overtake the coding, eligibility and registration
    await episode.claim_closed(["R1-1"])
    await episode.send(primary)
    await episode.coded(20000)
    await episode.verified()
    await episode.registered()

    account = await account_when(client, episode.id, lambda a: a["statements"])
    assert account["totals"]["balance_cents"] == 4000
    assert account["invariant_holds"] is True
    (issued,) = await events_of(infra, topics, StatementIssued, 1)
    assert issued["episode_id"] == episode.id
    assert issued["sequence"] == 1
    assert issued["amount_due_cents"] == 4000
    assert issued["guarantor_id"] == "G000000000001"
    listed = (await client.get("/statements", params={"status": "open"})).json()
    assert [(s["episode_id"], s["amount_due_cents"]) for s in listed["statements"]] == [
        (episode.id, 4000)
    ]
    assert listed["statements"][0]["due_date"] == issued["due_date"]

    url = f"/accounts/{episode.id}/payment-plan"
    plan = await client.post(url, json={"installments": 3}, headers=fresh_key())
    assert plan.status_code == 201, plan.text
    assert (plan.json()["installment_cents"], plan.json()["last_installment_cents"]) == (1334, 1332)
    again = await client.post(url, json={"installments": 3}, headers=fresh_key())
    assert again.status_code == 200
    assert again.json()["plan_id"] == plan.json()["plan_id"]
    other = await client.post(url, json={"installments": 4}, headers=fresh_key())
    assert other.status_code == 409
    (created,) = await events_of(infra, topics, PaymentPlanCreated, 1)
    assert created["total_cents"] == 4000

    await episode.patient_paid("pay-1", 4000)
    closed = await account_when(client, episode.id, lambda a: a["state"] == "closed")
    assert closed["statements"][0]["status"] == "closed"
    (closing,) = await events_of(infra, topics, EpisodeClosed, 1)
    assert closing["totals"] == {
        "charges_cents": 20000,
        "payer_paid_cents": 12000,
        "adjustments_cents": 4000,
        "patient_paid_cents": 4000,
        "written_off_cents": 0,
        "balance_cents": 0,
    }
    assert (await client.get("/statements", params={"status": "open"})).json()["count"] == 0
    done = (await client.get("/statements", params={"status": "closed"})).json()
    assert [(s["statement_id"], s["amount_due_cents"]) for s in done["statements"]] == [
        (issued["statement_id"], 0)
    ]
    summary = (await client.get("/accounts", params={"state": "closed"})).json()
    assert summary["accounts"] == 1
    assert summary["totals"] == closing["totals"]
    assert summary["invariant_holds"] is True
    assert (await client.get("/accounts", params={"state": "open"})).json()["accounts"] == 0


async def test_a_small_balance_is_written_off_and_the_episode_closed(
    infra: Infra, topics: Topics, collections: tuple[Service, httpx.AsyncClient]
) -> None:
    service, client = collections
    episode = Episode(service, topics, "E00000000a002")
    await episode.registered()
    await episode.verified()
    await episode.coded(10000)
    await episode.send(episode.posting("R2-1", 6550, [("CO", "45", 3000), ("PR", "3", 450)]))
    await episode.claim_closed(["R2-1"])

    account = await account_when(client, episode.id, lambda a: a["state"] == "closed")
    assert account["statements"] == []
    (written,) = await events_of(infra, topics, BalanceWrittenOff, 1)
    assert (written["amount_cents"], written["reason"]) == (450, "small-balance")
    (closing,) = await events_of(infra, topics, EpisodeClosed, 1)
    assert closing["totals"]["written_off_cents"] == 450
    assert closing["totals"]["balance_cents"] == 0
    assert closing["totals"]["payer_paid_cents"] == 6550


async def test_a_redelivered_posting_changes_nothing_and_a_broken_one_is_dead_lettered(
    infra: Infra, topics: Topics, collections: tuple[Service, httpx.AsyncClient]
) -> None:
    service, client = collections
    episode = Episode(service, topics, "E00000000a003")
    await episode.coded(20000)
    await episode.verified()
    primary = episode.posting("R3-1", 12000, [("CO", "45", 4000), ("PR", "1", 4000)])
    first = await episode.send(primary)
    await episode.send(primary, envelope_id=first.id)  # the same message again
    await episode.send(primary)  # the same posting in a new envelope
    broken = primary.model_copy(update={"posting_id": "R3-9", "charge_cents": 1})
    await episode.send(broken)
    secondary = episode.posting(
        "R4-1", 2500, [("OA", "23", 16000), ("PR", "3", 1500)], rank=CoverageRank.SECONDARY
    )
    await episode.send(secondary)  # same topic and key: handled after all the above

    account = await account_when(
        client, episode.id, lambda a: [p["posting_id"] for p in a["postings"]] == ["R3-1", "R4-1"]
    )
    assert account["totals"] == {
        "charges_cents": 20000,
        "payer_paid_cents": 14500,
        "adjustments_cents": 4000,
        "patient_paid_cents": 0,
        "written_off_cents": 0,
        "balance_cents": 1500,
    }
    assert account["invariant_holds"] is True
    payments = [e for e in account["entries"] if e["kind"] == "payer-payment"]
    assert [(e["reference"], e["amount_cents"]) for e in payments] == [
        ("R3-1", 12000),
        ("R4-1", 2500),
    ]
    document = await service.database["accounts"].find_one({"_id": episode.id})
    assert document["applied"].count(first.id) == 1
    (dead,) = await read_topic(infra.kafka, f"{topics.of(PaymentPosted)}.dlq", 1)
    assert json.loads(dead.value)["posting_id"] == "R3-9"
    assert b"does not balance" in dict(dead.headers)["dlq_exception_message"]


async def test_write_offs_over_http(
    infra: Infra, topics: Topics, collections: tuple[Service, httpx.AsyncClient]
) -> None:
    service, client = collections
    episode = Episode(service, topics, "E00000000a004")
    await episode.self_pay()
    await episode.registered()
    await episode.coded(3000)
    account = await account_when(client, episode.id, lambda a: a["statements"])
    assert account["coverage"] == "self-pay"
    assert account["totals"]["balance_cents"] == 3000

    url = f"/accounts/{episode.id}/write-offs"
    body = {"amount_cents": 3000, "reason": "charity", "write_off_id": "WO-7"}
    for bad in (
        {"amount_cents": 3001},
        {"amount_cents": 12.5},
        {"amount_cents": 0},
        {"amount_cents": MAX_AMOUNT_CENTS + 1},
        {"amount_cents": 2**63},
        {"reason": "whim"},
    ):
        refused = await client.post(url, json={**body, **bad}, headers=fresh_key())
        assert refused.status_code == 422, bad
    for amount in (MAX_AMOUNT_CENTS + 1, 2**63):  # refused by the API, the owner never asked
        refused = await client.post(url, json={**body, "amount_cents": amount}, headers=fresh_key())
        assert refused.json()["detail"][0]["loc"] == ["body", "amount_cents"]
    unknown = "/accounts/E00000000ffff/write-offs"
    assert (await client.post(unknown, json=body, headers=fresh_key())).status_code == 404
    assert await service.database["accounts"].find_one({"_id": "E00000000ffff"}) is None
    # A path no id could be names nothing, and the database is not asked (NUL fails there).
    assert (await client.get("/accounts/E%00ffff")).status_code == 404
    nul_path = "/accounts/E%00/write-offs"
    assert (await client.post(nul_path, json=body, headers=fresh_key())).status_code == 404
    nul = {**body, "reason": "charity\x00"}
    assert (await client.post(url, json=nul, headers=fresh_key())).status_code == 422
    # No key: refused before anything is asked, so a retried one cannot apply twice.
    for _ in range(2):
        unkeyed = await client.post(url, json={**body, "write_off_id": None, "amount_cents": 1})
        assert unkeyed.status_code == 400
        assert "Idempotency-Key" in unkeyed.json()["detail"]
    unkeyed_plan = await client.post(
        f"/accounts/{episode.id}/payment-plan", json={"installments": 2}
    )
    assert unkeyed_plan.status_code == 400
    unchanged = (await client.get(f"/accounts/{episode.id}")).json()
    assert unchanged["write_offs"] == []
    assert unchanged["totals"] == account["totals"]

    collector = signed_in("collector-7", Role.COLLECTOR)
    done = await client.post(url, json=body, headers={**collector, **fresh_key()})
    assert done.status_code == 201, done.text
    assert done.json()["write_off"]["user_id"] == "collector-7"  # the token's subject
    assert done.json()["account"]["state"] == "closed"
    # A double submission (a new command): write_off_id keeps it once.
    again = await client.post(url, json=body, headers={**collector, **fresh_key()})
    assert again.status_code == 200
    assert again.json()["account"]["totals"]["written_off_cents"] == 3000
    (written,) = await events_of(infra, topics, BalanceWrittenOff, 1)
    assert (written["write_off_id"], written["reason"]) == ("WO-7", "charity")
    (closing,) = await events_of(infra, topics, EpisodeClosed, 1)
    assert closing["totals"]["written_off_cents"] == 3000
    plan = await client.post(
        f"/accounts/{episode.id}/payment-plan", json={"installments": 2}, headers=fresh_key()
    )
    assert plan.status_code == 409


async def test_a_write_off_retried_under_its_key_applies_once_and_the_summary_is_bounded(
    infra: Infra, topics: Topics, collections: tuple[Service, httpx.AsyncClient]
) -> None:
    service, client = collections
    first, second = (Episode(service, topics, f"E00000000a00{n}") for n in (5, 6))
    for episode in (first, second):
        await episode.self_pay()
        await episode.registered()
        await episode.coded(3000)
        await account_when(client, episode.id, lambda a: a["statements"])

    url = f"/accounts/{first.id}/write-offs"
    key = fresh_key()
    body = {"amount_cents": 1000, "reason": "charity"}  # no write_off_id: the key alone
    done = await client.post(url, json=body, headers=key)
    assert done.status_code == 201, done.text
    retried = await client.post(url, json=body, headers=key)  # e.g. after a 503
    assert retried.status_code == 201
    assert retried.json()["write_off"]["write_off_id"] == done.json()["write_off"]["write_off_id"]
    assert retried.json()["account"] == done.json()["account"]
    account = (await client.get(f"/accounts/{first.id}")).json()
    assert account["totals"]["written_off_cents"] == 1000
    assert len(account["write_offs"]) == 1

    whole = (await client.get("/accounts")).json()
    assert (whole["accounts"], whole["complete"]) == (2, True)
    part = (await client.get("/accounts", params={"limit": 1})).json()
    assert (part["accounts"], part["complete"]) == (1, False)
    for limit in (0, 1_000_001):
        assert (await client.get("/accounts", params={"limit": limit})).status_code == 422
    assert (await client.get("/statements", params={"limit": 10_001})).status_code == 422
