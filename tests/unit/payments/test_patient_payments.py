"""Patient payments are idempotent on payment_id, and taken for known episodes only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rcm_contracts.payments import PatientPaymentReceived, PatientPaymentRequested, PaymentMethod
from rcm_contracts.registration import AppointmentScheduled
from rcm_payments import domain
from rcm_shared.errors import Conflict, NotFound

from .test_posting import claim_event

NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
OPENED = domain.Episode(episode_id="E0123456789ab", opened=True)


def request(
    episode: str = "E0123456789ab", amount: int = 25_00, method: PaymentMethod = PaymentMethod.CARD
) -> PatientPaymentRequested:
    return PatientPaymentRequested(
        requested_by="api", payment_id="pay-1", episode_id=episode, amount_cents=amount,
        method=method,
    )  # fmt: skip


def test_new_payment_emits_once_same_is_a_no_op_different_is_a_conflict() -> None:
    first = domain.receive_patient_payment(None, request(), OPENED, NOW)
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
    again = domain.receive_patient_payment(stored, request(), OPENED, later)
    assert (again.state, list(again.events), again.result) == (None, [], stored)
    assert domain.payment_view(stored)["received_at"] == NOW

    for episode, amount, method in [
        ("E0123456789ab", 26_00, PaymentMethod.CARD),
        ("E0123456789ab", 25_00, PaymentMethod.CASH),
        ("E00000000000f", 25_00, PaymentMethod.CARD),
    ]:
        with pytest.raises(Conflict):
            domain.receive_patient_payment(stored, request(episode, amount, method), OPENED, NOW)


def scheduled(episode_id: str) -> AppointmentScheduled:
    return AppointmentScheduled(
        episode_id=episode_id, appointment_id="A0123456789ab", patient_id="P0123456789ab",
        scheduled_start=NOW, rendering_provider_npi="1234567893", visit_type="office-visit",
    )  # fmt: skip


def test_a_payment_is_taken_only_for_an_episode_registration_opened_or_a_claim_named() -> None:
    opened = domain.open_episode(None, scheduled("E0123456789ab"))
    assert opened.state == OPENED
    assert list(opened.events) == []
    assert domain.open_episode(OPENED, scheduled("E0123456789ab")).state is None  # once
    claimed = claim_event().model_copy(
        update={"episode_id": "E0123456789ab", "claim_id": "E0123456789ab-1"}
    )
    with_claim = domain.record_claim(None, claimed).state
    awaiting = domain.Episode(
        episode_id="E0123456789ab",
        awaiting=[domain.Awaiting(claim_id="E0123456789ab-1", remittance_id="R1-T")],
    )
    for known in (OPENED, with_claim):
        assert domain.receive_patient_payment(None, request(), known, NOW).state is not None
    # No episode, or only a remittance's guess at one: refused, nothing kept.
    for unknown in (None, awaiting):
        with pytest.raises(NotFound, match="no episode E0123456789ab"):
            domain.receive_patient_payment(None, request(), unknown, NOW)
    # A payment recorded before is answered as it was, whatever is known now.
    stored = domain.receive_patient_payment(None, request(), OPENED, NOW).state
    assert domain.receive_patient_payment(stored, request(), None, NOW).result == stored
