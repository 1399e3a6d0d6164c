"""Composition root of the coding service."""

from __future__ import annotations

import asyncio
import logging

from pydantic import Field
from rcm_edits import load_library
from rcm_shared.service import Service
from rcm_shared.settings import ServiceSettings, load_settings

from . import api, codesets
from .codesets import OutsideWindow
from .handlers import SUBSCRIPTIONS, Handlers
from .store import case_store

log = logging.getLogger(__name__)


class Settings(ServiceSettings):
    service_name: str = "coding"
    queue_limit: int = Field(default=200, ge=1, le=1000, description="Most cases per GET /queue.")
    audit_sample_rate: float = Field(
        default=0.05, ge=0, le=1, description="Share of coded cases sampled for a lead's review."
    )
    icd10_outside_window: OutsideWindow = Field(
        default="nearest",
        description="A date of service outside every shipped ICD-10-CM release: validate "
        "against the nearest release (noted on the case) or refuse.",
    )


def build(settings: Settings) -> Service:
    # A malformed chargemaster raises ChargemasterError here: the service does not start.
    chargemaster = codesets.load_chargemaster()
    # The shipped packs and RCM_EDIT_PACKS_DIR's; a malformed pack stops the start too.
    packs = load_library()
    service = Service(settings)
    cases = case_store(service)
    handlers = Handlers(
        cases.cases,
        cases,
        chargemaster,
        packs=packs,
        coders=cases.coders,
        work=cases,
        sample_rate=settings.audit_sample_rate,
        outside_window=settings.icd10_outside_window,
    )
    service.subscribe(handlers, SUBSCRIPTIONS)
    service.api.include_router(api.router(service, cases, settings.queue_limit))

    async def load_code_sets() -> None:
        """ICD-10-CM takes seconds to load: at start, off the event loop; the service is
        ready once it is loaded."""
        await asyncio.to_thread(codesets.warm_up)
        log.info("ICD-10-CM loaded")

    service.warm_ups["code-sets"] = load_code_sets
    return service


def main() -> None:
    build(load_settings(Settings)).run()
