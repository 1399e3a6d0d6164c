"""The bots' decisions: codes from a case and from a 422, denials, patient payments."""

from __future__ import annotations

import ast
import asyncio
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import rcm_ops.bots
import simple_icd_10_cm as icd
from hypothesis import given
from hypothesis import strategies as st
from rcm_ops.bots import (
    PLAN_THRESHOLD_CENTS,
    BotError,
    Http,
    Line,
    Stopped,
    Submission,
    denial_action,
    fix_from_reasons,
    is_recode,
    patient_choice,
    reasons_of,
    recoded,
    split_installments,
    submission_from_case,
    with_modifier_25,
)
from rcm_ops.synthetic import SCENARIOS, EpisodeGenerator

REASON = "diagnoses[0]: M54.5 is not billable; use one of M54.50, M54.51, M54.59"


def case_of(documentation: dict[str, Any], suggestions: Any = None) -> dict[str, Any]:
    case: dict[str, Any] = {"case_id": "K000000000001", "documentation": documentation}
    if suggestions is not None:
        case["suggestions"] = suggestions
    return case


def refusals(submission: Submission) -> list[str]:
    """What the coding service says about diagnoses (docs/flow.md's wording)."""
    reasons = []
    for n, code in enumerate(submission.diagnoses):
        if not icd.is_leaf(code):
            leaves = [d for d in icd.get_descendants(code) if icd.is_leaf(d)]
            reasons.append(
                f"diagnoses[{n}]: {code} is not billable; use one of {', '.join(leaves)}"
            )
    return reasons


def test_a_not_billable_reason_takes_the_first_suggested_code() -> None:
    submission = Submission(("M54.5", "I10"), (Line("99213", (), 1, (1, 2)),))
    fixed = fix_from_reasons(submission, [REASON])
    assert fixed is not None
    assert fixed.diagnoses == ("M54.50", "I10")
    assert fixed.lines == submission.lines


def test_a_reason_with_many_alternatives_and_several_reasons() -> None:
    submission = Submission(("E11", "M54.5"), (Line("99213"),))
    fixed = fix_from_reasons(
        submission,
        [
            "diagnoses[0]: E11 is not billable; use one of its 47 billable codes, e.g. "
            "E11.00, E11.01, E11.10",
            "diagnoses[1]: M54.5 is not billable; use one of M54.50, M54.51, M54.59",
        ],
    )
    assert fixed is not None
    assert fixed.diagnoses == ("E11.00", "M54.50")


def test_reasons_the_coder_cannot_fix_give_none() -> None:
    submission = Submission(("M54.5",), (Line("99213"),))
    assert fix_from_reasons(submission, ["lines[0]: 99999 is not in the chargemaster"]) is None
    assert fix_from_reasons(submission, [REASON.replace("[0]", "[3]")]) is None
    assert fix_from_reasons(submission, []) is None


def test_reasons_are_read_from_the_usual_422_shapes() -> None:
    assert reasons_of({"reasons": [REASON]}) == [REASON]
    assert reasons_of({"detail": {"reasons": [REASON]}}) == [REASON]
    assert reasons_of({"detail": [{"loc": ["body"], "msg": REASON}]}) == [REASON]
    assert reasons_of({"detail": REASON}) == [REASON]


def test_every_scenario_codes_right_from_the_note_after_refusals_and_denials() -> None:
    """Graded against the generator's truth, which the bot never sees: from the note, the
    hints and the code book, then fixing what the service refuses and what a payer denies
    as bundled (the ankle visit's 25, said in other words than the usual ones)."""
    episodes = EpisodeGenerator(seed=5, day=date(2025, 1, 6)).episodes(400)
    recodes = Counter[str]()
    for episode in episodes:
        documentation = episode.documentation.model_dump(mode="json")
        submission = submission_from_case(case_of(documentation))
        reasons = refusals(submission)
        if reasons:
            fixed = fix_from_reasons(submission, reasons)
            assert fixed is not None
            submission = fixed
        scenario = next(s for s in SCENARIOS if s.name == episode.scenario)
        bundled = [
            {"procedure_code": line.procedure_code, "reason_codes": ["97"]}
            for line, truth in zip(submission.lines, scenario.procedures, strict=True)
            if line.modifiers != truth.modifiers
        ]
        if bundled:
            recodes[episode.scenario] += 1
            denied_case = case_of(documentation) | {"recode": {"lines": bundled}}
            submission = recoded(submission, denied_case)
        assert submission.diagnoses == tuple(d.code for d in scenario.diagnoses)
        assert [(x.procedure_code, x.modifiers, x.units) for x in submission.lines] == [
            (p.code, p.modifiers, p.units) for p in scenario.procedures
        ]
        for line in submission.lines:
            assert line.diagnosis_pointers
            assert all(1 <= p <= len(submission.diagnoses) for p in line.diagnosis_pointers)
    assert set(recodes) == {"ankle-sprain"}  # the one mistake, fixed from the denial


