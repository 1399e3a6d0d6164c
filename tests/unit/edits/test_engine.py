"""Each kind of edit on packs built here (never on CMS's real values)."""

from __future__ import annotations

from datetime import date

from rcm_edits import ClaimFacts, LineFacts, check, errors
from rcm_edits.packs import (
    ModifierIndicator,
    MueEdit,
    MueIndicator,
    Pack,
    PtpEdit,
    ScrubRule,
    Severity,
)

DAY = date(2026, 2, 10)


def pack(**parts: object) -> Pack:
    return Pack.model_validate({"version": "t1", "effective_from": date(2026, 1, 1), **parts})


def ptp(column1: str, column2: str, indicator: int, deletion: date | None = None) -> PtpEdit:
    return PtpEdit(
        column1=column1,
        column2=column2,
        effective=date(2025, 1, 1),
        deletion=deletion,
        modifier_indicator=ModifierIndicator(indicator),
    )


def claim(*lines: LineFacts, diagnoses: int = 2) -> ClaimFacts:
    return ClaimFacts(service_date=DAY, diagnoses=diagnoses, lines=lines)


def line(number: int, code: str, *modifiers: str, units: int = 1, **more: object) -> LineFacts:
    pointers = more.pop("pointers", (1,))
    return LineFacts(number, code, modifiers, units, pointers, **more)  # type: ignore[arg-type]


def test_ptp_indicator_0_never_allows_the_pair_even_with_a_modifier() -> None:
    hits = check(
        pack(ptp=[ptp("10000", "20000", 0)]), claim(line(1, "10000"), line(2, "20000", "59"))
    )
    (hit,) = hits
    assert (hit.rule, hit.severity, hit.codes, hit.line_numbers) == (
        "ptp",
        "error",
        ["10000", "20000"],
        [2, 1],
    )
    assert hit.allowed_modifiers == []


def test_ptp_indicator_1_is_met_by_an_associated_modifier_and_says_which() -> None:
    edits = pack(ptp=[ptp("10000", "20000", 1), ptp("29540", "99213", 1)])
    (hit,) = check(edits, claim(line(1, "10000"), line(2, "20000")))
    assert hit.allowed_modifiers == ["XE", "XS", "XP", "XU", "59"]
    assert check(edits, claim(line(1, "10000"), line(2, "20000", "XU"))) == []
    # an E/M in column 2 is allowed with 25, and 25 counts only on the E/M
    (visit,) = check(edits, claim(line(1, "29540"), line(2, "99213")))
    assert visit.allowed_modifiers == ["25"]
    assert check(edits, claim(line(1, "29540"), line(2, "99213", "25"))) == []
    assert len(check(edits, claim(line(1, "29540", "25"), line(2, "99213")))) == 1
    # a side on one line says nothing about the other's; two different sides do
    assert len(check(edits, claim(line(1, "10000", "RT"), line(2, "20000")))) == 1
    assert len(check(edits, claim(line(1, "10000", "RT"), line(2, "20000", "RT")))) == 1
    assert check(edits, claim(line(1, "10000", "RT"), line(2, "20000", "LT"))) == []


def test_ptp_indicator_9_and_edits_not_in_force_on_the_day_are_no_hits() -> None:
    edits = pack(
        ptp=[ptp("10000", "20000", 9), ptp("10000", "30000", 0, deletion=date(2026, 2, 9))]
    )
    lines = claim(line(1, "10000"), line(2, "20000"), line(3, "30000"))
    assert check(edits, lines) == []
    later = pack(ptp=[ptp("10000", "30000", 0, deletion=DAY)])  # the deletion day still counts
    assert len(check(later, claim(line(1, "10000"), line(2, "30000")))) == 1


def test_mue_per_line_counts_each_line_and_per_day_sums_them() -> None:
    edits = pack(
        mue=[
            MueEdit(code="20000", units=2, adjudication_indicator=MueIndicator.LINE),
            MueEdit(code="99213", units=1, adjudication_indicator=MueIndicator.DAY_POLICY),
            MueEdit(code="30000", units=3, adjudication_indicator=MueIndicator.DAY_CLINICAL),
        ]
    )
    # two lines of 2 units each with a repeat modifier: within a per-line MUE of 2
    assert check(edits, claim(line(1, "20000", units=2), line(2, "20000", "76", units=2))) == []
    (per_line,) = check(edits, claim(line(1, "20000", units=3)))
    assert (per_line.rule, per_line.line_numbers) == ("mue", [1])
    assert "76" in per_line.allowed_modifiers
    (per_day,) = check(edits, claim(line(1, "99213"), line(2, "99213", "25")))
    assert (per_day.line_numbers, per_day.allowed_modifiers) == ([1, 2], [])
    assert "MAI 2" in per_day.message
    assert check(edits, claim(line(1, "30000", units=2), line(2, "30000"))) == []
    assert len(check(edits, claim(line(1, "30000", units=2), line(2, "30000", units=2)))) == 1


def test_diagnosis_pointers_rule() -> None:
    edits = pack(rules=[ScrubRule(rule="diagnosis-pointers")])
    assert check(edits, claim(line(1, "10000", pointers=(1, 2)))) == []
    hits = check(
        edits,
        claim(
            line(1, "10000", pointers=(3,)),
            line(2, "10001", pointers=()),
            line(3, "10002", pointers=(1, 1)),
        ),
    )
    assert [hit.line_numbers for hit in hits] == [[1], [2], [3]]


def test_em_with_a_listed_procedure_needs_25_at_the_rules_severity() -> None:
    edits = pack(
        rules=[ScrubRule(rule="em-modifier-25", severity=Severity.WARNING, procedures=["29540"])]
    )
    (hit,) = check(edits, claim(line(1, "99203"), line(2, "29540")))
    assert (hit.severity, hit.line_numbers, hit.allowed_modifiers) == ("warning", [1], ["25"])
    assert errors([hit]) == []
    assert check(edits, claim(line(1, "99203", "25"), line(2, "29540"))) == []
    assert check(edits, claim(line(1, "99203"), line(2, "36415"))) == []  # not listed
    any_procedure = pack(rules=[ScrubRule(rule="em-modifier-25")])
    assert len(check(any_procedure, claim(line(1, "99203"), line(2, "36415")))) == 1
    assert check(any_procedure, claim(line(1, "99203"))) == []


def test_units_and_charges_rules() -> None:
    edits = pack(
        rules=[
            ScrubRule(rule="units", max_units=10),
            ScrubRule(rule="charges", max_line_charge_cents=100_000),
        ]
    )
    assert check(edits, claim(line(1, "10000", units=10, charge_cents=100_000))) == []
    hits = check(
        edits,
        claim(
            line(1, "10000", units=11, charge_cents=500),
            line(2, "10001", charge_cents=0),
            line(3, "10002", charge_cents=100_001),
            line(4, "10003"),  # not priced yet: charges are not checked
        ),
    )
    assert [(hit.rule, hit.line_numbers) for hit in hits] == [
        ("units", [1]),
        ("charges", [2]),
        ("charges", [3]),
    ]


def test_code_dates_rule_checks_the_code_set_on_the_date_of_service() -> None:
    edits = pack(
        rules=[
            ScrubRule(
                rule="code-dates",
                codes={"99201": (None, date(2020, 12, 31)), "10000": (date(2026, 3, 1), None)},
            )
        ]
    )
    hits = check(edits, claim(line(1, "99201"), line(2, "10000"), line(3, "99213")))
    assert [hit.codes for hit in hits] == [["99201"], ["10000"]]
    assert "valid always to 2020-12-31" in hits[0].message
