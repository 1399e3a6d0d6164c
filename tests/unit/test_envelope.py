"""CloudEvents binary-mode encoding and the checks made when decoding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError
from rcm_contracts.payments import PatientPaymentReceived, PaymentMethod, RefundIssued
from rcm_shared.envelope import Envelope, InvalidEnvelope, decode

EVENT = PatientPaymentReceived(
    episode_id="ep-1",
    payment_id="pay-1",
    amount_cents=1234,
    method=PaymentMethod.PORTAL,
    received_at=datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
)


def encoded() -> tuple[dict[str, str | bytes], bytes]:
    envelope = Envelope(data=EVENT, source="rcm/payments")
    return dict(envelope.headers()), envelope.value()


def test_round_trip() -> None:
    envelope = Envelope(data=EVENT, source="rcm/payments")
    headers = {name: value.encode() for name, value in envelope.headers().items()}
    assert decode(dict(headers), envelope.value(), PatientPaymentReceived) == envelope
    assert envelope.headers()["ce_subject"] == "ep-1"
    assert envelope.headers()["ce_type"] == "rcm.payments.patient-payment-received.v1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: h.pop("ce_id"), "missing header ce_id"),
        (lambda h: h.update(ce_specversion="0.3"), "unsupported ce_specversion"),
        (lambda h: h.update({"content-type": "text/plain"}), "unsupported content-type"),
        (lambda h: h.update(ce_type="rcm.payments.gone.v9"), "unknown event type"),
        (lambda h: h.update(ce_subject="ep-2"), "does not match the event key"),
        (lambda h: h.update(ce_time="yesterday"), "ce_time is not an ISO 8601 time"),
        (lambda h: h.update(ce_time="2026-11-25T09:30:00"), "ce_time has no time zone"),
    ],
)
def test_malformed_headers_are_refused(change: object, message: str) -> None:
    headers, value = encoded()
    change(headers)  # type: ignore[operator]
    with pytest.raises(InvalidEnvelope, match=message):
        decode(headers, value)


def test_another_event_type_on_the_topic_is_refused() -> None:
    headers, value = encoded()
    with pytest.raises(InvalidEnvelope, match=r"expected rcm\.payments\.refund-issued\.v1"):
        decode(headers, value, RefundIssued)


def test_invalid_payload_is_described_without_its_values() -> None:
    headers, _ = encoded()
    value = b'{"episode_id": "ep-1", "payment_id": "Jane Doe", "amount_cents": 12.5}'
    with pytest.raises(InvalidEnvelope) as raised:
        decode(headers, value)
    assert "amount_cents" in str(raised.value)
    assert "Jane Doe" not in str(raised.value)
    assert "12.5" not in str(raised.value)


def test_money_is_integer_cents_and_times_are_utc() -> None:
    with pytest.raises(ValidationError):
        PatientPaymentReceived.model_validate({**EVENT.model_dump(), "amount_cents": 12.5})
    with pytest.raises(ValidationError):
        PatientPaymentReceived.model_validate({**EVENT.model_dump(), "amount_cents": "1234"})
    eastern = timezone(timedelta(hours=-5))
    with pytest.raises(ValidationError, match="UTC"):
        PatientPaymentReceived.model_validate(
            {**EVENT.model_dump(), "received_at": datetime(2026, 11, 25, 9, tzinfo=eastern)}
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h: h.update(ce_id="x" * 129), "ce_id is longer than 128 characters"),
        (lambda h: h.update(ce_id=""), "ce_id is empty"),
        (lambda h: h.update(ce_id="id\nFORGED log line"), "ce_id holds control characters"),
        (lambda h: h.update(ce_source=b"rcm/\xff"), "header 'ce_source' is not UTF-8"),
        (lambda h: h.update(traceparent=b"\xc3\x28"), "header 'traceparent' is not UTF-8"),
        (lambda h: h.update(ce_subject=None), "header 'ce_subject' has no value"),
        (
            lambda h: h.update(ce_type="rcm.x." + "y" * 500),
            r"unknown event type 'rcm\.x\.y{58}\.\.\.'$",
        ),
    ],
)
def test_hostile_headers_are_refused_without_echoing_them(change: object, message: str) -> None:
    headers, value = encoded()
    change(headers)  # type: ignore[operator]
    with pytest.raises(InvalidEnvelope, match=message):
        decode(headers, value)


def test_an_id_of_128_characters_is_fine() -> None:
    headers, value = encoded()
    headers["ce_id"] = "x" * 128
    assert decode(headers, value).id == "x" * 128
