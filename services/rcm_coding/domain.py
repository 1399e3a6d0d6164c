"""Coding rules: suggestions, validation, pricing and the life of a coding case.

A case is opened per episode when the encounter is completed, with suggested codes that
are advice only; a coder takes the case, submits codes, and the validated, priced codes
go out as coding-completed. A coding denial of the claim, or of one line of a paid claim,
reopens the case; the next submission goes out as coding-corrected. Decisions are pure:
they return a `Decision` and refuse a person's request with `NotFound`, `Conflict` or
`Invalid` (every problem at once).
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel
from rcm_contracts.claims import ClaimDenied, DenialCategory, LineDenied
from rcm_contracts.coding import (
    ChargeLine,
    CodesSubmissionRequested,
    CodingCaseReassigned,
    CodingCaseReviewed,
    CodingCompleted,
    CodingCorrected,
    CodingEditHit,
    CodingQueryAnswered,
    CodingQueryRaised,
    CodingReviewRequested,
    EditHit,
    ProcedureCodeSet,
    QueryReason,
    RecodeReason,
)
from rcm_contracts.registration import ClinicalDocumentation, EncounterCompleted
from rcm_edits import ClaimFacts, Library, LineFacts, check, errors
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Conflict, Invalid, NotFound

from . import codesets
from .codesets import Chargemaster, Icd10Release, OutsideWindow

MAX_DIAGNOSES = 12  # 837P HI segment
MAX_LINES = 50  # 837P loop 2400
MAX_MODIFIERS = 4
MAX_POINTERS = 4
MAX_UNITS = 99


class Status(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in-progress"
    # Waiting for the physician's answer to a query; then back to the coder who asked.
    ON_HOLD = "on-hold"
    DONE = "done"
    # A coding denial arrived before the encounter (topics arrive in any order).
    AWAITING_ENCOUNTER = "awaiting-encounter"


QUEUE_STATUSES = (Status.OPEN, Status.IN_PROGRESS, Status.ON_HOLD, Status.DONE)


def case_id_for(episode_id: str) -> str:
    """One case per episode, found again from the episode id alone (redeliveries, denials)."""
    return "K" + hashlib.sha256(episode_id.encode()).hexdigest()[:12]


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

    @classmethod
    def of(cls, request: CodesSubmissionRequested | CodingReviewRequested) -> Coding:
        return cls(
            diagnoses=tuple(request.diagnoses),
            lines=tuple(
                LineInput(
                    procedure_code=line.procedure_code,
                    modifiers=tuple(line.modifiers),
                    units=line.units,
                    diagnosis_pointers=tuple(line.diagnosis_pointers),
                )
                for line in request.lines
            ),
        )


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


def _diagnosis_problems(
    diagnoses: Sequence[str], release: Icd10Release | None
) -> tuple[list[str], list[str]]:
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
            named = "" if release is None else f" (ICD-10-CM {release.name})"
            problems.append(f"diagnoses[{index}]: {check.problem}{named}")
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


def validate(
    submission: Coding, chargemaster: Chargemaster, release: Icd10Release | None = None
) -> Coding:
    """The submission normalized, or Invalid with every problem found, not just one; a
    diagnosis refused names the release it was checked against, when given."""
    problems, diagnoses = _diagnosis_problems(submission.diagnoses, release)
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
        raise Invalid("the codes break coding rules", problems)
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
# Edits


def run_edits(
    packs: Library | None, coding: Coding, lines: Sequence[ChargeLine], service_date: date
) -> tuple[str | None, list[EditHit]]:
    """The version of the pack in force on the date of service and the hits of the priced
    codes; no pack in force: no version, no hits."""
    pack = packs.for_date(service_date) if packs is not None else None
    if pack is None:
        return None, []
    facts = ClaimFacts(
        service_date=service_date,
        diagnoses=len(coding.diagnoses),
        lines=tuple(
            LineFacts(
                number=line.line_number,
                procedure_code=line.procedure_code,
                modifiers=tuple(line.modifiers),
                units=line.units,
                diagnosis_pointers=tuple(line.diagnosis_pointers),
                charge_cents=line.charge_cents,
            )
            for line in lines
        ),
    )
    return pack.version, check(pack, facts)


def refusal_body(hits: Sequence[EditHit]) -> list[dict[str, Any]]:
    """A 422's reasons: each hit, its message also as `msg` as other refusals read."""
    return [{"msg": hit.message, **hit.model_dump()} for hit in hits]


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


class SuggestedDiagnosis(BaseModel):
    code: str
    source: Literal["hint", "description"]
    hint: str | None
    hint_problem: str | None
    documented: str
    display: str = ""
    description: str | None = None


