"""Property tests: model -> X12 text -> model gives back the same model."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rcm_x12 import (
    AcknowledgmentDocument,
    ClaimAcknowledgmentDocument,
    ClaimBatch,
    EligibilityInquiryDocument,
    EligibilityResponseDocument,
    RemittanceDocument,
    build_270,
    build_271,
    build_277ca,
    build_835,
    build_837p,
    build_999,
    check_835_balance,
    parse_270,
    parse_271,
    parse_277ca,
    parse_835,
    parse_837p,
    parse_999,
    parse_interchange,
)
from x12_strategies import (
    acknowledgment_documents,
    claim_acknowledgment_documents,
    claim_batches,
    inquiry_documents,
    remittance_documents,
    response_documents,
)

ROUND_TRIP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _envelope_counts_hold(text: str) -> None:
    interchange = parse_interchange(text)
    assert interchange.groups, "parse_interchange checks SE01/GE01/IEA01 itself"


@ROUND_TRIP
@given(remittance_documents(), st.booleans())
def test_835_round_trip(document: RemittanceDocument, newline: bool) -> None:
    assert check_835_balance(document) == []
    text = build_835(document, newline=newline)
    _envelope_counts_hold(text)
    assert parse_835(text) == document


@ROUND_TRIP
@given(claim_batches(), st.booleans())
def test_837p_round_trip(batch: ClaimBatch, newline: bool) -> None:
    text = build_837p(batch, newline=newline)
    assert parse_837p(text) == batch


@ROUND_TRIP
@given(acknowledgment_documents(), st.booleans())
def test_999_round_trip(document: AcknowledgmentDocument, newline: bool) -> None:
    assert parse_999(build_999(document, newline=newline)) == document


@ROUND_TRIP
@given(claim_acknowledgment_documents(), st.booleans())
def test_277ca_round_trip(document: ClaimAcknowledgmentDocument, newline: bool) -> None:
    assert parse_277ca(build_277ca(document, newline=newline)) == document


@ROUND_TRIP
@given(inquiry_documents(), st.booleans())
def test_270_round_trip(document: EligibilityInquiryDocument, newline: bool) -> None:
    assert parse_270(build_270(document, newline=newline)) == document


@ROUND_TRIP
@given(response_documents(), st.booleans())
def test_271_round_trip(document: EligibilityResponseDocument, newline: bool) -> None:
    assert parse_271(build_271(document, newline=newline)) == document
