"""The Grafana board of the KPIs shows every KPI gauge and only metrics the service has."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from rcm_kpis.metrics import KpiGauges

from tests.contract.test_compose import promql_metric_names

BOARD = Path(__file__).parents[3] / "deploy" / "grafana" / "dashboards" / "rcm-kpis.json"


def kpi_metric_names() -> set[str]:
    registry = CollectorRegistry()
    KpiGauges(registry, store=None, window_days=30)  # type: ignore[arg-type]
    return {family.name for family in registry.collect()}


def expressions(board: dict[str, Any]) -> list[str]:
    found = [
        target["expr"]
        for panel in board["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in board["templating"]["list"]:
        found.append(variable["query"]["query"].removeprefix("label_values(").split(",")[0])
    return found


def test_the_board_uses_the_kpi_gauges_and_shows_each_of_them() -> None:
    board = json.loads(BOARD.read_text(encoding="utf-8"))
    known = kpi_metric_names()
    shown: set[str] = set()
    for expression in expressions(board):
        names = promql_metric_names(expression)
        assert names, expression
        assert names <= known, f"unknown {sorted(names - known)} in {expression!r}"
        shown |= names
    assert shown == known
    assert {panel["datasource"]["uid"] for panel in board["panels"] if "datasource" in panel} == {
        "prometheus"
    }


def test_no_gauge_is_labelled_with_anything_but_payer_category_or_bucket() -> None:
    registry = CollectorRegistry()
    gauges = KpiGauges(registry, store=None, window_days=30)  # type: ignore[arg-type]
    for gauge in gauges.all:
        assert set(gauge._labelnames) <= {"payer", "category", "bucket"}
