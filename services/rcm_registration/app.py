"""Composition root of the registration service (port 8001)."""

from __future__ import annotations

from rcm_shared.service import Service
from rcm_shared.settings import ServiceSettings, load_settings

from . import api
from .handlers import SUBSCRIPTIONS, Handlers
from .store import episodes


class Settings(ServiceSettings):
    service_name: str = "registration"


def build(settings: Settings) -> Service:
    service = Service(settings)
    store = episodes(service)
    service.subscribe(Handlers(store), SUBSCRIPTIONS)
    service.api.include_router(api.router(service, store))
    return service


def main() -> None:
    build(load_settings(Settings)).run()
