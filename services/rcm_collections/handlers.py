"""One function per consumed event and per command: load, decide, save (one write)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from rcm_contracts.claims import ClaimClosed
from rcm_contracts.coding import CodingCompleted, CodingCorrected
from rcm_contracts.collections import WriteOffReason
from rcm_contracts.eligibility import EligibilityFailed, EligibilityVerified
from rcm_contracts.payments import PatientPaymentReceived, PaymentPosted, RefundIssued
from rcm_contracts.registration import AppointmentCancelled, PatientRegistered
from rcm_shared.envelope import Envelope
from rcm_shared.store import Change, Document, Outcome

from . import domain
from .store import Accounts

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Handlers:
    def __init__(self, accounts: Accounts, rules: domain.Rules, clock: Clock = utc_now) -> None:
        self.accounts = accounts
        self.rules = rules
        self.clock = clock

    async def _apply(
        self,
        episode_id: str,
        event_id: str,
        kind: str,
        decide: Callable[[Document | None, datetime], Change | None],
    ) -> Outcome:
        now = self.clock()
        outcome = await self.accounts.aggregates.apply(
            episode_id, lambda document: decide(document, now), event_id=event_id
        )
        log.info("%s %s for %s: %s", kind, event_id, episode_id, outcome.value)
        return outcome

    # --- events ---------------------------------------------------------------------

    async def coding_completed(self, envelope: Envelope[CodingCompleted]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            "coding-completed",
            lambda document, now: domain.record_coding(
                document,
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
            lambda document, now: domain.record_coding(
                document,
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
            lambda document, now: domain.record_eligibility(
                document,
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
            lambda document, now: domain.record_eligibility(
                document,
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
            lambda document, now: domain.record_guarantor(
                document, data.episode_id, data.guarantor_id, self.rules, now
            ),
        )

    async def payment_posted(self, envelope: Envelope[PaymentPosted]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            f"payment-posted {data.posting_id}",
            lambda document, now: domain.record_posting(document, data, self.rules, now),
        )

    async def claim_closed(self, envelope: Envelope[ClaimClosed]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            f"claim-closed #{data.sequence}",
            lambda document, now: domain.record_claim_closed(document, data, self.rules, now),
        )

    async def patient_payment_received(self, envelope: Envelope[PatientPaymentReceived]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            f"patient-payment {data.payment_id}",
            lambda document, now: domain.record_patient_payment(document, data, self.rules, now),
        )

    async def refund_issued(self, envelope: Envelope[RefundIssued]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            f"refund {data.refund_id}",
            lambda document, now: domain.record_refund(document, data, self.rules, now),
        )

    async def appointment_cancelled(self, envelope: Envelope[AppointmentCancelled]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            "appointment-cancelled",
            lambda document, now: domain.record_cancellation(
                document, data.episode_id, self.rules, now
            ),
        )

    # --- commands -------------------------------------------------------------------

    async def create_payment_plan(
        self, episode_id: str, installments: int
    ) -> tuple[domain.PaymentPlan, bool]:
        """The plan, and whether this request created it (False: it existed already)."""
        now = self.clock()
        decisions: list[domain.PlanDecision] = []

        def decide(document: Document | None) -> Change | None:
            decisions.append(
                domain.create_payment_plan(document, episode_id, installments, self.rules, now)
            )
            return decisions[-1].change

        outcome = await self.accounts.aggregates.apply(episode_id, decide)
        return decisions[-1].plan, outcome is Outcome.APPLIED

    async def write_off(
        self,
        episode_id: str,
        amount_cents: int,
        reason: WriteOffReason,
        user_id: str,
        write_off_id: str | None,
    ) -> tuple[domain.WriteOff, bool]:
        """The write-off, and whether this request made it (False: the same one again)."""
        now = self.clock()
        decisions: list[domain.WriteOffDecision] = []

        def decide(document: Document | None) -> Change | None:
            decisions.append(
                domain.write_off(
                    document,
                    episode_id,
                    amount_cents,
                    reason,
                    user_id,
                    write_off_id,
                    self.rules,
                    now,
                )
            )
            return decisions[-1].change

        outcome = await self.accounts.aggregates.apply(episode_id, decide)
        log.info("write-off on %s by %s: %s", episode_id, user_id, outcome.value)
        return decisions[-1].write_off, outcome is Outcome.APPLIED
