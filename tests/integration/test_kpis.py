"""The KPI service on real Kafka and FerretDB: contract events of a few episodes in,
GET /kpis and /metrics out, a redelivery and an out-of-order event counted once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from rcm_contracts import Event
from rcm_contracts.claims import DenialCategory
from rcm_kpis.app import Settings, build
from rcm_shared.auth import Role
from rcm_shared.envelope import Envelope
from rcm_shared.kafka import EventPublisher, Topics
from rcm_shared.service import Service

from tests.conftest import Infra
from tests.unit.kpis.support import (
    accepted,
    closed,
    coverage,
    denied,
    paid,
    patient_paid,
    rejected,
    scheduled,
    submitted,
    verified,
)

from .helpers import eventually
from .services import running, settings_for, signed_in

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
TODAY, TOMORROW, YESTERDAY = NOW.date(), NOW.date() + timedelta(days=1), NOW.date() - timedelta(1)
A, B, C = "E00000000000a", "E00000000000b", "E00000000000c"


@pytest.fixture
async def kpis(infra: Infra, topics: Topics, database: Any) -> AsyncIterator[tuple[Service, Any]]:
    settings = settings_for(Settings, infra, topics.prefix, database.name, metrics_interval_s=0.5)
    assert isinstance(settings, Settings)
    service = build(settings)
    async with running(service) as client:
        yield service, client


async def test_kpis_from_the_event_stream(
    kpis: tuple[Service, httpx.AsyncClient], topics: Topics
) -> None:
    service, client = kpis
    publisher = EventPublisher(service.broker, topics)

    async def send(event: Event, again: bool = False) -> None:
        envelope = Envelope(data=event, source="rcm/test")
        await publisher.publish(envelope)
        if again:  # at least once: the same message delivered twice
            await publisher.publish(envelope)

    tomorrow_9am = datetime.combine(TOMORROW, datetime.min.time(), UTC) + timedelta(hours=9)
    # A (ACME01): verified the day before its visit, paid at the desk, claim clean and paid.
    await send(scheduled(A, tomorrow_9am))
    await send(coverage(A, "ACME01"))
    await send(verified(A, "ACME01", NOW))
    await send(submitted(A, f"{A}-1", "ACME01", 10_000, NOW), again=True)
    await send(accepted(A, f"{A}-1", NOW))
    await send(paid(A, f"{A}-1", "ACME01", NOW))
    await send(closed(A, f"{A}-1", "ACME01", NOW))
    await send(patient_paid(A, "PAY-A", 2_500, NOW))
    # B (SUMMIT): not verified, accepted by the payer, then denied (coding); still open.
    await send(scheduled(B, tomorrow_9am))
    await send(coverage(B, "SUMMIT"))
    await send(submitted(B, f"{B}-1", "SUMMIT", 20_000, NOW))
    await send(accepted(B, f"{B}-1", NOW))
    await send(denied(B, f"{B}-1", "SUMMIT", DenialCategory.CODING, NOW))
    # C (ACME01): seen yesterday, paid after the visit; the rejection comes before the claim.
    await send(coverage(C, "ACME01"))
    await send(scheduled(C, NOW - timedelta(days=1)))
    await send(rejected(C, f"{C}-1", NOW))
    await send(submitted(C, f"{C}-1", "ACME01", 30_000, NOW))
    await send(patient_paid(C, "PAY-C", 1_500, NOW))

    query = {"from": YESTERDAY.isoformat(), "to": TOMORROW.isoformat()}
    expected_totals = {
        "clean_claim_rate": {"clean": 2, "submitted": 3, "rate": 0.6667},
        "denial_rate": {
            "denied": 1,
            "adjudicated": 2,
            "rate": 0.5,
            "denied_cents": 20_000,
            "adjudicated_cents": 30_000,
            "dollar_rate": 0.6667,
            "by_category": {"coding": {"denied": 1, "denied_cents": 20_000, "rate": 0.5}},
        },
        "pos_collections": {
            "pos_paid_cents": 2_500,
            "patient_paid_cents": 4_000,
            "rate": 0.625,
            "pos_payments": 1,
            "patient_payments": 2,
        },
        "insurance_verification_rate": {
            "scheduled": 3,
            "verified_before_day": 1,
            "rate": 0.3333,
            "verified_before_visit": 1,
            "before_visit_rate": 0.3333,
        },
        "gross_charges_cents": 60_000,
        "cost_to_collect": {"value": None, "status": "not computable: no cost data"},
    }
    report: dict[str, Any] = {}

    async def counted() -> bool:
        nonlocal report
        response = await client.get("/kpis", params=query)
        assert response.status_code == 200, response.text
        report = response.json()
        return bool(report["totals"] == expected_totals and report["aged_ar"]["total"]["0-30"])

    try:
        await eventually(counted, timeout_s=60)
    except AssertionError:
        raise AssertionError(f"KPIs never matched: {report['totals']}") from None

    assert report["by_payer"]["ACME01"]["clean_claim_rate"]["rate"] == 0.5
    assert report["by_payer"]["SUMMIT"]["denial_rate"]["rate"] == 1.0
    assert report["by_day"][TOMORROW.isoformat()]["insurance_verification_rate"]["rate"] == 0.5
    # Open: B ($200.00) and C ($300.00), billed today; one day of charges ($600.00).
    assert report["history_days"] == 1
    assert report["days_in_ar"]["total"] == {
        "ar_cents": 50_000,
        "gross_charges_cents": 60_000,
        "average_daily_charges_cents": 60_000,
        "days": 0.8,
    }
    assert report["aged_ar"]["total"]["0-30"] == {"claims": 2, "cents": 50_000}
    assert report["aged_ar"]["by_payer"]["SUMMIT"]["0-30"] == {"claims": 1, "cents": 20_000}
    assert report["aged_ar"]["complete"] is True

    one_payer = (await client.get("/kpis", params={**query, "payer": "SUMMIT"})).json()
    assert list(one_payer["by_payer"]) == ["SUMMIT"]
    assert one_payer["totals"]["clean_claim_rate"]["submitted"] == 1

    metrics = ""

    async def gauges_set() -> bool:
        nonlocal metrics
        metrics = (await client.get("/metrics")).text
        return 'rcm_kpi_clean_claim_rate{payer="ACME01"} 0.5' in metrics

    await eventually(gauges_set, timeout_s=30)
    assert 'rcm_kpi_denial_rate{payer="SUMMIT"} 1.0' in metrics
    assert 'rcm_kpi_denials{category="coding",payer="all"} 1.0' in metrics
    assert 'rcm_kpi_ar_cents{bucket="0-30",payer="all"} 50000.0' in metrics
    assert 'rcm_kpi_days_in_ar{payer="all"} 0.8' in metrics
    kpi_lines = [line for line in metrics.splitlines() if line.startswith("rcm_kpi_")]
    assert not [line for line in kpi_lines if A in line or B in line or C in line]


async def test_kpis_are_read_by_the_teams_and_ops_only(
    kpis: tuple[Service, httpx.AsyncClient],
) -> None:
    _, client = kpis
    for role in (Role.OPS, Role.BILLER, Role.COLLECTOR, Role.CODING_LEAD):
        response = await client.get("/kpis", headers=signed_in("someone", role))
        assert response.status_code == 200, role
    for role in (Role.FRONT_DESK, Role.CODER, Role.AUDITOR):
        response = await client.get("/kpis", headers=signed_in("someone", role))
        assert response.status_code == 403, role
    bad = await client.get("/kpis", params={"from": "2025-03-02", "to": "2025-03-01"})
    assert bad.status_code == 422
    too_long = await client.get("/kpis", params={"from": "2024-01-01", "to": "2025-03-01"})
    assert too_long.status_code == 422