class SuggestedLine(BaseModel):
    procedure_code: str
    description: str
    modifiers: list[str]
    units: int
    diagnosis_pointers: list[int]
    documented: str


class Unmatched(BaseModel):
    kind: Literal["diagnosis", "procedure"]
    documented: str
    hint: str | None
    problem: str


class Suggestions(BaseModel):
    diagnoses: list[SuggestedDiagnosis] = []
    lines: list[SuggestedLine] = []
    unmatched: list[Unmatched] = []


def suggest(documentation: ClinicalDocumentation, chargemaster: Chargemaster) -> Suggestions:
    """Suggested codes for the coder: diagnoses, charge lines, and what could not be
    matched, each with the reason. Slow the first time (ICD-10-CM loads)."""
    diagnoses: list[SuggestedDiagnosis] = []
    unmatched: list[Unmatched] = []
    for documented in documentation.diagnoses:
        hint_problem = None
        if documented.icd10_hint:
            check = codesets.check_icd10(documented.icd10_hint)
            if check.code is not None:
                diagnoses.append(
                    SuggestedDiagnosis(
                        code=check.code,
                        source="hint",
                        hint=documented.icd10_hint,
                        hint_problem=None,
                        documented=documented.description,
                    )
                )
                continue
            hint_problem = check.problem
        code = codesets.find_by_description(documented.description)
        if code is None:
            unmatched.append(
                Unmatched(
                    kind="diagnosis",
                    documented=documented.description,
                    hint=documented.icd10_hint,
                    problem=hint_problem or "no billable code matches the description",
                )
            )
            continue
        diagnoses.append(
            SuggestedDiagnosis(
                code=code,
                source="description",
                hint=documented.icd10_hint,
                hint_problem=hint_problem,
                documented=documented.description,
            )
        )
    unique: dict[str, SuggestedDiagnosis] = {}
    for suggestion in diagnoses:
        unique.setdefault(suggestion.code, suggestion)
    diagnoses = list(unique.values())[:MAX_DIAGNOSES]
    for suggestion in diagnoses:
        suggestion.display = codesets.with_dot(suggestion.code)
        suggestion.description = codesets.icd10_description(suggestion.code)

    procedures = []
    for documented_procedure in documentation.procedures:
        hint = documented_procedure.code_hint
        code = codesets.normalize_procedure(hint) if hint else None
        if code is not None and code in chargemaster:
            procedures.append((code, documented_procedure))
            continue
        unmatched.append(
            Unmatched(
                kind="procedure",
                documented=documented_procedure.description,
                hint=hint,
                problem=(
                    f"{hint} is not in the chargemaster" if hint else "the order carries no code"
                ),
            )
        )
    pointers = list(range(1, min(len(diagnoses), MAX_POINTERS) + 1))
    modifiers = suggest_modifiers([code for code, _ in procedures])
    lines = [
        SuggestedLine(
            procedure_code=code,
            description=chargemaster[code].description,
            modifiers=line_modifiers,
            units=documented_procedure.units,
            diagnosis_pointers=pointers,
            documented=documented_procedure.description,
        )
        for (code, documented_procedure), line_modifiers in zip(procedures, modifiers, strict=True)
    ]
    return Suggestions(diagnoses=diagnoses, lines=lines, unmatched=unmatched)


# ---------------------------------------------------------------------------------------
# Routing: specialty and priority


class Specialty(StrEnum):
    """The CPT sections coding teams are organized by (and HCPCS drugs with medicine)."""

    EVALUATION_MANAGEMENT = "evaluation-management"
    ANESTHESIA = "anesthesia"
    SURGERY = "surgery"
    RADIOLOGY = "radiology"
    PATHOLOGY_LAB = "pathology-lab"
    MEDICINE = "medicine"
    UNCLASSIFIED = "unclassified"  # no procedure could be suggested: a generalist's case


# The section whose rules a case needs most, when its lines span several: nearly every
# case has a visit, so the visit decides only when nothing else is billed.
SPECIALTY_PRECEDENCE = (
    Specialty.SURGERY,
    Specialty.ANESTHESIA,
    Specialty.RADIOLOGY,
    Specialty.PATHOLOGY_LAB,
    Specialty.MEDICINE,
    Specialty.EVALUATION_MANAGEMENT,
)
VENIPUNCTURE = "36415"  # in CPT's surgery section, but drawn for the lab and coded with it