def test_a_denied_line_gets_a_modifier_only_when_the_note_backs_it() -> None:
    coded = Submission(("S93.401A",), (Line("99203"), Line("29540")))
    denial = {"recode": {"reason": "coding-denial", "lines": [{"procedure_code": "99203"}]}}
    backed = denial | {"documentation": {"note": "A significant evaluation of the injury."}}
    assert recoded(coded, backed).lines == (Line("99203", ("25",)), Line("29540"))
    bare = denial | {"documentation": {"note": "Twisted ankle. Strapping applied."}}
    assert recoded(coded, bare) == coded
    distinct = {
        "recode": {"lines": [{"procedure_code": "96372"}]},
        "documentation": {"note": "Injection at a separate site from the vaccine."},
    }
    shots = Submission(("Z23",), (Line("G0008"), Line("96372")))
    assert recoded(shots, distinct).lines[1].modifiers == ("59",)
    # A whole-claim coding denial: 25 on the visit, as before.
    whole = {"recode": {"reason": "coding-denial", "lines": []}}
    assert recoded(coded, whole).lines[0].modifiers == ("25",)


def test_an_edit_naming_the_line_and_its_modifier_is_fixed() -> None:
    coded = Submission(("S93.401A",), (Line("99203"), Line("29540")))
    reason = "lines[0]: 99203 is bundled into 29540 on the same day; modifier 25 allows both"
    fixed = fix_from_reasons(coded, [reason])
    assert fixed is not None
    assert fixed.lines == (Line("99203", ("25",)), Line("29540"))
    assert fix_from_reasons(coded, ["lines[5]: modifier 25"]) is None


def test_the_coder_bot_never_reads_the_generators_answer_key() -> None:
    """bots.py takes only the episode record's type from synthetic.py, and nothing in it
    touches a scenario, its codes or an episode's scenario name."""
    source = Path(rcm_ops.bots.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    from_synthetic = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("synthetic")
        for alias in node.names
    }
    assert from_synthetic == {"SyntheticEpisode"}
    assert not [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Import) and any("synthetic" in a.name for a in node.names)
    ]
    answer_key = {"SCENARIOS", "SCENARIOS_BY_NAME", "Scenario", "Dx", "Px", "scenario"}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not answer_key & (names | attributes)
    # And the module holds no reference to the generator's truth at run time.
    truth = {id(s) for s in SCENARIOS} | {id(SCENARIOS)}
    assert not truth & {id(v) for v in vars(rcm_ops.bots).values()}


def test_suggestions_are_taken_and_completed() -> None:
    documentation = {
        "note": "...",
        "diagnoses": [{"description": "Sprain of right ankle, initial encounter"}],
        "procedures": [
            {"description": "Office visit, new patient, low complexity", "code_hint": "99203"},
            {"description": "X-ray right ankle, 3 views", "code_hint": None},
            {"description": "Strapping of ankle", "code_hint": "29540"},
        ],
    }
    suggestions = {
        "diagnoses": [{"code": "S93401A"}],
        "lines": [
            {"procedure_code": "99203", "modifiers": [], "units": 1, "diagnosis_pointers": [1]},
            {"procedure_code": "29540", "units": 1, "diagnosis_pointers": [7]},
        ],
    }
    submission = submission_from_case(case_of(documentation, suggestions))
    assert submission.diagnoses == ("S93401A",)  # the suggestion, not a second copy
    assert [(x.procedure_code, x.modifiers, x.diagnosis_pointers) for x in submission.lines] == [
        ("99203", (), (1,)),
        ("29540", (), (1,)),  # a pointer past the diagnoses is replaced
        ("73610", ("RT",), (1,)),  # coded from the description, with its side
    ]
    body = submission.body()
    assert body["lines"][2] == {
        "procedure_code": "73610",
        "modifiers": ["RT"],
        "units": 1,
        "diagnosis_pointers": [1],
    }


def test_recode_adds_25_to_the_visit_only_when_another_procedure_was_done() -> None:
    both = Submission(("R07.9",), (Line("99214", (), 1, (1,)), Line("93000")))
    recoded = with_modifier_25(both)
    assert recoded.lines[0].modifiers == ("25",)
    assert recoded.lines[1].modifiers == ()
    assert with_modifier_25(recoded) == recoded
    alone = Submission(("I10",), (Line("99213"),))
    assert with_modifier_25(alone) == alone


