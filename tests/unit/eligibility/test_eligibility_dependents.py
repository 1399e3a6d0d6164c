"""A dependent's eligibility: asked in loop 2000D under the subscriber, answered there."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from rcm_contracts.eligibility import EligibilityFailed, EligibilityVerified
from rcm_contracts.registration import Coverage, Relationship
from rcm_eligibility import domain
from rcm_payer_simulator import adjudication
from rcm_payer_simulator.simulator import Simulator
from rcm_shared.errors import PermanentError
from rcm_x12 import (
    EligibilityInquiry,
    EligibilityResponse,
    EligibilityResponseDocument,
    Envelope,
    Rejection,
    build_270,
    build_271,
    parse_270,
)

from .support import (
    APPOINTMENT,
    GOLD,
    NOW,
    PRIMARY,
    REGISTERED,
    REQUESTER,
    SECONDARY,
    coverages,
    person,
)

CHILD_OF_BOB = PRIMARY.model_copy(
    update={"relationship": Relationship.CHILD, "subscriber": person("Bob")}
)
ENVELOPE = Envelope(
    sender_id="CLEARINGHOUSE",
    receiver_id="RCMPLATFORM",
    control_number=7,
    group_control_number=7,
    created=datetime(2026, 3, 2, 15, 0),  # noqa: DTZ001 - X12 times carry no zone
)


def asked(*items: Coverage) -> list[EligibilityInquiry]:
    state = domain.on_appointment(None, APPOINTMENT, REQUESTER, NOW).state
    state = domain.on_patient(state, REGISTERED, REQUESTER, NOW).state
    state = domain.on_coverages(state, coverages(*items), REQUESTER, NOW).state
    assert state is not None
    return [inquiry for _, inquiry in domain.inquiries(state, REQUESTER, NOW)]


def answer(inquiry: EligibilityInquiry, **outcome: object) -> str:
    reply = EligibilityResponse(
        control_number=inquiry.control_number,
        reference_id=inquiry.reference_id,
        created=inquiry.created,
        payer_name=inquiry.payer_name,
        payer_id=inquiry.payer_id,
        provider=inquiry.provider,
        subscriber=inquiry.subscriber,
        trace_number=inquiry.trace_number,
        trace_originator=inquiry.trace_originator,
        **outcome,  # type: ignore[arg-type]
    )
    return build_271(EligibilityResponseDocument(envelope=ENVELOPE, transactions=[reply]))


def test_a_child_is_asked_about_under_the_parent_who_holds_the_plan() -> None:
    (inquiry,) = asked(CHILD_OF_BOB)
    assert (inquiry.subscriber.first_name, inquiry.subscriber.member_id) == ("Bob", "AC123456789")
    assert inquiry.dependent is not None
    assert (inquiry.dependent.first_name, inquiry.dependent.relationship) == ("Ann", "19")
    assert inquiry.dependent.birth_date == date(1980, 5, 1)
    text = build_270(domain.inquiry_document(inquiry, 42, REQUESTER, NOW))
    segments = text.split("~\n")
    assert "HL*3*2*22*1" in segments  # the subscriber has a dependent under them
    assert "NM1*IL*1*Lee*Bob****MI*AC123456789" in segments
    assert "HL*4*3*23*0" in segments
    assert "NM1*03*1*Lee*Ann" in segments
    assert "INS*N*19" in segments
    # The trace and the question are the dependent's: they follow the dependent's HL.
    trace = f"TRN*1*{inquiry.trace_number}*1123456789"
    assert segments.index("HL*4*3*23*0") < segments.index(trace)
    assert segments.index("NM1*03*1*Lee*Ann") < segments.index("EQ*30")
    assert parse_270(text).transactions == [inquiry]


def test_self_and_spouse_coverages_ask_as_before_and_as_a_dependent() -> None:
    own, spouse = asked(PRIMARY, SECONDARY)
    assert own.dependent is None
    assert own.subscriber.first_name == "Ann"
    assert spouse.dependent is not None
    assert spouse.dependent.relationship == "01"
    assert "HL*3*2*22*0" in build_270(domain.inquiry_document(own, 1, REQUESTER, NOW))


def test_the_answer_must_be_about_the_dependent() -> None:
    (inquiry,) = asked(CHILD_OF_BOB)
    good = answer(inquiry, dependent=inquiry.dependent, coverage=GOLD)
    assert domain.read_answer(inquiry, good).coverage == GOLD
    # Benefits at the subscriber's level are the parent's: not read as the child's.
    with pytest.raises(PermanentError, match="not the dependent"):
        domain.read_answer(inquiry, answer(inquiry, coverage=GOLD))
    # The subscriber not found: the payer may leave the dependent's level out.
    refused = domain.read_answer(inquiry, answer(inquiry, rejection=Rejection(reason="75")))
    assert refused.rejection is not None


def test_a_dependent_level_rejection_is_a_failure_of_that_coverage() -> None:
    (inquiry,) = asked(CHILD_OF_BOB)
    rejection = Rejection(level="dependent", reason="67")
    text = answer(inquiry, dependent=inquiry.dependent, rejection=rejection)
    response = domain.read_answer(inquiry, text)
    (event,) = domain.decide("E0000000000aa", [(CHILD_OF_BOB, response)], NOW)
    assert isinstance(event, EligibilityFailed)
    assert event.detail == "AAA 67 at dependent level"
    assert event.self_pay


def test_the_payer_simulator_answers_at_the_dependent_level() -> None:
    (inquiry,) = asked(CHILD_OF_BOB)
    simulator = Simulator(seed=7, ack_delay_s=0, remit_delay_s=0, first_control_number=1)
    text = simulator.answer_270(build_270(domain.inquiry_document(inquiry, 5, REQUESTER, NOW)))
    assert "HL*4*3*23*0" in text.split("~\n")
    response = domain.read_answer(inquiry, text)
    assert response.dependent == inquiry.dependent
    (event,) = domain.decide("E0000000000aa", [(CHILD_OF_BOB, response)], NOW)
    # The subscriber's member id decides (seeded); the answer is the child's, at 2000D.
    status = adjudication.member_status(7, "ACME01", CHILD_OF_BOB.member_id)
    assert isinstance(event, EligibilityVerified if status == "active" else EligibilityFailed)
    assert event.coverage_id == CHILD_OF_BOB.coverage_id