def section_of(code: str) -> Specialty:
    """The CPT section of a procedure code (HCPCS level II: medicine, drugs and their
    administration; CPT category II/III: unclassified)."""
    if codesets.code_set_by_shape(code) is ProcedureCodeSet.HCPCS:
        return Specialty.MEDICINE
    if not (code.isdigit() and len(code) == 5):
        return Specialty.UNCLASSIFIED
    number = int(code)
    if codesets.is_evaluation_and_management(code):
        return Specialty.EVALUATION_MANAGEMENT
    if code == VENIPUNCTURE or 80047 <= number <= 89398:
        return Specialty.PATHOLOGY_LAB
    if 100 <= number <= 1999:
        return Specialty.ANESTHESIA
    if 10004 <= number <= 69990:
        return Specialty.SURGERY
    if 70010 <= number <= 79999:
        return Specialty.RADIOLOGY
    return Specialty.MEDICINE


def specialty_of(procedure_codes: Iterable[str]) -> Specialty:
    sections = {section_of(code) for code in procedure_codes}
    for specialty in SPECIALTY_PRECEDENCE:
        if specialty in sections:
            return specialty
    return Specialty.UNCLASSIFIED


def expected_charge_cents(suggestions: Suggestions, chargemaster: Chargemaster) -> int:
    """What the suggested lines would charge at list price: the case's size before coding."""
    return sum(
        chargemaster[line.procedure_code].unit_price_cents * line.units
        for line in suggestions.lines
        if line.procedure_code in chargemaster
    )


MAX_PRIORITY_CENTS = 10**13  # above any episode's charge: the complement stays positive


def priority_of(recode: Recode | None, date_of_service: date | None, expected_cents: int) -> str:
    """A key the queue sorts ascending: a case reopened for a coding denial first of all
    (money already billed and refused), then the oldest date of service (timely filing),
    then the largest expected charge."""
    denial = recode is not None and recode.reason is RecodeReason.CODING_DENIAL
    day = date_of_service.isoformat() if date_of_service is not None else "9999-12-31"
    larger_first = MAX_PRIORITY_CENTS - min(max(expected_cents, 0), MAX_PRIORITY_CENTS)
    return f"{0 if denial else 1}|{day}|{larger_first:014d}"


# ---------------------------------------------------------------------------------------
# The case


class RecodeLine(BaseModel):
    """A line the payer denied for coding on a claim it paid otherwise."""

    line_id: str | None = None
    procedure_code: str
    reason_codes: list[str]


class Recode(BaseModel):
    reason: RecodeReason
    claim_id: str | None = None  # None: an audit correction, no claim was denied
    reason_codes: list[str]
    requested_at: datetime
    lines: list[RecodeLine] = []  # empty: the whole claim was denied
    corrections: Coding | None = None  # the coding lead's codes, after an audit review


class AuditEntry(BaseModel):
    at: datetime
    who: str
    action: str
    detail: dict[str, Any] = {}


class QueryStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"


class PhysicianQuery(BaseModel):
    """A query to the physician. Its words and the answer are kept apart, in the store's
    query texts: the case (and its events) hold ids, the reason and who."""

    query_id: str
    reason: QueryReason
    status: QueryStatus
    coder_id: str
    raised_at: datetime
    answered_by: str | None = None
    answered_at: datetime | None = None


class ReviewStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Review(BaseModel):
    """An audit review of a sampled case by a coding lead."""

    status: ReviewStatus
    coder_id: str  # whose coding is reviewed
    sampled_at: datetime
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    agreed: bool | None = None
    corrections: Coding | None = None


class CaseCoding(BaseModel):
    """The codes a case went out with: as submitted (normalized) and as priced."""

    submitted: Coding
    diagnoses: list[str]
    charge_lines: list[ChargeLine]
    total_charge_cents: int
    coder_id: str
    coded_at: datetime
    event_type: str


class Case(BaseModel):
    """One coding case per episode, stored under the episode id (the key of every message
    that changes it). A stub (awaiting-encounter) holds only a denial that came first."""

    case_id: str
    episode_id: str
    status: Status
    encounter_id: str | None = None
    patient_id: str | None = None
    date_of_service: date | None = None
    place_of_service: str | None = None
    rendering_provider_npi: str | None = None
    documentation: ClinicalDocumentation | None = None
    suggestions: Suggestions | None = None
    coder_id: str | None = None
    coding: CaseCoding | None = None
    recode: Recode | None = None
    denied_claims: list[str] = []
    opened_at: datetime | None = None
    updated_at: datetime
    audit: list[AuditEntry] = []
    # The coder's edit worklist: the hits of the latest submission, and whether they
    # refused it (the codes that were refused, so the same ones again change nothing).
    edit_pack_version: str | None = None
    edit_hits: list[EditHit] = []
    edits_refused: Coding | None = None
    # Routing: /queue/next reads open cases by specialty, ordered by priority.
    specialty: Specialty | None = None
    priority: str | None = None
    expected_charge_cents: int = 0
    assigned_at: datetime | None = None  # when the coder holding it got it
    queries: list[PhysicianQuery] = []
    review: Review | None = None
    code_set_release: str | None = None  # the ICD-10-CM release the codes were checked in
    code_set_stand_in: bool = False  # the date of service is outside every shipped window

    def audited(self, who: str, action: str, now: datetime, **detail: Any) -> list[AuditEntry]:
        return [*self.audit, AuditEntry(at=now, who=who, action=action, detail=detail)]


