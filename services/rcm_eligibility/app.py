"""Composition root of the eligibility service (port 8002)."""

from __future__ import annotations

from typing import Literal

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

from . import api, store
from .domain import Requester
from .handlers import SUBSCRIPTIONS, Handlers

X12_TEXT = r"^[A-Za-z0-9](?:[A-Za-z0-9 .,&'/-]*[A-Za-z0-9.])?$"


class Settings(ClearinghouseSettings):
    service_name: str = "eligibility"
    provider_name: str = Field(
        default="RCM MEDICAL GROUP",
        max_length=60,
        pattern=X12_TEXT,
        description="The practice asking (270 NM1*1P, organisation).",
    )
    trace_originator: str = Field(
        default="1123456789",
        pattern=r"^[0-9A-Za-z]{10}$",
        description="TRN03: '1' + the billing organisation's tax id.",
    )
    clearinghouse_receiver_id: str = Field(
        default="CLEARINGHOUSE",
        pattern=r"^[A-Z0-9]{2,15}$",
        description="ISA08/GS03 of the 270s.",
    )
    x12_usage: Literal["T", "P"] = Field(default="T", description="ISA15: test or production.")
    clearinghouse_timeout_s: float = Field(default=10.0, gt=0, le=120)

    def requester(self) -> Requester:
        return Requester(
            provider_name=self.provider_name,
            trace_originator=self.trace_originator,
            sender_id=self.trading_partner_id,
            receiver_id=self.clearinghouse_receiver_id,
            usage=self.x12_usage,
        )


def build(settings: Settings) -> Service:
    service = Service(settings)
    archive = X12Archive(
        settings.x12_archive_dir, settings.service_name, settings.x12_archive_retention_days
    )
    clearinghouse = ClearinghouseClient(
        settings.clearinghouse_url,
        settings.trading_partner_id,
        archive,
        timeout_s=settings.clearinghouse_timeout_s,
    )
    verifications = store.verifications(service)
    handlers = Handlers(
        verifications, store.control_numbers(service), clearinghouse, settings.requester()
    )
    service.subscribe(handlers, SUBSCRIPTIONS)
    service.api.include_router(api.router(verifications))
    service.closers.append(clearinghouse.close)
    # Each process archives to its own disk, so each purges its own.
    service.in_every_replica(PURGE_JOB, PURGE_INTERVAL_S, archive.purge_round)
    return service


def main() -> None:
    build(load_settings(Settings)).run()
