"""Composition root of the collections service (the episode's patient account)."""

from __future__ import annotations

from pydantic import Field
from rcm_contracts.claims import ClaimClosed
from rcm_contracts.coding import CodingCompleted, CodingCorrected
from rcm_contracts.eligibility import EligibilityFailed, EligibilityVerified
from rcm_contracts.payments import PatientPaymentReceived, PaymentPosted, RefundIssued
from rcm_contracts.registration import AppointmentCancelled, PatientRegistered
from rcm_shared.service import Service
from rcm_shared.settings import ServiceSettings, load_settings
from rcm_shared.topology import SERVICES

from .api import router
from .domain import Rules
from .handlers import Handlers
from .store import Accounts

PORT = next(process.http_port for process in SERVICES if process.module == "rcm_collections")


class Settings(ServiceSettings):
    service_name: str = "collections"
    http_port: int = Field(default=PORT, ge=0, le=65535)
    small_balance_cents: int = Field(
        default=500, ge=0, description="A balance up to this is written off, not billed."
    )
    statement_due_days: int = Field(default=30, ge=1, le=365)


def build(settings: Settings) -> Service:
    service = Service(settings)
    accounts = Accounts(service)
    handlers = Handlers(
        accounts,
        Rules(
            small_balance_cents=settings.small_balance_cents,
            statement_due_days=settings.statement_due_days,
        ),
    )
    on = service.consumer.on
    on(CodingCompleted)(handlers.coding_completed)
    on(CodingCorrected)(handlers.coding_corrected)
    on(EligibilityVerified)(handlers.eligibility_verified)
    on(EligibilityFailed)(handlers.eligibility_failed)
    on(PatientRegistered)(handlers.patient_registered)
    on(PaymentPosted)(handlers.payment_posted)
    on(ClaimClosed)(handlers.claim_closed)
    on(PatientPaymentReceived)(handlers.patient_payment_received)
    on(RefundIssued)(handlers.refund_issued)
    on(AppointmentCancelled)(handlers.appointment_cancelled)
    service.api.include_router(router(handlers, accounts))
    return service


def main() -> None:
    build(load_settings(Settings)).run()
