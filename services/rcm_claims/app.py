"""Composition root of the claims service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from rcm_contracts.coding import CodingCompleted, CodingCorrected
from rcm_contracts.eligibility import EligibilityFailed, EligibilityVerified
from rcm_contracts.payments import PaymentPosted
from rcm_contracts.registration import CoverageUpdated, PatientRegistered
from rcm_shared.clearinghouse import ClearinghouseClient, ClearinghouseSettings, X12Archive
from rcm_shared.errors import is_transient
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
from .handlers import Handlers
from .jobs import BatchSender, MailboxPoller
from .store import ClaimsStore

log = logging.getLogger(__name__)


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
    http_port: int = 8004
    batch_interval_s: float = Field(default=1.0, gt=0, le=3600)
    batch_max_claims: int = Field(default=500, ge=1, le=5000)
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
        return edi.BillingConfig(provider=provider, rendering=rendering)

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


Job = Callable[[], Coroutine[Any, Any, None]]


def every(interval_s: float, name: str, step: Callable[[], Coroutine[Any, Any, Any]]) -> Job:
    """A background loop: a failed round is logged and the next one tries again."""

    async def loop() -> None:
        while True:
            try:
                await step()
            except Exception as error:
                if is_transient(error):
                    log.warning("%s: %r (retrying)", name, error)
                else:
                    log.exception("%s round failed", name)
            await asyncio.sleep(interval_s)

    loop.__name__ = name
    return loop


def build(settings: Settings) -> Service:
    service = Service(settings)
    store = ClaimsStore(service)
    handlers = Handlers(store, settings.billing_config())

    consumer = service.consumer
    consumer.on(PatientRegistered)(handlers.patient_registered)
    consumer.on(CoverageUpdated)(handlers.coverage_updated)
    consumer.on(EligibilityVerified)(handlers.eligibility_verified)
    consumer.on(EligibilityFailed)(handlers.eligibility_failed)
    consumer.on(CodingCompleted)(handlers.coding_completed)
    consumer.on(CodingCorrected)(handlers.coding_corrected)
    consumer.on(PaymentPosted)(handlers.payment_posted)

    service.api.include_router(api.router(handlers))

    archive = X12Archive(settings.x12_archive_dir, settings.service_name)

    def client() -> ClearinghouseClient:
        return ClearinghouseClient(settings.clearinghouse_url, settings.trading_partner_id, archive)

    sender = BatchSender(store, client(), settings.partners(), settings.batch_max_claims)
    poller = MailboxPoller(store, client())
    service.background.append(every(settings.batch_interval_s, "claim-batches", sender.run_once))
    service.background.append(every(settings.mailbox_poll_s, "claims-mailbox", poller.poll_once))
    return service


def main() -> None:
    build(load_settings(Settings)).run()