def test_reopened_cases_are_recognised() -> None:
    assert is_recode({"reopened": True})
    assert is_recode({"audit": [{"action": "reopened"}]})
    assert not is_recode({"status": "open", "audit": [{"action": "opened"}]})


def test_documentation_denials_are_corrected_and_the_others_accepted() -> None:
    def denial(category: str, code: str) -> dict[str, Any]:
        return {"category": category, "reasons": [{"group_code": "CO", "reason_code": code}]}

    assert denial_action(denial("documentation", "16")) == "correct"
    assert denial_action(denial("other", "16")) == "correct"
    assert denial_action(denial("authorization", "197")) == "accept"
    assert denial_action(denial("other", "50")) == "accept"
    assert denial_action(denial("documentation", "16"), corrections_so_far=2) == "accept"


def test_large_balances_take_a_plan_of_three_that_sums_to_the_balance() -> None:
    choice = patient_choice("S1", "E000000000001", 20_001)
    assert choice.plan_installments == 3
    assert [p.amount_cents for p in choice.payments] == [6667, 6667, 6667]
    assert len({p.payment_id for p in choice.payments}) == 3
    assert choice == patient_choice("S1", "E000000000001", 20_001)  # same ids on a retry


def test_small_balances_are_paid_whole_or_all_but_the_cents() -> None:
    kinds = Counter[str]()
    for n in range(4000):
        due = 101 + (n * 37) % (PLAN_THRESHOLD_CENTS - 100)
        choice = patient_choice(f"S{n}", f"E{n:012x}", due)
        assert choice.plan_installments is None
        (payment,) = choice.payments
        left = due - payment.amount_cents
        assert 0 <= left < 100
        kinds["short" if left else "whole"] += 1
    assert 0.09 < kinds["short"] / 4000 < 0.16  # about 1 in 8
    assert patient_choice("S", "E1", PLAN_THRESHOLD_CENTS).plan_installments is None
    assert patient_choice("S", "E1", 0).payments == ()


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=60))
def test_installments_add_up(total: int, installments: int) -> None:
    parts = split_installments(total, installments)
    assert sum(parts) == total
    assert len(parts) == installments
    assert max(parts) - min(parts) <= 1


def test_suggestions_that_coded_a_documented_item_are_not_coded_twice() -> None:
    """The coding service names the documented item each suggestion codes (`documented`);
    a suggestion from the description (a different code than the coder would pick) stands."""
    documentation = {
        "note": "...",
        "diagnoses": [
            {"description": "Low back pain", "icd10_hint": "M54.5"},
            {"description": "Essential (primary) hypertension", "icd10_hint": None},
        ],
        "procedures": [
            {"description": "Office visit, established patient, low complexity", "code_hint": None}
        ],
    }
    suggestions = {
        "diagnoses": [
            {
                "code": "M5459",
                "source": "description",
                "hint": "M54.5",
                "documented": "Low back pain",
            }
        ],
        "lines": [],
        "unmatched": [
            {"kind": "procedure", "documented": "Office visit, established patient, low complexity"}
        ],
    }
    submission = submission_from_case(case_of(documentation, suggestions))
    assert submission.diagnoses == ("M5459", "I10")
    assert submission.lines == (Line("99213", (), 1, (1, 2)),)


async def test_http_outlasts_a_restart_and_gives_up_on_a_dead_service() -> None:
    calls: list[str] = []

    def restarting(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ConnectError("connection refused")
        if len(calls) == 2:
            return httpx.Response(503, json={"detail": "starting"})
        return httpx.Response(200, json={"ok": True})

    stop = asyncio.Event()
    http = Http("http://svc", stop, transport=httpx.MockTransport(restarting))
    assert await http.get_json("/queue") == {"ok": True}
    assert calls == ["/queue"] * 3
    await http.close()

    def dead(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    http = Http("http://svc", stop, retry_for_s=0.5, transport=httpx.MockTransport(dead))
    with pytest.raises(BotError, match="still failing"):
        await http.request("GET", "/queue")
    stop.set()
    with pytest.raises(Stopped):
        await http.request("GET", "/queue")
    await http.close()


async def test_a_request_that_may_have_arrived_is_not_repeated_when_unsafe() -> None:
    calls = 0

    def timeout(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ReadTimeout("no answer")

    http = Http("http://svc", asyncio.Event(), transport=httpx.MockTransport(timeout))
    with pytest.raises(httpx.ReadTimeout):
        await http.request("POST", "/x", json={}, unsafe=True)
    assert calls == 1
    await http.close()
