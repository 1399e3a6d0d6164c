"""Composition root of the claims service."""

from __future__ import annotations

from typing import Literal

from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rcm_edits import load_library
from rcm_shared.clearinghouse import (
    PURGE_INTERVAL_S,
    PURGE_JOB,
    ClearinghouseClient,
    ClearinghouseSettings,
    X12Archive,
)
from rcm_shared.clock import Clock, utc_now
from rcm_shared.service import Service
from rcm_shared.settings import load_settings
from rcm_x12 import (
    Address,
    BillingProvider,
    Contact,
    Receiver,
    RenderingProvider,
    Submitter,
)

from . import api, edi
from .appeal_client import AppealSender
from .deadline_watch import DeadlineWatch
from .documents import DocumentArchive
from .domain.deadlines import (
    DEFAULT_DEADLINES,
    DEFAULT_TERMS,
    DEFAULT_WARNING_DAYS,
    DeadlineTable,
    PayerDeadlines,
)
from .handlers import SUBSCRIPTIONS, Handlers
from .jobs import BatchSender, MailboxPoller
from .store import ClaimsStore


class ProviderName(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    last_name: str = Field(min_length=1, max_length=60)
    first_name: str | None = Field(default=None, max_length=35)


# The rendering NPIs of docs/flow.md; an NPI not listed is billed without loop 2310B.
DEFAULT_RENDERING = {
    "1234567893": ProviderName(last_name="OKAFOR", first_name="GRACE"),
    "1987654328": ProviderName(last_name="LINDQVIST", first_name="ERIK"),
    "1543219871": ProviderName(last_name="RAMIREZ", first_name="SOFIA"),
    "1678901236": ProviderName(last_name="CHEN", first_name="DAVID"),
}


class Settings(ClearinghouseSettings):
    service_name: str = "claims"
    batch_interval_s: float = Field(default=1.0, gt=0, le=3600)
    batch_max_claims: int = Field(default=500, ge=1, le=5000)
    batch_sweep_interval_s: float = Field(
        default=30.0, gt=0, le=3600, description="How often the sender looks for stray claims."
    )
    work_queue_limit: int = Field(
        default=1000, ge=1, le=100_000, description="Most episodes GET /work-queue reads."
    )
    stats_limit: int = Field(
        default=1_000_000, ge=1, description="Most episodes GET /stats counts."
    )
    billing_provider_name: str = "RCM MEDICAL GROUP"
    billing_provider_npi: str = "1100000003"
    billing_provider_tax_id: str = "123456789"
    billing_provider_address: Address = Address(
        line1="100 MAIN ST", city="SPRINGFIELD", state="MA", postal_code="01103"
    )
    billing_provider_taxonomy: str | None = None
    submitter_name: str = "RCM MEDICAL GROUP"
    submitter_contact: Contact = Contact(name="BILLING OFFICE", phone="4135550100")
    clearinghouse_name: str = "RCM CLEARINGHOUSE"
    clearinghouse_id: str = Field(default="RCMCLEARING", pattern=r"^[A-Z0-9]{2,15}$")
    x12_usage: Literal["T", "P"] = "P"
    rendering_providers: dict[str, ProviderName] = Field(default_factory=lambda: DEFAULT_RENDERING)
    # --- appeals and deadlines (domain/deadlines.py, documents.py) ---
    payer_deadlines: dict[str, PayerDeadlines] = Field(
        default_factory=lambda: dict(DEFAULT_DEADLINES),
        description="Per payer: timely_filing_days, appeal_days and appeal_answer_days.",
    )
    deadline_warning_days: int = Field(default=DEFAULT_WARNING_DAYS, ge=0, le=365)
    deadline_watch_interval_s: float = Field(default=3600.0, gt=0, le=86400)

    def deadline_table(self) -> DeadlineTable:
        return DeadlineTable(self.payer_deadlines, DEFAULT_TERMS, self.deadline_warning_days)

    @model_validator(mode="after")
    def _x12_parties(self) -> Settings:
        self.billing_config()  # fail fast: NPIs (check digit), tax id, names
        self.partners()
        return self

    def billing_config(self) -> edi.BillingConfig:
        provider = BillingProvider(
            name=self.billing_provider_name,
            npi=self.billing_provider_npi,
            tax_id=self.billing_provider_tax_id,
            address=self.billing_provider_address,
            taxonomy=self.billing_provider_taxonomy,
        )
        rendering = {
            npi: RenderingProvider(last_name=name.last_name, first_name=name.first_name, npi=npi)
            for npi, name in self.rendering_providers.items()
        }
        return edi.BillingConfig(provider=provider, rendering=rendering, edit_packs=load_library())

    def partners(self) -> edi.Partners:
        return edi.Partners(
            submitter=Submitter(
                name=self.submitter_name,
                identifier=self.trading_partner_id,
                contact=self.submitter_contact,
            ),
            receiver=Receiver(name=self.clearinghouse_name, identifier=self.clearinghouse_id),
            sender_id=self.trading_partner_id,
            receiver_id=self.clearinghouse_id,
            usage=self.x12_usage,
        )


def build(settings: Settings, clock: Clock = utc_now) -> Service:
    service = Service(settings)
    store = ClaimsStore(service)
    archive = X12Archive(
        settings.x12_archive_dir, settings.service_name, settings.x12_archive_retention_days
    )

    def client() -> ClearinghouseClient:
        return ClearinghouseClient(settings.clearinghouse_url, settings.trading_partner_id, archive)

    sender = BatchSender(
        store,
        client(),
        settings.partners(),
        service.ownership,
        settings.batch_max_claims,
        sweep_interval_s=settings.batch_sweep_interval_s,
    )
    table = settings.deadline_table()
    alerts = Counter(
        "rcm_claims_deadline_alerts",
        "Deadline-approaching alerts raised, by kind (timely-filing, appeal).",
        ["kind"],
        registry=service.metrics.registry,
    )
    handlers = Handlers(
        store.episodes,
        settings.billing_config(),
        clock,
        queued=sender.queued,
        deadlines=table,
        alert_raised=lambda kind: alerts.labels(kind=kind).inc(),
    )
    service.subscribe(handlers, SUBSCRIPTIONS)
    service.api.include_router(
        api.router(service, store, settings.work_queue_limit, settings.stats_limit, table)
    )
    documents = DocumentArchive(settings.x12_archive_dir)
    appeals = AppealSender(settings.clearinghouse_url, documents)
    service.api.include_router(api.appeal_router(service, store, appeals))
    watch = DeadlineWatch(store, service.ask, table, clock=clock)
    service.singleton("claims-deadline-watch", settings.deadline_watch_interval_s, watch.run_once)

    # Every replica sends for the partitions it owns (not a singleton); partitions just
    # assigned are swept for what their former owner left.
    service.ownership.on_assigned.append(sender.sweep_soon)
    service.in_every_replica("claim-batches", settings.batch_interval_s, sender.run_once)
    poller = MailboxPoller(store, client(), service.ask)
    service.singleton("claims-mailbox", settings.mailbox_poll_s, poller.poll_once)
    # Each process archives to its own disk, so each purges its own.
    service.in_every_replica(PURGE_JOB, PURGE_INTERVAL_S, archive.purge_round)
    return service


def main() -> None:
    build(load_settings(Settings)).run()
