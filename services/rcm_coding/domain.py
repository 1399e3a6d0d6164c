"""Coding rules: suggestions, validation, pricing and the life of a coding case.

A case is opened per episode when the encounter is completed, with suggested codes that
are advice only; a coder takes the case, submits codes, and the validated, priced codes
go out as coding-completed. A coding denial reopens the case; the next submission goes
out as coding-corrected. Decisions return a Change (or None: nothing to do) and raise a
Refusal when a person asks for something the case's state does not allow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from rcm_contracts.claims import ClaimDenied, DenialCategory
from rcm_contracts.coding import ChargeLine, CodingCompleted, CodingCorrected, RecodeReason
from rcm_contracts.registration import ClinicalDocumentation, EncounterCompleted
from rcm_shared.store import Change, Document

from . import codesets
from .codesets import Chargemaster

MAX_DIAGNOSES = 12  # 837P HI segment
MAX_LINES = 50  # 837P loop 2400
MAX_MODIFIERS = 4
MAX_POINTERS = 4
MAX_UNITS = 99


class Status(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in-progress"
    DONE = "done"
    # A coding denial arrived before the encounter (topics arrive in any order).
    AWAITING_ENCOUNTER = "awaiting-encounter"


QUEUE_STATUSES = (Status.OPEN, Status.IN_PROGRESS, Status.DONE)


def case_id_for(episode_id: str) -> str:
    """One case per episode, found again from the episode id alone (redeliveries, denials)."""
    return "K" + hashlib.sha256(episode_id.encode()).hexdigest()[:12]


class Refusal(Exception):
    """A person asked for something the case does not allow; nothing was stored."""


class CaseNotFound(Refusal):
    pass


class CaseConflict(Refusal):
    pass


class InvalidCoding(Refusal):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


# ---------------------------------------------------------------------------------------
# Validation


@dataclass(frozen=True)
class LineInput:
    procedure_code: str
    modifiers: tuple[str, ...] = ()
    units: int = 1
    diagnosis_pointers: tuple[int, ...] = ()


@dataclass(frozen=True)
class Coding:
    """Codes as a coder submitted them; once validated, normalized (upper case, no dot)."""

    diagnoses: tuple[str, ...]
    lines: tuple[LineInput, ...] = field(default=())

    def as_document(self) -> Document:
        return {
            "diagnoses": list(self.diagnoses),
            "lines": [
                {
                    "procedure_code": line.procedure_code,
                    "modifiers": list(line.modifiers),
                    "units": line.units,
                    "diagnosis_pointers": list(line.diagnosis_pointers),
                }
                for line in self.lines
            ],
        }


class _Seen:
    """Spots the second occurrence of a value in a list, to say where the first was."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.first: dict[Any, int] = {}

    def again(self, index: int, value: Any, shown: Any) -> str | None:
        if value in self.first:
            also = f"{self.where}[{self.first[value]}]"
            return f"{self.where}[{index}]: {shown} is listed twice (also {also})"
        self.first[value] = index
        return None


def _diagnosis_problems(diagnoses: Sequence[str]) -> tuple[list[str], list[str]]:
    problems = []
    if not diagnoses:
        problems.append("diagnoses: at least one diagnosis is required")
    if len(diagnoses) > MAX_DIAGNOSES:
        problems.append(f"diagnoses: at most {MAX_DIAGNOSES} diagnoses, got {len(diagnoses)}")
    codes = []
    seen = _Seen("diagnoses")
    for index, raw in enumerate(diagnoses):
        check = codesets.check_icd10(raw)
        if check.problem is not None:
            problems.append(f"diagnoses[{index}]: {check.problem}")
        code = check.code or codesets.normalize_icd10(raw)
        if (twice := seen.again(index, code, raw.strip())) is not None:
            problems.append(twice)
        codes.append(code)
    return problems, codes


