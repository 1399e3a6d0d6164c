"""Patient payments are idempotent on payment_id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rcm_contracts.payments import PatientPaymentReceived, PaymentMethod
from rcm_payments import domain

NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def test_new_payment_emits_once_same_is_a_no_op_different_is_a_conflict() -> None:
    first = domain.patient_payment("pay-1", "E0123456789ab", 25_00, PaymentMethod.CARD, NOW)
    change = first(None)
    assert change is not None
    (event,) = change.events
    assert isinstance(event, PatientPaymentReceived)
    assert (event.payment_id, event.amount_cents, event.method) == (
        "pay-1", 25_00, PaymentMethod.CARD,
    )  # fmt: skip
    stored = {**change.set, "_id": "pay-1", "version": 1}

    later = datetime(2026, 2, 2, tzinfo=UTC)
    again = domain.patient_payment("pay-1", "E0123456789ab", 25_00, PaymentMethod.CARD, later)
    assert again(stored) is None
    assert domain.payment_view(stored)["received_at"] == NOW

    for episode, amount, method in [
        ("E0123456789ab", 26_00, PaymentMethod.CARD),
        ("E0123456789ab", 25_00, PaymentMethod.CASH),
        ("E00000000000f", 25_00, PaymentMethod.CARD),
    ]:
        with pytest.raises(domain.Conflict):
            domain.patient_payment("pay-1", episode, amount, method, NOW)(stored)
