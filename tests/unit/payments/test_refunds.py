"""Payments issues an approved refund once per refund_id."""

from __future__ import annotations

from datetime import UTC, datetime

from rcm_contracts.collections import RefundApproved
from rcm_contracts.payments import RefundIssued, RefundRecipient
from rcm_payments.refunds import EpisodeRefunds, RefundHandlers
from rcm_shared.aggregates import InMemoryAggregates
from rcm_shared.envelope import Envelope

NOW = datetime(2025, 3, 4, 10, 0, 0, 123456, tzinfo=UTC)


def approved(refund_id: str, cents: int = 1500) -> RefundApproved:
    return RefundApproved(
        episode_id="E0000000000a1",
        refund_id=refund_id,
        amount_cents=cents,
        recipient=RefundRecipient.PATIENT,
        reason="overpaid statement",
        approved_by="U7",
        approved_at=NOW,
    )


async def test_an_approved_refund_is_issued_once_per_refund_id() -> None:
    refunds = InMemoryAggregates(EpisodeRefunds)
    handlers = RefundHandlers(refunds, clock=lambda: NOW)
    first = Envelope(data=approved("E0000000000a1-F1"), source="rcm/test")
    await handlers.refund_approved(first)
    await handlers.refund_approved(first)  # redelivered
    # The same refund approved again under another event id: still once.
    await handlers.refund_approved(Envelope(data=approved("E0000000000a1-F1"), source="rcm/test"))
    await handlers.refund_approved(Envelope(data=approved("E0000000000a1-F2", 300), source="x"))
    issued = [e for e in refunds.emitted if isinstance(e, RefundIssued)]
    assert [(e.refund_id, e.amount_cents) for e in issued] == [
        ("E0000000000a1-F1", 1500),
        ("E0000000000a1-F2", 300),
    ]
    assert issued[0].episode_id == "E0000000000a1"
    assert issued[0].recipient is RefundRecipient.PATIENT
    assert issued[0].issued_at == NOW.replace(microsecond=123000)
    state = refunds.states["E0000000000a1"]
    assert [r.refund_id for r in state.refunds] == ["E0000000000a1-F1", "E0000000000a1-F2"]
