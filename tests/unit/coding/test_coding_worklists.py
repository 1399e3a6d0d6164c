"""The coders' worklists: holds with a physician query, lead reassignment, routing by
specialty and priority, audit sampling and review, productivity, and the ICD-10-CM
release chosen by the date of service."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from rcm_coding import codesets, domain
from rcm_coding.codesets import Icd10Release
from rcm_coding.domain import (
    Case,
    Coding,
    LineInput,
    QueryStatus,
    Recode,
    ReviewStatus,
    Specialty,
    Status,
)
from rcm_coding.handlers import Handlers
from rcm_contracts.coding import (
    CoderProfileRequested,
    CodesSubmissionRequested,
    CodingCaseReassigned,
    CodingCaseReviewed,
    CodingCorrected,
    CodingQueryAnswered,
    CodingQueryRaised,
    CodingQueryRequested,
    QueryReason,
    RecodeReason,
)
from rcm_shared.aggregates import InMemoryAggregates
from rcm_shared.envelope import Envelope
from rcm_shared.errors import Conflict, Invalid, NotFound

from .test_cases import CASE, CHARGEMASTER, CODING, EPISODE, NOW, after, encounter, nothing

LATER = NOW + timedelta(minutes=12)


def opened(dos: date = date(2025, 3, 4)) -> Case:
    event = encounter().model_copy(update={"date_of_service": dos})
    suggestions = domain.suggest(event.documentation, CHARGEMASTER)
    expected = domain.expected_charge_cents(suggestions, CHARGEMASTER)
    return after(domain.open_case(None, event, suggestions, "rcm/registration", NOW, expected))


def working(coder: str = "coder-1") -> Case:
    return after(domain.assign(opened(), CASE, coder, NOW))


def held(coder: str = "coder-1") -> Case:
    return after(domain.hold(working(coder), CASE, coder, "Q1", QueryReason.LATERALITY, NOW))


def coded(coder: str = "coder-1", sample_rate: float = 0.0) -> Case:
    decision = domain.submit(
        working(coder), CASE, coder, CODING, CHARGEMASTER, LATER, sample_rate=sample_rate
    )
    return after(decision)


# -- routing


def test_a_case_s_specialty_is_the_most_demanding_cpt_section_among_its_lines() -> None:
    assert domain.specialty_of(["99213", "73610"]) is Specialty.RADIOLOGY
    assert domain.specialty_of(["99213", "73610", "29540"]) is Specialty.SURGERY
    assert domain.specialty_of(["99213", "36415", "83036"]) is Specialty.PATHOLOGY_LAB
    assert domain.specialty_of(["99213", "96372", "J1100"]) is Specialty.MEDICINE
    assert domain.specialty_of(["99214"]) is Specialty.EVALUATION_MANAGEMENT
    assert domain.specialty_of(["00840"]) is Specialty.ANESTHESIA
    assert domain.specialty_of([]) is Specialty.UNCLASSIFIED


def test_an_opened_case_carries_its_specialty_expected_charge_and_priority() -> None:
    case = opened()
    assert case.specialty is Specialty.EVALUATION_MANAGEMENT  # a 99213 alone
    assert case.expected_charge_cents == 15000
    assert case.priority == domain.priority_of(None, date(2025, 3, 4), 15000)


def test_priority_puts_denials_first_then_older_services_then_larger_charges() -> None:
    denial = Recode(
        reason=RecodeReason.CODING_DENIAL, claim_id="C1", reason_codes=[], requested_at=NOW
    )
    audit = Recode(reason=RecodeReason.AUDIT, reason_codes=[], requested_at=NOW)
    keys = {
        "denied, recent, small": domain.priority_of(denial, date(2025, 6, 1), 100),
        "old, small": domain.priority_of(None, date(2025, 1, 1), 100),
        "recent, large": domain.priority_of(None, date(2025, 6, 1), 90000),
        "recent, small": domain.priority_of(audit, date(2025, 6, 1), 100),
    }
    assert sorted(keys, key=keys.__getitem__) == list(keys)


def test_a_coding_denial_raises_the_reopened_case_to_the_front() -> None:
    from .test_cases import denial

    reopened = after(domain.reopen_for_recode(coded(), denial(), "rcm/claims", NOW))
    assert reopened.status == Status.OPEN
    assert reopened.priority is not None
    assert reopened.priority.startswith("0|")
    assert reopened.assigned_at is None


# -- hold and physician query


def test_the_coder_working_a_case_holds_it_with_a_query_that_carries_no_text() -> None:
    decision = domain.hold(working(), CASE, "coder-1", "Q1", QueryReason.LATERALITY, NOW)
    case = after(decision)
    assert case.status == Status.ON_HOLD
    assert case.coder_id == "coder-1"
    assert [(q.query_id, q.status) for q in case.queries] == [("Q1", QueryStatus.OPEN)]
    (event,) = decision.events
    assert isinstance(event, CodingQueryRaised)
    assert set(event.model_dump()) == {
        "episode_id",
        "coding_case_id",
        "query_id",
        "reason",
        "coder_id",
        "raised_at",
    }
    assert case.audit[-1].action == "query-raised"
    # The same query again (a retry) changes nothing.
    assert nothing(domain.hold(case, CASE, "coder-1", "Q1", QueryReason.LATERALITY, NOW))


def test_only_the_coder_working_the_case_may_hold_it() -> None:
    with pytest.raises(Conflict, match="not in progress with coder coder-2"):
        domain.hold(working(), CASE, "coder-2", "Q1", QueryReason.OTHER, NOW)
    with pytest.raises(Conflict):
        domain.hold(opened(), CASE, "coder-1", "Q1", QueryReason.OTHER, NOW)


def test_a_held_case_cannot_be_taken_or_coded_until_the_answer() -> None:
    case = held()
    with pytest.raises(Conflict, match="held by coder coder-1"):
        domain.assign(case, CASE, "coder-2", NOW)
    with pytest.raises(Conflict, match="on hold"):
        domain.submit(case, CASE, "coder-1", CODING, CHARGEMASTER, NOW)


def test_the_answer_returns_the_case_to_its_coder() -> None:
    decision = domain.answer(held(), CASE, "lead-1", "Q1", LATER)
    case = after(decision)
    assert (case.status, case.coder_id) == (Status.IN_PROGRESS, "coder-1")
    assert case.queries[0].status is QueryStatus.ANSWERED
    assert case.queries[0].answered_by == "lead-1"
    (event,) = decision.events
    assert isinstance(event, CodingQueryAnswered)
    assert (event.query_id, event.reason, event.coder_id) == ("Q1", "laterality", "coder-1")
    assert nothing(domain.answer(case, CASE, "lead-1", "Q1", LATER))
    with pytest.raises(NotFound, match="no query Q9"):
        domain.answer(case, CASE, "lead-1", "Q9", LATER)


# -- reassignment


def test_a_lead_reassigns_a_case_on_its_audit_trail() -> None:
    decision = domain.reassign(working(), CASE, "lead-1", "coder-2", LATER)
    case = after(decision)
    assert (case.status, case.coder_id, case.assigned_at) == (
        Status.IN_PROGRESS,
        "coder-2",
        LATER,
    )
    (event,) = decision.events
    assert isinstance(event, CodingCaseReassigned)
    assert (event.from_coder_id, event.to_coder_id, event.reassigned_by) == (
        "coder-1",
        "coder-2",
        "lead-1",
    )
    assert case.audit[-1].action == "reassigned"
    assert case.audit[-1].detail == {"from_coder_id": "coder-1", "to_coder_id": "coder-2"}
    assert nothing(domain.reassign(case, CASE, "lead-1", "coder-2", LATER))


def test_a_held_case_reassigned_stays_on_hold_and_goes_to_the_new_coder_on_answer() -> None:
    moved = after(domain.reassign(held(), CASE, "lead-1", "coder-2", NOW))
    assert (moved.status, moved.coder_id) == (Status.ON_HOLD, "coder-2")
    resumed = after(domain.answer(moved, CASE, "coder-2", "Q1", LATER))
    assert (resumed.status, resumed.coder_id) == (Status.IN_PROGRESS, "coder-2")


def test_a_done_case_is_not_reassigned() -> None:
    with pytest.raises(Conflict, match="done"):
        domain.reassign(coded(), CASE, "lead-1", "coder-2", NOW)


# -- coder profiles


def test_a_profile_keeps_known_specialties_once_and_refuses_unknown_ones() -> None:
    profile = after(
        domain.set_profile(None, "coder-1", ["radiology", "surgery", "radiology"], "lead-1", NOW)
    )
    assert profile.specialties == [Specialty.RADIOLOGY, Specialty.SURGERY]
    assert nothing(domain.set_profile(profile, "coder-1", ["radiology", "surgery"], "lead", NOW))
    with pytest.raises(Invalid) as refused:
        domain.set_profile(None, "coder-1", ["cardiology"], "lead-1", NOW)
    assert refused.value.reasons[0].startswith("specialties[0]: 'cardiology' is not a specialty")


# -- audit sampling and review


def test_sampling_is_by_the_case_id_and_near_the_rate() -> None:
    ids = [domain.case_id_for(f"E{n:012d}") for n in range(4000)]
    sampled = [case_id for case_id in ids if domain.sampled_for_review(case_id, 0.05)]
    assert 0.03 < len(sampled) / len(ids) < 0.07
    assert sampled == [case_id for case_id in ids if domain.sampled_for_review(case_id, 0.05)]
    assert not any(domain.sampled_for_review(case_id, 0.0) for case_id in ids)
    assert all(domain.sampled_for_review(case_id, 1.0) for case_id in ids)
    # A larger rate keeps every case a smaller one sampled.
    assert set(sampled) <= {c for c in ids if domain.sampled_for_review(c, 0.2)}


def test_a_sampled_case_enters_the_review_list_when_coded() -> None:
    assert coded(sample_rate=0.0).review is None
    case = coded(sample_rate=1.0)
    assert case.review is not None
    assert (case.review.status, case.review.coder_id) == (ReviewStatus.OPEN, "coder-1")


def test_an_agreed_review_closes_it_and_counts_for_the_coder() -> None:
    decision = domain.review(coded(sample_rate=1.0), CASE, "lead-1", True, None, CHARGEMASTER, NOW)
    case = after(decision)
    assert case.review is not None
    assert (case.review.status, case.review.agreed) == (ReviewStatus.CLOSED, True)
    assert case.status == Status.DONE
    (event,) = decision.events
    assert isinstance(event, CodingCaseReviewed)
    assert (event.coder_id, event.reviewed_by, event.agreed) == ("coder-1", "lead-1", True)
    with pytest.raises(Conflict, match="no open review"):
        domain.review(case, CASE, "lead-1", True, None, CHARGEMASTER, NOW)
    with pytest.raises(Conflict, match="no open review"):
        domain.review(coded(), CASE, "lead-1", True, None, CHARGEMASTER, NOW)


def test_a_correction_reopens_the_case_for_its_coder_and_the_recode_goes_out_corrected() -> None:
    case = coded(sample_rate=1.0)
    with pytest.raises(Invalid, match="needs the codes"):
        domain.review(case, CASE, "lead-1", False, None, CHARGEMASTER, NOW)
    with pytest.raises(Invalid):  # the lead's codes are checked like a coder's
        domain.review(case, CASE, "lead-1", False, Coding(("M54.5",), ()), CHARGEMASTER, NOW)
    corrections = Coding(("M5450",), (LineInput("99213", (), 1, (1,)),))
    reviewed = after(domain.review(case, CASE, "lead-1", False, corrections, CHARGEMASTER, NOW))
    assert (reviewed.status, reviewed.coder_id) == (Status.IN_PROGRESS, "coder-1")
    assert reviewed.recode is not None
    assert reviewed.recode.reason is RecodeReason.AUDIT
    assert reviewed.recode.corrections == corrections
    recoded = domain.submit(reviewed, CASE, "coder-1", corrections, CHARGEMASTER, LATER)
    (event,) = recoded.events
    assert isinstance(event, CodingCorrected)
    assert event.reason is RecodeReason.AUDIT
    assert after(recoded).review == reviewed.review  # reviewed once, not sampled again


# -- productivity


def test_productivity_counts_cases_lines_minutes_queries_and_accuracy() -> None:
    case = coded(sample_rate=1.0)
    case = after(domain.review(case, CASE, "lead-1", True, None, CHARGEMASTER, LATER))
    facts = domain.work_facts(case)
    assert [(f["kind"], f["coder_id"]) for f in facts] == [
        ("coded", "coder-1"),
        ("reviewed", "coder-1"),
    ]
    assert facts[0]["minutes"] == 12.0
    assert facts[0]["lines"] == 2
    assert domain.work_facts(case) == facts  # the same ids and values every time
    other = [
        {"case_id": "K2", "coder_id": "coder-1", "kind": "coded", "lines": 1, "minutes": 30.0},
        {"case_id": "K3", "coder_id": "coder-1", "kind": "coded", "lines": 3, "minutes": 2.0},
        {"case_id": "K3", "coder_id": "coder-1", "kind": "reviewed", "agreed": False},
        {"case_id": "K4", "coder_id": "coder-2", "kind": "query-raised"},
    ]
    first, second = domain.productivity([*facts, *other])
    assert first.model_dump() == {
        "coder_id": "coder-1",
        "cases_coded": 3,
        "lines": 6,
        "median_minutes": 12.0,
        "queries_raised": 0,
        "reviewed": 2,
        "agreed": 1,
        "accuracy": 0.5,
    }
    assert (second.coder_id, second.cases_coded, second.queries_raised) == ("coder-2", 0, 1)
    assert second.median_minutes is None
    assert second.accuracy is None


# -- ICD-10-CM releases by date of service


def test_the_fiscal_year_runs_october_to_september() -> None:
    assert codesets.fiscal_year(date(2025, 9, 30)) == 2025
    assert codesets.fiscal_year(date(2025, 10, 1)) == 2026


def test_the_release_is_the_one_whose_window_holds_the_date_of_service() -> None:
    fy25 = Icd10Release("FY2025", date(2024, 10, 1), date(2025, 9, 30), "test")
    fy26 = Icd10Release("FY2026", date(2025, 10, 1), date(2026, 9, 30), "test")
    releases = (fy25, fy26)
    assert codesets.release_for(date(2025, 9, 30), releases=releases).release is fy25
    choice = codesets.release_for(date(2025, 10, 1), releases=releases)
    assert choice is not None
    assert (choice.release, choice.stand_in) == (fy26, False)
    before = codesets.release_for(date(2023, 1, 1), releases=releases)
    assert before is not None
    assert (before.release, before.stand_in) == (fy25, True)
    after_all = codesets.release_for(date(2027, 1, 1), releases=releases)
    assert after_all is not None
    assert (after_all.release, after_all.stand_in) == (fy26, True)
    assert codesets.release_for(date(2027, 1, 1), "refuse", releases) is None


def test_the_shipped_release_is_fy2026_and_a_case_records_which_one_checked_it() -> None:
    (shipped,) = codesets.SHIPPED_RELEASES
    assert (shipped.name, shipped.window) == ("FY2026", "2025-10-01 to 2026-09-30")
    inside = after(domain.assign(opened(date(2026, 2, 2)), CASE, "coder-1", NOW))
    done = after(domain.submit(inside, CASE, "coder-1", CODING, CHARGEMASTER, LATER))
    assert (done.code_set_release, done.code_set_stand_in) == ("FY2026", False)
    assert done.audit[-1].detail["code_set_release"] == "FY2026"
    outside = after(domain.submit(working(), CASE, "coder-1", CODING, CHARGEMASTER, LATER))
    assert (outside.code_set_release, outside.code_set_stand_in) == ("FY2026", True)


def test_a_refused_diagnosis_names_the_release_and_a_strict_policy_refuses_the_date() -> None:
    with pytest.raises(Invalid) as refused:
        domain.submit(
            working(), CASE, "coder-1", Coding(("M54.5",), CODING.lines), CHARGEMASTER, NOW
        )
    assert refused.value.reasons[0].endswith("(ICD-10-CM FY2026)")
    with pytest.raises(Invalid) as outside:
        domain.submit(
            working(), CASE, "coder-1", CODING, CHARGEMASTER, NOW, outside_window="refuse"
        )
    assert outside.value.reasons == [
        "date_of_service: 2025-03-04 is outside every shipped ICD-10-CM release "
        "(FY2026: 2025-10-01 to 2026-09-30)"
    ]


# -- handlers


class CaseIds(dict[str, str]):
    async def remember(self, case_id: str, episode_id: str) -> None:
        self[case_id] = episode_id


class WorkLog(dict[str, dict[str, object]]):
    async def record(self, facts: list[dict[str, object]]) -> None:
        for fact in facts:
            self[str(fact["_id"])] = fact


async def test_handlers_hold_a_case_and_record_the_query_in_the_work_log() -> None:
    cases = InMemoryAggregates(Case)
    coders = InMemoryAggregates(domain.CoderProfile)
    work = WorkLog()
    handle = Handlers(cases, CaseIds(), CHARGEMASTER, clock=lambda: NOW, coders=coders, work=work)
    cases.states[EPISODE] = working()
    request = CodingQueryRequested(
        episode_id=EPISODE, requested_by="coder-1", query_id="Q1", reason=QueryReason.OTHER
    )
    view = await handle.coding_query_requested(Envelope(data=request, source="rcm/coding"))
    assert view["status"] == Status.ON_HOLD
    assert [type(event) for event in cases.emitted] == [CodingQueryRaised]
    assert [fact["kind"] for fact in work.values()] == ["query-raised"]

    profile = CoderProfileRequested(
        requested_by="lead-1", coder_id="coder-1", specialties=["radiology"]
    )
    answer = await handle.coder_profile_requested(Envelope(data=profile, source="rcm/coding"))
    assert answer["specialties"] == ["radiology"]
    assert coders.states["coder-1"].updated_by == "lead-1"


async def test_handlers_sample_at_the_configured_rate() -> None:
    cases = InMemoryAggregates(Case)
    handle = Handlers(
        cases, CaseIds(), CHARGEMASTER, clock=lambda: LATER, work=WorkLog(), sample_rate=1.0
    )
    cases.states[EPISODE] = working()
    request = CodesSubmissionRequested(
        episode_id=EPISODE,
        requested_by="coder-1",
        diagnoses=["M54.50", "I10"],
        lines=[
            {"procedure_code": "99213", "modifiers": ["25"], "diagnosis_pointers": [1, 2]},
            {"procedure_code": "36415", "diagnosis_pointers": [2]},
        ],
    )
    await handle.codes_submission_requested(Envelope(data=request, source="rcm/coding"))
    review = cases.states[EPISODE].review
    assert review is not None
    assert review.status is ReviewStatus.OPEN


async def test_a_coder_s_profile_is_read_again_only_after_its_time_to_live() -> None:
    from typing import Any, cast

    from rcm_coding import store

    coders = InMemoryAggregates(domain.CoderProfile)
    clock = [100.0]
    cases = store.CaseStore(
        cast(Any, InMemoryAggregates(Case)),
        cast(Any, None),
        cast(Any, coders),
        monotonic=lambda: clock[0],
    )
    assert await cases.coder("coder-1") is None
    coders.states["coder-1"] = after(
        domain.set_profile(None, "coder-1", ["surgery"], "lead-1", NOW)
    )
    assert await cases.coder("coder-1") is None  # still the answer read a moment ago
    clock[0] += store.PROFILE_TTL_S + 0.1
    profile = await cases.coder("coder-1")
    assert profile is not None
    assert profile.specialties == [Specialty.SURGERY]
