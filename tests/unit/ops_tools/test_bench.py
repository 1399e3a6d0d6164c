"""Percentiles, hop pairing and the end-to-end path of the benchmark's analysis."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rcm_ops.bench import HUMAN, MACHINE, Event, analyse, cause_of, critical_path, hops_of
from rcm_ops.rawbench import latency_summary, percentile

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def at(seconds: float, kind: str, claim: str | None = None) -> Event:
    return Event(kind, T0 + timedelta(seconds=seconds), claim)


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1.0], 99) == 1.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([4, 1, 3, 2], 0) == 1
    assert percentile([4, 1, 3, 2], 100) == 4
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        percentile([1.0], 101)


@given(
    st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=50),
    st.floats(min_value=0, max_value=100),
    st.floats(min_value=0, max_value=100),
)
def test_percentile_is_monotonic_and_within_range(
    values: list[float], q1: float, q2: float
) -> None:
    low, high = sorted((q1, q2))
    assert min(values) <= percentile(values, low) <= percentile(values, high) <= max(values)


def test_latency_summary_in_milliseconds() -> None:
    summary = latency_summary([0.001, 0.002, 0.003])
    assert summary["count"] == 3
    assert summary["p50_ms"] == 2.0
    assert summary["max_ms"] == 3.0


# An insured episode: registration (bot), eligibility (machine) while the front desk
# goes on, coder (human), claim, payer, posting, closing with a patient payment.
EPISODE = [
    at(0.0, "appointment-scheduled"),
    at(0.5, "patient-registered"),
    at(0.6, "coverage-updated"),
    at(0.9, "eligibility-verified"),
    at(1.0, "patient-checked-in"),
    at(2.0, "encounter-completed"),
    at(10.0, "coding-completed"),
    at(10.4, "claim-submitted", "E1-1"),
    at(10.6, "claim-accepted", "E1-1"),
    at(11.0, "payment-posted", "E1-1"),
    at(11.1, "claim-paid", "E1-1"),
    at(11.2, "claim-closed", "E1-1"),
    at(11.5, "statement-issued"),
    at(20.0, "patient-payment-received"),
    at(20.25, "episode-closed"),
]


def labels(events: list[Event]) -> dict[str, tuple[str, float]]:
    return {h.label: (h.kind, round(h.seconds, 3)) for h in hops_of(events)}


def test_each_event_pairs_with_its_latest_cause() -> None:
    hops = labels(EPISODE)
    assert hops["coverage-updated -> eligibility-verified"] == (MACHINE, 0.3)
    assert hops["coding-completed -> claim-submitted"] == (MACHINE, 0.4)
    assert hops["claim-submitted -> payment-posted"] == (MACHINE, 0.6)
    assert hops["payment-posted -> claim-closed"] == (MACHINE, 0.2)
    assert hops["claim-closed -> statement-issued"] == (MACHINE, 0.3)
    assert hops["patient-payment-received -> episode-closed"] == (MACHINE, 0.25)
    assert hops["encounter-completed -> coding-completed"] == (HUMAN, 8.0)
    assert hops["statement-issued -> patient-payment-received"] == (HUMAN, 8.5)


def test_claim_hops_match_the_same_claim() -> None:
    events = [
        at(0, "claim-submitted", "E1-1"),
        at(1, "claim-submitted", "E1-2"),
        at(5, "payment-posted", "E1-1"),
        at(6, "claim-closed", "E1-1"),
    ]
    hop = cause_of(events, 2)
    assert hop is not None
    assert (hop.cause.claim_id, hop.seconds) == ("E1-1", 5.0)


def test_a_denial_accepted_by_a_biller_is_a_human_hop() -> None:
    events = [
        at(0, "payment-posted", "E1-1"),
        at(0.1, "claim-denied", "E1-1"),
        at(30, "claim-closed", "E1-1"),
    ]
    hop = cause_of(events, 2)
    assert hop is not None
    assert (hop.label, hop.kind) == ("claim-denied -> claim-closed", HUMAN)


def test_critical_path_splits_wall_time_into_machine_and_human() -> None:
    path = critical_path(EPISODE)
    assert path is not None
    assert path.complete
    assert path.wall_s == pytest.approx(20.25)
    # coding-completed -> claim-submitted -> payment-posted -> claim-closed -> statement,
    # then patient-payment-received -> episode-closed; eligibility finished off the path.
    assert path.machine_s == pytest.approx(0.4 + 0.6 + 0.2 + 0.3 + 0.25)
    assert path.machine_s + path.human_s == pytest.approx(path.wall_s)


def test_slow_eligibility_puts_itself_on_the_path() -> None:
    events = [
        at(0.0, "appointment-scheduled"),
        at(0.5, "patient-registered"),
        at(0.6, "coverage-updated"),
        at(1.0, "patient-checked-in"),
        at(2.0, "encounter-completed"),
        at(3.0, "coding-completed"),
        at(5.6, "eligibility-verified"),
        at(6.0, "claim-submitted", "E1-1"),
        at(7.0, "payment-posted", "E1-1"),
        at(7.5, "claim-closed", "E1-1"),
        at(8.0, "episode-closed"),
    ]
    path = critical_path(events)
    assert path is not None
    assert path.machine_s == pytest.approx(5.0 + 0.4 + 1.0 + 0.5 + 0.5)
    assert path.human_s == pytest.approx(0.6)


def test_open_episodes_have_no_path_and_analysis_counts_closed_ones() -> None:
    assert critical_path(EPISODE[:-1]) is None
    report = analyse({"E1": EPISODE, "E2": EPISODE[:-1]})
    assert report["end_to_end"]["episodes"] == 1
    assert report["end_to_end"]["complete_paths"] == 1
    assert report["hops"]["coding-completed -> claim-submitted"]["count"] == 2
    assert "encounter-completed -> coding-completed" not in report["hops"]