class CaseSummary(BaseModel):
    """A case as the queue lists it."""

    case_id: str
    episode_id: str
    status: Status
    coder_id: str | None = None
    date_of_service: date | None = None
    opened_at: datetime | None = None
    updated_at: datetime
    recode: Recode | None = None
    edit_hits: list[EditHit] = []
    edits_refused: Coding | None = None
    specialty: Specialty | None = None
    priority: str | None = None
    expected_charge_cents: int = 0
    assigned_at: datetime | None = None
    queries: list[PhysicianQuery] = []
    review: Review | None = None


CaseDecision = Decision[Case, Case]


def open_case(
    case: Case | None,
    event: EncounterCompleted,
    suggestions: Suggestions,
    source: str,
    now: datetime,
    expected_cents: int = 0,
) -> CaseDecision:
    if case is not None and case.status != Status.AWAITING_ENCOUNTER:
        return Decision()  # opened already; the first encounter's documentation stands
    recode = case.recode if case else None
    opened = Case(
        case_id=case_id_for(event.episode_id),
        episode_id=event.episode_id,
        encounter_id=event.encounter_id,
        patient_id=event.patient_id,
        date_of_service=event.date_of_service,
        place_of_service=event.place_of_service,
        rendering_provider_npi=event.rendering_provider_npi,
        documentation=event.documentation,
        suggestions=suggestions,
        status=Status.OPEN,
        recode=recode,
        specialty=specialty_of(line.procedure_code for line in suggestions.lines),
        expected_charge_cents=expected_cents,
        priority=priority_of(recode, event.date_of_service, expected_cents),
        denied_claims=case.denied_claims if case else [],
        opened_at=now,
        updated_at=now,
        audit=[],
    )
    audit = (case or opened).audited(source, "opened", now, encounter_id=event.encounter_id)
    return Decision(state=opened.model_copy(update={"audit": audit}))


def reopen_for_recode(
    case: Case | None, event: ClaimDenied, source: str, now: datetime
) -> CaseDecision:
    """A coding denial sends the case back to the queue; other denials are billers' work."""
    if event.category is not DenialCategory.CODING:
        return Decision()
    if case is not None and event.claim_id in case.denied_claims:
        return Decision()  # this claim's denial was handled already
    recode = Recode(
        reason=RecodeReason.CODING_DENIAL,
        claim_id=event.claim_id,
        reason_codes=[f"{r.group_code}-{r.reason_code}" for r in event.reasons],
        requested_at=now,
    )
    return _reopen(case, event.episode_id, recode, event.claim_id, source, now)


def reopen_for_line(
    case: Case | None, event: LineDenied, source: str, now: datetime
) -> CaseDecision:
    """A line denied for coding on a paid claim sends the case back to the queue, with the
    line and its procedure; several lines of one claim make one recode."""
    if event.category is not DenialCategory.CODING:
        return Decision()
    denied = f"{event.claim_id}:{event.line_id or event.procedure_code}"
    if case is not None and denied in case.denied_claims:
        return Decision()  # this line's denial was handled already
    codes = [f"{r.group_code}-{r.reason_code}" for r in event.reasons]
    line = RecodeLine(
        line_id=event.line_id, procedure_code=event.procedure_code, reason_codes=codes
    )
    pending = case.recode if case is not None else None
    if pending is not None and pending.claim_id == event.claim_id and pending.lines:
        codes = [*pending.reason_codes, *(c for c in codes if c not in pending.reason_codes)]
        recode = pending.model_copy(update={"lines": [*pending.lines, line], "reason_codes": codes})
    else:
        recode = Recode(
            reason=RecodeReason.CODING_DENIAL,
            claim_id=event.claim_id,
            reason_codes=codes,
            requested_at=now,
            lines=[line],
        )
    detail = {"line_id": event.line_id, "procedure_code": event.procedure_code}
    return _reopen(case, event.episode_id, recode, denied, source, now, **detail)


