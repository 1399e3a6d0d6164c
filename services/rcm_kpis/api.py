"""HTTP for leaders, billers, collectors and ops: the KPIs, read only.

The figures hold ids of payers and counts and money, never a patient value.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from rcm_shared.auth import Role, allow
from rcm_shared.clock import Clock, utc_now
from rcm_shared.errors import Invalid

from .store import KpiStore

READERS = allow(Role.OPS, Role.BILLER, Role.COLLECTOR, Role.CODING_LEAD)
DEFAULT_DAYS = 30
MAX_DAYS = 366
# Episodes with an open claim read for the aged A/R: two small fields each.
OPEN_CLAIMS_LIMIT = 100_000
PAYER = r"^[A-Za-z0-9._:-]{1,64}$"


def router(store: KpiStore, clock: Clock = utc_now) -> APIRouter:
    api = APIRouter(tags=["kpis"])

    @api.get("/kpis", dependencies=[Depends(READERS)])
    async def kpis(
        from_: Annotated[
            date | None, Query(alias="from", description="First day (UTC); default 29 days ago.")
        ] = None,
        to: Annotated[date | None, Query(description="Last day (UTC); default today.")] = None,
        payer: Annotated[
            str | None, Query(pattern=PAYER, description="One payer's id, e.g. ACME01.")
        ] = None,
    ) -> dict[str, Any]:
        """Clean claim rate, denial rate, point-of-service collections and insurance
        verification rate of the days from..to, in total, per payer and per day; days
        in A/R and aged A/R as of today; cost to collect is not computable (no cost
        data). Definitions: the service's README section and rcm_kpis.domain."""
        today = clock().date()
        last = to or today
        first = from_ or last - timedelta(days=DEFAULT_DAYS - 1)
        if first > last:
            raise Invalid("from must not be after to")
        if (last - first).days >= MAX_DAYS:
            raise Invalid(f"at most {MAX_DAYS} days at once")
        return await store.report(first, last, payer, today, OPEN_CLAIMS_LIMIT)

    return api
