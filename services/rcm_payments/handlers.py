"""One method per consumed event and per request: load, decide, save (one write).

Every message that changes an aggregate is keyed by its id, so the replica that owns the
key is its only writer (decisions §17): appointment-scheduled, claim-submitted and
claim-awaited by episode; the posting of an 835 transaction, awaited-claim-submitted and
a retry by remittance; a patient payment by payment_id. Other aggregates are only read
(by id).

Matching an 835 claim to its claim-submitted, which may come in either order, is a
choreography through outboxes: the remittance emits claim-awaited for each claim it
cannot match; the episode answers with awaited-claim-submitted as soon as the claim is
there (at once, or when its claim-submitted comes), and the remittance posts it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from rcm_contracts.claims import ClaimSubmitted
from rcm_contracts.payments import (
    AwaitedClaimSubmitted,
    ClaimAwaited,
    PatientPaymentRequested,
    RemittancePostingRequested,
    RemittanceTransaction,
    UnpostableRetryRequested,
)
from rcm_contracts.registration import AppointmentScheduled
from rcm_shared.aggregates import Aggregates, Outcome
from rcm_shared.clock import Clock, utc_now
from rcm_shared.envelope import Envelope
from rcm_shared.errors import NotFound
from rcm_shared.requests import Reply
from rcm_shared.service import Subscriptions

from . import deposits, domain, refunds
from .domain import (
    Episode,
    PatientPayment,
    PayerClaimNumber,
    Remittance,
    SubmittedClaim,
    UnreadableDocument,
)

log = logging.getLogger(__name__)


class Handlers:
    def __init__(
        self,
        episodes: Aggregates[Episode],
        remittances: Aggregates[Remittance],
        payments: Aggregates[PatientPayment],
        unreadable: Aggregates[UnreadableDocument],
        clock: Clock = utc_now,
        claim_numbers: Aggregates[PayerClaimNumber] | None = None,
        copy_received: Callable[[], None] = lambda: None,
    ) -> None:
        self.episodes = episodes
        self.remittances = remittances
        self.payments = payments
        self.unreadable = unreadable
        self.clock = clock
        self.claim_numbers = claim_numbers
        # Told once per payer's re-sent copy recorded (a metric in the service).
        self.copy_received = copy_received

    def now(self) -> datetime:
        return domain.to_millisecond(self.clock())

    async def known_claims(self, claim_ids: Iterable[str]) -> dict[str, SubmittedClaim]:
        """The submitted claims among these, read from their episodes (by id)."""
        wanted = set(claim_ids)
        episode_ids = {domain.episode_of(claim_id) for claim_id in wanted}
        episodes = await asyncio.gather(
            *(self.episodes.get(e) for e in sorted(e for e in episode_ids if e is not None))
        )
        return {
            claim.claim_id: claim
            for episode in episodes
            if episode is not None
            for claim in episode.claims
            if claim.claim_id in wanted
        }

    # --- episodes -------------------------------------------------------------------

    async def appointment_scheduled(self, envelope: Envelope[AppointmentScheduled]) -> None:
        event = envelope.data  # only that the episode exists is kept, nothing of the visit
        applied = await self.episodes.apply(
            event.episode_id, lambda episode: domain.open_episode(episode, event), envelope.id
        )
        log.info("episode %s opened: %s", event.episode_id, applied.outcome.value)

    async def claim_submitted(self, envelope: Envelope[ClaimSubmitted]) -> None:
        event = envelope.data
        applied = await self.episodes.apply(
            event.episode_id, lambda episode: domain.record_claim(episode, event), envelope.id
        )
        log.info("claim-submitted %s: %s", event.claim_id, applied.outcome.value)

    async def claim_awaited(self, envelope: Envelope[ClaimAwaited]) -> None:
        event = envelope.data
        applied = await self.episodes.apply(
            event.episode_id, lambda episode: domain.await_claim(episode, event), envelope.id
        )
        log.info(
            "claim %s awaited by %s: %s",
            event.claim_id,
            event.remittance_id,
            applied.outcome.value,
        )

    # --- remittances ----------------------------------------------------------------

    async def remittance_posting_requested(
        self, envelope: Envelope[RemittancePostingRequested]
    ) -> dict[str, Any]:
        """Post one 835 transaction whole (once), or record it as a copy of the remittance
        or hold it as a reused trace; answers which (`domain.transaction_answer`)."""
        transaction = envelope.data.transaction
        rid = transaction.remittance_id
        before = await self.remittances.get(rid)
        known: dict[str, SubmittedClaim] = {}
        links: dict[str, SubmittedClaim] = {}
        if before is None:
            known = await self.known_claims(c.claim_id for c in transaction.claims)
            links = await self.plb_links(transaction)
        now = self.now()
        applied = await self.remittances.apply(
            rid,
            lambda current: domain.post_remittance(current, transaction, known, now, links),
            envelope.id,
        )
        remittance = applied.state
        assert remittance is not None  # posted now or before
        answer = domain.transaction_answer(remittance, transaction)
        log.info("remittance %s: %s, %s", rid, applied.outcome.value, answer["outcome"])
        if applied.outcome is Outcome.APPLIED and answer["outcome"] == "copy":
            self.copy_received()
        await self.remember_claim_numbers(remittance)
        return answer

    async def plb_links(self, transaction: RemittanceTransaction) -> dict[str, SubmittedClaim]:
        """The claim each PLB recoupment's reference names, by claim id or by a payer
        claim control number posted before for this payer (all reads by id)."""
        references = {
            p.reference
            for p in transaction.provider_adjustments
            if p.reference and p.reason_code in domain.CLAIM_REFERENCE_REASONS
        }
        links: dict[str, SubmittedClaim] = {}
        for reference in sorted(references):
            named = await self.known_claims(domain.claim_ids_in(reference))
            claim = next((named[c] for c in domain.claim_ids_in(reference) if c in named), None)
            if claim is None and self.claim_numbers is not None:
                key = domain.payer_claim_number_key(transaction.payer_id, reference)
                number = await self.claim_numbers.get(key)
                if number is not None:
                    claim = (await self.known_claims([number.claim_id])).get(number.claim_id)
            if claim is not None:
                links[reference] = claim
        return links

    async def remember_claim_numbers(self, remittance: Remittance) -> None:
        """Index the payer claim control numbers of its postings (an idempotent write
        after the remittance's: a redelivery writes what a crash left out)."""
        if self.claim_numbers is None:
            return
        for posting in remittance.postings:
            if not (posting.payer_claim_control_number and posting.payer_id):
                continue
            key = domain.payer_claim_number_key(
                posting.payer_id, posting.payer_claim_control_number
            )
            if await self.claim_numbers.get(key) is None:
                decide = functools.partial(
                    domain.remember_claim_number,
                    key=key,
                    claim_id=posting.claim_id,
                    episode_id=posting.episode_id,
                )
                await self.claim_numbers.apply(key, decide)

    async def awaited_claim_submitted(self, envelope: Envelope[AwaitedClaimSubmitted]) -> None:
        event = envelope.data
        now = self.now()
        applied = await self.remittances.apply(
            event.remittance_id,
            lambda current: domain.post_awaited(current, event, now),
            envelope.id,
        )
        log.info(
            "awaited claim %s for %s: %s",
            event.claim_id,
            event.remittance_id,
            applied.outcome.value,
        )
        if applied.state is not None:
            await self.remember_claim_numbers(applied.state)

    async def unpostable_retry_requested(
        self, envelope: Envelope[UnpostableRetryRequested]
    ) -> dict[str, Any]:
        request = envelope.data
        if domain.is_unreadable_id(request.holder_id):  # never posted by a retry: why not
            domain.retry_unreadable(
                await self.unreadable.get(request.holder_id), request.unpostable_id
            )
        current = await self.remittances.get(request.holder_id)
        entry = None if current is None else current.unpostable(request.unpostable_id)
        if current is None or entry is None:
            raise NotFound(f"no unpostable {request.unpostable_id}")
        known = await self.known_claims([entry.claim_id] if entry.claim_id else [])
        now = self.now()
        applied = await self.remittances.apply(
            request.holder_id,
            lambda remittance: domain.retry(remittance, request.unpostable_id, known, now),
            envelope.id,
        )
        log.info("retry of %s: %s", request.unpostable_id, applied.outcome.value)
        assert applied.state is not None
        await self.remember_claim_numbers(applied.state)
        # A claim that breaks a rule once matched is kept so, and refused with why.
        return domain.retry_answer(applied.state, request.unpostable_id)

    # --- patient payments -----------------------------------------------------------

    async def patient_payment_requested(self, envelope: Envelope[PatientPaymentRequested]) -> Reply:
        """201 with the payment this request recorded; 200 with the one stored before."""
        request = envelope.data
        episode = await self.episodes.get(request.episode_id)  # read only: not its owner
        now = self.now()
        applied = await self.payments.apply(
            request.payment_id,
            lambda current: domain.receive_patient_payment(current, request, episode, now),
            envelope.id,
        )
        payment = applied.state
        assert payment is not None  # every outcome but a refusal has the payment
        log.info("patient payment %s: %s", request.payment_id, applied.outcome.value)
        # A duplicate is this same request again (the one that recorded it).
        status = 200 if applied.outcome is Outcome.UNCHANGED else 201
        return Reply(status, domain.payment_view(payment))


SUBSCRIPTIONS: Subscriptions[Handlers] = {
    AppointmentScheduled: Handlers.appointment_scheduled,
    ClaimSubmitted: Handlers.claim_submitted,
    ClaimAwaited: Handlers.claim_awaited,
    RemittancePostingRequested: Handlers.remittance_posting_requested,
    AwaitedClaimSubmitted: Handlers.awaited_claim_submitted,
    UnpostableRetryRequested: Handlers.unpostable_retry_requested,
    PatientPaymentRequested: Handlers.patient_payment_requested,
}


# --- cash: consumed by refunds.py and deposits.py (their own handlers, wired in app.py) ---
OTHER_SUBSCRIPTIONS = {**refunds.SUBSCRIPTIONS, **deposits.SUBSCRIPTIONS}
