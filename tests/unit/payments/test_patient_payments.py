"""Patient payments are idempotent on payment_id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rcm_contracts.payments import PatientPaymentReceived, PatientPaymentRequested, PaymentMethod
from rcm_payments import domain
from rcm_shared.errors import Conflict

NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def request(
    episode: str = "E0123456789ab", amount: int = 25_00, method: PaymentMethod = PaymentMethod.CARD
) -> PatientPaymentRequested:
    return PatientPaymentRequested(
        requested_by="api", payment_id="pay-1", episode_id=episode, amount_cents=amount,
        method=method,
    )  # fmt: skip


def test_new_payment_emits_once_same_is_a_no_op_different_is_a_conflict() -> None:
    first = domain.receive_patient_payment(None, request(), NOW)
    stored = first.state
    assert stored is not None
    assert first.result == stored
    (event,) = first.events
    assert isinstance(event, PatientPaymentReceived)
    assert (event.payment_id, event.amount_cents, event.method) == (
        "pay-1", 25_00, PaymentMethod.CARD,
    )  # fmt: skip
    assert event.key == "E0123456789ab"  # published by episode, as before
    assert request().key == "pay-1"  # asked of the payment's owner

    later = datetime(2026, 2, 2, tzinfo=UTC)
    again = domain.receive_patient_payment(stored, request(), later)
    assert (again.state, list(again.events), again.result) == (None, [], stored)
    assert domain.payment_view(stored)["received_at"] == NOW

    for episode, amount, method in [
        ("E0123456789ab", 26_00, PaymentMethod.CARD),
        ("E0123456789ab", 25_00, PaymentMethod.CASH),
        ("E00000000000f", 25_00, PaymentMethod.CARD),
    ]:
        with pytest.raises(Conflict):
            domain.receive_patient_payment(stored, request(episode, amount, method), NOW)
