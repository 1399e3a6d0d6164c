"""Bots that play the platform's people through the services' HTTP APIs (docs/flow.md).

Front desk, coder, biller and patient each run a loop until the run ends. The loops are
thin: what to send is decided by pure functions (`submission_from_case`,
`fix_from_reasons`, `with_modifier_25`, `denial_action`, `patient_choice`, ...), which
the unit tests check. A bot never crashes the run: connection errors and 5xx answers
(a service restarting) are retried, anything else is logged and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from rcm_shared.auth import Role
from rcm_shared.redact import describe

from .synthetic import SyntheticEpisode

log = logging.getLogger("rcm.bots")

PLAN_THRESHOLD_CENTS = 15_000  # balances above $150 take a payment plan
PLAN_INSTALLMENTS = 3
SHORT_PAY_ONE_IN = 8  # about 1 patient in 8 pays all but the cents
MAX_CODE_ATTEMPTS = 4
MAX_DOCUMENTATION_CORRECTIONS = 2  # per episode; then the biller accepts the denial
MAX_REJECTION_RESUBMISSIONS = 3  # per episode
# A claim with no news from its payer this long is followed up, once (the A/R list).
STUCK_AFTER_S = 60.0
AR_LOOK_EVERY = 10  # biller steps between looks at the A/R follow-up list
WAITING_ON_PAYER = ("submitted", "accepted")


# --------------------------------------------------------------------------- HTTP


class Stopped(Exception):
    """The run is over: the bot stops retrying."""


class BotError(Exception):
    """A service refused what the bot sent (or kept failing); the bot leaves it."""


class RoundRobin:
    """The next of a fixed list of base URLs, in turn."""

    def __init__(self, items: Sequence[str]) -> None:
        if not items:
            raise ValueError("no base URL")
        self.items = tuple(item.rstrip("/") for item in items)
        self.turn = 0

    def next(self) -> str:
        item = self.items[self.turn % len(self.items)]
        self.turn += 1
        return item


class Http:
    """A JSON client that outlasts restarts: connection errors and 5xx are retried.

    `unsafe=True` marks a request that must not be repeated once it may have reached the
    server (no idempotency key): only failures to connect are retried then.

    Given several base URLs (the replicas of a service), requests take them in turn, a
    retry included: any replica serves the service's API, so a replica that is down or
    restarting costs one attempt, not the retry period.

    A bot signs in like a person: `as_user` gives a client whose every request that
    user's credentials sign (e.g. platform.Bearer, a fresh token each time).
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        stop: asyncio.Event,
        timeout_s: float = 10.0,
        retry_for_s: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_urls = RoundRobin([base_url] if isinstance(base_url, str) else base_url)
        self.client = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self.stop = stop
        self.retry_for_s = retry_for_s  # longer than a service takes to restart
        self.auth: httpx.Auth | None = None

    def as_user(self, auth: httpx.Auth) -> Http:
        """The same connections, every request signed by `auth`."""
        signed_in = copy.copy(self)
        signed_in.auth = auth
        return signed_in

    async def close(self) -> None:
        await self.client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        unsafe: bool = False,
    ) -> httpx.Response:
        delay = 0.2
        deadline = time.monotonic() + self.retry_for_s
        while True:
            if self.stop.is_set():
                raise Stopped
            if time.monotonic() > deadline:
                raise BotError(f"{method} {path}: still failing after {self.retry_for_s:.0f} s")
            base_url = self.base_urls.next()
            try:
                response = await self.client.request(
                    method,
                    base_url + path,
                    json=json,
                    params=params,
                    headers=headers,
                    auth=self.auth,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                problem = type(error).__name__
            except httpx.TransportError as error:
                if unsafe:
                    raise
                problem = type(error).__name__
            else:
                if response.status_code < 500:
                    return response
                problem = f"HTTP {response.status_code}"  # a body may quote what was sent
            log.debug("%s %s%s: %s; retrying", method, base_url, path, problem)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = await self.request("GET", path, params=params)
        response.raise_for_status()
        return response.json()


def items_of(payload: Any, *keys: str) -> list[dict[str, Any]]:
    """A list answer, bare or wrapped in an object (`items`, `cases`, ...)."""
    if isinstance(payload, list):
        return [item for item in payload if isinstance(item, dict)]
    if isinstance(payload, dict):
        for key in (*keys, "items", "results", "data"):
            value = payload.get(key)
            if isinstance(value, list):
                return [item for item in value if isinstance(item, dict)]
    return []


async def forever(
    name: str, stop: asyncio.Event, step: Callable[[], Awaitable[object]], interval_s: float
) -> None:
    """Run `step` until the run ends; an error is logged and the loop goes on."""
    while not stop.is_set():
        try:
            await step()
        except Stopped:
            return
        except Exception as error:
            # Not log.exception: the message and traceback may quote a patient's values.
            log.warning("%s: step failed; going on: %s", name, describe(error))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


# --------------------------------------------------------------------------- shared state


@dataclass
class EpisodeRecord:
    synthetic: SyntheticEpisode
    episode_id: str | None = None
    step: str = "new"  # new, scheduled, registered, checked-in, encounter, failed
    error: str | None = None
    authorization_recorded: bool = False  # one found after the visit, given to registration


@dataclass
class Ledger:
    """What the bots did, for progress and the summary (the services hold the truth)."""

    episodes: dict[str, EpisodeRecord] = field(default_factory=dict)  # by synthetic key
    counts: Counter[str] = field(default_factory=Counter)
    payments_cents: int = 0

    def episode_ids(self) -> dict[str, str]:
        return {
            record.episode_id: key for key, record in self.episodes.items() if record.episode_id
        }


# --------------------------------------------------------------------------- front desk


def _require(response: httpx.Response, what: str, ok: Iterable[int] = (200, 201, 202)) -> Any:
    if response.status_code not in set(ok):
        raise BotError(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


class FrontDesk:
    """Schedules, registers, checks in and documents each generated episode."""

    def __init__(
        self,
        http: Http,
        ledger: Ledger,
        episodes: Sequence[SyntheticEpisode],
        rate_per_s: float = 1.0,
        concurrency: int = 8,
    ) -> None:
        self.http = http
        self.ledger = ledger
        self.episodes = episodes
        self.interval_s = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self.slots = asyncio.Semaphore(concurrency)

    async def run(self) -> None:
        tasks = []
        for synthetic in self.episodes:
            record = self.ledger.episodes.setdefault(synthetic.key, EpisodeRecord(synthetic))
            await self.slots.acquire()
            tasks.append(asyncio.create_task(self._episode(record)))
            if self.interval_s:
                await asyncio.sleep(self.interval_s)
        await asyncio.gather(*tasks)

    async def _episode(self, record: EpisodeRecord) -> None:
        try:
            await self.drive(record)
        except Stopped:
            pass
        except Exception as error:
            record.step, record.error = "failed", str(error)[:500]
            self.ledger.counts["front-desk-failed"] += 1
            log.warning("front desk: %s failed: %s", record.synthetic.key, describe(error))
        finally:
            self.slots.release()

    async def drive(self, record: EpisodeRecord) -> None:
        synthetic = record.synthetic
        if record.episode_id is None:
            # The Idempotency-Key makes a retry (after a timeout or a restart) book once.
            response = await self.http.request(
                "POST",
                "/appointments",
                json=synthetic.appointment_body(),
                headers={"Idempotency-Key": synthetic.key},
            )
            answer = _require(response, "schedule")
            record.episode_id = str(answer["episode_id"])
            record.step = "scheduled"
            log.info("front desk: %s is episode %s", synthetic.key, record.episode_id)
            self.ledger.counts["scheduled"] += 1
        base = f"/episodes/{record.episode_id}"
        if record.step == "scheduled":
            response = await self.http.request(
                "POST", f"{base}/registration", json=synthetic.registration_body()
            )
            _require(response, "register")
            record.step = "registered"
        if record.step == "registered":
            _require(await self.http.request("POST", f"{base}/check-in"), "check in")
            record.step = "checked-in"
        if record.step == "checked-in":
            response = await self.http.request(
                "POST", f"{base}/encounter", json=synthetic.encounter_body()
            )
            _require(response, "complete encounter")
            record.step = "encounter"
            self.ledger.counts["encounters"] += 1
        late = synthetic.late_authorization
        if record.step == "encounter" and late is not None and not record.authorization_recorded:
            coverage_id, number = late
            body = {"coverage_id": coverage_id, "number": number}
            response = await self.http.request("POST", f"{base}/authorizations", json=body)
            _require(response, "record an authorization")
            record.authorization_recorded = True
            self.ledger.counts["authorizations-recorded-later"] += 1


# --------------------------------------------------------------------------- coder


def is_evaluation_and_management(code: str) -> bool:
    return code.isdigit() and len(code) == 5 and 99202 <= int(code) <= 99499


@dataclass(frozen=True)
class Line:
    procedure_code: str
    modifiers: tuple[str, ...] = ()
    units: int = 1
    diagnosis_pointers: tuple[int, ...] = (1,)


@dataclass(frozen=True)
class Submission:
    diagnoses: tuple[str, ...]
    lines: tuple[Line, ...]

    def body(self) -> dict[str, Any]:
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


def _pointers(code: str, diagnosis_count: int) -> tuple[int, ...]:
    """E/M lines point at every diagnosis (up to 4), other lines at the principal one."""
    if is_evaluation_and_management(code):
        return tuple(range(1, min(diagnosis_count, 4) + 1))
    return (1,)


def _suggested_line(raw: Mapping[str, Any], diagnosis_count: int) -> Line | None:
    code = raw.get("procedure_code") or raw.get("code")
    if not isinstance(code, str) or not code:
        return None
    raw_pointers = raw.get("diagnosis_pointers")
    pointers = tuple(
        p for p in raw_pointers or () if isinstance(p, int) and 1 <= p <= diagnosis_count
    )
    if not pointers or len(pointers) != len(raw_pointers or ()):
        pointers = _pointers(code, diagnosis_count)
    units = raw.get("units")
    return Line(
        procedure_code=code,
        modifiers=tuple(str(m) for m in raw.get("modifiers") or ()),
        units=units if isinstance(units, int) and units >= 1 else 1,
        diagnosis_pointers=pointers[:4],
    )


def _suggested_codes(raw: Any) -> list[str]:
    codes: list[str] = []
    for item in raw or ():
        code = item.get("code") if isinstance(item, Mapping) else item
        if isinstance(code, str) and code:
            codes.append(code)
    return codes


class CodeBook:
    """What a coder looks codes up in: ICD-10-CM by description (the coding service's
    own search) and the chargemaster's procedures by description. Built on first use
    (ICD-10-CM takes seconds to load)."""

    _procedures: Any = None

    @classmethod
    def diagnosis(cls, description: str) -> str | None:
        from rcm_coding.codesets import find_by_description, with_dot

        found = find_by_description(description)
        return None if found is None else with_dot(found)

    @classmethod
    def procedure(cls, description: str) -> str | None:
        from rcm_coding.codesets import DescriptionIndex, load_chargemaster

        if cls._procedures is None:
            items = load_chargemaster()
            cls._procedures = DescriptionIndex({c: items[c].description for c in items})
        found: str | None = cls._procedures.find(description)
        return found


def submission_from_case(case: Mapping[str, Any]) -> Submission:
    """What the coder submits for a case: the suggestions, completed from the note.

    The coder takes the service's suggested codes; where a documented diagnosis or
    procedure has no suggestion, it takes the EHR's hint or looks the description up in
    the code book, and it adds the modifiers the note calls for at a first reading (RT or
    LT for a film of one side, 25 on a visit the note calls separately identifiable).
    Like a person, where the service suggests no modifier it may miss one the note
    backs in other words; the payer's denial of that line brings the case back
    (`recoded`).
    """
    documentation = case.get("documentation") or {}
    documented_dx = [d for d in documentation.get("diagnoses") or () if isinstance(d, Mapping)]
    documented_px = [p for p in documentation.get("procedures") or () if isinstance(p, Mapping)]
    suggestions = case.get("suggestions") or case.get("suggested") or {}

    diagnoses = _suggested_codes(suggestions.get("diagnoses"))
    known = {_plain(code) for code in diagnoses}
    suggested_for = _documented(suggestions.get("diagnoses"))
    for documented in documented_dx:
        if documented.get("description") in suggested_for:
            continue
        code = documented.get("icd10_hint") or CodeBook.diagnosis(
            str(documented.get("description") or "")
        )
        if code and _plain(code) not in known and not _covers(known, code):
            diagnoses.append(code)
            known.add(_plain(code))
    diagnoses = diagnoses[:12]

    lines: list[Line] = []
    for raw in suggestions.get("lines") or suggestions.get("procedures") or ():
        if isinstance(raw, Mapping):
            line = _suggested_line(raw, len(diagnoses))
            if line is not None:
                lines.append(line)
    coded = {line.procedure_code for line in lines}
    suggested_for = _documented(suggestions.get("lines") or suggestions.get("procedures"))
    for documented in documented_px:
        if documented.get("description") in suggested_for:
            continue
        code = documented.get("code_hint") or CodeBook.procedure(
            str(documented.get("description") or "")
        )
        if not code or code in coded:
            continue
        units = documented.get("units")
        lines.append(
            Line(
                procedure_code=code,
                units=units if isinstance(units, int) and units >= 1 else 1,
                diagnosis_pointers=_pointers(code, len(diagnoses)),
            )
        )
        coded.add(code)
    note = str(documentation.get("note") or "")
    said = _addenda_text(case)
    lines = [_with_known_modifiers(line, documented_px, note, said) for line in lines]
    return Submission(tuple(diagnoses), tuple(lines))


def _addenda_text(case: Mapping[str, Any]) -> str:
    """The physician's answers to the case's queries, as the case shows them."""
    return " ".join(
        str(item.get("text") or "")
        for item in case.get("addenda") or ()
        if isinstance(item, Mapping)
    )


def _side(text: str) -> str | None:
    words = re.sub(r"[^a-z]+", " ", text.lower()).split()
    return "RT" if "right" in words else "LT" if "left" in words else None


def needs_side(code: str) -> bool:
    """A film of an extremity (CPT 73000-73725): billed with the side imaged."""
    return code.isdigit() and len(code) == 5 and 73000 <= int(code) <= 73725


def sides_unsaid(case: Mapping[str, Any]) -> list[str]:
    """Documented films of an extremity whose order names no side, and no physician's
    answer does either: what a coder asks the physician (a laterality query)."""
    if _side(_addenda_text(case)) is not None:
        return []
    documentation = case.get("documentation") or {}
    unsaid = []
    for item in documentation.get("procedures") or ():
        if not isinstance(item, Mapping):
            continue
        description = str(item.get("description") or "")
        code = str(item.get("code_hint") or "")
        if needs_side(code) and _side(description) is None:
            unsaid.append(description)
    return unsaid


def physician_answer(case: Mapping[str, Any]) -> str:
    """A physician's addendum to a laterality query: the side the note describes."""
    note = str((case.get("documentation") or {}).get("note") or "")
    side = _side(note)
    if side is None:
        return "Addendum: the side was not recorded at the visit."
    return f"Addendum: {'right' if side == 'RT' else 'left'} side imaged."


def _documented(suggested: Any) -> set[str]:
    """The documented descriptions the service's suggestions already code."""
    return {
        str(item["documented"])
        for item in suggested or ()
        if isinstance(item, Mapping) and item.get("documented")
    }


def _plain(code: str) -> str:
    return code.strip().upper().replace(".", "")


def _covers(known: set[str], code: str) -> bool:
    """A suggested code already codes this diagnosis more specifically (M54.50 for M54.5)."""
    plain = _plain(code)
    return any(other.startswith(plain) for other in known)


def _with_known_modifiers(
    line: Line, documented: Sequence[Mapping[str, Any]], note: str, addenda: str = ""
) -> Line:
    """The modifiers a coder reads in the note: the side of a film (RT/LT), and 25 on the
    visit when the note says the evaluation was separately identifiable from a procedure."""
    wanted: list[str] = list(line.modifiers)
    if is_evaluation_and_management(line.procedure_code):
        if "separately identifiable" in note.lower():
            wanted.append("25")
    else:
        for item in documented:
            description = str(item.get("description") or "")
            code = item.get("code_hint") or CodeBook.procedure(description)
            if code != line.procedure_code:
                continue
            side = _side(description) or (_side(addenda) if needs_side(code) else None)
            wanted += [side] if side else []
    unique = list(dict.fromkeys(wanted))
    return replace(line, modifiers=tuple(unique[:4]))


REASON = re.compile(
    r"^diagnoses\[(?P<index>\d+)\]:\s*(?P<code>\S+) is not billable; "
    r"use one of (?:its \d+ billable codes, e\.g\. )?(?P<options>[A-Z0-9., ]+)"
)


# An edit that names the line and the modifier it allows, e.g. "lines[0]: 99203 is
# bundled into 29540 on the same day; modifier 25 allows both".
MODIFIER_REASON = re.compile(r"^lines\[(?P<index>\d+)\].*\bmodifiers? (?P<modifier>[0-9A-Z]{2})\b")


def fix_from_reasons(submission: Submission, reasons: Sequence[str]) -> Submission | None:
    """The submission with every refusal the coder knows how to fix fixed, or None.

    "diagnoses[i]: X is not billable; use one of A, B" -> diagnosis i becomes A;
    "lines[i]: ... modifier M ..." -> line i gets modifier M.
    """
    diagnoses = list(submission.diagnoses)
    lines = list(submission.lines)
    fixed_any = False
    for reason in reasons:
        modifier = MODIFIER_REASON.match(reason.strip())
        if modifier is not None:
            index, wanted = int(modifier.group("index")), modifier.group("modifier")
            if index >= len(lines) or len(lines[index].modifiers) >= 4:
                return None
            if wanted not in lines[index].modifiers:
                lines[index] = replace(lines[index], modifiers=(*lines[index].modifiers, wanted))
                fixed_any = True
            continue
        match = REASON.match(reason.strip())
        if not match:
            return None
        index = int(match.group("index"))
        options = [o.strip() for o in match.group("options").split(",") if o.strip()]
        if index >= len(diagnoses) or not options:
            return None
        diagnoses[index] = options[0]
        fixed_any = True
    if not fixed_any:
        return None
    return replace(submission, diagnoses=tuple(diagnoses), lines=tuple(lines))


def reasons_of(payload: Any) -> list[str]:
    """The refusal reasons of a 422 body: `{"reasons": [...]}`, FastAPI's `detail`, or text."""
    if isinstance(payload, Mapping):
        for key in ("reasons", "errors", "detail", "problems"):
            value = payload.get(key)
            if isinstance(value, str):
                return [value]
            if isinstance(value, list):
                return [
                    item if isinstance(item, str) else str(item.get("msg", item))
                    for item in value
                    if isinstance(item, str | Mapping)
                ]
            if isinstance(value, Mapping):
                return reasons_of(value)
    if isinstance(payload, list):
        return [str(item) for item in payload]
    return [str(payload)]


def with_modifier_25(submission: Submission) -> Submission:
    """A recode after a coding denial: modifier 25 on the E/M line when another
    procedure was done the same day (the usual cause of an E/M denial)."""
    others = [
        line for line in submission.lines if not is_evaluation_and_management(line.procedure_code)
    ]
    if not others:
        return submission
    lines = tuple(
        replace(line, modifiers=(*line.modifiers, "25"))
        if is_evaluation_and_management(line.procedure_code)
        and "25" not in line.modifiers
        and len(line.modifiers) < 4
        else line
        for line in submission.lines
    )
    return replace(submission, lines=lines)


# What a coder looks for in the note once a payer denied a line as bundled (CO-97): that
# the visit was a significant evaluation of its own, or the procedure a distinct one.
SEPARATE_VISIT_WORDS = ("separately identifiable", "significant", "separate", "distinct")
DISTINCT_PROCEDURE_WORDS = ("separate site", "distinct", "different site", "separate encounter")


def denied_lines(case: Mapping[str, Any]) -> list[str]:
    """The procedure codes of the lines a payer denied for coding (the case's recode)."""
    recode = case.get("recode")
    if not isinstance(recode, Mapping):
        return []
    return [
        str(line["procedure_code"])
        for line in recode.get("lines") or ()
        if isinstance(line, Mapping) and line.get("procedure_code")
    ]


def recoded(submission: Submission, case: Mapping[str, Any]) -> Submission:
    """A recode after a coding denial. A denied line gets the modifier the note supports
    (25 on a visit, 59 on a distinct procedure); a whole-claim denial, 25 on the visit
    when another procedure was done (the usual cause). Without support in the note the
    codes stay as they were: a coder does not add a modifier the record cannot back."""
    denied = denied_lines(case)
    if not denied:
        return with_modifier_25(submission)
    documentation = case.get("documentation") or {}
    note = str(documentation.get("note") or "").lower()
    lines = []
    for line in submission.lines:
        wanted = None
        if line.procedure_code in denied and len(line.modifiers) < 4:
            if is_evaluation_and_management(line.procedure_code):
                wanted = "25" if any(w in note for w in SEPARATE_VISIT_WORDS) else None
            elif any(w in note for w in DISTINCT_PROCEDURE_WORDS):
                wanted = "59"
        if wanted is not None and wanted not in line.modifiers:
            line = replace(line, modifiers=(*line.modifiers, wanted))
        lines.append(line)
    return replace(submission, lines=tuple(lines))


def is_recode(case: Mapping[str, Any]) -> bool:
    """A case reopened after a coding denial (it was coded before)."""
    if case.get("reopened") or case.get("recode") or case.get("reopen_count"):
        return True
    if str(case.get("reason") or "").startswith("coding-denial"):
        return True
    for entry in case.get("audit") or case.get("audit_trail") or ():
        if isinstance(entry, Mapping) and "reopen" in str(entry.get("action", "")).lower():
            return True
    return False


def case_id_of(case: Mapping[str, Any]) -> str:
    return str(case.get("case_id") or case.get("coding_case_id") or case.get("id"))


class Coder:
    """Works the coding queue: pull a case, take suggestions, submit, fix what is refused."""

    def __init__(self, http: Http, ledger: Ledger, coder_id: str) -> None:
        self.http = http
        self.ledger = ledger
        self.coder_id = coder_id
        self.given_up: set[tuple[str, str]] = set()  # (case, its recode request)
        self.queried: dict[str, str] = {}  # case id -> its open query (the physician's turn)

    async def step(self) -> None:
        """Pull the next case (the coding service assigns it) and code it; a case this
        coder gave up on stays with them, left for a person. The physician answers this
        coder's open queries first, so a held case comes back to it in the same step."""
        for case_id, query_id in list(self.queried.items()):
            await self.physician(case_id, query_id)
            del self.queried[case_id]
        while True:
            response = await self.http.request("POST", "/queue/next")
            case = _require(response, "next case", ok=(200, 204))
            if case is None:
                return  # the queue is empty
            attempt = (case_id_of(case), str(case.get("recode")))
            if attempt in self.given_up:
                return
            if not await self.work(case):
                self.given_up.add(attempt)

    async def work(self, case: Mapping[str, Any]) -> bool:
        """Code one case held by this coder; False when the coder cannot get it accepted
        (left for a person)."""
        case_id = case_id_of(case)
        if await self.query_physician(case):
            return True  # on hold until the answer
        submission = submission_from_case(case)
        if is_recode(case):
            submission = recoded(submission, case)
            self.ledger.counts["recoded"] += 1
        for _ in range(MAX_CODE_ATTEMPTS):
            response = await self.http.request(
                "POST", f"/cases/{case_id}/codes", json=submission.body()
            )
            if response.status_code in (200, 201):
                self.ledger.counts["coded"] += 1
                log.info("%s: coded case %s", self.coder_id, case_id)
                return True
            if response.status_code == 409:
                return True  # done meanwhile (a retry of a submission that did arrive)
            if response.status_code != 422:
                _require(response, f"codes for {case_id}")
            reasons = reasons_of(response.json())
            log.info("%s: case %s refused (%d reasons)", self.coder_id, case_id, len(reasons))
            fixed = fix_from_reasons(submission, reasons)
            if fixed is None:
                break
            self.ledger.counts["code-fixes"] += 1
            submission = fixed
        self.ledger.counts["coding-given-up"] += 1
        log.warning("%s: gave up on case %s: HTTP %s", self.coder_id, case_id, response.status_code)
        return False

    async def query_physician(self, case: Mapping[str, Any]) -> bool:
        """Hold a case whose film names no side with a laterality query, once per case."""
        case_id = case_id_of(case)
        if not sides_unsaid(case) or case.get("queries"):
            return False
        query = {"reason": "laterality", "question": "Which side was imaged?"}
        response = await self.http.request("POST", f"/cases/{case_id}/queries", json=query)
        if response.status_code != 200:
            return False  # coded as it is, as a person would when the query cannot go out
        self.queried[case_id] = str(response.json()["query_id"])
        self.ledger.counts["physician-queries"] += 1
        return True

    async def physician(self, case_id: str, query_id: str) -> None:
        """The physician's side of a query: an addendum from what the visit's note says."""
        case = _require(await self.http.request("GET", f"/cases/{case_id}"), f"case {case_id}")
        answer = {"answer": physician_answer(case)}
        path = f"/cases/{case_id}/queries/{query_id}/answer"
        _require(await self.http.request("POST", path, json=answer), f"answer to {query_id}")


# --------------------------------------------------------------------------- biller


Action = Literal["correct", "accept"]


def denial_action(item: Mapping[str, Any], corrections_so_far: int = 0) -> Action:
    """Documentation denials (CO-16) are corrected and sent again (up to a limit); the
    biller accepts the others (authorization, other) rather than appeal."""
    if corrections_so_far >= MAX_DOCUMENTATION_CORRECTIONS:
        return "accept"
    if str(item.get("category")) == "documentation":
        return "correct"
    for reason in item.get("reasons") or ():
        if isinstance(reason, Mapping) and str(reason.get("reason_code")) == "16":
            return "correct"
    return "accept"


def claim_id_of(item: Mapping[str, Any]) -> str:
    return str(item.get("claim_id") or item.get("id"))


def lacks_authorization(item: Mapping[str, Any]) -> bool:
    return any(
        isinstance(reason, Mapping) and str(reason.get("reason_code")) == "197"
        for reason in item.get("reasons") or ()
    )


def authorization_on_file(episode: Mapping[str, Any], payer_id: str) -> str | None:
    """The number the front desk recorded for the payer: at registration on the coverage,
    or later on the episode's authorizations (the newest)."""
    later = [
        str(a["number"])
        for a in episode.get("authorizations") or ()
        if isinstance(a, Mapping) and a.get("payer_id") == payer_id and a.get("number")
    ]
    if later:
        return later[-1]
    for coverage in episode.get("coverages") or ():
        if isinstance(coverage, Mapping) and coverage.get("payer_id") == payer_id:
            number = coverage.get("prior_authorization")
            if number:
                return str(number)
    return None


class Biller:
    """Works the rejection and denial queues."""

    def __init__(
        self, http: Http, ledger: Ledger, biller_id: str, registration: Http | None = None
    ) -> None:
        self.http = http
        self.ledger = ledger
        self.biller_id = biller_id
        self.registration = registration  # where the front desk keeps authorizations
        self.corrections: Counter[str] = Counter()  # denials corrected, by episode
        self.resent: Counter[str] = Counter()  # rejections sent again, by episode
        self.handled: set[tuple[str, str]] = set()
        self.steps = 0
        self.followed_up: set[str] = set()

    async def step(self) -> None:
        self.steps += 1
        if self.steps % AR_LOOK_EVERY == 0:
            await self.follow_up_stuck()
        for item in items_of(await self.http.get_json("/work-queue", {"kind": "rejection"})):
            episode = str(item.get("episode_id", ""))
            # A claim rejected again and again (one that cannot be built, say) needs a
            # person, not another resubmission: it stays in the queue and the run says so.
            if self.resent[episode] < MAX_REJECTION_RESUBMISSIONS:
                await self.act(item, "correct", "rejection")
        for item in items_of(await self.http.get_json("/work-queue", {"kind": "denial"})):
            episode = str(item.get("episode_id", ""))
            if lacks_authorization(item) and self.corrections[episode] == 0:
                number = await self.find_authorization(item)
                if number is not None:
                    await self.act(item, "correct", "denial", {"prior_authorization": number})
                    continue
            await self.act(item, denial_action(item, self.corrections[episode]), "denial")

    async def find_authorization(self, item: Mapping[str, Any]) -> str | None:
        """A CO-197 denial: the biller looks for the authorization where the front desk
        records it (the registration episode); the number is never logged."""
        if self.registration is None:
            return None
        episode = await self.registration.get_json(f"/episodes/{item.get('episode_id')}")
        if not isinstance(episode, Mapping):
            return None
        return authorization_on_file(episode, str(item.get("payer_id")))

    async def act(
        self,
        item: Mapping[str, Any],
        action: Action,
        kind: str,
        changes: Mapping[str, Any] | None = None,
    ) -> None:
        claim_id = claim_id_of(item)
        if (claim_id, action) in self.handled:
            return
        body: dict[str, Any] = {"note": f"bot: {kind} -> {action}"}
        if changes:
            body["changes"] = dict(changes)
        path = (
            f"/claims/{claim_id}/corrections"
            if action == "correct"
            else (f"/claims/{claim_id}/accept-denial")
        )
        response = await self.http.request("POST", path, json=body)
        if response.status_code == 409:
            self.handled.add((claim_id, action))  # done already (a retried request)
            return
        _require(response, f"{action} {claim_id}")
        self.handled.add((claim_id, action))
        episode = str(item.get("episode_id", ""))
        if action == "correct":
            (self.corrections if kind == "denial" else self.resent)[episode] += 1
        self.ledger.counts[f"{kind}-{action}"] += 1
        log.info("biller: %s %s of claim %s (%s)", action, kind, claim_id, item.get("category"))

    async def follow_up_stuck(self, now: datetime | None = None) -> None:
        """Claims waiting on their payer with no news for a while get a follow-up note
        (a person would call the payer), once each."""
        moment = now or datetime.now(UTC)
        listed = await self.http.get_json("/ar-followup", {"sort": "age", "limit": 100})
        for row in items_of(listed, "rows"):
            claim_id = str(row.get("claim_id", ""))
            if (
                claim_id in self.followed_up
                or row.get("status") not in WAITING_ON_PAYER
                or row.get("follow_up")
                or moment - datetime.fromisoformat(str(row["last_action_at"]))
                < timedelta(seconds=STUCK_AFTER_S)
            ):
                continue
            response = await self.http.request(
                "POST",
                f"/claims/{claim_id}/follow-ups",
                json={"note": "bot: asked the payer for the claim's status"},
                headers={"Idempotency-Key": f"bot-follow-up-{claim_id}"},
            )
            self.followed_up.add(claim_id)
            if response.status_code in (404, 409):  # answered or closed meanwhile
                continue
            _require(response, f"follow-up {claim_id}")
            self.ledger.counts["ar-follow-up"] += 1
            log.info("biller: followed up claim %s with its payer", claim_id)


# --------------------------------------------------------------------------- patient


@dataclass(frozen=True)
class Payment:
    payment_id: str
    episode_id: str
    amount_cents: int
    method: str

    def body(self) -> dict[str, Any]:
        return {
            "payment_id": self.payment_id,
            "episode_id": self.episode_id,
            "amount_cents": self.amount_cents,
            "method": self.method,
        }


@dataclass(frozen=True)
class PatientChoice:
    plan_installments: int | None
    payments: tuple[Payment, ...]


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def split_installments(total_cents: int, installments: int) -> list[int]:
    """Equal installments, the remainder cents on the first ones: sums to the total."""
    base, extra = divmod(total_cents, installments)
    return [base + (1 if n < extra else 0) for n in range(installments)]


def patient_choice(statement_id: str, episode_id: str, amount_due_cents: int) -> PatientChoice:
    """How the patient answers a statement; deterministic per statement.

    Payment ids derive from the statement, so answering the same statement again (a
    retry, a restart) repeats the same payments and the service keeps them once.
    """
    if amount_due_cents <= 0:
        return PatientChoice(None, ())
    methods = ("card", "portal", "check", "card")
    method = methods[_hash(f"method:{episode_id}") % len(methods)]
    if amount_due_cents > PLAN_THRESHOLD_CENTS:
        parts = split_installments(amount_due_cents, PLAN_INSTALLMENTS)
        payments = tuple(
            Payment(f"{statement_id}-i{n + 1}", episode_id, cents, method)
            for n, cents in enumerate(parts)
        )
        return PatientChoice(PLAN_INSTALLMENTS, payments)
    amount = amount_due_cents
    if _hash(f"short-pay:{episode_id}") % SHORT_PAY_ONE_IN == 0 and amount_due_cents > 100:
        amount -= amount_due_cents % 100 or 1  # all but the cents
    return PatientChoice(None, (Payment(f"{statement_id}-full", episode_id, amount, method),))


def statement_fields(statement: Mapping[str, Any]) -> tuple[str, str, int] | None:
    statement_id = statement.get("statement_id") or statement.get("id")
    episode_id = statement.get("episode_id")
    amount = statement.get("amount_due_cents")
    if amount is None:
        amount = statement.get("balance_cents")
    if not statement_id or not episode_id or not isinstance(amount, int):
        return None
    return str(statement_id), str(episode_id), amount


class Patients:
    """All patients: answer each open statement once (a plan, or pay)."""

    def __init__(self, collections: Http, payments: Http, ledger: Ledger) -> None:
        self.collections = collections
        self.payments = payments
        self.ledger = ledger
        self.answered: set[str] = set()
        # The first answer to a statement is kept: a statement's amount due follows the
        # balance, so recomputing after a partial failure would reuse payment ids with
        # other amounts (409); replaying the same payments is idempotent instead.
        self.choices: dict[str, PatientChoice] = {}

    async def step(self) -> None:
        statements = items_of(
            await self.collections.get_json("/statements", {"status": "open"}), "statements"
        )
        for statement in statements:
            fields = statement_fields(statement)
            if fields is None or fields[0] in self.answered:
                continue
            await self.answer(*fields)

    async def answer(self, statement_id: str, episode_id: str, amount_due_cents: int) -> None:
        choice = self.choices.setdefault(
            statement_id, patient_choice(statement_id, episode_id, amount_due_cents)
        )
        if choice.plan_installments:
            response = await self.collections.request(
                "POST",
                f"/accounts/{episode_id}/payment-plan",
                json={"installments": choice.plan_installments},
                headers={"Idempotency-Key": f"{statement_id}-plan"},  # required: moves money
            )
            if response.status_code != 409:  # 409: the plan exists (a retried request)
                _require(response, f"payment plan for {episode_id}")
            if response.status_code == 201:
                self.ledger.counts["payment-plans"] += 1
        for payment in choice.payments:
            # The payment's id as Idempotency-Key: a retry after a 503 is the same request,
            # answered 201 again if the first went through.
            response = await self.payments.request(
                "POST",
                "/patient-payments",
                json=payment.body(),
                headers={"Idempotency-Key": payment.payment_id},
            )
            _require(response, f"payment {payment.payment_id}", ok=(200, 201))
            if response.status_code == 201:
                log.info("patient: paid %s cents for %s", payment.amount_cents, episode_id)
                self.ledger.counts["patient-payments"] += 1
                self.ledger.payments_cents += payment.amount_cents
        self.answered.add(statement_id)


# --------------------------------------------------------------------------- all together


@dataclass(frozen=True)
class Endpoints:
    """Each service's base URL, or the base URLs of its replicas (used in turn)."""

    registration: str | Sequence[str]
    coding: str | Sequence[str]
    claims: str | Sequence[str]
    payments: str | Sequence[str]
    collections: str | Sequence[str]


class Bots:
    """Every bot of a run; `run()` returns when `stop` is set."""

    def __init__(
        self,
        endpoints: Endpoints,
        episodes: Sequence[SyntheticEpisode],
        ledger: Ledger,
        stop: asyncio.Event,
        sign_in: Callable[[str, Role], httpx.Auth],
        rate_per_s: float = 1.0,
        concurrency: int = 8,
        coders: int = 2,
        poll_s: float = 0.5,
    ) -> None:
        self.stop = stop
        self.poll_s = poll_s
        self.http = {
            name: Http(url, stop)
            for name, url in vars(endpoints).items()  # one client per service
        }

        def signed_in(service: str, user: str, role: Role) -> Http:
            return self.http[service].as_user(sign_in(user, role))

        self.front_desk = FrontDesk(
            signed_in("registration", "front-desk-1", Role.FRONT_DESK),
            ledger,
            episodes,
            rate_per_s,
            concurrency,
        )
        self.coders = [
            Coder(signed_in("coding", f"coder-{n + 1}", Role.CODER), ledger, f"coder-{n + 1}")
            for n in range(coders)
        ]
        self.biller = Biller(
            signed_in("claims", "biller-1", Role.BILLER),
            ledger,
            "biller-1",
            signed_in("registration", "biller-1", Role.BILLER),
        )
        # The patient portal pays and plans on the patients' behalf.
        self.patients = Patients(
            signed_in("collections", "patient-portal", Role.COLLECTOR),
            signed_in("payments", "patient-portal", Role.COLLECTOR),
            ledger,
        )

    async def run(self) -> None:
        loops = [
            forever(coder.coder_id, self.stop, coder.step, self.poll_s) for coder in self.coders
        ]
        loops.append(forever("biller", self.stop, self.biller.step, self.poll_s * 2))
        loops.append(forever("patients", self.stop, self.patients.step, self.poll_s * 2))
        tasks = [asyncio.create_task(loop) for loop in loops]
        front_desk = asyncio.create_task(self.front_desk.run())
        try:
            await self.stop.wait()
        finally:
            front_desk.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(front_desk, *tasks, return_exceptions=True)
            for http in self.http.values():
                await http.close()