def _reopen(
    case: Case | None,
    episode_id: str,
    recode: Recode,
    denied: str,
    source: str,
    now: datetime,
    **detail: Any,
) -> CaseDecision:
    if case is None:
        case = Case(
            case_id=case_id_for(episode_id),
            episode_id=episode_id,
            status=Status.AWAITING_ENCOUNTER,
            updated_at=now,
        )
    update: dict[str, Any] = {
        "recode": recode,
        "denied_claims": [*case.denied_claims, denied],
        "updated_at": now,
        "audit": case.audited(
            source,
            "reopened",
            now,
            reason=recode.reason.value,
            claim_id=recode.claim_id,
            reason_codes=recode.reason_codes,
            **detail,
        ),
    }
    if case.status == Status.DONE:
        update |= {"status": Status.OPEN, "coder_id": None, "assigned_at": None}
    expected = case.coding.total_charge_cents if case.coding else case.expected_charge_cents
    update["priority"] = priority_of(recode, case.date_of_service, expected)
    return Decision(state=case.model_copy(update=update))


def _require_case(case: Case | None, case_id: str) -> Case:
    if case is None or case.status == Status.AWAITING_ENCOUNTER:
        raise NotFound(f"no coding case {case_id}")
    return case


def assign(case: Case | None, case_id: str, coder_id: str, now: datetime) -> CaseDecision:
    """The case taken by the coder; the decision's result is the case as it then is."""
    case = _require_case(case, case_id)
    if case.status == Status.DONE:
        raise Conflict(f"case {case_id} is done; it reopens only after a coding denial")
    if case.status in (Status.IN_PROGRESS, Status.ON_HOLD):
        if case.coder_id == coder_id:
            return Decision(result=case)  # asked twice: already theirs
        raise Conflict(f"case {case_id} is held by coder {case.coder_id}")
    taken = case.model_copy(
        update={
            "status": Status.IN_PROGRESS,
            "coder_id": coder_id,
            "assigned_at": now,
            "updated_at": now,
            "audit": case.audited(coder_id, "assigned", now),
        }
    )
    return Decision(state=taken, result=taken)


def _check_may_submit(case: Case | None, case_id: str, coder_id: str) -> Case:
    """Who may submit codes: the coder holding the case (or who finished it, to repeat)."""
    case = _require_case(case, case_id)
    if case.status == Status.OPEN:
        raise Conflict(f"case {case_id} is not assigned; assign it first")
    if case.status == Status.ON_HOLD:
        raise Conflict(f"case {case_id} is on hold until its physician query is answered")
    if case.coder_id != coder_id:
        raise Conflict(f"case {case_id} is held by coder {case.coder_id}")
    return case


def submit(
    case: Case | None,
    case_id: str,
    coder_id: str,
    submission: Coding,
    chargemaster: Chargemaster,
    now: datetime,
    packs: Library | None = None,
    sample_rate: float = 0.0,
    outside_window: OutsideWindow = "nearest",
) -> CaseDecision:
    """Validate the codes (the diagnoses in the ICD-10-CM release in force on the date of
    service) and price them, run the edits of the pack in force on the date of
    service, and emit them: coding-completed the first time, coding-corrected after a
    recode, with an edit-hit event when an edit warns. Codes that break an edit with
    severity error are refused: the case keeps them as its edit worklist (`edits_refused`,
    `edit_hits`) and an edit-hit event says so. The same codes again change nothing (no
    state, no event); the result is the case either way. Who may submit is checked (404,
    409) before the codes are (422). A first coding whose case id falls in the audit
    sample (`sample_rate`) enters the coding lead's review list."""
    case = _check_may_submit(case, case_id, coder_id)
    choice = None
    if case.date_of_service is not None:
        choice = codesets.release_for(case.date_of_service, outside_window)
        if choice is None:
            raise Invalid(
                "the codes break coding rules",
                [
                    f"date_of_service: {case.date_of_service.isoformat()} is outside every "
                    f"shipped ICD-10-CM release ({codesets.shipped_windows()})"
                ],
            )
    coding = validate(submission, chargemaster, choice.release if choice else None)
    if case.status == Status.DONE:
        if case.coding is not None and case.coding.submitted == coding:
            return Decision(result=case)
        raise Conflict(f"case {case_id} is done; it reopens only after a coding denial")
    if case.date_of_service is None or case.place_of_service is None:
        raise NotFound(f"no coding case {case_id}")  # an open case has its encounter
    lines = price(coding, chargemaster, case.episode_id, case.date_of_service)
    version, hits = run_edits(packs, coding, lines, case.date_of_service)
    if errors(hits):
        return _refuse_for_edits(case, case_id, coder_id, coding, version, hits, now)
    coded: dict[str, Any] = {
        "episode_id": case.episode_id,
        "coding_case_id": case_id,
        "diagnoses": list(coding.diagnoses),
        "charge_lines": lines,
        "total_charge_cents": total_cents(lines),
        "place_of_service": case.place_of_service,
        "rendering_provider_npi": case.rendering_provider_npi,
        "coder_id": coder_id,
        "edit_pack_version": version,
    }
    event: CodingCompleted | CodingCorrected
    if case.recode is None:
        event = CodingCompleted(**coded, completed_at=now)
    else:
        event = CodingCorrected(**coded, reason=case.recode.reason, corrected_at=now)
    done = case.model_copy(
        update={
            "status": Status.DONE,
            "recode": None,
            "coding": CaseCoding(
                submitted=coding,
                diagnoses=list(coding.diagnoses),
                charge_lines=lines,
                total_charge_cents=event.total_charge_cents,
                coder_id=coder_id,
                coded_at=now,
                event_type=event.event_type,
            ),
            "updated_at": now,
            "edit_pack_version": version,
            "edit_hits": hits,
            "edits_refused": None,
            "audit": case.audited(
                coder_id,
                "coded",
                now,
                event_type=event.event_type,
                diagnoses=list(coding.diagnoses),
                procedure_codes=[line.procedure_code for line in coding.lines],
                total_charge_cents=event.total_charge_cents,
                edit_pack_version=version,
                edit_warnings=len(hits),
                lines=len(lines),
                minutes=_minutes_between(case.assigned_at, now),
                code_set_release=choice.release.name if choice else None,
            ),
        }
    )
    if case.review is None and sampled_for_review(case_id, sample_rate):
        review: Review | None = Review(status=ReviewStatus.OPEN, coder_id=coder_id, sampled_at=now)
        done = done.model_copy(update={"review": review})
    if choice is not None:
        done = done.model_copy(
            update={
                "code_set_release": choice.release.name,
                "code_set_stand_in": choice.stand_in,
            }
        )
    events: list[CodingCompleted | CodingCorrected | CodingEditHit] = [event]
    if hits and version is not None:
        events.append(
            CodingEditHit(
                episode_id=case.episode_id,
                coding_case_id=case_id,
                coder_id=coder_id,
                edit_pack_version=version,
                action="warned",
                hits=hits,
                found_at=now,
            )
        )
    return Decision(state=done, events=events, result=done)


