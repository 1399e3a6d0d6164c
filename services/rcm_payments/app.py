"""Composition root of the payments service."""

from __future__ import annotations

from pydantic import Field
from rcm_contracts.claims import ClaimSubmitted
from rcm_shared.clearinghouse import ClearinghouseClient, ClearinghouseSettings, X12Archive
from rcm_shared.service import Service
from rcm_shared.settings import load_settings
from rcm_shared.topology import SERVICES

from .api import router
from .handlers import Payments
from .store import PaymentsStore

PORT = next(process.http_port for process in SERVICES if process.name == "payments")


class Settings(ClearinghouseSettings):
    service_name: str = "payments"
    http_port: int = Field(default=PORT, ge=0, le=65535)


def build(settings: Settings) -> Service:
    service = Service(settings)
    clearinghouse = ClearinghouseClient(
        settings.clearinghouse_url,
        settings.trading_partner_id,
        X12Archive(settings.x12_archive_dir, settings.service_name),
    )
    payments = Payments(PaymentsStore(service), clearinghouse, settings.mailbox_poll_s)
    service.consumer.on(ClaimSubmitted)(payments.claim_submitted)
    service.api.include_router(router(payments))
    service.background.append(payments.poll_mailbox)
    service.closers.append(clearinghouse.close)
    return service


def main() -> None:
    build(load_settings(Settings)).run()
