"""The KPI table at the end of `rcm run`'s summary."""

from __future__ import annotations

from datetime import date

from rcm_kpis import domain
from rcm_kpis.domain import OpenClaim, Rollup
from rcm_ops.kpi_summary import kpi_table
from rich.console import Console

from .support import T0


def report() -> dict[str, object]:
    rollups = [
        Rollup(
            day=date(2025, 3, 3),
            payer="ACME01",
            partition=1,
            counts={"claims_submitted": 4, "claims_clean": 3, "gross_charges_cents": 40_000},
        ),
    ]
    open_ar = [
        OpenClaim(claim_id="E1-1", payer="ACME01", charge_cents=20_000, first_submitted_at=T0)
    ]
    return {
        "from": "2025-03-01",
        "to": "2025-03-03",
        **domain.summed(rollups),
        **domain.receivables(open_ar, {"ACME01": 40_000}, date(2025, 3, 3), date(2025, 3, 3)),
    }


def rendered(table: object) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_the_table_has_a_row_per_payer_and_the_total() -> None:
    text = rendered(kpi_table(report()))
    acme = next(line for line in text.splitlines() if "ACME01" in line)
    assert "75.0%" in acme  # 3 of 4 claims clean
    assert "0.5" in acme  # $200.00 open over $400.00 a day
    assert "$200.00" in acme
    assert any(line.strip("│┃ ").startswith("all ") for line in text.splitlines())
    assert "not computable: no cost data" in text


def test_a_service_that_did_not_answer_is_said_so() -> None:
    assert "did not answer (HTTP 503)" in rendered(kpi_table({"error": "HTTP 503"}))