def _line_problems(
    where: str, line: LineInput, diagnoses: int, chargemaster: Chargemaster
) -> tuple[list[str], LineInput]:
    problems = []
    code = codesets.normalize_procedure(line.procedure_code)
    if codesets.code_set_by_shape(code) is None:
        problems.append(
            f"{where}.procedure_code: {line.procedure_code!r} is not a CPT code (5 digits, or "
            "4 digits and a letter) or a HCPCS level II code (a letter and 4 digits)"
        )
    elif code not in chargemaster:
        problems.append(f"{where}.procedure_code: {code} is not in the chargemaster")

    modifiers = [modifier.strip().upper() for modifier in line.modifiers]
    if len(modifiers) > MAX_MODIFIERS:
        problems.append(
            f"{where}.modifiers: at most {MAX_MODIFIERS} modifiers, got {len(modifiers)}"
        )
    seen = _Seen(f"{where}.modifiers")
    for index, modifier in enumerate(modifiers):
        if (twice := seen.again(index, modifier, modifier)) is not None:
            problems.append(twice)
        elif not codesets.MODIFIER_SHAPE.match(modifier):
            problems.append(
                f"{where}.modifiers[{index}]: {line.modifiers[index]!r} is not a modifier "
                "(2 letters or digits)"
            )
        elif modifier not in codesets.MODIFIERS:
            known = ", ".join(sorted(codesets.MODIFIERS))
            problems.append(
                f"{where}.modifiers[{index}]: {modifier} is not a known modifier ({known})"
            )
        elif modifier == "25" and not codesets.is_evaluation_and_management(code):
            problems.append(f"{where}.modifiers[{index}]: 25 applies only to an E/M service")

    if not 1 <= line.units <= MAX_UNITS:
        problems.append(f"{where}.units: {line.units} is not 1..{MAX_UNITS}")

    pointers = line.diagnosis_pointers
    if not 1 <= len(pointers) <= MAX_POINTERS:
        problems.append(
            f"{where}.diagnosis_pointers: 1 to {MAX_POINTERS} pointers, got {len(pointers)}"
        )
    seen = _Seen(f"{where}.diagnosis_pointers")
    for index, pointer in enumerate(pointers):
        if (twice := seen.again(index, pointer, pointer)) is not None:
            problems.append(twice)
        elif not 1 <= pointer <= diagnoses:
            problems.append(
                f"{where}.diagnosis_pointers[{index}]: {pointer} does not point at a diagnosis "
                f"(1..{diagnoses})"
            )
    return problems, LineInput(code, tuple(modifiers), line.units, pointers)


def validate(submission: Coding, chargemaster: Chargemaster) -> Coding:
    """The submission normalized, or InvalidCoding with every problem found, not just one."""
    problems, diagnoses = _diagnosis_problems(submission.diagnoses)
    if not submission.lines:
        problems.append("lines: at least one line is required")
    if len(submission.lines) > MAX_LINES:
        problems.append(f"lines: at most {MAX_LINES} lines, got {len(submission.lines)}")
    lines = []
    for index, line in enumerate(submission.lines):
        line_problems, normalized = _line_problems(
            f"lines[{index}]", line, len(submission.diagnoses), chargemaster
        )
        problems += line_problems
        lines.append(normalized)
    if problems:
        raise InvalidCoding(problems)
    return Coding(tuple(diagnoses), tuple(lines))


# ---------------------------------------------------------------------------------------
# Pricing


def price(
    coding: Coding, chargemaster: Chargemaster, episode_id: str, service_date: date
) -> list[ChargeLine]:
    """Charge lines at list price: unit price x units, in cents."""
    lines = []
    for number, line in enumerate(coding.lines, start=1):
        item = chargemaster[line.procedure_code]
        lines.append(
            ChargeLine(
                line_number=number,
                line_id=f"{episode_id}-L{number}",
                code_set=item.code_set,
                procedure_code=line.procedure_code,
                modifiers=list(line.modifiers),
                units=line.units,
                charge_cents=item.unit_price_cents * line.units,
                diagnosis_pointers=list(line.diagnosis_pointers),
                service_date=service_date,
            )
        )
    return lines


def total_cents(lines: Sequence[ChargeLine]) -> int:
    return sum(line.charge_cents for line in lines)


# ---------------------------------------------------------------------------------------
# Suggestions


def suggest_modifiers(codes: Sequence[str]) -> list[list[str]]:
    """25 on an E/M billed with another procedure the same day. Sides (RT/LT) are never
    guessed: the documentation must say, and the coder decides."""
    evaluations = {code for code in codes if codesets.is_evaluation_and_management(code)}
    other_procedure = any(code not in evaluations for code in codes)
    suggested = []
    for code in codes:
        needs_25 = code in evaluations and (
            other_procedure
            # a problem visit on the day of a preventive visit
            or (len(evaluations) > 1 and not codesets.is_preventive_visit(code))
        )
        suggested.append(["25"] if needs_25 else [])
    return suggested


