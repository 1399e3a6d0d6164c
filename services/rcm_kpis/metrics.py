"""The KPIs as Prometheus gauges on the service's /metrics, by payer (and `all`).

A job in every replica refreshes them from the read model, so any replica scraped says
the same; Grafana takes `max by (payer)` over replicas. Labels are payer ids, denial
categories and A/R buckets: no patient value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from rcm_shared.clock import Clock, utc_now

from .api import OPEN_CLAIMS_LIMIT
from .store import KpiStore

ALL = "all"


class KpiGauges:
    def __init__(
        self, registry: CollectorRegistry, store: KpiStore, window_days: int, clock: Clock = utc_now
    ) -> None:
        self.store = store
        self.window_days = window_days
        self.clock = clock

        def gauge(name: str, help_text: str, *labels: str) -> Gauge:
            return Gauge(name, help_text, ["payer", *labels], registry=registry)

        window = f"over the last {window_days} days"
        self.clean_claim_rate = gauge("rcm_kpi_clean_claim_rate", f"Clean claim rate {window}.")
        self.denial_rate = gauge("rcm_kpi_denial_rate", f"Initial denial rate (count) {window}.")
        self.denial_dollar_rate = gauge(
            "rcm_kpi_denial_dollar_rate", f"Initial denial rate (billed dollars) {window}."
        )
        self.denials = gauge(
            "rcm_kpi_denials", f"Initial denials by category {window}.", "category"
        )
        self.pos_collections_rate = gauge(
            "rcm_kpi_pos_collections_rate", f"Point-of-service share of patient cash {window}."
        )
        self.verification_rate = gauge(
            "rcm_kpi_insurance_verification_rate",
            f"Episodes verified before the day of service {window}.",
        )
        self.days_in_ar = gauge("rcm_kpi_days_in_ar", "Days in (insurance) A/R, as of now.")
        self.ar_cents = gauge("rcm_kpi_ar_cents", "Open primary claims at gross charges.", "bucket")
        self.all = (
            self.clean_claim_rate,
            self.denial_rate,
            self.denial_dollar_rate,
            self.denials,
            self.pos_collections_rate,
            self.verification_rate,
            self.days_in_ar,
            self.ar_cents,
        )

    async def refresh(self) -> None:
        today = self.clock().date()
        first = today - timedelta(days=self.window_days - 1)
        report = await self.store.report(first, today, None, today, OPEN_CLAIMS_LIMIT)
        for each in self.all:
            each.clear()  # a payer gone from the window is gone from the metrics
        self._rates(ALL, report["totals"])
        for payer, figures in report["by_payer"].items():
            self._rates(payer, figures)
        days = report["days_in_ar"]
        self._set(self.days_in_ar, days["total"]["days"], ALL)
        for payer, figures in days["by_payer"].items():
            self._set(self.days_in_ar, figures["days"], payer)
        aged = report["aged_ar"]
        for payer, buckets in [(ALL, aged["total"]), *aged["by_payer"].items()]:
            for bucket, figures in buckets.items():
                self.ar_cents.labels(payer, bucket).set(figures["cents"])

    def _rates(self, payer: str, figures: Mapping[str, Any]) -> None:
        self._set(self.clean_claim_rate, figures["clean_claim_rate"]["rate"], payer)
        denials = figures["denial_rate"]
        self._set(self.denial_rate, denials["rate"], payer)
        self._set(self.denial_dollar_rate, denials["dollar_rate"], payer)
        for category, counts in denials["by_category"].items():
            self.denials.labels(payer, category).set(counts["denied"])
        self._set(self.pos_collections_rate, figures["pos_collections"]["rate"], payer)
        self._set(self.verification_rate, figures["insurance_verification_rate"]["rate"], payer)

    @staticmethod
    def _set(gauge: Gauge, value: float | None, payer: str) -> None:
        if value is not None:  # no denominator: no sample, rather than a made-up 0
            gauge.labels(payer).set(value)
