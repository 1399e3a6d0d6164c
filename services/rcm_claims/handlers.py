"""One method per consumed event and per request: load, decide, save (one write).

Every change of an episode is one `apply` on the aggregate port (state and outbox
together), made by the replica that owns the episode; a redelivered cause changes
nothing. A change that leaves a claim to send tells the sender (`queued`), which reads
that episode by id in its next round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from rcm_contracts.claims import (
    AcknowledgmentRequested,
    AppealDecisionRequested,
    AppealOverdueRequested,
    AppealRequested,
    AppealResendRequested,
    ClaimCloseRequested,
    ClaimCorrectionRequested,
    ClaimFrequency,
    ClaimVoidRequested,
    DeadlineAlertRequested,
    DenialAcceptanceRequested,
    FollowUpRequested,
    WorkAssignmentRequested,
)
from rcm_contracts.coding import CodingCompleted, CodingCorrected
from rcm_contracts.eligibility import EligibilityFailed, EligibilityVerified
from rcm_contracts.payments import PaymentPosted
from rcm_contracts.registration import CoverageUpdated, PatientRegistered
from rcm_shared.aggregates import Aggregates, Applied, Decision, Outcome
from rcm_shared.clock import Clock, utc_now
from rcm_shared.envelope import Envelope
from rcm_shared.errors import NotFound
from rcm_shared.requests import Reply
from rcm_shared.service import Subscriptions

from . import domain
from .domain import Episode, appeals, deadlines, followup, history
from .domain.biller import assign_work
from .domain.deadlines import DeadlineTable
from .domain.edits import with_edit_failures as edit_failures
from .edi import AckVerdict, BillingConfig

log = logging.getLogger(__name__)

R = TypeVar("R")


def episode_of(claim_id: str) -> str:
    """Claim ids are `<episode_id>-<n>`."""
    episode_id, _, number = claim_id.rpartition("-")
    if not episode_id or not number.isdigit():
        raise NotFound(f"claim {claim_id} not found")
    return episode_id


class Handlers:
    def __init__(
        self,
        episodes: Aggregates[Episode],
        config: BillingConfig,
        clock: Clock = utc_now,
        queued: Callable[[str], None] = lambda episode_id: None,
        deadlines: DeadlineTable | None = None,
        alert_raised: Callable[[str], None] = lambda kind: None,
    ) -> None:
        self.episodes = episodes
        self.config = config
        self.clock = clock
        self.queued = queued
        self.deadlines = deadlines or DeadlineTable()
        self.alert_raised = alert_raised

    async def _apply(
        self,
        episode_id: str,
        cause: str,
        kind: str,
        decide: Callable[[Episode | None, datetime], Decision[Episode, R]],
    ) -> Applied[Episode, R]:
        now = self.clock()

        def decide_and_tell_holds(episode: Episode | None) -> Decision[Episode, R]:
            decision = decide(episode, now)
            held = edit_failures(episode, decision.state, now)  # claims the scrub held
            if not held:
                return decision
            return Decision(decision.state, [*decision.events, *held], decision.result)

        applied = await self.episodes.apply(episode_id, decide_and_tell_holds, cause=cause)
        log.debug("%s %s for %s: %s", kind, cause, episode_id, applied.outcome.value)
        if applied.state is not None and applied.state.unsent:
            self.queued(episode_id)
        return applied

    # --- events ---------------------------------------------------------------------

    async def patient_registered(self, envelope: Envelope[PatientRegistered]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            "patient-registered",
            lambda episode, now: domain.patient_registered(episode, data, self.config, now),
        )

    async def coverage_updated(self, envelope: Envelope[CoverageUpdated]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            "coverage-updated",
            lambda episode, now: domain.coverage_updated(episode, data, self.config, now),
        )

    async def eligibility_verified(self, envelope: Envelope[EligibilityVerified]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            "eligibility-verified",
            lambda episode, now: domain.eligibility_verified(episode, data, self.config, now),
        )

    async def eligibility_failed(self, envelope: Envelope[EligibilityFailed]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            "eligibility-failed",
            lambda episode, now: domain.eligibility_failed(episode, data, self.config, now),
        )

    async def coding_completed(self, envelope: Envelope[CodingCompleted]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            "coding-completed",
            lambda episode, now: domain.coding_completed(episode, data, self.config, now),
        )

    async def coding_corrected(self, envelope: Envelope[CodingCorrected]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            "coding-corrected",
            lambda episode, now: domain.coding_corrected(episode, data, self.config, now),
        )

    async def payment_posted(self, envelope: Envelope[PaymentPosted]) -> None:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            f"payment-posted {data.posting_id}",
            lambda episode, now: domain.payment_posted(episode, data, self.config, now),
        )

    # --- requests -------------------------------------------------------------------
    # Without an Idempotency-Key a second identical command finds the claim closed: 409.
    # With one, a retry is the same request: answered again from the episode as it is.

    async def claim_correction_requested(
        self, envelope: Envelope[ClaimCorrectionRequested]
    ) -> Reply:
        """202 with the new claim and the claim it replaces."""
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"correction of {data.claim_id}",
            lambda episode, now: domain.correct(
                episode,
                data.claim_id,
                data.requested_by,
                data.note,
                self.config,
                now,
                data.changes,
            ),
        )
        result = applied.result
        if result is None:  # the same request again
            result = domain.corrected(_existing(applied.state, data.claim_id), data.claim_id)
        return Reply(
            202,
            {
                "claim_id": result.new_claim_id,
                "replaces_claim_id": result.claim_id,
                "frequency": result.frequency.value if result.frequency else None,
                "changed": list(result.changed),
            },
        )

    async def claim_void_requested(self, envelope: Envelope[ClaimVoidRequested]) -> Reply:
        """202 with the void (frequency 8) and the claim it voids."""
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"void of {data.claim_id}",
            lambda episode, now: domain.void(
                episode, data.claim_id, data.requested_by, data.reason, self.config, now
            ),
        )
        result = applied.result
        if result is None:  # the same request again
            result = domain.voided(_existing(applied.state, data.claim_id), data.claim_id)
        return Reply(
            202,
            {
                "claim_id": result.new_claim_id,
                "voids_claim_id": result.claim_id,
                "frequency": ClaimFrequency.VOID.value,
            },
        )

    async def claim_close_requested(self, envelope: Envelope[ClaimCloseRequested]) -> Reply:
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"closing of {data.claim_id}",
            lambda episode, now: domain.close_claim(
                episode, data.claim_id, data.requested_by, data.note, self.config, now
            ),
        )
        result = applied.result
        if result is None:  # the same request again
            episode = _existing(applied.state, data.claim_id)
            result = domain.closed_by_biller(episode, data.claim_id)
        outcome = result.outcome.value if result.outcome else None
        body = {"claim_id": data.claim_id, "payer_id": result.payer_id, "outcome": outcome}
        return Reply(200, body)

    async def denial_acceptance_requested(
        self, envelope: Envelope[DenialAcceptanceRequested]
    ) -> dict[str, Any]:
        data = envelope.data
        await self._apply(
            data.episode_id,
            envelope.id,
            f"denial acceptance of {data.claim_id}",
            lambda episode, now: domain.accept_denial(
                episode, data.claim_id, data.requested_by, data.note, now
            ),
        )
        return {"claim_id": data.claim_id, "outcome": "denial-accepted"}

    async def acknowledgment_requested(
        self, envelope: Envelope[AcknowledgmentRequested]
    ) -> dict[str, Any]:
        """What a 999 or 277CA says about the episode's claims. A claim still being sent
        (its submission not recorded yet) is answered, not applied: the mailbox reader
        leaves the document for its next poll."""
        data = envelope.data
        answers: dict[int | None, dict[str, AckVerdict]] = {}
        for verdict in data.verdicts:
            answers.setdefault(verdict.interchange_control_number, {})[verdict.claim_id] = (
                AckVerdict(
                    verdict.accepted,
                    tuple(verdict.status_codes),
                    verdict.message,
                    verdict.payer_claim_control_number,
                )
            )
        try:
            applied = await self._apply(
                data.episode_id,
                envelope.id,
                f"{data.stage.value} {data.document_id}",
                lambda episode, now: history.with_answers(
                    episode,
                    domain.acknowledge_each(
                        episode, data.stage, [(v, icn) for icn, v in answers.items()], now
                    ),
                    data,
                    now,
                ),
            )
        except domain.ClaimStillSending as pending:
            log.info("%s waits: claim %s is being sent", data.document_id, pending.claim_id)
            return {"episode_id": data.episode_id, "applied": False, "sending": pending.claim_id}
        applied_now = applied.outcome is not Outcome.UNCHANGED
        return {"episode_id": data.episode_id, "applied": applied_now, "sending": None}

    # --- appeals and deadlines ------------------------------------------------------

    async def appeal_requested(self, envelope: Envelope[AppealRequested]) -> Reply:
        """201 with the appeal (a retry: the appeal as it is)."""
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"appeal {data.appeal_id} of {data.claim_id}",
            lambda episode, now: appeals.file_appeal(episode, data, self.deadlines, now),
        )
        return Reply(201, _appeal_answer(applied, data.claim_id, data.appeal_id))

    async def appeal_decision_requested(
        self, envelope: Envelope[AppealDecisionRequested]
    ) -> dict[str, Any]:
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"decision on appeal {data.appeal_id}",
            lambda episode, now: appeals.record_decision(episode, data, now),
        )
        return _appeal_answer(applied, data.claim_id, data.appeal_id)

    async def appeal_resend_requested(self, envelope: Envelope[AppealResendRequested]) -> Reply:
        """200 with the appeal as recorded (a retry: as it is, not resent twice)."""
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"resending of appeal {data.appeal_id}",
            lambda episode, now: appeals.resend(episode, data, self.deadlines, now),
        )
        return Reply(200, _appeal_answer(applied, data.claim_id, data.appeal_id))

    async def appeal_overdue_requested(
        self, envelope: Envelope[AppealOverdueRequested]
    ) -> dict[str, Any]:
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"overdue appeal {data.appeal_id}",
            lambda episode, now: appeals.mark_overdue(episode, data, self.deadlines, now),
        )
        return _appeal_answer(applied, data.claim_id, data.appeal_id)

    async def deadline_alert_requested(
        self, envelope: Envelope[DeadlineAlertRequested]
    ) -> dict[str, Any]:
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"{data.kind.value} deadline of {data.claim_id}",
            lambda episode, now: deadlines.raise_alert(
                episode, data.claim_id, data.kind, self.deadlines, now
            ),
        )
        result = dict(applied.result or {"claim_id": data.claim_id, "raised": False})
        if result.get("raised") and applied.outcome is not Outcome.UNCHANGED:
            self.alert_raised(data.kind.value)
        return result

    # --- billers' worklists -----------------------------------------------------------

    async def follow_up_requested(self, envelope: Envelope[FollowUpRequested]) -> Reply:
        """201 with the claim's follow-up (a retry: the same)."""
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"follow-up {data.note_id} of {data.claim_id}",
            lambda episode, now: followup.record_follow_up(
                episode, data.claim_id, data.note_id, data.next_action_on, data.requested_by, now
            ),
        )
        if applied.result is not None:
            return Reply(201, applied.result)
        claim = _existing(applied.state, data.claim_id).claim(data.claim_id)
        return Reply(201, followup.follow_up_view(claim))

    async def work_assignment_requested(
        self, envelope: Envelope[WorkAssignmentRequested]
    ) -> dict[str, Any]:
        data = envelope.data
        applied = await self._apply(
            data.episode_id,
            envelope.id,
            f"assignment of {data.claim_id}",
            lambda episode, now: assign_work(
                episode, data.claim_id, data.assigned_to, data.requested_by, now
            ),
        )
        if applied.result is not None:
            return applied.result
        claim = _existing(applied.state, data.claim_id).claim(data.claim_id)
        return {
            "claim_id": data.claim_id,
            "assigned_to": data.assigned_to,
            "kind": (claim.work.kind if claim.work else None),
        }


