"""Composition root of the collections service (the episode's patient account)."""

from __future__ import annotations

from pydantic import Field
from rcm_shared.service import Service
from rcm_shared.settings import ServiceSettings, load_settings

from . import api
from .domain import Rules
from .handlers import SUBSCRIPTIONS, Handlers
from .store import Accounts


class Settings(ServiceSettings):
    service_name: str = "collections"
    small_balance_cents: int = Field(
        default=500, ge=0, description="A balance up to this is written off, not billed."
    )
    statement_due_days: int = Field(default=30, ge=1, le=365)

    def rules(self) -> Rules:
        return Rules(
            small_balance_cents=self.small_balance_cents,
            statement_due_days=self.statement_due_days,
        )


def build(settings: Settings) -> Service:
    service = Service(settings)
    accounts = Accounts(service)
    handlers = Handlers(accounts.aggregates, settings.rules())
    service.subscribe(handlers, SUBSCRIPTIONS)
    service.api.include_router(api.router(service, accounts))
    return service


def main() -> None:
    build(load_settings(Settings)).run()