def _refuse_for_edits(
    case: Case,
    case_id: str,
    coder_id: str,
    coding: Coding,
    version: str | None,
    hits: list[EditHit],
    now: datetime,
) -> CaseDecision:
    """The codes stay with the coder, with the hits as their worklist; the case is not
    done. The same codes refused again change nothing."""
    if case.edits_refused == coding and case.edit_pack_version == version:
        return Decision(result=case)
    refused = case.model_copy(
        update={
            "edit_pack_version": version,
            "edit_hits": hits,
            "edits_refused": coding,
            "updated_at": now,
            "audit": case.audited(
                coder_id,
                "edits-refused",
                now,
                edit_pack_version=version,
                rules=sorted({hit.rule for hit in hits}),
                procedure_codes=[line.procedure_code for line in coding.lines],
            ),
        }
    )
    event = CodingEditHit(
        episode_id=case.episode_id,
        coding_case_id=case_id,
        coder_id=coder_id,
        edit_pack_version=version or "",
        action="refused",
        hits=hits,
        found_at=now,
    )
    return Decision(state=refused, events=[event], result=refused)


def _minutes_between(start: datetime | None, end: datetime) -> float | None:
    return None if start is None else round((end - start).total_seconds() / 60, 2)


# ---------------------------------------------------------------------------------------
# Worklists: hold with a physician query, lead reassignment, audit review


def sampled_for_review(case_id: str, rate: float) -> bool:
    """Whether the case is in the audit sample: a hash of its id, so the same case is
    sampled (or not) at every rate check and in every replica."""
    bucket = int(hashlib.sha256(f"audit-sample:{case_id}".encode()).hexdigest()[:8], 16)
    return bucket < rate * 0x1_0000_0000


def hold(
    case: Case | None,
    case_id: str,
    coder_id: str,
    query_id: str,
    reason: QueryReason,
    now: datetime,
) -> CaseDecision:
    """The coder working the case puts it on hold with a query to the physician; it
    leaves the workable queue until the answer is recorded."""
    case = _require_case(case, case_id)
    if any(query.query_id == query_id for query in case.queries):
        return Decision(result=case)  # asked again
    if case.status != Status.IN_PROGRESS or case.coder_id != coder_id:
        raise Conflict(f"case {case_id} is not in progress with coder {coder_id}")
    query = PhysicianQuery(
        query_id=query_id, reason=reason, status=QueryStatus.OPEN, coder_id=coder_id, raised_at=now
    )
    held = case.model_copy(
        update={
            "status": Status.ON_HOLD,
            "queries": [*case.queries, query],
            "updated_at": now,
            "audit": case.audited(
                coder_id, "query-raised", now, query_id=query_id, reason=reason.value
            ),
        }
    )
    event = CodingQueryRaised(
        episode_id=case.episode_id,
        coding_case_id=case_id,
        query_id=query_id,
        reason=reason,
        coder_id=coder_id,
        raised_at=now,
    )
    return Decision(state=held, events=[event], result=held)


