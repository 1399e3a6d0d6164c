"""The patient side on real Kafka and FerretDB: estimates over HTTP, the dunning job on a
clock the test moves (cadence, plan default and completion, agency placement), and the
collectors' placement, recall and uncollectable return."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from rcm_collections.app import Settings, build
from rcm_collections.estimates import shipped_fee_schedule
from rcm_contracts.collections import (
    AccountPlacedWithAgency,
    AccountRecalledFromAgency,
    AccountReturnedByAgency,
    BalanceWrittenOff,
    PatientEstimated,
    PaymentPlanCompleted,
    PaymentPlanDefaulted,
    StatementIssued,
)
from rcm_contracts.eligibility import EligibilityVerified
from rcm_contracts.registration import CoverageRank
from rcm_shared.auth import Role
from rcm_shared.kafka import Topics
from rcm_shared.service import Service

from tests.conftest import Infra

from .services import running, settings_for, signed_in
from .test_collections import NOW, Episode, account_when, events_of, fresh_key

pytestmark = pytest.mark.integration


class Calendar:
    """The service's clock, moved by the test: days pass in a moment."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: int) -> None:
        self.now += timedelta(days=days)


@pytest.fixture
async def patient_side(
    infra: Infra, topics: Topics, database: Any
) -> AsyncIterator[tuple[Service, httpx.AsyncClient, Calendar]]:
    settings = settings_for(Settings, infra, topics.prefix, database.name, dunning_interval_s=0.2)
    assert isinstance(settings, Settings)
    calendar = Calendar(NOW)
    service = build(settings, calendar)
    async with running(service) as client:
        yield service, client, calendar


async def test_estimates_over_http_insured_and_self_pay(
    infra: Infra,
    topics: Topics,
    patient_side: tuple[Service, httpx.AsyncClient, Calendar],
) -> None:
    service, client, _ = patient_side
    insured = Episode(service, topics, "E00000000b001")
    await insured.registered()
    desk = signed_in("desk-3", Role.FRONT_DESK)
    url = f"/accounts/{insured.id}/estimates"
    body = {"procedures": [{"code": "99213", "units": 1}]}
    await account_when(client, insured.id, lambda a: a["guarantor_id"])
    before = await client.post(url, json=body, headers=desk)
    assert before.status_code == 409  # eligibility not verified yet

    await insured.send(
        EligibilityVerified(
            episode_id=insured.id,
            coverage_id="V000000000001",
            rank=CoverageRank.PRIMARY,
            payer_id="ACME01",
            copay_cents=2500,
            deductible_remaining_cents=0,
            coinsurance_basis_points=0,
            verified_at=NOW,
            trace_number="T1",
        )
    )
    await account_when(client, insured.id, lambda a: a["coverage"] == "insured")
    biller = signed_in("biller-1", Role.BILLER)
    assert (await client.post(url, json=body, headers=biller)).status_code == 403
    bad_code = {"procedures": [{"code": "99999", "units": 1}]}
    assert (await client.post(url, json=bad_code, headers=desk)).status_code == 422
    assert (await client.post(url, json={"procedures": []}, headers=desk)).status_code == 422

    made = await client.post(url, json=body, headers=desk)
    assert made.status_code == 201, made.text
    estimate = made.json()
    allowed = shipped_fee_schedule().allowed_per_unit[("ACME01", "99213")]
    # no deductible left and no coinsurance: the patient owes the copay, the payer the rest
    assert estimate["kind"] == "insured"
    assert estimate["breakdown"]["allowed_cents"] == allowed
    assert estimate["breakdown"]["patient_cents"] == 2500
    assert estimate["breakdown"]["insurance_cents"] == allowed - 2500
    assert estimate["breakdown"]["assumptions"]
    assert estimate["estimated_by"] == "desk-3"
    kept = await client.get(f"/accounts/{insured.id}/estimate", headers=desk)
    assert kept.json()["estimate_id"] == estimate["estimate_id"]
    account = (await client.get(f"/accounts/{insured.id}")).json()
    assert account["estimate"]["estimate_id"] == estimate["estimate_id"]
    assert account["entries"] == []  # an estimate moves no money

    self_pay = Episode(service, topics, "E00000000b002")
    await self_pay.registered()
    await self_pay.self_pay()
    await account_when(client, self_pay.id, lambda a: a["coverage"] == "self-pay")
    two = {"procedures": [{"code": "99213", "units": 1}, {"code": "36415", "units": 2}]}
    good_faith = await client.post(
        f"/accounts/{self_pay.id}/estimates", json=two, headers=signed_in("c1", Role.COLLECTOR)
    )
    assert good_faith.status_code == 201, good_faith.text
    prices = shipped_fee_schedule().list_prices
    assert good_faith.json()["kind"] == "self-pay"
    assert good_faith.json()["breakdown"]["patient_cents"] == prices["99213"] + 2 * prices["36415"]
    published = {e["episode_id"]: e for e in await events_of(infra, topics, PatientEstimated, 2)}
    assert published[insured.id]["patient_cents"] == 2500
    assert published[self_pay.id]["kind"] == "self-pay"
    assert "procedures" not in published[insured.id]  # totals only on the stream
    missing = await client.get("/accounts/E00000000b003/estimate", headers=desk)
    assert missing.status_code == 404


