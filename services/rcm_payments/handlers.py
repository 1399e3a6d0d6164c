"""Payments' use cases: load, decide (domain), save as one aggregate write.

Matching an 835 claim to its claim-submitted is a join of two inputs that arrive in any
order. Each side first stores its input, then looks for the other: the claim handler
looks for remittances waiting for the claim, the mailbox poller re-checks the claims of
its unmatched entries after writing the remittance. Whichever comes second posts.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rcm_contracts.claims import ClaimSubmitted
from rcm_contracts.payments import PaymentMethod
from rcm_shared.clearinghouse import ClearinghouseClient
from rcm_shared.envelope import Envelope
from rcm_shared.errors import TransientError
from rcm_shared.store import Outcome
from rcm_x12 import X12Error

from . import domain
from .store import PaymentsStore, unreadable_entry

log = logging.getLogger(__name__)


def now() -> datetime:
    """UTC, to the millisecond: what MongoDB keeps, so events and reads agree."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class PaymentResult:
    created: bool
    payment: dict[str, Any]


class Payments:
    def __init__(
        self, store: PaymentsStore, clearinghouse: ClearinghouseClient, poll_s: float
    ) -> None:
        self.store = store
        self.clearinghouse = clearinghouse
        self.poll_s = poll_s

    # --- events ----------------------------------------------------------------------------

    async def claim_submitted(self, envelope: Envelope[ClaimSubmitted]) -> None:
        claim = envelope.data
        await self.store.claims.apply(
            claim.claim_id, domain.claim_submitted(claim), event_id=envelope.id
        )
        # Also on a redelivery: a crash may have come between the two steps.
        for remittance_id in await self.store.remittances_awaiting(claim.claim_id):
            await self.post_unmatched(remittance_id)

    # --- the mailbox -----------------------------------------------------------------------

    async def poll_mailbox(self) -> None:
        """Background job: process waiting 835s until cancelled."""
        try:
            while True:
                try:
                    await self.poll_once()
                except TransientError as error:
                    log.warning("mailbox poll failed, will retry: %s", error)
                except Exception:
                    log.exception("mailbox poll failed")
                await asyncio.sleep(self.poll_s)
        finally:
            await self.clearinghouse.close()

    async def poll_once(self) -> int:
        """Process every waiting 835; returns how many were acknowledged."""
        done = 0
        for document_id, _kind in await self.clearinghouse.waiting("835"):
            try:
                await self.process_document(document_id)
            except Exception as error:  # left in the mailbox: the next round tries again
                log.warning("835 %s not processed: %r", document_id, error)
                continue
            done += 1
        return done

    async def process_document(self, document_id: str) -> None:
        """Archive, read, post each transaction whole, then acknowledge.

        A crash anywhere before the acknowledgement brings the same document back; each
        remittance then exists already and nothing is posted twice.
        """
        text = await self.clearinghouse.fetch(document_id, "835")
        try:
            transactions = domain.read_835(text, document_id)
        except X12Error as error:
            # The message may quote element values (names): log where, not what.
            where = f"{error.segment_id} at segment {error.position}"
            log.warning("835 %s is unreadable: %s (%s)", document_id, type(error).__name__, where)
            unpostable_id = domain.unreadable_id_of(document_id)
            await self.store.unreadable.apply(
                unpostable_id, domain.unreadable_document(document_id, str(error), now())
            )
        else:
            for transaction in transactions:
                await self.process_transaction(transaction)
        await self.clearinghouse.acknowledge(document_id)

    async def process_transaction(self, transaction: domain.RemittanceTransaction) -> None:
        known = await self.store.known_claims(c.claim_id for c in transaction.claims)
        outcome = await self.store.remittances.apply(
            transaction.remittance_id, domain.process_remittance(transaction, known, now())
        )
        if outcome is Outcome.UNCHANGED:
            log.info("remittance %s was processed before", transaction.remittance_id)
        else:
            log.info("remittance %s processed", transaction.remittance_id)
        # A claim-submitted stored between `known_claims` and the write found nothing
        # to post yet; it is posted here.
        await self.post_unmatched(transaction.remittance_id)

    async def post_unmatched(self, remittance_id: str, only: str | None = None) -> None:
        document = await self.store.remittance(remittance_id)
        if document is None or not document["open_claim_ids"]:
            return
        known = await self.store.known_claims(document["open_claim_ids"])
        if known:
            await self.store.remittances.apply(
                remittance_id, domain.post_unmatched(known, now(), only)
            )

    # --- commands --------------------------------------------------------------------------

    async def retry_unpostable(self, unpostable_id: str) -> dict[str, Any]:
        """Post an unpostable now if it can be; NotFound or Conflict (with why) if not."""
        found = await self.store.find_unpostable(unpostable_id)
        if found is None:
            raise domain.NotFound(f"no unpostable {unpostable_id}")
        refusal = domain.retry_refusal(found.entry)
        if refusal is not None:
            raise domain.Conflict(refusal)
        remittance = found.remittance
        if remittance is None:  # an unreadable document: retry_refusal refuses it
            raise domain.Conflict(found.entry["reason"])
        if found.entry["status"] == domain.UnpostableStatus.OPEN:
            claim_id = found.entry["claim_id"]
            if not await self.store.known_claims([claim_id]):
                raise domain.Conflict(
                    f"claim {claim_id} is still unknown: no claim-submitted for it has arrived"
                )
            await self.post_unmatched(remittance["remittance_id"], only=unpostable_id)
            remittance = await self.store.remittance(remittance["remittance_id"]) or remittance
        entry = next(u for u in remittance["unpostables"] if u["id"] == unpostable_id)
        if entry["status"] != domain.UnpostableStatus.POSTED:
            raise domain.Conflict(entry["reason"])
        posting = next(p for p in remittance["postings"] if p["posting_id"] == unpostable_id)
        return {"unpostable_id": unpostable_id, "status": "posted", "posting": posting}

    async def receive_patient_payment(
        self, payment_id: str, episode_id: str, amount_cents: int, method: PaymentMethod
    ) -> PaymentResult:
        decide = domain.patient_payment(payment_id, episode_id, amount_cents, method, now())
        outcome = await self.store.patient_payments.apply(payment_id, decide)
        stored = await self.store.patient_payments.get(payment_id)
        if stored is None:
            raise TransientError(f"payment {payment_id} vanished after its write")
        return PaymentResult(outcome is Outcome.APPLIED, domain.payment_view(stored))

    async def open_unpostables(self) -> list[dict[str, Any]]:
        found = [
            domain.unpostable_view(entry, remittance["remittance_id"])
            for remittance in await self.store.open_remittances()
            for entry in remittance["unpostables"]
            if entry["status"] == domain.UnpostableStatus.OPEN
        ]
        found += [
            domain.unpostable_view(unreadable_entry(document), None)
            for document in await self.store.open_unreadable()
        ]
        return sorted(found, key=lambda item: item["created_at"])

    async def remittance(self, remittance_id: str) -> dict[str, Any]:
        document = await self.store.remittance(remittance_id)
        if document is None:
            raise domain.NotFound(f"no remittance {remittance_id}")
        return domain.remittance_view(document)
