"""One function per consumed event and per biller command: load, decide, save.

Every change of an episode is one `AggregateStore.apply` (state and outbox together);
consumed events are applied once through their id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rcm_contracts.coding import CodingCompleted, CodingCorrected
from rcm_contracts.eligibility import EligibilityFailed, EligibilityVerified
from rcm_contracts.payments import PaymentPosted
from rcm_contracts.registration import CoverageUpdated, PatientRegistered
from rcm_shared.envelope import Envelope

from . import domain
from .edi import BillingConfig
from .store import ClaimsStore


def utc_now() -> datetime:
    return datetime.now(UTC)


def episode_of(claim_id: str) -> str:
    """Claim ids are `<episode_id>-<n>`."""
    episode_id, _, number = claim_id.rpartition("-")
    if not episode_id or not number.isdigit():
        raise domain.NotFound(f"claim {claim_id} not found")
    return episode_id


class Handlers:
    def __init__(
        self,
        store: ClaimsStore,
        config: BillingConfig,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    # --- events ---

    async def patient_registered(self, envelope: Envelope[PatientRegistered]) -> None:
        decide = domain.patient_registered(envelope.data, self.config, self.clock())
        await self.store.episodes.apply(envelope.data.episode_id, decide, event_id=envelope.id)

    async def coverage_updated(self, envelope: Envelope[CoverageUpdated]) -> None:
        decide = domain.coverage_updated(envelope.data, self.config, self.clock())
        await self.store.episodes.apply(envelope.data.episode_id, decide, event_id=envelope.id)

    async def eligibility_verified(self, envelope: Envelope[EligibilityVerified]) -> None:
        decide = domain.eligibility_verified(envelope.data, self.config, self.clock())
        await self.store.episodes.apply(envelope.data.episode_id, decide, event_id=envelope.id)

    async def eligibility_failed(self, envelope: Envelope[EligibilityFailed]) -> None:
        decide = domain.eligibility_failed(envelope.data, self.config, self.clock())
        await self.store.episodes.apply(envelope.data.episode_id, decide, event_id=envelope.id)

    async def coding_completed(self, envelope: Envelope[CodingCompleted]) -> None:
        decide = domain.coding_completed(envelope.data, self.config, self.clock())
        await self.store.episodes.apply(envelope.data.episode_id, decide, event_id=envelope.id)

    async def coding_corrected(self, envelope: Envelope[CodingCorrected]) -> None:
        decide = domain.coding_corrected(envelope.data, self.config, self.clock())
        await self.store.episodes.apply(envelope.data.episode_id, decide, event_id=envelope.id)

    async def payment_posted(self, envelope: Envelope[PaymentPosted]) -> None:
        decide = domain.payment_posted(envelope.data, self.config, self.clock())
        await self.store.episodes.apply(envelope.data.episode_id, decide, event_id=envelope.id)

    # --- commands (a second identical request finds the claim closed: 409) ---

    async def correct(self, claim_id: str, biller_id: str, note: str) -> domain.CommandResult:
        result = domain.CommandResult()
        decide = domain.correct(claim_id, biller_id, note, self.config, self.clock(), result)
        await self.store.episodes.apply(episode_of(claim_id), decide)
        return result

    async def accept_denial(self, claim_id: str, biller_id: str, note: str) -> domain.CommandResult:
        result = domain.CommandResult()
        decide = domain.accept_denial(claim_id, biller_id, note, self.clock(), result)
        await self.store.episodes.apply(episode_of(claim_id), decide)
        return result

    # --- queries ---

    async def claim(self, claim_id: str) -> dict[str, Any]:
        episode_id = episode_of(claim_id)
        document = await self.store.episode(episode_id)
        if document is None:
            raise domain.NotFound(f"claim {claim_id} not found")
        return domain.Episode.load(document, episode_id).claim(claim_id).view(episode_id)

    async def episode(self, episode_id: str) -> dict[str, Any]:
        document = await self.store.episode(episode_id)
        if document is None:
            raise domain.NotFound(f"episode {episode_id} not found")
        return domain.episode_view(domain.Episode.load(document, episode_id))

    async def work_queue(self, kind: domain.WorkKind | None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for document in await self.store.with_work():
            episode = domain.Episode.load(document, document["_id"])
            items += domain.work_items(episode, kind)
        return sorted(items, key=lambda item: str(item["opened_at"]))

    async def stats(self) -> dict[str, Any]:
        claims: list[domain.Claim] = []
        async for batch in self.store.all_claims():
            claims += [domain.Claim.model_validate(claim) for claim in batch]
        return domain.count(claims)
