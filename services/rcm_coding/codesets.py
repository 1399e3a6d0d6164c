"""The code sets coders work with: ICD-10-CM, the chargemaster and the modifier list.

ICD-10-CM comes from simple-icd-10-cm, which parses its whole release when imported
(seconds), so it is imported on first use; the description index is built once, also on
first use. Both are read-only reference data: calling them is not I/O in the domain's
sense, only slow the first time (the service warms them up in a thread at start).
"""

from __future__ import annotations

import csv
import importlib
import importlib.resources
import io
import re
import threading
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import ModuleType
from typing import Any, Literal

from rcm_contracts.coding import ProcedureCodeSet

# The modifiers this practice bills. 25: significant, separately identifiable E/M;
# 59/XE/XP/XS/XU: distinct procedural service; 76/77: repeat procedure; 91: repeat lab;
# RT/LT: right/left side.
MODIFIERS = frozenset({"25", "59", "76", "77", "91", "LT", "RT", "XE", "XP", "XS", "XU"})
MODIFIER_SHAPE = re.compile(r"^[A-Z0-9]{2}$")

CPT_SHAPE = re.compile(r"^([0-9]{5}|[0-9]{4}[A-Z])$")  # category II/III: 4 digits + F/T
HCPCS_SHAPE = re.compile(r"^[A-V][0-9]{4}$")  # level II


def normalize_procedure(code: str) -> str:
    return code.strip().upper()


def code_set_by_shape(code: str) -> ProcedureCodeSet | None:
    if CPT_SHAPE.match(code):
        return ProcedureCodeSet.CPT
    if HCPCS_SHAPE.match(code):
        return ProcedureCodeSet.HCPCS
    return None


def is_evaluation_and_management(code: str) -> bool:
    """CPT's E/M section, 99202-99499 (office visits, preventive visits, ...)."""
    return code.isdigit() and len(code) == 5 and 99202 <= int(code) <= 99499


def is_preventive_visit(code: str) -> bool:
    return code.isdigit() and len(code) == 5 and 99381 <= int(code) <= 99429


# ---------------------------------------------------------------------------------------
# Chargemaster


class ChargemasterError(ValueError):
    """The shipped chargemaster is unusable: the service refuses to start."""


CHARGEMASTER_COLUMNS = ["code", "code_set", "description", "unit_price_cents"]
MAX_UNIT_PRICE_CENTS = 10_000_000  # $100,000 per unit: anything above is a typo


@dataclass(frozen=True)
class ChargeItem:
    code: str
    code_set: ProcedureCodeSet
    description: str
    unit_price_cents: int