def open_query(case: Case, query_id: str) -> PhysicianQuery:
    for query in case.queries:
        if query.query_id == query_id:
            return query
    raise NotFound(f"no query {query_id} on coding case {case.case_id}")


def answer(
    case: Case | None, case_id: str, recorded_by: str, query_id: str, now: datetime
) -> CaseDecision:
    """The physician's answer recorded: the case goes back in progress to its coder."""
    case = _require_case(case, case_id)
    query = open_query(case, query_id)
    if query.status is QueryStatus.ANSWERED:
        return Decision(result=case)
    answered = query.model_copy(
        update={"status": QueryStatus.ANSWERED, "answered_by": recorded_by, "answered_at": now}
    )
    coder_id = case.coder_id or query.coder_id
    resumed = case.model_copy(
        update={
            "status": Status.IN_PROGRESS if case.status == Status.ON_HOLD else case.status,
            "coder_id": coder_id,
            "queries": [answered if q.query_id == query_id else q for q in case.queries],
            "updated_at": now,
            "audit": case.audited(
                recorded_by, "query-answered", now, query_id=query_id, coder_id=coder_id
            ),
        }
    )
    event = CodingQueryAnswered(
        episode_id=case.episode_id,
        coding_case_id=case_id,
        query_id=query_id,
        reason=query.reason,
        answered_by=recorded_by,
        coder_id=coder_id,
        answered_at=now,
    )
    return Decision(state=resumed, events=[event], result=resumed)


def reassign(
    case: Case | None, case_id: str, lead_id: str, coder_id: str, now: datetime
) -> CaseDecision:
    """A coding lead gives the case to another coder: in progress with them, or still on
    hold and theirs when the physician answers."""
    case = _require_case(case, case_id)
    if case.status == Status.DONE:
        raise Conflict(f"case {case_id} is done; it reopens only after a denial or a review")
    if case.coder_id == coder_id and case.status != Status.OPEN:
        return Decision(result=case)  # theirs already
    status = Status.ON_HOLD if case.status == Status.ON_HOLD else Status.IN_PROGRESS
    moved = case.model_copy(
        update={
            "status": status,
            "coder_id": coder_id,
            "assigned_at": now,
            "updated_at": now,
            "audit": case.audited(
                lead_id, "reassigned", now, from_coder_id=case.coder_id, to_coder_id=coder_id
            ),
        }
    )
    event = CodingCaseReassigned(
        episode_id=case.episode_id,
        coding_case_id=case_id,
        from_coder_id=case.coder_id,
        to_coder_id=coder_id,
        reassigned_by=lead_id,
        reassigned_at=now,
    )
    return Decision(state=moved, events=[event], result=moved)


def review(
    case: Case | None,
    case_id: str,
    lead_id: str,
    agreed: bool,
    corrections: Coding | None,
    chargemaster: Chargemaster,
    now: datetime,
) -> CaseDecision:
    """A coding lead's review of a sampled case. Agreed: closed. Corrected: closed, and a
    case that went out is reopened for a recode by the coder who coded it, with the
    lead's codes on the recode (the next submission goes out as coding-corrected)."""
    case = _require_case(case, case_id)
    if case.review is None or case.review.status is ReviewStatus.CLOSED:
        raise Conflict(f"case {case_id} has no open review")
    corrected = None
    if not agreed:
        if corrections is None or not (corrections.diagnoses or corrections.lines):
            raise Invalid(
                "a disagreement needs the codes the case should have",
                ["diagnoses, lines: give the corrected codes"],
            )
        release = None
        if case.date_of_service is not None:
            choice = codesets.release_for(case.date_of_service)
            release = choice.release if choice else None
        corrected = validate(corrections, chargemaster, release)
    coder_id = case.review.coder_id
    closed = case.review.model_copy(
        update={
            "status": ReviewStatus.CLOSED,
            "reviewed_by": lead_id,
            "reviewed_at": now,
            "agreed": agreed,
            "corrections": corrected,
        }
    )
    update: dict[str, Any] = {
        "review": closed,
        "updated_at": now,
        "audit": case.audited(lead_id, "reviewed", now, coder_id=coder_id, agreed=agreed),
    }
    if corrected is not None and case.status == Status.DONE:
        update |= {
            "status": Status.IN_PROGRESS,
            "coder_id": coder_id,
            "assigned_at": now,
            "recode": Recode(
                reason=RecodeReason.AUDIT,
                reason_codes=[],
                requested_at=now,
                corrections=corrected,
            ),
        }
    reviewed = case.model_copy(update=update)
    event = CodingCaseReviewed(
        episode_id=case.episode_id,
        coding_case_id=case_id,
        coder_id=coder_id,
        reviewed_by=lead_id,
        agreed=agreed,
        reviewed_at=now,
    )
    return Decision(state=reviewed, events=[event], result=reviewed)


