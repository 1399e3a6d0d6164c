"""Every KPI formula on hand-worked numbers: facts from contract events, contributions
summed as the rollups sum them, the figures GET /kpis answers."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta

import pytest
from rcm_contracts.claims import ClaimFrequency, DenialCategory
from rcm_kpis import domain
from rcm_kpis.domain import EpisodeFacts, OpenClaim, Rollup

from .support import (
    DAY,
    T0,
    accepted,
    accepted_999,
    at,
    cancelled,
    closed,
    coverage,
    denied,
    encounter,
    paid,
    patient_paid,
    rejected,
    resubmitted,
    scheduled,
    submitted,
    verified,
)

ACME = "ACME01"


def facts_of(episode_id: str, *events: object) -> EpisodeFacts:
    facts: EpisodeFacts | None = None
    for number, event in enumerate(events):
        decision = domain.record(facts, episode_id, 0, event, f"m{number}")
        facts = decision.state or facts
    assert facts is not None
    return facts


def rollups_of(*episodes: EpisodeFacts) -> list[Rollup]:
    return [
        Rollup(day=day, payer=payer, partition=0, counts=counts)
        for facts in episodes
        for (day, payer), counts in domain.contributions(facts).items()
    ]


def test_clean_claim_rate_counts_first_submissions_accepted_without_rejection_or_correction() -> (
    None
):
    clean = facts_of("E1", submitted("E1", "E1-1", ACME, 100, T0), accepted("E1", "E1-1", at(1)))
    rejected_then_resent = facts_of(
        "E2",
        submitted("E2", "E2-1", ACME, 100, T0),
        rejected("E2", "E2-1", at(1)),
        resubmitted("E2", "E2-2", "E2-1", at(2), ClaimFrequency.ORIGINAL),
        submitted("E2", "E2-2", ACME, 100, at(2)),
        accepted("E2", "E2-2", at(3)),
    )
    denied_then_corrected = facts_of(
        "E3",
        submitted("E3", "E3-1", ACME, 100, T0),
        accepted("E3", "E3-1", at(1)),
        denied("E3", "E3-1", ACME, DenialCategory.CODING, at(5)),
        resubmitted("E3", "E3-2", "E3-1", at(6), ClaimFrequency.REPLACEMENT),
    )
    clearinghouse_only = facts_of(
        "E4", submitted("E4", "E4-1", ACME, 100, T0), accepted_999("E4", "E4-1", T0)
    )
    report = domain.summed(
        rollups_of(clean, rejected_then_resent, denied_then_corrected, clearinghouse_only)
    )
    # 4 first submissions on DAY (E2-2 replaces E2-1: not a first one); only E1-1 is clean.
    assert report["by_day"][DAY.isoformat()]["clean_claim_rate"] == {
        "clean": 1,
        "submitted": 4,
        "rate": 0.25,
    }
    assert report["by_payer"][ACME]["clean_claim_rate"]["rate"] == 0.25


def test_denial_rate_by_count_dollars_and_category_leaves_corrected_claims_out_of_denials() -> None:
    day = at(10)
    episodes = [
        facts_of("E1", submitted("E1", "E1-1", ACME, 10_000, T0), paid("E1", "E1-1", ACME, day)),
        facts_of(
            "E2",
            submitted("E2", "E2-1", ACME, 20_000, T0),
            denied("E2", "E2-1", ACME, DenialCategory.CODING, day),
        ),
        facts_of(
            "E3",
            denied("E3", "E3-1", ACME, DenialCategory.AUTHORIZATION, day),  # before its submission
            submitted("E3", "E3-1", ACME, 30_000, T0),
        ),
        facts_of(
            "E4",
            submitted("E4", "E4-7", ACME, 5_000, T0, frequency=ClaimFrequency.REPLACEMENT),
            denied("E4", "E4-7", ACME, DenialCategory.CODING, day),
        ),
        facts_of("E5", submitted("E5", "E5-1", ACME, 15_000, T0), paid("E5", "E5-1", ACME, day)),
    ]
    denials = domain.summed(rollups_of(*episodes))["by_day"][day.date().isoformat()]["denial_rate"]
    # 5 adjudicated for $800.00; initial denials E2 and E3 ($500.00): 2/5 and 500/800.
    assert denials["adjudicated"] == 5
    assert denials["denied"] == 2
    assert denials["rate"] == 0.4
    assert denials["adjudicated_cents"] == 80_000
    assert denials["denied_cents"] == 50_000
    assert denials["dollar_rate"] == 0.625
    assert denials["by_category"] == {
        "authorization": {"denied": 1, "denied_cents": 30_000, "rate": 0.2},
        "coding": {"denied": 1, "denied_cents": 20_000, "rate": 0.2},
    }


def test_first_adjudication_wins_whatever_order_the_events_came_in() -> None:
    events = [
        submitted("E1", "E1-1", ACME, 10_000, T0),
        paid("E1", "E1-1", ACME, at(20)),
        denied("E1", "E1-1", ACME, DenialCategory.DOCUMENTATION, at(10)),
    ]
    figures = domain.summed(rollups_of(facts_of("E1", *events)))["totals"]["denial_rate"]
    assert (figures["denied"], figures["adjudicated"]) == (1, 1)


def test_days_in_ar_over_90_days_of_history() -> None:
    today = date(2025, 6, 30)
    open_ar = [
        OpenClaim(claim_id="E1-1", payer=ACME, charge_cents=30_000, first_submitted_at=at(100)),
        OpenClaim(claim_id="E2-1", payer="SUMMIT", charge_cents=15_000, first_submitted_at=at(110)),
    ]
    charges = {ACME: 600_000, "SUMMIT": 300_000}  # $9,000.00 over 90 days: $100.00 a day
    figures = domain.receivables(open_ar, charges, date(2025, 1, 1), today)
    assert figures["history_days"] == 90
    total = figures["days_in_ar"]["total"]
    assert total == {
        "ar_cents": 45_000,
        "gross_charges_cents": 900_000,
        "average_daily_charges_cents": 10_000,
        "days": 4.5,
    }
    # ACME: 30,000 / (600,000 / 90) = 4.5 days; SUMMIT: 15,000 / (300,000 / 90) = 4.5.
    assert figures["days_in_ar"]["by_payer"][ACME]["days"] == 4.5
    assert figures["days_in_ar"]["by_payer"]["SUMMIT"]["days"] == 4.5


def test_days_in_ar_with_less_history_averages_over_the_days_there_are() -> None:
    today = date(2025, 3, 12)
    open_ar = [OpenClaim(claim_id="E1-1", payer=ACME, charge_cents=30_000, first_submitted_at=T0)]
    figures = domain.receivables(open_ar, {ACME: 100_000}, date(2025, 3, 3), today)
    # 10 days (3rd to 12th): 10,000 a day; 30,000 open is 3.0 days.
    assert figures["history_days"] == 10
    assert figures["days_in_ar"]["total"]["days"] == 3.0


def test_days_in_ar_without_charges_is_not_a_number() -> None:
    figures = domain.receivables([], {}, None, date(2025, 3, 3))
    assert figures["history_days"] == 0
    assert figures["days_in_ar"]["total"]["days"] is None


def test_aged_ar_buckets_by_days_since_first_submission() -> None:
    today = date(2025, 6, 1)
    ages = [0, 30, 31, 60, 61, 90, 91, 120, 121, 400]
    open_ar = [
        OpenClaim(
            claim_id=f"E{age}-1",
            payer=ACME if age < 100 else "SUMMIT",
            charge_cents=100 + age,
            first_submitted_at=at(0).replace(year=2025, month=6, day=1) - timedelta(days=age),
        )
        for age in ages
    ]
    aged = domain.receivables(open_ar, {}, None, today)["aged_ar"]
    assert aged["total"] == {
        "0-30": {"claims": 2, "cents": 230},
        "31-60": {"claims": 2, "cents": 291},
        "61-90": {"claims": 2, "cents": 351},
        "91-120": {"claims": 2, "cents": 411},
        "120+": {"claims": 2, "cents": 721},
    }
    assert aged["by_payer"]["SUMMIT"]["91-120"] == {"claims": 1, "cents": 220}
    assert aged["by_payer"]["SUMMIT"]["120+"] == {"claims": 2, "cents": 721}


def test_open_claims_are_open_primary_claims_aged_from_the_first_of_their_chain() -> None:
    facts = facts_of(
        "E1",
        submitted("E1", "E1-1", ACME, 10_000, T0),
        denied("E1", "E1-1", ACME, DenialCategory.CODING, at(20)),
        resubmitted("E1", "E1-2", "E1-1", at(40), ClaimFrequency.REPLACEMENT),
        closed("E1", "E1-1", ACME, at(40)),
        submitted("E1", "E1-2", ACME, 9_000, at(40), frequency=ClaimFrequency.REPLACEMENT),
        submitted("E1", "E1-3", "SUMMIT", 2_000, at(41), rank=domain.CoverageRank.SECONDARY),
    )
    assert facts.open_ar == [
        OpenClaim(claim_id="E1-2", payer=ACME, charge_cents=9_000, first_submitted_at=T0)
    ]
    assert facts.has_open_ar
    done = facts_of("E2", submitted("E2", "E2-1", ACME, 1, T0), closed("E2", "E2-1", ACME, T0))
    assert (done.open_ar, done.has_open_ar) == ([], False)


def test_point_of_service_collections_in_dollars_received_on_or_before_the_day_of_service() -> None:
    facts = facts_of(
        "E1",
        patient_paid("E1", "PAY-1", 3_000, at(-1)),
        scheduled("E1", at(0, 2)),
        patient_paid("E1", "PAY-2", 2_000, at(0, 8)),
        patient_paid("E1", "PAY-3", 5_000, at(10)),
        patient_paid("E1", "PAY-3", 5_000, at(10)),  # the same payment again
    )
    pos = domain.summed(rollups_of(facts))["totals"]["pos_collections"]
    assert pos == {
        "pos_paid_cents": 5_000,
        "patient_paid_cents": 10_000,
        "rate": 0.5,
        "pos_payments": 2,
        "patient_payments": 3,
    }


def test_the_encounter_date_of_service_replaces_the_appointment_day() -> None:
    facts = facts_of(
        "E1",
        scheduled("E1", T0),
        patient_paid("E1", "PAY-1", 1_000, at(1)),
        encounter("E1", DAY + timedelta(days=1)),
    )
    assert domain.summed(rollups_of(facts))["totals"]["pos_collections"]["rate"] == 1.0


def test_insurance_verification_rate_before_the_day_and_before_the_visit() -> None:
    start = at(0, 6)  # 15:00 on DAY
    episodes = [
        facts_of("E1", scheduled("E1", start), verified("E1", ACME, at(-1))),  # day before
        facts_of("E2", scheduled("E2", start), verified("E2", ACME, at(0, 1))),  # same day
        facts_of("E3", scheduled("E3", start), verified("E3", ACME, at(0, 7))),  # after start
        facts_of("E4", scheduled("E4", start)),  # never verified
        facts_of("E5", scheduled("E5", start), cancelled("E5")),  # not an encounter
    ]
    figures = domain.summed(rollups_of(*episodes))["totals"]["insurance_verification_rate"]
    assert figures == {
        "scheduled": 4,
        "verified_before_day": 1,
        "rate": 0.25,
        "verified_before_visit": 2,
        "before_visit_rate": 0.5,
    }


def test_episode_level_kpis_follow_the_primary_coverage_payer_or_self_pay() -> None:
    insured = facts_of("E1", scheduled("E1"), coverage("E1", ACME))
    self_pay = facts_of("E2", scheduled("E2"), coverage("E2", None))
    unknown = facts_of("E3", scheduled("E3"))
    payers = domain.summed(rollups_of(insured, self_pay, unknown))["by_payer"]
    scheduled_by_payer = {
        payer: figures["insurance_verification_rate"]["scheduled"]
        for payer, figures in payers.items()
    }
    assert scheduled_by_payer == {
        ACME: 1,
        domain.SELF_PAY: 1,
        domain.UNKNOWN_PAYER: 1,
    }


def test_cost_to_collect_is_not_computable() -> None:
    figures = domain.figures({})
    assert figures["cost_to_collect"] == {"value": None, "status": "not computable: no cost data"}
    assert figures["clean_claim_rate"]["rate"] is None  # no denominator, no figure


def test_an_event_that_changes_no_fact_decides_nothing() -> None:
    facts = facts_of("E1", submitted("E1", "E1-1", ACME, 100, T0))
    decision = domain.record(facts, "E1", 0, accepted_999("E1", "E1-1", T0), "m9")
    assert decision.state is None
    assert decision.events == ()


EPISODE = [
    scheduled("E1", at(0, 6)),
    coverage("E1", ACME),
    verified("E1", ACME, at(-1)),
    submitted("E1", "E1-1", ACME, 10_000, at(1)),
    accepted("E1", "E1-1", at(1, 1)),
    denied("E1", "E1-1", ACME, DenialCategory.CODING, at(5)),
    resubmitted("E1", "E1-2", "E1-1", at(6), ClaimFrequency.REPLACEMENT),
    closed("E1", "E1-1", ACME, at(6)),
    submitted("E1", "E1-2", ACME, 9_000, at(6), frequency=ClaimFrequency.REPLACEMENT),
    patient_paid("E1", "PAY-1", 2_500, at(0, 5)),
]


@pytest.mark.parametrize("seed", range(12))
def test_any_order_moves_the_rollups_to_the_same_contribution(seed: int) -> None:
    order = list(EPISODE)
    random.Random(seed).shuffle(order)
    facts: EpisodeFacts | None = None
    moved: dict[tuple[date, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for number, event in enumerate(order):
        decision = domain.record(facts, "E1", 0, event, f"m{number}")
        for delta in decision.result or []:
            for name, change in delta.counts.items():
                moved[delta.day, delta.payer][name] += change
        facts = decision.state or facts
    assert facts is not None
    in_order = facts_of("E1", *EPISODE)
    assert domain.contributions(facts) == domain.contributions(in_order)
    assert facts.open_ar == in_order.open_ar
    net = {
        where: {name: value for name, value in counts.items() if value}
        for where, counts in moved.items()
    }
    assert {where: counts for where, counts in net.items() if counts} == domain.contributions(facts)
