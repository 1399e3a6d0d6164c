"""Eligibility rules: joining inputs in any order, when a check starts, what a 271 means."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rcm_contracts.eligibility import (
    EligibilityFailed,
    EligibilityFailureReason,
    EligibilityVerified,
)
from rcm_contracts.registration import (
    AppointmentScheduled,
    CoverageRank,
    CoverageUpdated,
    PatientRegistered,
)
from rcm_eligibility import domain
from rcm_eligibility.domain import Verification
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Conflict, Invalid, PermanentError
from rcm_x12 import Coverage as Benefits
from rcm_x12 import (
    EligibilityProvider,
    EligibilityResponse,
    EligibilityResponseDocument,
    EligibilitySubscriber,
    Envelope,
    Rejection,
    build_270,
    build_271,
    parse_270,
)

from .support import (
    APPOINTMENT,
    EPISODE,
    GOLD,
    INACTIVE,
    NOT_FOUND,
    NOW,
    NPI,
    PRIMARY,
    REGISTERED,
    REQUESTER,
    SECONDARY,
    coverages,
    person,
)

Input = Callable[[Verification | None], Decision[Verification, None]]


def fed(event: AppointmentScheduled | PatientRegistered | CoverageUpdated) -> Input:
    def feed(state: Verification | None) -> Decision[Verification, None]:
        if isinstance(event, AppointmentScheduled):
            return domain.on_appointment(state, event, REQUESTER, NOW)
        if isinstance(event, PatientRegistered):
            return domain.on_patient(state, event, REQUESTER, NOW)
        return domain.on_coverages(state, event, REQUESTER, NOW)

    return feed


def unchanged(decision: Decision[Verification, None]) -> bool:
    return decision.state is None and not decision.events


def run(*inputs: Input, state: Verification | None = None) -> tuple[Verification, list[Any]]:
    events: list[Any] = []
    for feed in inputs:
        decision = feed(state)
        state = decision.state or state
        events += decision.events
    assert state is not None
    return state, events


def response(
    trace: str = "T1",
    benefits: Benefits | None = None,
    rejection: Rejection | None = None,
) -> EligibilityResponse:
    return EligibilityResponse(
        control_number="0001",
        reference_id=EPISODE,
        created=datetime(2026, 3, 2, 15, 0),  # noqa: DTZ001 - X12 times carry no zone
        payer_name="Acme Health Plan",
        payer_id="ACME01",
        provider=EligibilityProvider(last_name="RCM MEDICAL GROUP", npi=NPI),
        subscriber=EligibilitySubscriber(member_id="AC123456789", last_name="Lee"),
        trace_number=trace,
        trace_originator="1123456789",
        coverage=benefits,
        rejection=rejection,
    )


# --- what a 271 means ---------------------------------------------------------------------


def test_active_coverage_carries_the_benefits() -> None:
    (event,) = domain.decide(EPISODE, [(PRIMARY, response("EQ0001", GOLD))], NOW)
    assert event == EligibilityVerified(
        episode_id=EPISODE,
        coverage_id=PRIMARY.coverage_id,
        rank=CoverageRank.PRIMARY,
        payer_id="ACME01",
        plan_name="GOLD PPO 1500",
        copay_cents=2500,
        deductible_cents=150000,
        deductible_remaining_cents=120000,
        coinsurance_basis_points=2000,
        out_of_pocket_remaining_cents=465075,
        verified_at=NOW,
        trace_number="EQ0001",
    )


def test_benefits_the_271_leaves_out_are_zero_or_unknown() -> None:
    (event,) = domain.decide(EPISODE, [(PRIMARY, response(benefits=Benefits(active=True)))], NOW)
    assert isinstance(event, EligibilityVerified)
    assert (event.copay_cents, event.deductible_remaining_cents) == (0, 0)
    assert event.coinsurance_basis_points == 0
    assert event.out_of_pocket_remaining_cents is None
    assert event.plan_name is None


def test_an_inactive_secondary_is_not_self_pay_when_the_primary_is_active() -> None:
    verified, failed = domain.decide(
        EPISODE, [(PRIMARY, response(benefits=GOLD)), (SECONDARY, response(benefits=INACTIVE))], NOW
    )
    assert isinstance(verified, EligibilityVerified)
    assert isinstance(failed, EligibilityFailed)
    assert (failed.reason, failed.self_pay) == (EligibilityFailureReason.INACTIVE, False)
    assert (failed.coverage_id, failed.payer_id) == (SECONDARY.coverage_id, "SUMMIT")


def test_no_active_coverage_makes_every_failure_self_pay() -> None:
    inactive, missing = domain.decide(
        EPISODE,
        [(PRIMARY, response(benefits=INACTIVE)), (SECONDARY, response(rejection=NOT_FOUND))],
        NOW,
    )
    assert isinstance(inactive, EligibilityFailed)
    assert isinstance(missing, EligibilityFailed)
    assert inactive.reason is EligibilityFailureReason.INACTIVE
    assert missing.reason is EligibilityFailureReason.SUBSCRIBER_NOT_FOUND
    assert missing.detail == "AAA 75 at subscriber level"
    assert inactive.self_pay
    assert missing.self_pay


def test_a_payer_that_cannot_answer_now_is_unavailable_not_unknown() -> None:
    (event,) = domain.decide(EPISODE, [(PRIMARY, response(rejection=Rejection(reason="42")))], NOW)
    assert isinstance(event, EligibilityFailed)
    assert event.reason is EligibilityFailureReason.PAYER_UNAVAILABLE


@given(st.decimals(min_value=0, max_value=100, places=2))
def test_coinsurance_percent_to_basis_points_is_exact(percent: Decimal) -> None:
    points = domain.basis_points(percent)
    assert Decimal(points) == percent * 100
    assert 0 <= points <= 10_000


# --- joining inputs in any order ----------------------------------------------------------


@given(st.permutations([0, 1, 2]), st.booleans())
def test_inputs_join_in_any_order_and_start_one_check(order: list[int], insured: bool) -> None:
    covered = coverages(SECONDARY, PRIMARY) if insured else coverages()
    inputs = [fed(APPOINTMENT), fed(REGISTERED), fed(covered)]
    joined, events = run(*(inputs[i] for i in order))
    assert joined.missing == []
    assert joined.checks == 1
    assert joined.check is not None
    if insured:
        assert events == []
        assert joined.pending is not None
        assert [c.rank for c in joined.check.coverages] == ["primary", "secondary"]
    else:
        (event,) = events
        assert isinstance(event, EligibilityFailed)
        assert (event.reason, event.self_pay, event.coverage_id) == (
            EligibilityFailureReason.NO_COVERAGE,
            True,
            None,
        )
        assert joined.pending is None


def test_nothing_starts_before_all_inputs_are_there() -> None:
    state, events = run(fed(coverages()), fed(REGISTERED))
    assert events == []
    assert state.missing == ["appointment"]
    assert state.check is None


def test_only_a_change_of_coverages_starts_another_check() -> None:
    state, _ = run(fed(APPOINTMENT), fed(REGISTERED), fed(coverages(PRIMARY)))
    assert unchanged(fed(coverages(PRIMARY))(state))
    moved = REGISTERED.model_copy(update={"patient": person("Anne")})
    state, events = run(fed(moved), state=state)
    assert state.checks == 1
    state, events = run(fed(coverages(PRIMARY, SECONDARY)), state=state)
    assert (state.checks, events) == (2, [])
    state, events = run(fed(coverages()), state=state)
    assert state.checks == 3
    assert [type(e) for e in events] == [EligibilityFailed]


def test_inputs_that_break_the_rules_are_refused() -> None:
    state, _ = run(fed(APPOINTMENT))
    stranger = REGISTERED.model_copy(update={"patient_id": "P999999999999"})
    with pytest.raises(Conflict, match="another patient"):
        fed(stranger)(state)
    twice_primary = coverages(PRIMARY, PRIMARY.model_copy(update={"coverage_id": "V9"}))
    with pytest.raises(Invalid, match="two coverages of one rank"):
        fed(twice_primary)(state)
    dependent_without_subscriber = SECONDARY.model_copy(update={"subscriber": None})
    state, _ = run(fed(REGISTERED), state=state)
    with pytest.raises(Invalid, match="subscriber missing"):
        fed(coverages(dependent_without_subscriber))(state)


# --- the 270s and the answers -------------------------------------------------------------


def pending_check() -> Verification:
    state, _ = run(fed(APPOINTMENT), fed(REGISTERED), fed(coverages(SECONDARY, PRIMARY)))
    return state


def test_inquiries_ask_in_rank_order_about_the_subscriber() -> None:
    asked = domain.inquiries(pending_check(), REQUESTER, NOW)
    assert [coverage.rank for coverage, _ in asked] == ["primary", "secondary"]
    (_, primary), (_, secondary) = asked
    assert primary.subscriber.first_name == "Ann"  # the patient is the subscriber
    assert secondary.subscriber.first_name == "Bob"  # the spouse holds the plan
    assert secondary.subscriber.member_id == "SU987654321"
    assert primary.provider.npi == NPI
    assert primary.service_date == date(2026, 3, 3)  # the appointment's UTC date
    assert primary.service_types == ["30"]
    assert primary.trace_number != secondary.trace_number
    text = build_270(domain.inquiry_document(primary, 42, REQUESTER, NOW))
    parsed = parse_270(text)
    assert parsed.envelope.control_number == 42
    assert "ISA*00*          *00*          *ZZ*RCMPLATFORM    *ZZ*CLEARINGHOUSE  " in text
    assert "*000000042*" in text
    assert parsed.transactions == [primary]


def test_an_answer_must_be_one_271_for_this_inquiry() -> None:
    (_, inquiry), _ = domain.inquiries(pending_check(), REQUESTER, NOW)
    envelope = Envelope(
        sender_id="CLEARINGHOUSE",
        receiver_id="RCMPLATFORM",
        control_number=7,
        group_control_number=7,
        created=datetime(2026, 3, 2, 15, 0),  # noqa: DTZ001 - X12 times carry no zone
    )

    def answer(trace: str) -> str:
        reply = response(trace, GOLD)
        return build_271(EligibilityResponseDocument(envelope=envelope, transactions=[reply]))

    assert domain.read_answer(inquiry, answer(inquiry.trace_number)).coverage == GOLD
    with pytest.raises(PermanentError, match="answers trace"):
        domain.read_answer(inquiry, answer("SOMEONE-ELSE"))
    with pytest.raises(PermanentError, match="unreadable 271"):
        domain.read_answer(inquiry, "<html>502 Bad Gateway</html>")


def test_results_close_the_check_once_and_only_the_current_one() -> None:
    state = pending_check()
    answers = [(PRIMARY, response(benefits=GOLD)), (SECONDARY, response(rejection=NOT_FOUND))]
    assert unchanged(domain.record_results(state, 2, answers, NOW))  # not this check
    decision = domain.record_results(state, 1, answers, NOW)
    assert [type(e) for e in decision.events] == [EligibilityVerified, EligibilityFailed]
    closed = decision.state
    assert closed is not None
    assert closed.pending is None
    view = closed.view()
    assert view.status == "checked"
    assert view.check is not None
    assert [r.outcome for r in view.check.results] == [
        "verified",
        "subscriber-not-found",
    ]
    assert unchanged(domain.record_results(closed, 1, answers, NOW))


def test_a_newer_check_makes_older_answers_moot() -> None:
    state, _ = run(fed(coverages(PRIMARY)), state=pending_check())
    assert unchanged(domain.record_results(state, 1, [(PRIMARY, response(benefits=GOLD))], NOW))
    assert state.pending is not None


def test_an_error_is_kept_on_the_pending_check() -> None:
    decision = domain.record_error(pending_check(), 1, "unreadable 271")
    assert not decision.events
    failing = decision.state
    assert failing is not None
    check = failing.view().check
    assert check is not None
    assert check.last_error == "unreadable 271"
    assert unchanged(domain.record_error(failing, 1, "unreadable 271"))


def test_the_view_shows_no_demographics() -> None:
    view = pending_check().view()
    assert view.status == "checking"
    for flat in (repr(view), view.model_dump_json()):
        assert "Lee" not in flat
        assert "AC123456789" not in flat