def _appeal_answer(
    applied: Applied[Episode, dict[str, Any]], claim_id: str, appeal_id: str
) -> dict[str, Any]:
    """The appeal as the decision left it, or as it is when nothing changed (a retry)."""
    if applied.result is not None:
        return applied.result
    return appeals.appeal_of(_existing(applied.state, claim_id), claim_id, appeal_id)


def _existing(episode: Episode | None, claim_id: str) -> Episode:
    if episode is None:
        raise NotFound(f"claim {claim_id} not found")
    return episode


SUBSCRIPTIONS: Subscriptions[Handlers] = {
    PatientRegistered: Handlers.patient_registered,
    CoverageUpdated: Handlers.coverage_updated,
    EligibilityVerified: Handlers.eligibility_verified,
    EligibilityFailed: Handlers.eligibility_failed,
    CodingCompleted: Handlers.coding_completed,
    CodingCorrected: Handlers.coding_corrected,
    PaymentPosted: Handlers.payment_posted,
    ClaimCorrectionRequested: Handlers.claim_correction_requested,
    DenialAcceptanceRequested: Handlers.denial_acceptance_requested,
    ClaimVoidRequested: Handlers.claim_void_requested,
    ClaimCloseRequested: Handlers.claim_close_requested,
    AcknowledgmentRequested: Handlers.acknowledgment_requested,
    AppealRequested: Handlers.appeal_requested,
    AppealDecisionRequested: Handlers.appeal_decision_requested,
    DeadlineAlertRequested: Handlers.deadline_alert_requested,
    FollowUpRequested: Handlers.follow_up_requested,
    WorkAssignmentRequested: Handlers.work_assignment_requested,
    AppealResendRequested: Handlers.appeal_resend_requested,
    AppealOverdueRequested: Handlers.appeal_overdue_requested,
}
