"""The payments database: claims to match, remittances, patient payments, bad documents."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pymongo import IndexModel
from rcm_shared.service import Service
from rcm_shared.store import Document

from .domain import SubmittedClaim, UnpostableStatus


class PaymentsStore:
    def __init__(self, service: Service) -> None:
        # claim_id -> episode, payer, rank, lines (from claim-submitted)
        self.claims = service.store("claims")
        # remittance_id -> one 835 transaction: postings, unpostables, outbox
        self.remittances = service.store(
            "remittances", [IndexModel("open_claim_ids"), IndexModel("open_unpostables")]
        )
        # payment_id -> one patient payment
        self.patient_payments = service.store("patient_payments")
        # unpostable id -> a mailbox document that is not a readable 835
        self.unreadable = service.store("unreadable_documents", [IndexModel("status")])

    async def known_claims(self, claim_ids: Iterable[str]) -> dict[str, SubmittedClaim]:
        wanted = sorted(set(claim_ids))
        if not wanted:
            return {}
        cursor = self.claims.collection.find(
            {"_id": {"$in": wanted}}, {"episode_id": 1, "payer_id": 1, "rank": 1}
        )
        return {doc["_id"]: SubmittedClaim.of(doc) async for doc in cursor}

    async def remittances_awaiting(self, claim_id: str) -> list[str]:
        """Remittances holding an open unpostable for this (so far unknown) claim."""
        cursor = self.remittances.collection.find({"open_claim_ids": claim_id}, {"_id": 1})
        return [doc["_id"] async for doc in cursor]

    async def remittance(self, remittance_id: str) -> Document | None:
        return await self.remittances.get(remittance_id)

    async def open_remittances(self) -> list[Document]:
        cursor = self.remittances.collection.find(
            {"open_unpostables.0": {"$exists": True}}, {"outbox": 0}
        ).sort("received_at", 1)
        return [doc async for doc in cursor]

    async def open_unreadable(self) -> list[Document]:
        cursor = self.unreadable.collection.find(
            {"status": UnpostableStatus.OPEN.value}, {"outbox": 0}
        ).sort("created_at", 1)
        return [doc async for doc in cursor]

    async def find_unpostable(self, unpostable_id: str) -> Found | None:
        """Ids are a remittance id (a whole transaction), `<remittance id>-<CLP index>`
        (one claim) or `D-<mailbox document id>` (an unreadable document)."""
        candidates = [unpostable_id]
        head, dash, tail = unpostable_id.rpartition("-")
        if dash and tail.isdigit():
            candidates.append(head)
        for remittance_id in candidates:
            document = await self.remittances.get(remittance_id)
            if document is None:
                continue
            for entry in document["unpostables"]:
                if entry["id"] == unpostable_id:
                    return Found(document, entry)
        unreadable = await self.unreadable.get(unpostable_id)
        if unreadable is not None:
            return Found(None, unreadable_entry(unreadable))
        return None


@dataclass(frozen=True)
class Found:
    remittance: Document | None  # None for an unreadable document
    entry: Document


def unreadable_entry(document: Document) -> Document:
    """An unreadable document shaped like a remittance's unpostable entry."""
    return {
        "id": document["_id"],
        "kind": document["kind"],
        "claim_id": None,
        "reason": document["reason"],
        "status": document["status"],
        "created_at": document["created_at"],
    }
