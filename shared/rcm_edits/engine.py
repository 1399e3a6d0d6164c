"""The edits of a pack run over one day's lines of a claim: PTP pairs, MUEs and the
scrubber's rules. Pure: the same pack and lines give the same hits, in the same order."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from rcm_contracts.coding import EditHit

from .packs import ModifierIndicator, MueIndicator, Pack, ScrubRule, Severity

# Modifiers CMS lists as NCCI PTP-associated: anatomic, global surgery, and the others.
ANATOMIC = frozenset(
    {"E1", "E2", "E3", "E4", "FA", "TA", "LT", "RT", "LC", "LD", "RC", "LM", "RI"}
    | {f"F{n}" for n in range(1, 10)}
    | {f"T{n}" for n in range(1, 10)}
)
PTP_ASSOCIATED = (
    ANATOMIC
    | {"24", "25", "57", "58", "78", "79", "27", "59", "91"}
    | {
        "XE",
        "XS",
        "XP",
        "XU",
    }
)
# What a coder is pointed to on a column 2 line that is not an E/M (59 only when no X
# modifier describes it, CMS says, so the X modifiers come first).
DISTINCT_SERVICE = ["XE", "XS", "XP", "XU", "59"]
# MUE per line (indicator 1): more units go on another line with one of these.
MUE_LINE_MODIFIERS = ["76", "77", "91", "RT", "LT", "XE", "XS", "XP", "XU", "59"]
DEFAULT_MAX_UNITS = 99


def is_evaluation_and_management(code: str) -> bool:
    return code.isdigit() and len(code) == 5 and 99202 <= int(code) <= 99499


def is_laboratory(code: str) -> bool:
    return code.isdigit() and len(code) == 5 and 80047 <= int(code) <= 89398


@dataclass(frozen=True)
class LineFacts:
    number: int  # 1-based, as the claim numbers its lines
    procedure_code: str
    modifiers: tuple[str, ...] = ()
    units: int = 1
    diagnosis_pointers: tuple[int, ...] = ()
    charge_cents: int | None = None  # None: not priced yet (checked when it is)


@dataclass(frozen=True)
class ClaimFacts:
    service_date: date
    diagnoses: int
    lines: tuple[LineFacts, ...] = field(default=())


def check(pack: Pack, claim: ClaimFacts) -> list[EditHit]:
    hits = _ptp(pack, claim) + _mue(pack, claim)
    for rule in pack.rules:
        hits += RULES[rule.rule](rule, claim)
    return hits


def errors(hits: Sequence[EditHit]) -> list[EditHit]:
    return [hit for hit in hits if hit.severity == Severity.ERROR.value]


def _hit(
    rule: str,
    severity: Severity,
    codes: Sequence[str],
    lines: Sequence[int],
    message: str,
    allowed: Sequence[str] = (),
) -> EditHit:
    return EditHit(
        rule=rule,
        severity=severity.value,
        codes=list(codes),
        line_numbers=list(lines),
        allowed_modifiers=list(allowed),
        message=message[:300],
    )


def _ptp(pack: Pack, claim: ClaimFacts) -> list[EditHit]:
    index = pack.ptp_index()
    hits = []
    for first in claim.lines:
        for second in claim.lines:
            if first.number == second.number:
                continue
            edits = index.get((first.procedure_code, second.procedure_code), [])
            edit = next((e for e in edits if e.in_force(claim.service_date)), None)
            if edit is None or edit.modifier_indicator is ModifierIndicator.NOT_APPLICABLE:
                continue
            pair = f"{second.procedure_code} (column 2) with {first.procedure_code} (column 1)"
            if edit.modifier_indicator is ModifierIndicator.NOT_ALLOWED:
                message = f"{pair}: NCCI PTP edit, no modifier allowed; bill column 1 only"
                hits.append(
                    _hit(
                        "ptp",
                        Severity.ERROR,
                        [first.procedure_code, second.procedure_code],
                        [second.number, first.number],
                        message,
                    )
                )
                continue
            if _bypassed(first, second):
                continue
            allowed = _ptp_modifiers(second.procedure_code)
            message = (
                f"{pair}: NCCI PTP edit; allowed with a documented NCCI-associated modifier on "
                f"line {second.number} ({', '.join(allowed)})"
            )
            hits.append(
                _hit(
                    "ptp",
                    Severity.ERROR,
                    [first.procedure_code, second.procedure_code],
                    [second.number, first.number],
                    message,
                    allowed,
                )
            )
    return hits


def _bypassed(first: LineFacts, second: LineFacts) -> bool:
    """An NCCI-associated modifier on either line of the pair: 25 only on an E/M, and an
    anatomic one only when both lines name sites and the sites differ (RT and LT), since
    one side named says nothing about the other line's site."""

    def bypasses(line: LineFacts) -> bool:
        return any(
            modifier in PTP_ASSOCIATED
            and modifier not in ANATOMIC
            and (modifier != "25" or is_evaluation_and_management(line.procedure_code))
            for modifier in line.modifiers
        )

    first_sites = {m for m in first.modifiers if m in ANATOMIC}
    second_sites = {m for m in second.modifiers if m in ANATOMIC}
    other_sites = bool(first_sites and second_sites and first_sites.isdisjoint(second_sites))
    return bypasses(first) or bypasses(second) or other_sites


