"""Composition root of the collections service (the episode's patient account)."""

from __future__ import annotations

from pydantic import Field
from rcm_shared.clock import Clock, utc_now
from rcm_shared.service import Service
from rcm_shared.settings import ServiceSettings, load_settings

from . import api
from .domain import DUNNING_JOB, Rules
from .handlers import SUBSCRIPTIONS, Handlers
from .jobs import DunningJob
from .store import Accounts


class Settings(ServiceSettings):
    service_name: str = "collections"
    small_balance_cents: int = Field(
        default=500, ge=0, description="A balance up to this is written off, not billed."
    )
    statement_due_days: int = Field(default=30, ge=1, le=365)
    statement_cycle_days: int = Field(
        default=30, ge=1, le=365, description="Days between statements while a balance is open."
    )
    plan_interval_days: int = Field(default=30, ge=7, le=92)
    plan_grace_days: int = Field(
        default=15, ge=0, le=120, description="Days past due before an installment defaults."
    )
    agency_after_days: int = Field(
        default=30, ge=0, le=365, description="Days after the final notice before placement."
    )
    auto_agency_placement: bool = True
    collection_agency_id: str = Field(default="AGENCY01", pattern=r"^[A-Za-z0-9-]{1,40}$")
    dunning_interval_s: float = Field(default=60.0, gt=0, le=86_400)

    def rules(self) -> Rules:
        return Rules(
            small_balance_cents=self.small_balance_cents,
            statement_due_days=self.statement_due_days,
            statement_cycle_days=self.statement_cycle_days,
            plan_interval_days=self.plan_interval_days,
            plan_grace_days=self.plan_grace_days,
            agency_after_days=self.agency_after_days,
            auto_agency_placement=self.auto_agency_placement,
            collection_agency_id=self.collection_agency_id,
        )


def build(settings: Settings, clock: Clock = utc_now) -> Service:
    service = Service(settings)
    accounts = Accounts(service)
    handlers = Handlers(accounts.aggregates, settings.rules(), clock)
    service.subscribe(handlers, SUBSCRIPTIONS)
    service.api.include_router(api.router(service, accounts))
    dunning = DunningJob(accounts, service.ask, clock)
    service.singleton(DUNNING_JOB, settings.dunning_interval_s, dunning.run_once)
    return service


def main() -> None:
    build(load_settings(Settings)).run()
