"""One method per consumed event and per request: load, decide, save (one write)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from rcm_contracts.claims import ClaimClosed
from rcm_contracts.coding import CodingCompleted, CodingCorrected
from rcm_contracts.collections import PaymentPlanRequested, RefundRequested, WriteOffRequested
from rcm_contracts.eligibility import EligibilityFailed, EligibilityVerified
from rcm_contracts.payments import (
    PatientPaymentReceived,
    PaymentPosted,
    ProviderAdjustmentPosted,
    RefundIssued,
)
from rcm_contracts.registration import AppointmentCancelled, PatientRegistered
from rcm_shared.aggregates import Aggregates, Applied, Decision, Outcome
from rcm_shared.clock import Clock, utc_now
from rcm_shared.envelope import Envelope
from rcm_shared.requests import Reply
from rcm_shared.service import Subscriptions

from . import domain
from .domain import Account

log = logging.getLogger(__name__)

R = TypeVar("R")


class Handlers:
    def __init__(
        self, accounts: Aggregates[Account], rules: domain.Rules, clock: Clock = utc_now
    ) -> None:
        self.accounts = accounts
        self.rules = rules
        self.clock = clock

    async def _apply(
        self,
        episode_id: str,
        cause: str,
        kind: str,
        decide: Callable[[Account | None, datetime], Decision[Account, R]],
    ) -> Applied[Account, R]:
        now = self.clock()
        applied = await self.accounts.apply(
            episode_id, lambda account: decide(account, now), cause=cause
        )
        log.info("%s %s for %s: %s", kind, cause, episode_id, applied.outcome.value)
        return applied

    # --- events ---------------------------------------------------------------------

    async def coding_completed(self, envelope: Envelope[CodingCompleted]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            "coding-completed",
            lambda account, now: domain.record_coding(
                account,
                data.episode_id,
                data.coding_case_id,
                data.total_charge_cents,
                False,
                data.completed_at,
                self.rules,
                now,
            ),
        )

    async def coding_corrected(self, envelope: Envelope[CodingCorrected]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            "coding-corrected",
            lambda account, now: domain.record_coding(
                account,
                data.episode_id,
                data.coding_case_id,
                data.total_charge_cents,
                True,
                data.corrected_at,
                self.rules,
                now,
            ),
        )

    async def eligibility_verified(self, envelope: Envelope[EligibilityVerified]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            "eligibility-verified",
            lambda account, now: domain.record_eligibility(
                account,
                data.episode_id,
                data.rank,
                False,
                data.coverage_id,
                data.verified_at,
                self.rules,
                now,
            ),
        )

    async def eligibility_failed(self, envelope: Envelope[EligibilityFailed]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            "eligibility-failed",
            lambda account, now: domain.record_eligibility(
                account,
                data.episode_id,
                None,
                data.self_pay,
                data.coverage_id or data.reason.value,
                data.checked_at,
                self.rules,
                now,
            ),
        )

    async def patient_registered(self, envelope: Envelope[PatientRegistered]) -> None:
        data = envelope.data  # only the guarantor id is kept: no names in collections
        await self._apply(
            data.episode_id,
            envelope.id,
            "patient-registered",
            lambda account, now: domain.record_guarantor(
                account, data.episode_id, data.guarantor_id, self.rules, now
            ),
        )

    async def payment_posted(self, envelope: Envelope[PaymentPosted]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            f"payment-posted {data.posting_id}",
            lambda account, now: domain.record_posting(account, data, self.rules, now),
        )

    async def claim_closed(self, envelope: Envelope[ClaimClosed]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            f"claim-closed #{data.sequence}",
            lambda account, now: domain.record_claim_closed(account, data, self.rules, now),
        )

    async def patient_payment_received(self, envelope: Envelope[PatientPaymentReceived]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            f"patient-payment {data.payment_id}",
            lambda account, now: domain.record_patient_payment(account, data, self.rules, now),
        )

    async def refund_issued(self, envelope: Envelope[RefundIssued]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            f"refund {data.refund_id}",
            lambda account, now: domain.record_refund(account, data, self.rules, now),
        )

    async def provider_adjustment_posted(
        self, envelope: Envelope[ProviderAdjustmentPosted]
    ) -> None:
        data = envelope.data
        if data.episode_id is None:  # provider-level: deposits reconcile it, not an account
            return
        await self._apply(
            data.episode_id,
            envelope.id,
            f"provider-adjustment {data.adjustment_id}",
            lambda account, now: domain.record_provider_adjustment(account, data, self.rules, now),
        )

    async def appointment_cancelled(self, envelope: Envelope[AppointmentCancelled]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            "appointment-cancelled",
            lambda account, now: domain.record_cancellation(
                account, data.episode_id, self.rules, now
            ),
        )

    # --- requests -------------------------------------------------------------------
    # 201 when the request made the plan or write-off (a duplicate is that same request,
    # answered from the state), 200 when it existed already.

    async def payment_plan_requested(self, envelope: Envelope[PaymentPlanRequested]) -> Any:
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            "payment-plan-requested",
            lambda account, now: domain.create_payment_plan(
                account, data.episode_id, data.installments, self.rules, now
            ),
        )
        plan = applied.result
        if applied.outcome is Outcome.DUPLICATE and applied.state is not None:
            plan = applied.state.plan
        assert plan is not None  # every outcome but a refusal has the plan
        body = {"episode_id": data.episode_id, **plan.model_dump(mode="json")}
        return body if applied.outcome is Outcome.UNCHANGED else Reply(201, body)

    async def write_off_requested(self, envelope: Envelope[WriteOffRequested]) -> Any:
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"write-off-requested by {data.requested_by}",
            lambda account, now: domain.write_off(
                account,
                data.episode_id,
                data.amount_cents,
                data.reason,
                data.requested_by,
                data.write_off_id,
                self.rules,
                now,
            ),
        )
        record, account = applied.result, applied.state
        assert account is not None  # a request on no account is refused
        if applied.outcome is Outcome.DUPLICATE:
            record = domain.written_off(
                account, data.amount_cents, data.reason, data.requested_by, data.write_off_id
            )
        assert record is not None
        body = {
            "write_off": record.model_dump(mode="json"),
            "account": domain.account_view(account),
        }
        return body if applied.outcome is Outcome.UNCHANGED else Reply(201, body)

    async def refund_requested(self, envelope: Envelope[RefundRequested]) -> Any:
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"refund-requested by {data.requested_by}",
            lambda account, now: domain.approve_refund(
                account,
                data.episode_id,
                data.amount_cents,
                data.recipient,
                data.reason,
                data.requested_by,
                self.rules,
                now,
            ),
        )
        refund, account = applied.result, applied.state
        assert account is not None  # a request on no account is refused
        if applied.outcome is Outcome.DUPLICATE:
            refund = domain.approved_refund(
                account, data.amount_cents, data.recipient, data.reason, data.requested_by
            )
        assert refund is not None
        body = {"refund": refund.model_dump(mode="json"), "account": domain.account_view(account)}
        return Reply(201, body)


SUBSCRIPTIONS: Subscriptions[Handlers] = {
    CodingCompleted: Handlers.coding_completed,
    CodingCorrected: Handlers.coding_corrected,
    EligibilityVerified: Handlers.eligibility_verified,
    EligibilityFailed: Handlers.eligibility_failed,
    PatientRegistered: Handlers.patient_registered,
    PaymentPosted: Handlers.payment_posted,
    ClaimClosed: Handlers.claim_closed,
    PatientPaymentReceived: Handlers.patient_payment_received,
    RefundIssued: Handlers.refund_issued,
    ProviderAdjustmentPosted: Handlers.provider_adjustment_posted,
    AppointmentCancelled: Handlers.appointment_cancelled,
    PaymentPlanRequested: Handlers.payment_plan_requested,
    WriteOffRequested: Handlers.write_off_requested,
    RefundRequested: Handlers.refund_requested,
}