def suggest(documentation: ClinicalDocumentation, chargemaster: Chargemaster) -> Document:
    """Suggested codes for the coder: diagnoses, charge lines, and what could not be
    matched, each with the reason. Slow the first time (ICD-10-CM loads)."""
    diagnoses: list[Document] = []
    unmatched: list[Document] = []
    for documented in documentation.diagnoses:
        hint_problem = None
        if documented.icd10_hint:
            check = codesets.check_icd10(documented.icd10_hint)
            if check.code is not None:
                diagnoses.append(
                    {
                        "code": check.code,
                        "source": "hint",
                        "hint": documented.icd10_hint,
                        "hint_problem": None,
                        "documented": documented.description,
                    }
                )
                continue
            hint_problem = check.problem
        code = codesets.find_by_description(documented.description)
        if code is None:
            unmatched.append(
                {
                    "kind": "diagnosis",
                    "documented": documented.description,
                    "hint": documented.icd10_hint,
                    "problem": hint_problem or "no billable code matches the description",
                }
            )
            continue
        diagnoses.append(
            {
                "code": code,
                "source": "description",
                "hint": documented.icd10_hint,
                "hint_problem": hint_problem,
                "documented": documented.description,
            }
        )
    unique: dict[str, Document] = {}
    for suggestion in diagnoses:
        unique.setdefault(suggestion["code"], suggestion)
    diagnoses = list(unique.values())[:MAX_DIAGNOSES]
    for suggestion in diagnoses:
        suggestion["display"] = codesets.with_dot(suggestion["code"])
        suggestion["description"] = codesets.icd10_description(suggestion["code"])

    procedures = []
    for documented_procedure in documentation.procedures:
        hint = documented_procedure.code_hint
        code = codesets.normalize_procedure(hint) if hint else None
        if code is not None and code in chargemaster:
            procedures.append((code, documented_procedure))
            continue
        unmatched.append(
            {
                "kind": "procedure",
                "documented": documented_procedure.description,
                "hint": hint,
                "problem": (
                    f"{hint} is not in the chargemaster" if hint else "the order carries no code"
                ),
            }
        )
    pointers = list(range(1, min(len(diagnoses), MAX_POINTERS) + 1))
    modifiers = suggest_modifiers([code for code, _ in procedures])
    lines = [
        {
            "procedure_code": code,
            "description": chargemaster[code].description,
            "modifiers": line_modifiers,
            "units": documented_procedure.units,
            "diagnosis_pointers": pointers,
            "documented": documented_procedure.description,
        }
        for (code, documented_procedure), line_modifiers in zip(procedures, modifiers, strict=True)
    ]
    return {"diagnoses": diagnoses, "lines": lines, "unmatched": unmatched}


# ---------------------------------------------------------------------------------------
# The case


def _audit(case: Document | None, who: str, action: str, now: datetime, **detail: Any) -> list[Any]:
    entry = {"at": now, "who": who, "action": action, "detail": detail}
    return [*(case or {}).get("audit", []), entry]


def open_case(
    case: Document | None,
    event: EncounterCompleted,
    suggestions: Document,
    source: str,
    now: datetime,
) -> Change | None:
    if case is not None and case["status"] != Status.AWAITING_ENCOUNTER:
        return None  # opened already; the first encounter's documentation stands
    return Change(
        set={
            "case_id": case_id_for(event.episode_id),
            "episode_id": event.episode_id,
            "encounter_id": event.encounter_id,
            "patient_id": event.patient_id,
            "date_of_service": event.date_of_service.isoformat(),
            "place_of_service": event.place_of_service,
            "rendering_provider_npi": event.rendering_provider_npi,
            "documentation": event.documentation.model_dump(mode="json"),
            "suggestions": suggestions,
            "status": Status.OPEN.value,
            "coder_id": None,
            "coding": None,
            "recode": (case or {}).get("recode"),
            "denied_claims": (case or {}).get("denied_claims", []),
            "opened_at": now,
            "updated_at": now,
            "audit": _audit(case, source, "opened", now, encounter_id=event.encounter_id),
        }
    )


