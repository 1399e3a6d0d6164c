"""One method per consumed event and per request: load, decide, save (one write)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from rcm_contracts.claims import ClaimClosed
from rcm_contracts.coding import CodingCompleted, CodingCorrected
from rcm_contracts.collections import (
    AgencyPlacementRequested,
    AgencyRecallRequested,
    AgencyReturnRequested,
    CollectionHoldRequested,
    DunningRequested,
    EstimateRequested,
    PaymentPlanRequested,
    RefundRequested,
    WriteOffRequested,
)
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
from .estimates import Benefits, FeeSchedule, shipped_fee_schedule

log = logging.getLogger(__name__)

R = TypeVar("R")


class Handlers:
    def __init__(
        self,
        accounts: Aggregates[Account],
        rules: domain.Rules,
        clock: Clock = utc_now,
        fees: FeeSchedule | None = None,
    ) -> None:
        self.accounts = accounts
        self.rules = rules
        self.clock = clock
        self.fees = fees or shipped_fee_schedule()

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
                Benefits(
                    payer_id=data.payer_id,
                    copay_cents=data.copay_cents,
                    deductible_remaining_cents=data.deductible_remaining_cents,
                    coinsurance_basis_points=data.coinsurance_basis_points,
                    out_of_pocket_remaining_cents=data.out_of_pocket_remaining_cents,
                ),
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

    async def estimate_requested(self, envelope: Envelope[EstimateRequested]) -> Any:
        data = envelope.data
        procedures = [(p.code, p.units) for p in data.procedures]
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            "estimate-requested",
            lambda account, now: domain.estimate(
                account, data.episode_id, procedures, self.fees, data.requested_by, self.rules, now
            ),
        )
        account = applied.state
        assert account is not None  # a refusal raised
        # a duplicate is answered with what that request made: the latest estimate
        made = applied.result if applied.outcome is Outcome.APPLIED else account.estimates[-1]
        assert made is not None
        return Reply(201, {"episode_id": data.episode_id, **made.model_dump(mode="json")})

    async def dunning_requested(self, envelope: Envelope[DunningRequested]) -> Any:
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"dunning as of {data.as_of}",
            lambda account, now: domain.run_dunning(
                account, data.episode_id, data.as_of, self.rules, now
            ),
        )
        return {"episode_id": data.episode_id, "done": applied.result or "already done"}

    def _placement_reply(self, applied: Applied[Account, Any], episode_id: str) -> Any:
        account = applied.state
        assert account is not None  # a request on no account is refused
        return {"episode_id": episode_id, "account": domain.account_view(account)}

    async def agency_placement_requested(self, envelope: Envelope[AgencyPlacementRequested]) -> Any:
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"agency-placement-requested by {data.requested_by}",
            lambda account, now: domain.place_with_agency(
                account, data.episode_id, data.agency_id, data.requested_by, self.rules, now
            ),
        )
        body = self._placement_reply(applied, data.episode_id)
        return body if applied.outcome is Outcome.UNCHANGED else Reply(201, body)

    async def collection_hold_requested(self, envelope: Envelope[CollectionHoldRequested]) -> Any:
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"collection-hold {data.hold} by {data.requested_by}",
            lambda account, now: domain.hold_collection(
                account, data.episode_id, data.hold, self.rules, now
            ),
        )
        return self._placement_reply(applied, data.episode_id)

    async def agency_recall_requested(self, envelope: Envelope[AgencyRecallRequested]) -> Any:
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"agency-recall by {data.requested_by}",
            lambda account, now: domain.recall_from_agency(
                account, data.episode_id, self.rules, now
            ),
        )
        return self._placement_reply(applied, data.episode_id)

    async def agency_return_requested(self, envelope: Envelope[AgencyReturnRequested]) -> Any:
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"agency-return by {data.requested_by}",
            lambda account, now: domain.return_from_agency(
                account, data.episode_id, self.rules, now
            ),
        )
        return self._placement_reply(applied, data.episode_id)


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
    EstimateRequested: Handlers.estimate_requested,
    DunningRequested: Handlers.dunning_requested,
    AgencyPlacementRequested: Handlers.agency_placement_requested,
    CollectionHoldRequested: Handlers.collection_hold_requested,
    AgencyRecallRequested: Handlers.agency_recall_requested,
    AgencyReturnRequested: Handlers.agency_return_requested,
}
