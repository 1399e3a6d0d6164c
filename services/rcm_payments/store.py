"""The payments aggregates and the queries of people's list views.

Aggregates (each written only by the owner of its id): `episodes` (the submitted claims
of an episode), `remittances` (one per payer and trace number), `patient_payments`; the read model
`payer_claim_numbers` (payer + CLP07 → claim, by id); and
`unreadable_documents`, written by the mailbox reader (a singleton) alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo import ASCENDING, IndexModel
from rcm_shared.service import Service
from rcm_shared.store import HIDDEN, MongoAggregates

from . import domain
from .domain import Episode, PatientPayment, PayerClaimNumber, Remittance, UnreadableDocument

STATE_ONLY = {**HIDDEN, "applied": 0}


@dataclass(frozen=True)
class Found:
    """Where an unpostable lives: a remittance, or an unreadable document."""

    holder_id: str
    entry: domain.Unpostable


class PaymentsStore:
    def __init__(self, service: Service) -> None:
        self.episodes: MongoAggregates[Episode] = service.aggregates("episodes", Episode)
        self.remittances: MongoAggregates[Remittance] = service.aggregates(
            "remittances",
            Remittance,
            [
                IndexModel([("open_unpostables", ASCENDING), ("received_at", ASCENDING)]),
                IndexModel([("copy_count", ASCENDING), ("received_at", ASCENDING)]),
            ],
        )
        self.payments: MongoAggregates[PatientPayment] = service.aggregates(
            "patient_payments", PatientPayment
        )
        self.claim_numbers: MongoAggregates[PayerClaimNumber] = service.aggregates(
            "payer_claim_numbers", PayerClaimNumber
        )
        self.unreadable: MongoAggregates[UnreadableDocument] = service.aggregates(
            "unreadable_documents",
            UnreadableDocument,
            [IndexModel([("status", ASCENDING), ("created_at", ASCENDING)])],
        )

    async def find_unpostable(self, unpostable_id: str) -> Found | None:
        """Reads by id only: the candidates `domain.holders_of` names."""
        if domain.is_unreadable_id(unpostable_id):
            document = await self.unreadable.get(unpostable_id)
            return None if document is None else Found(unpostable_id, document.entry())
        for holder_id in domain.holders_of(unpostable_id):
            remittance = await self.remittances.get(holder_id)
            entry = None if remittance is None else remittance.unpostable(unpostable_id)
            if entry is not None:
                return Found(holder_id, entry)
        return None

    async def open_unpostables(
        self, limit: int
    ) -> tuple[list[Remittance], list[UnreadableDocument]]:
        """The remittances with an open unpostable and the open unreadable documents, the
        oldest `limit` of each. A people's list view: on FerretDB (no secondary indexes)
        each query reads the whole collection, so it is bounded and on no event's path."""
        remittances = self.remittances.collection.find(
            {"open_unpostables.0": {"$exists": True}}, STATE_ONLY
        ).sort([("received_at", ASCENDING), ("_id", ASCENDING)])
        unreadable = self.unreadable.collection.find(
            {"status": domain.UnpostableStatus.OPEN.value}, STATE_ONLY
        ).sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        return (
            [Remittance.model_validate(d) async for d in remittances.limit(limit)],
            [UnreadableDocument.model_validate(d) async for d in unreadable.limit(limit)],
        )

    async def remittances_with_copies(self, limit: int) -> list[Remittance]:
        """Remittances a payer sent more than once, oldest first. A people's list view,
        bounded and on no event's path (a scan on FerretDB)."""
        found = self.remittances.collection.find({"copy_count": {"$gt": 0}}, STATE_ONLY).sort(
            [("received_at", ASCENDING), ("_id", ASCENDING)]
        )
        return [Remittance.model_validate(d) async for d in found.limit(limit)]
