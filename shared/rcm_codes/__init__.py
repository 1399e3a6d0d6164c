"""Reference code lists: CARC (claim adjustment reasons) and RARC (remittance remarks).

Each code carries its description and a routing category (who works a denial that gives
it). The lists ship as versioned data (`data/*.tsv`, a header says the version, the date
and what is in them); X12's published files (CSV or TSV of code, description, start and
stop dates) read with `read_published`, or are picked up from `RCM_CODES_DIR`
(`carc.csv`/`carc.tsv`, `rarc.csv`/`rarc.tsv`), keeping the shipped categories for the
codes both know.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Literal

ListKind = Literal["CARC", "RARC"]
CODES_DIR_VARIABLE = "RCM_CODES_DIR"


class Category(StrEnum):
    """Who works a denial: coding recodes; the others are billers' work by kind."""

    CODING = "coding"
    ELIGIBILITY = "eligibility"
    AUTHORIZATION = "authorization"
    DOCUMENTATION = "documentation"
    DUPLICATE = "duplicate"
    TIMELY_FILING = "timely-filing"
    CONTRACTUAL = "contractual"
    PATIENT_RESPONSIBILITY = "patient-responsibility"
    COORDINATION_OF_BENEFITS = "coordination-of-benefits"
    OTHER = "other"


class CodeListError(ValueError):
    """A code list file that cannot be read; says the file and the line, never more."""


@dataclass(frozen=True)
class Code:
    code: str
    description: str
    category: Category
    start: date | None = None
    stop: date | None = None

    def active_on(self, day: date) -> bool:
        """Published lists stop codes rather than delete them; a stopped code may still
        be on remittances for older services."""
        return (self.start is None or self.start <= day) and (self.stop is None or day < self.stop)


@dataclass(frozen=True)
class CodeList:
    kind: ListKind
    version: str
    published: date | None
    codes: Mapping[str, Code] = field(default_factory=dict)
    source: str = "shipped"

    def __len__(self) -> int:
        return len(self.codes)

    def get(self, code: str) -> Code | None:
        return self.codes.get(normalized(code))

    def category(self, code: str) -> Category:
        known = self.get(code)
        return known.category if known is not None else Category.OTHER

    def describe(self, code: str) -> str | None:
        known = self.get(code)
        return known.description if known is not None else None


def normalized(code: str) -> str:
    return code.strip().upper()


# --- the shipped format: "# name: value" header lines, then code TAB category TAB text ---


def read_shipped(text: str, source: str = "shipped") -> CodeList:
    header: dict[str, str] = {}
    codes: dict[str, Code] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.startswith("#"):
            name, colon, value = line[1:].partition(":")
            if colon and not name.startswith("  "):  # an indented line continues a value
                header.setdefault(name.strip().lower(), value.strip())
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise CodeListError(f"{source} line {number}: expected code, category, description")
        code, category, description = (p.strip() for p in parts)
        codes[normalized(code)] = Code(
            normalized(code), description, _category(category, source, number)
        )
    kind = header.get("list", "").split(" ", 1)[0]
    if kind not in ("CARC", "RARC") or "version" not in header:
        raise CodeListError(f"{source}: the header must name the list and its version")
    published = _day(header["date"], source, 0) if "date" in header else None
    return CodeList(
        kind,  # type: ignore[arg-type]  # checked just above
        header["version"],
        published,
        MappingProxyType(codes),
        source,
    )


def _category(value: str, source: str, number: int) -> Category:
    try:
        return Category(value.strip().lower())
    except ValueError:
        raise CodeListError(f"{source} line {number}: unknown category {value!r}") from None


@cache
def shipped(kind: ListKind) -> CodeList:
    text = resources.files(__package__).joinpath(f"data/{kind.lower()}.tsv").read_text("utf-8")
    return read_shipped(text, f"rcm_codes/data/{kind.lower()}.tsv")


# --- X12's published lists -----------------------------------------------------------------