async def test_the_job_dunns_on_the_clock_and_places_with_the_agency(
    infra: Infra,
    topics: Topics,
    patient_side: tuple[Service, httpx.AsyncClient, Calendar],
) -> None:
    service, client, calendar = patient_side
    episode = Episode(service, topics, "E00000000b010")
    await episode.self_pay()
    await episode.registered()
    await episode.coded(30000)
    first = await account_when(client, episode.id, lambda a: a["statements"])
    assert first["dunning_level"] == "first-statement"
    assert first["next_dunning_on"] == (NOW.date() + timedelta(days=30)).isoformat()

    calendar.advance(29)  # not due yet: the job's rounds leave it
    await asyncio.sleep(1.0)
    assert len((await client.get(f"/accounts/{episode.id}")).json()["statements"]) == 1
    calendar.advance(1)
    second = await account_when(client, episode.id, lambda a: len(a["statements"]) == 2)
    assert second["dunning_level"] == "second-notice"
    calendar.advance(30)
    third = await account_when(client, episode.id, lambda a: len(a["statements"]) == 3)
    assert third["dunning_level"] == "final-notice"
    levels = [e["dunning_level"] for e in await events_of(infra, topics, StatementIssued, 3)]
    assert levels == ["first-statement", "second-notice", "final-notice"]

    calendar.advance(30)
    placed = await account_when(client, episode.id, lambda a: a["placement"])
    assert placed["placement"]["automatic"] is True
    assert placed["placement"]["status"] == "placed"
    assert placed["totals"] == third["totals"]  # placement moves no money
    (placement,) = await events_of(infra, topics, AccountPlacedWithAgency, 1)
    assert (placement["balance_cents"], placement["agency_id"]) == (30000, "AGENCY01")

    accounts_url = f"/accounts/{episode.id}"
    desk = signed_in("desk-1", Role.FRONT_DESK)
    assert (
        await client.post(f"{accounts_url}/agency-recall", json={}, headers=desk)
    ).status_code == 403
    collector = signed_in("collector-2", Role.COLLECTOR)
    recalled = await client.post(
        f"{accounts_url}/agency-recall", json={"reason": "dispute"}, headers=collector
    )
    assert recalled.status_code == 200, recalled.text
    assert recalled.json()["account"]["placement"]["status"] == "recalled"
    assert recalled.json()["account"]["collection_hold"] is True
    (recall,) = await events_of(infra, topics, AccountRecalledFromAgency, 1)
    assert recall["balance_cents"] == 30000
    again = await client.post(f"{accounts_url}/agency-recall", json={}, headers=collector)
    assert again.status_code == 409  # not placed any more

    manual = await client.post(
        f"{accounts_url}/agency-placement", json={"agency_id": "AG2"}, headers=collector
    )
    assert manual.status_code == 201, manual.text
    assert manual.json()["account"]["placement"]["automatic"] is False
    assert manual.json()["account"]["placement"]["agency_id"] == "AG2"

    returned_url = f"{accounts_url}/agency-return"
    assert (await client.post(returned_url, json={}, headers=collector)).status_code == 400
    key = fresh_key()
    returned = await client.post(returned_url, json={}, headers={**collector, **key})
    assert returned.status_code == 200, returned.text
    account = returned.json()["account"]
    assert account["state"] == "closed"
    assert account["totals"]["written_off_cents"] == 30000
    assert account["invariant_holds"] is True
    retried = await client.post(returned_url, json={}, headers={**collector, **key})
    assert retried.json()["account"]["totals"]["written_off_cents"] == 30000
    (written,) = await events_of(infra, topics, BalanceWrittenOff, 1)
    assert (written["reason"], written["amount_cents"]) == ("bad-debt", 30000)
    assert len(await events_of(infra, topics, AccountReturnedByAgency, 1)) == 1


async def test_a_missed_installment_defaults_the_plan_and_a_new_plan_completes(
    infra: Infra,
    topics: Topics,
    patient_side: tuple[Service, httpx.AsyncClient, Calendar],
) -> None:
    service, client, calendar = patient_side
    episode = Episode(service, topics, "E00000000b020")
    await episode.self_pay()
    await episode.registered()
    await episode.coded(40000)
    await account_when(client, episode.id, lambda a: a["statements"])
    plan_url = f"/accounts/{episode.id}/payment-plan"
    plan = await client.post(plan_url, json={"installments": 2}, headers=fresh_key())
    assert plan.status_code == 201, plan.text
    hold = await client.post(
        f"/accounts/{episode.id}/collection-hold", json={"hold": True, "reason": "plan"}
    )
    assert hold.status_code == 200
    assert hold.json()["account"]["collection_hold"] is True

    await episode.patient_paid("pay-1", 20000)
    paid_once = await account_when(client, episode.id, lambda a: a["plan"]["paid_cents"] == 20000)
    schedule = paid_once["plan"]["schedule"]
    assert [row["paid"] for row in schedule] == [True, False]

    calendar.advance(30 + 30 + 15)  # past the second installment's due date and the grace
    defaulted = await account_when(client, episode.id, lambda a: a["plan"]["status"] == "defaulted")
    assert defaulted["dunning_level"] == "second-notice"
    (event,) = await events_of(infra, topics, PaymentPlanDefaulted, 1)
    assert (event["installment"], event["paid_cents"], event["remaining_cents"]) == (
        2,
        20000,
        20000,
    )

    replan = await client.post(plan_url, json={"installments": 2}, headers=fresh_key())
    assert replan.status_code == 201, replan.text
    assert replan.json()["plan_id"] == f"{episode.id}-P2"
    assert replan.json()["total_cents"] == 20000
    await episode.patient_paid("pay-2", 10000)
    await episode.patient_paid("pay-3", 10000)
    closed = await account_when(client, episode.id, lambda a: a["state"] == "closed")
    assert closed["plan"]["status"] == "completed"
    assert [p["status"] for p in closed["past_plans"]] == ["defaulted"]
    (completed,) = await events_of(infra, topics, PaymentPlanCompleted, 1)
    assert completed["plan_id"] == f"{episode.id}-P2"
    assert closed["invariant_holds"] is True