class Chargemaster(Mapping[str, ChargeItem]):
    """Procedure code -> list price: what this practice charges, before any payer."""

    def __init__(self, items: Mapping[str, ChargeItem]) -> None:
        self._items = dict(items)

    def __getitem__(self, code: str) -> ChargeItem:
        return self._items[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def parse_chargemaster(text: str) -> Chargemaster:
    """Read the CSV strictly: every row must be usable, or nothing is."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header != CHARGEMASTER_COLUMNS:
        raise ChargemasterError(f"header must be {','.join(CHARGEMASTER_COLUMNS)}, got {header}")
    items: dict[str, ChargeItem] = {}
    for row in reader:
        line = reader.line_num
        if not row:
            continue
        if len(row) != len(CHARGEMASTER_COLUMNS):
            raise ChargemasterError(f"line {line}: expected 4 fields, got {len(row)}")
        code, code_set_text, description, price_text = (field.strip() for field in row)
        try:
            code_set = ProcedureCodeSet(code_set_text)
        except ValueError:
            raise ChargemasterError(
                f"line {line}: code_set must be CPT or HCPCS, got {code_set_text!r}"
            ) from None
        if code_set_by_shape(code) is not code_set:
            raise ChargemasterError(f"line {line}: {code!r} is not a {code_set} code")
        if code in items:
            raise ChargemasterError(f"line {line}: {code} is listed twice")
        if not description:
            raise ChargemasterError(f"line {line}: {code} has no description")
        if not price_text.isdigit() or not 0 < int(price_text) <= MAX_UNIT_PRICE_CENTS:
            raise ChargemasterError(
                f"line {line}: unit_price_cents of {code} must be whole cents, 1.."
                f"{MAX_UNIT_PRICE_CENTS}, got {price_text!r}"
            )
        items[code] = ChargeItem(code, code_set, description, int(price_text))
    if not items:
        raise ChargemasterError("the chargemaster has no codes")
    return Chargemaster(items)


def load_chargemaster() -> Chargemaster:
    """The chargemaster shipped in this package."""
    resource = importlib.resources.files("rcm_coding").joinpath("chargemaster.csv")
    try:
        text = resource.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ChargemasterError(f"cannot read chargemaster.csv: {error}") from None
    return parse_chargemaster(text)


# ---------------------------------------------------------------------------------------
# ICD-10-CM

_lock = threading.Lock()
_module: ModuleType | None = None
_index: DescriptionIndex | None = None


def _icd() -> Any:
    global _module
    if _module is None:
        with _lock:
            if _module is None:
                with warnings.catch_warnings():  # it reads its data with a deprecated API
                    warnings.simplefilter("ignore", DeprecationWarning)
                    _module = importlib.import_module("simple_icd_10_cm")
    return _module


ICD10_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")


def normalize_icd10(code: str) -> str:
    """As stored and emitted: upper case, no dot."""
    return code.strip().upper().replace(".", "")


def with_dot(code: str) -> str:
    """As coders read it: M5450 -> M54.50."""
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


@dataclass(frozen=True)
class IcdCheck:
    code: str | None  # the billable code, no dot; None when not usable
    problem: str | None  # why not, e.g. "M54.5 is not billable; use one of ..."


MAX_ALTERNATIVES_LISTED = 6


def check_icd10(raw: str) -> IcdCheck:
    """Is `raw` (with or without dot) a billable ICD-10-CM code, and if not, why not."""
    shown = raw.strip()
    candidate = shown.upper()
    if not ICD10_SHAPE.match(candidate):
        return IcdCheck(None, f"{shown!r} is not an ICD-10-CM code")
    cm = _icd()
    if not cm.is_valid_item(candidate) or not cm.is_category_or_subcategory(candidate):
        return IcdCheck(None, f"{shown} is not an ICD-10-CM code")
    code = normalize_icd10(candidate)
    if cm.is_leaf(code):
        return IcdCheck(code, None)
    billable = [with_dot(normalize_icd10(d)) for d in cm.get_descendants(code) if cm.is_leaf(d)]
    if len(billable) <= MAX_ALTERNATIVES_LISTED:
        advice = f"use one of {', '.join(billable)}"
    else:
        examples = ", ".join(billable[:3])
        advice = f"use one of its {len(billable)} billable codes, e.g. {examples}"
    return IcdCheck(None, f"{shown} is not billable; {advice}")


def icd10_description(code: str) -> str:
    return str(_icd().get_description(code))


STOPWORDS = frozenset({"a", "an", "and", "as", "at", "by", "due", "for", "from", "in", "into"})
STOPWORDS |= {"of", "on", "or", "the", "to", "with", "without"}
# Words that make a description less specific, not different: not counted against a code.
FILLER = frozenset({"unspecified", "specified", "other", "not", "site", "elsewhere"})
FILLER |= {"classified", "uncomplicated", "cause"}
NONSPECIFIC = ("unspecified", "without complications", "not specified")
# The 7th character of injury codes (A initial, D subsequent, S sequela).
EPISODE_OF_CARE = re.compile(r", (initial|subsequent) encounter.*$|, sequela$")


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def _tokens(text: str) -> frozenset[str]:
    return frozenset(word for word in _words(text) if word not in STOPWORDS)


class DescriptionIndex:
    """Billable codes by description: exact normalized match, else best word overlap."""

    def __init__(self, descriptions: Mapping[str, str]) -> None:
        self.exact: dict[str, str] = {}
        self.extra_words: dict[str, frozenset[str]] = {}
        self.preferred: set[str] = set()
        self.qualified: set[str] = set()  # "... with <complication>": says more than asked
        self.postings: dict[str, list[str]] = defaultdict(list)
        # About 74,000 descriptions when the service starts: each is split into words once.
        for code, description in sorted(descriptions.items()):
            lowered = description.lower()
            words = _words(lowered)
            tokens = frozenset(word for word in words if word not in STOPWORDS)
            self.exact.setdefault(" ".join(words), code)
            episode = EPISODE_OF_CARE.search(lowered)
            said = tokens if episode is None else _tokens(EPISODE_OF_CARE.sub("", lowered))
            self.extra_words[code] = said - FILLER
            if "with" in words:
                self.qualified.add(code)
            if any(phrase in lowered for phrase in NONSPECIFIC):
                self.preferred.add(code)
            if episode is not None and episode.group(1) == "initial":
                self.preferred.add(code)
            for token in tokens:
                self.postings[token].append(code)

    def find(self, text: str) -> str | None:
        exact = self.exact.get(" ".join(_words(text)))
        if exact is not None:
            return exact
        wanted = _tokens(text)
        overlap: Counter[str] = Counter()
        for token in wanted:
            overlap.update(self.postings.get(token, ()))
        if not overlap:
            return None

        # Most documented words found; then fewest words the documentation did not say;
        # then codes that say no more than the documentation (no "with ...", unspecified,
        # initial encounter); then the lowest code, so the answer is stable.
        def rank(code: str) -> tuple[int, int, bool, bool, str]:
            extra = len(self.extra_words[code] - wanted)
            qualified = code in self.qualified and "with" not in wanted
            return (-overlap[code], extra, qualified, code not in self.preferred, code)

        # Only codes with the most words found can win: rank just those.
        most = max(overlap.values())
        return min((code for code, found in overlap.items() if found == most), key=rank)


def description_index() -> DescriptionIndex:
    global _index
    if _index is None:
        cm = _icd()
        with _lock:
            if _index is None:
                codes = [code for code in cm.get_all_codes(False) if cm.is_leaf(code)]
                _index = DescriptionIndex({code: cm.get_description(code) for code in codes})
    return _index


def find_by_description(text: str) -> str | None:
    """The billable code whose description best matches the documented words, if any."""
    return description_index().find(text)


def warm_up() -> None:
    """Load ICD-10-CM and build the index now (blocking: run it in a thread)."""
    description_index()


# ---------------------------------------------------------------------------------------
# ICD-10-CM releases by date of service


@dataclass(frozen=True)
class Icd10Release:
    """One ICD-10-CM release and the dates of service it is in force for: CMS publishes
    one per US fiscal year (October 1 to September 30), sometimes with an April update."""

    name: str
    effective_from: date
    effective_through: date
    source: str

    def holds(self, day: date) -> bool:
        return self.effective_from <= day <= self.effective_through

    @property
    def window(self) -> str:
        return f"{self.effective_from.isoformat()} to {self.effective_through.isoformat()}"


def fiscal_year(day: date) -> int:
    """The US federal fiscal year of a date: FY2026 runs 2025-10-01 to 2026-09-30."""
    return day.year + 1 if day.month >= 10 else day.year


# simple-icd-10-cm 1.5.0 ships CMS's April 1, 2026 update of FY2026 (its data files say
# so): the one release that can be loaded, so the one in the registry. Its window is the
# whole fiscal year: the April update only added codes, so a code added in April is
# accepted for a date of service from October to March too (docs/decisions.md).
SHIPPED_RELEASES: tuple[Icd10Release, ...] = (
    Icd10Release(
        name="FY2026",
        effective_from=date(2025, 10, 1),
        effective_through=date(2026, 9, 30),
        source="CMS ICD-10-CM FY2026, April 1, 2026 update (simple-icd-10-cm 1.5.0)",
    ),
)


@dataclass(frozen=True)
class ReleaseChoice:
    release: Icd10Release
    stand_in: bool  # the date of service is outside every shipped window


OutsideWindow = Literal["nearest", "refuse"]


def release_for(
    day: date,
    outside: OutsideWindow = "nearest",
    releases: Sequence[Icd10Release] = SHIPPED_RELEASES,
) -> ReleaseChoice | None:
    """The release whose window holds the date of service. Outside every window: the
    nearest release as a stand-in, or None when the policy is to refuse."""
    for release in releases:
        if release.holds(day):
            return ReleaseChoice(release, stand_in=False)
    if outside == "refuse" or not releases:
        return None

    def distance(release: Icd10Release) -> int:
        if day < release.effective_from:
            return (release.effective_from - day).days
        return (day - release.effective_through).days

    return ReleaseChoice(min(releases, key=distance), stand_in=True)


def shipped_windows(releases: Sequence[Icd10Release] = SHIPPED_RELEASES) -> str:
    return ", ".join(f"{release.name}: {release.window}" for release in releases)