# ---------------------------------------------------------------------------------------
# Coders' profiles


class CoderProfile(BaseModel):
    """Which specialties a coder works: /queue/next gives them those cases first."""

    coder_id: str
    specialties: list[Specialty] = []
    updated_by: str
    updated_at: datetime


ProfileDecision = Decision[CoderProfile, CoderProfile]


def set_profile(
    profile: CoderProfile | None,
    coder_id: str,
    specialties: Sequence[str],
    lead_id: str,
    now: datetime,
) -> ProfileDecision:
    known = {specialty.value for specialty in Specialty}
    problems = [
        f"specialties[{index}]: {name!r} is not a specialty ({', '.join(sorted(known))})"
        for index, name in enumerate(specialties)
        if name not in known
    ]
    if problems:
        raise Invalid("unknown specialties", problems)
    wanted = [Specialty(name) for name in dict.fromkeys(specialties)]
    if profile is not None and profile.specialties == wanted:
        return Decision(result=profile)
    updated = CoderProfile(
        coder_id=coder_id, specialties=wanted, updated_by=lead_id, updated_at=now
    )
    return Decision(state=updated, result=updated)


# ---------------------------------------------------------------------------------------
# Productivity and accuracy: facts of the case's audit trail, per coder and day

WORK_ACTIONS = frozenset({"coded", "query-raised", "reviewed"})


def work_facts(case: Case) -> list[dict[str, Any]]:
    """One fact per coding, query and review on the case's audit trail, keyed by the
    entry's place in it: writing them again writes the same documents."""
    facts = []
    for index, entry in enumerate(case.audit):
        if entry.action not in WORK_ACTIONS:
            continue
        reviewed = entry.action == "reviewed"
        fact: dict[str, Any] = {
            "_id": f"{case.case_id}:{index}",
            "case_id": case.case_id,
            "day": entry.at.date().isoformat(),
            "kind": entry.action,
            # A review counts for the coder reviewed, not the lead.
            "coder_id": entry.detail.get("coder_id") if reviewed else entry.who,
        }
        if entry.action == "coded":
            fact |= {"lines": entry.detail.get("lines", 0), "minutes": entry.detail.get("minutes")}
        if reviewed:
            fact["agreed"] = bool(entry.detail.get("agreed"))
        facts.append(fact)
    return facts


class Productivity(BaseModel):
    coder_id: str
    cases_coded: int = 0
    lines: int = 0
    median_minutes: float | None = None  # from assignment to submission
    queries_raised: int = 0
    reviewed: int = 0
    agreed: int = 0
    accuracy: float | None = None  # agreed / reviewed


def productivity(facts: Iterable[dict[str, Any]]) -> list[Productivity]:
    """Per coder, from one day's facts, by coder id."""
    coded: dict[str, set[str]] = {}
    lines: dict[str, int] = {}
    minutes: dict[str, list[float]] = {}
    queries: dict[str, int] = {}
    reviewed: dict[str, int] = {}
    agreed: dict[str, int] = {}
    coders: set[str] = set()
    for fact in facts:
        coder = str(fact["coder_id"])
        coders.add(coder)
        if fact["kind"] == "coded":
            coded.setdefault(coder, set()).add(str(fact["case_id"]))
            lines[coder] = lines.get(coder, 0) + int(fact.get("lines") or 0)
            if fact.get("minutes") is not None:
                minutes.setdefault(coder, []).append(float(fact["minutes"]))
        elif fact["kind"] == "query-raised":
            queries[coder] = queries.get(coder, 0) + 1
        elif fact["kind"] == "reviewed":
            reviewed[coder] = reviewed.get(coder, 0) + 1
            agreed[coder] = agreed.get(coder, 0) + (1 if fact.get("agreed") else 0)
    return [
        Productivity(
            coder_id=coder,
            cases_coded=len(coded.get(coder, ())),
            lines=lines.get(coder, 0),
            median_minutes=statistics.median(minutes[coder]) if coder in minutes else None,
            queries_raised=queries.get(coder, 0),
            reviewed=reviewed.get(coder, 0),
            agreed=agreed.get(coder, 0),
            accuracy=round(agreed[coder] / reviewed[coder], 4) if reviewed.get(coder) else None,
        )
        for coder in sorted(coders)
    ]