def _ptp_modifiers(column2: str) -> list[str]:
    if is_evaluation_and_management(column2):
        return ["25"]
    if is_laboratory(column2):
        return ["91", *DISTINCT_SERVICE]
    return DISTINCT_SERVICE


def _mue(pack: Pack, claim: ClaimFacts) -> list[EditHit]:
    limits = pack.mue_index()
    by_code: dict[str, list[LineFacts]] = defaultdict(list)
    for line in claim.lines:
        by_code[line.procedure_code].append(line)
    hits = []
    for code, lines in by_code.items():
        edit = limits.get(code)
        if edit is None:
            continue
        if edit.adjudication_indicator is MueIndicator.LINE:
            for line in lines:
                if line.units > edit.units:
                    hits.append(
                        _hit(
                            "mue",
                            Severity.ERROR,
                            [code],
                            [line.number],
                            f"{code}: {line.units} units on line {line.number}, MUE {edit.units} "
                            "per line (MAI 1); more units go on another line with a documented "
                            "modifier",
                            MUE_LINE_MODIFIERS if edit.units > 0 else (),
                        )
                    )
            continue
        units = sum(line.units for line in lines)
        if units > edit.units:
            policy = edit.adjudication_indicator is MueIndicator.DAY_POLICY
            kind = "policy" if policy else "clinical"
            hits.append(
                _hit(
                    "mue",
                    Severity.ERROR,
                    [code],
                    [line.number for line in lines],
                    f"{code}: {units} units on the date of service, MUE {edit.units} per day "
                    f"(MAI {edit.adjudication_indicator.value}, {kind}); no modifier bypasses it",
                )
            )
    return hits


def _diagnosis_pointers(rule: ScrubRule, claim: ClaimFacts) -> list[EditHit]:
    hits = []
    for line in claim.lines:
        pointers = line.diagnosis_pointers
        wrong = [p for p in pointers if not 1 <= p <= claim.diagnoses]
        if not 1 <= len(pointers) <= 4 or wrong or len(set(pointers)) != len(pointers):
            hits.append(
                _hit(
                    rule.rule,
                    rule.severity,
                    [line.procedure_code],
                    [line.number],
                    f"line {line.number}: 1 to 4 distinct diagnosis pointers, each 1.."
                    f"{claim.diagnoses}",
                )
            )
    return hits


def _em_modifier_25(rule: ScrubRule, claim: ClaimFacts) -> list[EditHit]:
    procedures = set(rule.procedures)
    others = [
        line.procedure_code
        for line in claim.lines
        if not is_evaluation_and_management(line.procedure_code)
        and (not procedures or line.procedure_code in procedures)
    ]
    if not others:
        return []
    return [
        _hit(
            rule.rule,
            rule.severity,
            [line.procedure_code, others[0]],
            [line.number],
            f"line {line.number}: E/M {line.procedure_code} on the day of {', '.join(others)} "
            "needs modifier 25 when separately identifiable (and documented)",
            ["25"],
        )
        for line in claim.lines
        if is_evaluation_and_management(line.procedure_code) and "25" not in line.modifiers
    ]


def _units(rule: ScrubRule, claim: ClaimFacts) -> list[EditHit]:
    most = rule.max_units or DEFAULT_MAX_UNITS
    return [
        _hit(
            rule.rule,
            rule.severity,
            [line.procedure_code],
            [line.number],
            f"line {line.number}: {line.units} units, expected 1..{most}",
        )
        for line in claim.lines
        if not 1 <= line.units <= most
    ]


def _charges(rule: ScrubRule, claim: ClaimFacts) -> list[EditHit]:
    hits = []
    for line in claim.lines:
        charge = line.charge_cents
        if charge is None:
            continue
        if charge <= 0:
            problem = "a line is charged more than zero"
        elif rule.max_line_charge_cents is not None and charge > rule.max_line_charge_cents:
            problem = f"more than {rule.max_line_charge_cents} cents on one line"
        else:
            continue
        hits.append(
            _hit(
                rule.rule,
                rule.severity,
                [line.procedure_code],
                [line.number],
                f"line {line.number}: charge {charge} cents; {problem}",
            )
        )
    return hits


def _code_dates(rule: ScrubRule, claim: ClaimFacts) -> list[EditHit]:
    hits = []
    day = claim.service_date
    for line in claim.lines:
        valid = rule.codes.get(line.procedure_code)
        if valid is None:
            continue
        first, last = valid
        if (first is None or first <= day) and (last is None or day <= last):
            continue
        since = first.isoformat() if first else "always"
        until = last.isoformat() if last else "now"
        hits.append(
            _hit(
                rule.rule,
                rule.severity,
                [line.procedure_code],
                [line.number],
                f"line {line.number}: {line.procedure_code} is not in the code set on the date "
                f"of service (valid {since} to {until})",
            )
        )
    return hits


RULES = {
    "diagnosis-pointers": _diagnosis_pointers,
    "em-modifier-25": _em_modifier_25,
    "units": _units,
    "charges": _charges,
    "code-dates": _code_dates,
}
