"""The KPI table that ends `rcm run`'s summary, from the kpis service's GET /kpis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from .timeline import dollars

COLUMNS = (
    "clean claims",
    "denials",
    "denied $",
    "days in A/R",
    "open A/R",
    "POS collections",
    "verified before day / visit",
)


def percent(value: Any) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.1%}"


def row(figures: Mapping[str, Any], receivable: Mapping[str, Any] | None) -> list[str]:
    verification = figures["insurance_verification_rate"]
    days = (receivable or {}).get("days")
    ar = (receivable or {}).get("ar_cents")
    return [
        percent(figures["clean_claim_rate"]["rate"]),
        percent(figures["denial_rate"]["rate"]),
        percent(figures["denial_rate"]["dollar_rate"]),
        "-" if days is None else f"{days:.1f}",
        "-" if ar is None else dollars(ar),
        percent(figures["pos_collections"]["rate"]),
        f"{percent(verification['rate'])} / {percent(verification['before_visit_rate'])}",
    ]


def kpi_table(report: Any) -> Table | str:
    """Per payer and in total; a line saying why when the service did not answer."""
    if not isinstance(report, Mapping) or "totals" not in report:
        error = report.get("error") if isinstance(report, Mapping) else None
        return f"[yellow]KPIs: the kpis service did not answer ({error or 'no report'})[/]"
    title = f"KPIs (HFMA MAP Keys), {report['from']} to {report['to']}; A/R as of {report['as_of']}"
    table = Table(title=title, title_justify="left")
    table.add_column("payer")
    for name in COLUMNS:
        table.add_column(name, justify="right")
    receivables = report["days_in_ar"]["by_payer"]
    for payer, figures in report["by_payer"].items():
        table.add_row(payer, *row(figures, receivables.get(payer)))
    table.add_row("all", *row(report["totals"], report["days_in_ar"]["total"]), style="bold")
    table.caption = f"cost to collect: {report['totals']['cost_to_collect']['status']}"
    return table
