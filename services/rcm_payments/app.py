"""Composition root of the payments service."""

from __future__ import annotations

from prometheus_client import Counter
from pydantic import Field
from rcm_shared.clearinghouse import (
    PURGE_INTERVAL_S,
    PURGE_JOB,
    ClearinghouseClient,
    ClearinghouseSettings,
    X12Archive,
)
from rcm_shared.service import Service
from rcm_shared.settings import load_settings

from . import api, deposits, refunds
from .handlers import SUBSCRIPTIONS, Handlers
from .mailbox import SINGLETON, Mailbox
from .store import PaymentsStore


class Settings(ClearinghouseSettings):
    service_name: str = "payments"
    # --- cash (refunds, deposits) ---
    deposit_wait_days: int = Field(
        default=3, ge=0, le=90, description="An 835 payment without a deposit after this is queued."
    )


def build(settings: Settings) -> Service:
    service = Service(settings)
    store = PaymentsStore(service)
    copies = Counter(
        "rcm_remittance_copies",
        "835 transactions a payer sent again (same payer and trace, same content): recorded"
        " on the remittance, not posted.",
        registry=service.metrics.registry,
    )
    handlers = Handlers(
        store.episodes,
        store.remittances,
        store.payments,
        store.unreadable,
        claim_numbers=store.claim_numbers,
        copy_received=copies.inc,
    )
    service.subscribe(handlers, SUBSCRIPTIONS)
    service.api.include_router(api.router(service, store))
    # --- cash: refunds of credit balances and payment-to-deposit reconciliation ---
    refunds.wire(service)
    deposits.wire(service, settings.deposit_wait_days)
    archive = X12Archive(
        settings.x12_archive_dir, settings.service_name, settings.x12_archive_retention_days
    )
    service.api.include_router(api.remittance_files_router(service, store, archive))
    clearinghouse = ClearinghouseClient(
        settings.clearinghouse_url, settings.trading_partner_id, archive
    )
    mailbox = Mailbox(
        clearinghouse,
        service.ask,
        store.unreadable,
        held=lambda: service.ownership.holds(SINGLETON),
    )
    service.singleton(SINGLETON, settings.mailbox_poll_s, mailbox.poll_once)
    service.closers.append(clearinghouse.close)
    # Each process archives to its own disk, so each purges its own.
    service.in_every_replica(PURGE_JOB, PURGE_INTERVAL_S, archive.purge_round)
    return service


def main() -> None:
    build(load_settings(Settings)).run()