_CODE = ("code", "carc", "rarc", "reason code", "remark code")
_DESCRIPTION = ("description", "desc", "text")
_START = ("start", "start date", "effective", "effective date")
_STOP = ("stop", "stop date", "deactivation", "deactivation date", "end date")
_CATEGORY = ("category",)


def read_published(
    text: str,
    kind: ListKind,
    version: str,
    base: CodeList | None = None,
    source: str = "published",
) -> CodeList:
    """A published list (CSV or TSV with a header row naming code, description and, when
    given, start and stop dates and a category). A code without a category column takes
    its category from `base` (the shipped list) and is "other" when `base` lacks it."""
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    dialect = "excel-tab" if "\t" in first else "excel"
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff")), dialect=dialect)
    try:
        names = [n.strip().lower() for n in next(rows)]
    except StopIteration:
        raise CodeListError(f"{source}: empty") from None
    code_at, description_at = _column(names, _CODE), _column(names, _DESCRIPTION)
    if code_at is None or description_at is None:
        raise CodeListError(f"{source}: the header names no code or no description column")
    start_at, stop_at = _column(names, _START), _column(names, _STOP)
    category_at = _column(names, _CATEGORY)
    codes: dict[str, Code] = {}
    for number, row in enumerate(rows, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(code_at, description_at):
            raise CodeListError(f"{source} line {number}: too few columns")
        code = normalized(row[code_at])
        if category_at is not None and len(row) > category_at and row[category_at].strip():
            category = _category(row[category_at], source, number)
        else:
            category = base.category(code) if base is not None else Category.OTHER
        codes[code] = Code(
            code,
            " ".join(row[description_at].split()),
            category,
            _cell_day(row, start_at, source, number),
            _cell_day(row, stop_at, source, number),
        )
    if not codes:
        raise CodeListError(f"{source}: no codes")
    return CodeList(kind, version, None, MappingProxyType(codes), source)


def _column(names: list[str], wanted: Iterable[str]) -> int | None:
    return next((names.index(n) for n in wanted if n in names), None)


def _cell_day(row: list[str], at: int | None, source: str, number: int) -> date | None:
    if at is None or len(row) <= at or not row[at].strip():
        return None
    return _day(row[at], source, number)


def _day(value: str, source: str, number: int) -> date:
    for form in ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y", "%Y%m%d"):
        try:
            return datetime.strptime(value.strip(), form).date()  # noqa: DTZ007  # a day, no time
        except ValueError:
            continue
    raise CodeListError(f"{source} line {number}: not a date")


def _published_file(folder: Path, kind: ListKind) -> Path | None:
    for suffix in (".csv", ".tsv", ".txt"):
        path = folder / f"{kind.lower()}{suffix}"
        if path.is_file():
            return path
    return None


def load(kind: ListKind, folder: Path | None = None) -> CodeList:
    """The published file in `folder` (or $RCM_CODES_DIR) when there is one, with the
    shipped categories; else the shipped list. The version of a published file is its
    name and modification day, since the files carry none."""
    base = shipped(kind)
    where = folder or (
        Path(os.environ[CODES_DIR_VARIABLE]) if os.environ.get(CODES_DIR_VARIABLE) else None
    )
    path = _published_file(where, kind) if where is not None else None
    if path is None:
        return base
    modified = datetime.fromtimestamp(path.stat().st_mtime).date()  # noqa: DTZ006
    version = f"{path.name}@{modified.isoformat()}"
    return read_published(path.read_text("utf-8"), kind, version, base, str(path))


@cache
def carc() -> CodeList:
    return load("CARC")


@cache
def rarc() -> CodeList:
    return load("RARC")


__all__ = [
    "CODES_DIR_VARIABLE",
    "Category",
    "Code",
    "CodeList",
    "CodeListError",
    "ListKind",
    "carc",
    "load",
    "normalized",
    "rarc",
    "read_published",
    "read_shipped",
    "shipped",
]
