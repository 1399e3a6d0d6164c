"""CMS's published NCCI file layouts, read strictly: every bad line is named by its number
and nothing of a file with one is used.

Practitioner PTP edits: Column 1, Column 2, "* = in existence prior to 1996", Effective
Date, Deletion Date (* = no data), Modifier (0/1/9), PTP Edit Rationale. Practitioner
MUEs: HCPCS/CPT Code, Practitioner Services MUE Values, MUE Adjudication Indicator
("2 Date of Service Edit: Policy"), MUE Rationale. Tab- or comma-delimited (quoted as
spreadsheets quote), with the copyright and title lines CMS puts before the data.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Hashable
from datetime import date, datetime
from typing import TypeVar

from .packs import ModifierIndicator, MueEdit, MueIndicator, PackError, PtpEdit

CODE = re.compile(r"^([0-9]{4}[0-9A-Z]|[A-Z][0-9]{4})$")
DATE_FORMATS = ("%Y%m%d", "%m/%d/%Y", "%Y-%m-%d")
NO_DATA = {"", "*"}

T = TypeVar("T")


def parse_date(text: str) -> date:
    for layout in DATE_FORMATS:
        try:
            return datetime.strptime(text, layout).date()  # noqa: DTZ007 - a calendar day
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a date (YYYYMMDD, MM/DD/YYYY or YYYY-MM-DD)")


def _rows(text: str, header_word: str) -> list[tuple[int, list[str]]]:
    """The data rows with their line numbers: after the line naming the columns, and after
    any title lines that follow it before the first code."""
    lines = text.splitlines()
    header_at = next(
        (n for n, line in enumerate(lines) if header_word.lower() in line.lower()), None
    )
    if header_at is None:
        raise PackError("not a CMS file of this kind", [f"no header line naming {header_word!r}"])
    delimiter = "\t" if "\t" in lines[header_at] else ","
    body = "\n".join(lines[header_at + 1 :])
    reader = csv.reader(io.StringIO(body), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    started = False
    for row in reader:
        # line_num counts physical lines read, so a quoted field spanning lines still
        # names the line the row ends on.
        number = header_at + 1 + reader.line_num
        fields = [field.strip() for field in row]
        if not any(fields):
            continue
        if not started and not CODE.match(fields[0].upper()):
            continue  # a second title line, before the first code
        started = True
        rows.append((number, fields))
    return rows


def _read(
    text: str,
    header_word: str,
    parse_row: Callable[[list[str]], T],
    key: Callable[[T], Hashable],
    kind: str,
) -> list[T]:
    problems: list[str] = []
    parsed: list[T] = []
    first_line: dict[Hashable, int] = {}
    for number, fields in _rows(text, header_word):
        try:
            edit = parse_row(fields)
        except ValueError as error:
            problems.append(f"line {number}: {error}")
            continue
        earlier = first_line.setdefault(key(edit), number)
        if earlier != number:
            problems.append(f"line {number}: the same edit as line {earlier}")
            continue
        parsed.append(edit)
    if problems:
        raise PackError(f"the {kind} file has {len(problems)} bad line(s)", problems)
    if not parsed:
        raise PackError(f"the {kind} file has no edits")
    return parsed


def _code(text: str, column: str) -> str:
    code = text.upper()
    if not CODE.match(code):
        raise ValueError(f"{column} {text!r} is not a CPT or HCPCS code")
    return code


def _ptp_row(fields: list[str]) -> PtpEdit:
    if len(fields) < 6:
        raise ValueError(f"expected at least 6 fields, got {len(fields)}")
    column1 = _code(fields[0], "Column 1")
    column2 = _code(fields[1], "Column 2")
    if fields[2] not in NO_DATA:
        raise ValueError(f"the prior-1996 flag is * or empty, got {fields[2]!r}")
    effective = parse_date(fields[3])
    deletion = None if fields[4] in NO_DATA else parse_date(fields[4])
    if deletion is not None and deletion < effective:
        raise ValueError("the deletion date is before the effective date")
    if fields[5] not in {"0", "1", "9"}:
        raise ValueError(f"the modifier indicator is 0, 1 or 9, got {fields[5]!r}")
    return PtpEdit(
        column1=column1,
        column2=column2,
        effective=effective,
        deletion=deletion,
        modifier_indicator=ModifierIndicator(int(fields[5])),
        rationale=fields[6][:200] if len(fields) > 6 else "",
    )


def _mue_row(fields: list[str]) -> MueEdit:
    if len(fields) < 3:
        raise ValueError(f"expected at least 3 fields, got {len(fields)}")
    code = _code(fields[0], "HCPCS/CPT Code")
    if not fields[1].isdigit():
        raise ValueError(f"the MUE value is a whole number of units, got {fields[1]!r}")
    indicator = fields[2][:1]
    if indicator not in {"1", "2", "3"}:
        raise ValueError(f"the MUE adjudication indicator is 1, 2 or 3, got {fields[2]!r}")
    return MueEdit(
        code=code,
        units=int(fields[1]),
        adjudication_indicator=MueIndicator(int(indicator)),
        rationale=fields[3][:200] if len(fields) > 3 else "",
    )


def parse_ptp(text: str) -> list[PtpEdit]:
    return _read(text, "Column 1", _ptp_row, lambda e: (e.column1, e.column2, e.effective), "PTP")


def parse_mue(text: str) -> list[MueEdit]:
    return _read(text, "HCPCS/CPT Code", _mue_row, lambda e: e.code, "MUE")