def reopen_for_recode(
    case: Document | None, event: ClaimDenied, source: str, now: datetime
) -> Change | None:
    """A coding denial sends the case back to the queue; other denials are billers' work."""
    if event.category is not DenialCategory.CODING:
        return None
    denied_claims = (case or {}).get("denied_claims", [])
    if event.claim_id in denied_claims:
        return None  # this claim's denial was handled already
    recode = {
        "reason": RecodeReason.CODING_DENIAL.value,
        "claim_id": event.claim_id,
        "reason_codes": [f"{r.group_code}-{r.reason_code}" for r in event.reasons],
        "requested_at": now,
    }
    change: Document = {
        "recode": recode,
        "denied_claims": [*denied_claims, event.claim_id],
        "updated_at": now,
        "audit": _audit(
            case,
            source,
            "reopened",
            now,
            reason=recode["reason"],
            claim_id=event.claim_id,
            reason_codes=recode["reason_codes"],
        ),
    }
    if case is None:
        change |= {
            "case_id": case_id_for(event.episode_id),
            "episode_id": event.episode_id,
            "status": Status.AWAITING_ENCOUNTER.value,
        }
    elif case["status"] == Status.DONE:
        change |= {"status": Status.OPEN.value, "coder_id": None}
    return Change(set=change)


def _require_case(case: Document | None, case_id: str) -> Document:
    if case is None or case["status"] == Status.AWAITING_ENCOUNTER:
        raise CaseNotFound(f"no coding case {case_id}")
    return case


def assign(case: Document | None, case_id: str, coder_id: str, now: datetime) -> Change | None:
    case = _require_case(case, case_id)
    status, holder = case["status"], case.get("coder_id")
    if status == Status.DONE:
        raise CaseConflict(f"case {case_id} is done; it reopens only after a coding denial")
    if status == Status.IN_PROGRESS:
        if holder == coder_id:
            return None  # asked twice: already theirs
        raise CaseConflict(f"case {case_id} is held by coder {holder}")
    return Change(
        set={
            "status": Status.IN_PROGRESS.value,
            "coder_id": coder_id,
            "updated_at": now,
            "audit": _audit(case, coder_id, "assigned", now),
        }
    )


def check_may_submit(case: Document | None, case_id: str, coder_id: str) -> Document:
    """Who may submit codes: the coder holding the case (or who finished it, to repeat)."""
    case = _require_case(case, case_id)
    if case["status"] == Status.OPEN:
        raise CaseConflict(f"case {case_id} is not assigned; assign it first")
    if case.get("coder_id") != coder_id:
        raise CaseConflict(f"case {case_id} is held by coder {case.get('coder_id')}")
    return case


def submit(
    case: Document | None,
    case_id: str,
    coder_id: str,
    coding: Coding,
    chargemaster: Chargemaster,
    now: datetime,
) -> Change | None:
    """Price validated codes and emit them: coding-completed the first time,
    coding-corrected after a recode. The same codes again change nothing."""
    case = check_may_submit(case, case_id, coder_id)
    if case["status"] == Status.DONE:
        if case["coding"] is not None and case["coding"]["submitted"] == coding.as_document():
            return None
        raise CaseConflict(f"case {case_id} is done; it reopens only after a coding denial")
    episode_id = case["episode_id"]
    lines = price(coding, chargemaster, episode_id, date.fromisoformat(case["date_of_service"]))
    coded: dict[str, Any] = {
        "episode_id": episode_id,
        "coding_case_id": case_id,
        "diagnoses": list(coding.diagnoses),
        "charge_lines": lines,
        "total_charge_cents": total_cents(lines),
        "place_of_service": case["place_of_service"],
        "rendering_provider_npi": case["rendering_provider_npi"],
        "coder_id": coder_id,
    }
    recode = case.get("recode")
    event: CodingCompleted | CodingCorrected
    if recode is None:
        event = CodingCompleted(**coded, completed_at=now)
    else:
        event = CodingCorrected(**coded, reason=RecodeReason(recode["reason"]), corrected_at=now)
    return Change(
        set={
            "status": Status.DONE.value,
            "recode": None,
            "coding": {
                "submitted": coding.as_document(),
                "diagnoses": list(coding.diagnoses),
                "charge_lines": [line.model_dump(mode="json") for line in lines],
                "total_charge_cents": event.total_charge_cents,
                "coder_id": coder_id,
                "coded_at": now,
                "event_type": event.event_type,
            },
            "updated_at": now,
            "audit": _audit(
                case,
                coder_id,
                "coded",
                now,
                event_type=event.event_type,
                diagnoses=list(coding.diagnoses),
                procedure_codes=[line.procedure_code for line in coding.lines],
                total_charge_cents=event.total_charge_cents,
            ),
        },
        events=[event],
    )
