"""The payer simulator: payers and a clearinghouse standing in for the outside world.

Not one of the six services: it uses neither Kafka nor MongoDB and keeps its state
(members' deductibles, claims, pending 277CAs and 835s, mailboxes) in memory, so a
restart starts afresh, but for its answers to appeals: a file beside the X12 archive
(`<RCM_X12_ARCHIVE_DIR>/payer-simulator-appeals/`). Its answers are deterministic from
RCM_SIMULATOR_SEED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict
from rcm_shared.clearinghouse import (
    DEFAULT_RETENTION_DAYS,
    PURGE_INTERVAL_S,
    RetentionDays,
    X12Archive,
)
from rcm_shared.redact import describe
from rcm_shared.settings import ServiceSettings, load_settings
from rcm_shared.topology import PAYER_SIMULATOR

from . import api
from .appeals import AnswerBook
from .simulator import Simulator

log = logging.getLogger(__name__)


class Settings(ServiceSettings):
    # Field names work beside the RCM_SIMULATOR_* names (tests pass them as arguments).
    model_config = SettingsConfigDict(**{**ServiceSettings.model_config, "populate_by_name": True})

    service_name: str = PAYER_SIMULATOR.name
    seed: int = Field(default=20261125, validation_alias=AliasChoices("RCM_SIMULATOR_SEED"))
    ack_delay_s: float = Field(
        default=0.2,
        ge=0,
        le=3600,
        validation_alias=AliasChoices("RCM_SIMULATOR_ACK_DELAY_S"),
        description="From an 837P batch to its 277CA.",
    )
    remit_delay_s: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        validation_alias=AliasChoices("RCM_SIMULATOR_REMIT_DELAY_S"),
        description="From a claim's acceptance (277CA) to its 835.",
    )
    x12_archive_dir: Path = Field(
        default=Path("var/x12"),
        validation_alias=AliasChoices("RCM_X12_ARCHIVE_DIR"),
        description="Every X12 document received or sent is kept here verbatim.",
    )
    x12_archive_retention_days: RetentionDays = DEFAULT_RETENTION_DAYS


class _StatsCollector(Collector):
    """Exposes the run counters to Prometheus as they are read."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    def collect(self) -> Iterator[Metric]:
        stats = self.simulator.stats
        eligibility = CounterMetricFamily(
            "rcm_simulator_eligibility", "270s answered, by outcome.", labels=["outcome"]
        )
        for outcome, count in stats.eligibility.items():
            eligibility.add_metric([outcome], count)
        yield eligibility
        for name, help_text, value in (
            ("claims_received", "Claims received in 837P batches.", stats.claims_received),
            ("claims_accepted", "Claims accepted by a 277CA.", stats.accepted),
            ("claims_rejected", "Claims rejected by a 277CA.", sum(stats.rejected.values())),
            ("claims_paid", "Claims adjudicated and paid (835).", stats.paid),
            ("claims_denied", "Claims denied (835).", sum(stats.denied.values())),
            ("claims_reversed", "Earlier adjudications reversed (835).", stats.reversed),
            ("paid_cents", "Money paid on claims, in cents.", stats.paid_cents),
            ("remittances", "835 transactions sent.", stats.remittances),
        ):
            yield CounterMetricFamily(f"rcm_simulator_{name}", help_text, value=value)
        yield GaugeMetricFamily(
            "rcm_simulator_mailbox_waiting",
            "Documents not yet acknowledged.",
            value=len(self.simulator.mailbox),
        )


def build(settings: Settings) -> FastAPI:
    """The composition root: the simulator, its clock (a background task) and its API."""
    archive = X12Archive(
        settings.x12_archive_dir, settings.service_name, settings.x12_archive_retention_days
    )
    simulator = Simulator(
        seed=settings.seed,
        ack_delay_s=settings.ack_delay_s,
        remit_delay_s=settings.remit_delay_s,
        archive=archive,
        answers=AnswerBook(settings.x12_archive_dir / f"{settings.service_name}-appeals"),
    )
    registry = CollectorRegistry()
    registry.register(_StatsCollector(simulator))
    clock: list[asyncio.Task[None]] = []

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        clock.append(asyncio.create_task(simulator.run(), name="simulator-clock"))
        purging = asyncio.create_task(purge(archive), name="x12-archive-purge")
        log.info(
            "%s ready on %s:%s (seed %s)",
            settings.service_name,
            settings.http_host,
            settings.http_port,
            settings.seed,
        )
        try:
            yield
        finally:
            task = clock.pop()
            task.cancel()
            purging.cancel()
            await asyncio.gather(task, purging, return_exceptions=True)

    app = FastAPI(title=f"rcm {settings.service_name}", lifespan=lifespan)
    app.state.simulator = simulator
    app.include_router(api.router(simulator))

    @app.get("/health/live", tags=["operations"])
    async def live() -> dict[str, str]:
        return {"status": "alive", "service": settings.service_name}

    @app.get("/health/ready", tags=["operations"])
    async def ready(response: Response) -> dict[str, Any]:
        running = bool(clock) and not clock[0].done()
        response.status_code = 200 if running else 503
        return {"status": "ready" if running else "not-ready", "checks": {"clock": running}}

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def purge(archive: X12Archive) -> None:
    """The archive's purge, every PURGE_INTERVAL_S; a failed round is retried in the next."""
    while True:
        try:
            await archive.purge_round()
        except Exception as error:
            log.warning("x12 archive purge failed: %s", describe(error))
        await asyncio.sleep(PURGE_INTERVAL_S)


def main() -> None:
    settings = load_settings(Settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        build(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        lifespan="on",
    )
