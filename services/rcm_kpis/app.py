"""Composition root of the KPI service (port 8008)."""

from __future__ import annotations

from pydantic import Field
from rcm_shared.service import Service
from rcm_shared.settings import ServiceSettings, load_settings

from . import api
from .handlers import SUBSCRIPTIONS, Handlers
from .metrics import KpiGauges
from .store import KpiStore


class Settings(ServiceSettings):
    service_name: str = "kpis"
    metrics_window_days: int = Field(
        default=30, ge=1, le=366, description="Days the KPI gauges on /metrics cover."
    )
    metrics_interval_s: float = Field(
        default=15.0, gt=0, le=3600, description="How often the KPI gauges are refreshed."
    )


def build(settings: Settings) -> Service:
    service = Service(settings)
    store = KpiStore(service)
    handlers = Handlers(store.episodes, store.rollups, settings.topic_partitions)
    service.subscribe(handlers, SUBSCRIPTIONS)
    service.api.include_router(api.router(store))
    gauges = KpiGauges(service.metrics.registry, store, settings.metrics_window_days)
    service.in_every_replica("kpi-gauges", settings.metrics_interval_s, gauges.refresh)
    return service


def main() -> None:
    build(load_settings(Settings)).run()
