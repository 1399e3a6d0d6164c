"""Composition root of the audit service (port 8007)."""

from __future__ import annotations

from rcm_shared.service import Service
from rcm_shared.settings import ServiceSettings, load_settings

from . import api, store
from .handlers import SUBSCRIPTIONS, Handlers


class Settings(ServiceSettings):
    service_name: str = "audit"


def build(settings: Settings) -> Service:
    service = Service(settings)
    records = store.records(service)
    service.subscribe(Handlers(records), SUBSCRIPTIONS)
    service.api.include_router(api.router(records))
    return service


def main() -> None:
    build(load_settings(Settings)).run()
