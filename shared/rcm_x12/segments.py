"""Delimiters, the tokenizer and the `Segment` with checked element accessors."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, model_validator

from rcm_x12.errors import X12Error, X12StructureError, X12SyntaxError, X12ValueError
from rcm_x12.money import x12_to_cents, x12_to_decimal

# ISA is fixed width in 5010: these are the widths of ISA01..ISA16.
ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
ISA_LENGTH = 3 + sum(w + 1 for w in ISA_WIDTHS) + 1  # 106 including the terminator

_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{1,2}")
_BAD_CHAR = re.compile(r"[^\x20-\x7e]")
_LINE_BREAKS = "\r\n"

E = TypeVar("E", bound=X12Error)
T = TypeVar("T")


def delimiter_problem(element: str, repetition: str, component: str, segment: str) -> str | None:
    """Why four delimiters cannot be used together, or None if they can."""
    chars = {"element": element, "repetition": repetition, "component": component}
    chars["segment"] = segment
    for role, char in chars.items():
        if len(char) != 1:
            return f"{role} separator must be one character, got {char!r}"
        if char.isalnum() or not char.isprintable() or char == " " or not char.isascii():
            return f"{role} separator {char!r} must be printable punctuation"
    if len(set(chars.values())) != 4:
        return f"delimiters must be distinct, got {chars}"
    return None


class Delimiters(BaseModel):
    """The four X12 separators; the ISA segment of every interchange declares them."""

    model_config = ConfigDict(frozen=True)

    element: str = "*"
    repetition: str = "^"
    component: str = ":"
    segment: str = "~"

    @model_validator(mode="after")
    def _distinct_punctuation(self) -> Delimiters:
        problem = delimiter_problem(self.element, self.repetition, self.component, self.segment)
        if problem:
            raise ValueError(problem)
        return self


@dataclass(frozen=True, slots=True)
class Segment:
    """One parsed segment. `elements[0]` is element 01; `position` is 1-based in the file."""

    id: str
    elements: tuple[str, ...]
    position: int
    delimiters: Delimiters

    def ref(self, n: int) -> str:
        return f"{self.id}{n:02d}"

    def error(self, cls: type[E], detail: str) -> E:
        return cls(detail, segment_id=self.id, position=self.position)

    def get(self, n: int) -> str:
        return self.elements[n - 1] if 0 < n <= len(self.elements) else ""

    def optional(self, n: int) -> str | None:
        return self.get(n) or None

    def require(self, n: int) -> str:
        value = self.get(n)
        if not value:
            raise self.error(X12StructureError, f"{self.ref(n)} is required")
        return value

    def code(self, n: int, allowed: Collection[str]) -> str:
        value = self.require(n)
        if value not in allowed:
            raise self.error(
                X12ValueError, f"{self.ref(n)} is {value!r}, not one of {sorted(allowed)}"
            )
        return value

    def components(self, n: int) -> list[str]:
        value = self.get(n)
        return value.split(self.delimiters.component) if value else []

    def repetitions(self, n: int) -> list[str]:
        value = self.get(n)
        return value.split(self.delimiters.repetition) if value else []

    def money(self, n: int) -> int:
        return self._convert(n, x12_to_cents)

    def money_opt(self, n: int) -> int | None:
        return self.money(n) if self.get(n) else None

    def number(self, n: int) -> Decimal:
        return self._convert(n, x12_to_decimal)

    def number_opt(self, n: int) -> Decimal | None:
        return self.number(n) if self.get(n) else None

    def integer(self, n: int) -> int:
        value = self.require(n)
        if not value.isdigit() or len(value) > 9:
            raise self.error(X12ValueError, f"{self.ref(n)} {value!r} is not a whole number")
        return int(value)

    def date(self, n: int) -> dt.date:
        return self._convert(n, parse_date)

    def date_from_yymmdd(self, n: int) -> dt.date:
        return self._convert(n, lambda text: parse_date("20" + text))

    def period(self, n: int) -> tuple[dt.date, dt.date | None]:
        """A DTP date: element n is D8 or RD8, element n+1 the date or CCYYMMDD-CCYYMMDD."""
        if self.code(n, ("D8", "RD8")) == "D8":
            return self.date(n + 1), None
        value = self.require(n + 1)
        if len(value) != 17 or value[8] != "-":
            raise self.error(X12ValueError, f"{self.ref(n + 1)} must be CCYYMMDD-CCYYMMDD")
        start, end = self._convert(n + 1, lambda v: (parse_date(v[:8]), parse_date(v[9:])))
        if end < start:
            raise self.error(X12ValueError, f"{self.ref(n + 1)} ends before it starts")
        return start, end

    def time(self, n: int) -> dt.time:
        return self._convert(n, parse_time)

    def _convert(self, n: int, parse: Callable[[str], T]) -> T:
        value = self.require(n)
        try:
            return parse(value)
        except X12ValueError as exc:
            raise self.error(X12ValueError, f"{self.ref(n)}: {exc.detail}") from None


def parse_date(text: str) -> dt.date:
    """CCYYMMDD."""
    if len(text) != 8 or not text.isdigit():
        raise X12ValueError(f"{text!r} is not a CCYYMMDD date")
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()  # noqa: DTZ007 - X12 dates carry no zone
    except ValueError:
        raise X12ValueError(f"{text!r} is not a calendar date") from None


def parse_time(text: str) -> dt.time:
    """HHMM, HHMMSS or HHMMSSd..d (the decimal seconds are dropped)."""
    if len(text) not in (4, 6, 7, 8) or not text.isdigit():
        raise X12ValueError(f"{text!r} is not an HHMM[SS] time")
    hour, minute = int(text[0:2]), int(text[2:4])
    second = int(text[4:6]) if len(text) >= 6 else 0
    if hour > 23 or minute > 59 or second > 59:
        raise X12ValueError(f"{text!r} is not a clock time")
    return dt.time(hour, minute, second)


def format_date(value: dt.date) -> str:
    return value.strftime("%Y%m%d")


def tokenize(data: str | bytes) -> tuple[Delimiters, list[Segment]]:
    """Split an interchange into segments, with the delimiters its ISA declares."""
    if isinstance(data, bytes):
        try:
            data = data.decode("ascii")
        except UnicodeDecodeError as exc:
            raise X12SyntaxError(
                f"byte {data[exc.start]:#04x} at offset {exc.start} is not ASCII"
            ) from None
    text = data.lstrip(" \t" + _LINE_BREAKS)
    if not text.startswith("ISA"):
        raise X12SyntaxError("an interchange must start with ISA", segment_id="ISA", position=1)
    delimiters = _read_isa_delimiters(text)
    pieces = text.split(delimiters.segment)
    if pieces[-1].strip(" \t" + _LINE_BREAKS):
        raise X12SyntaxError(
            f"text after the last segment terminator {delimiters.segment!r}: "
            f"{pieces[-1][:20]!r} (truncated or wrong terminator?)",
            position=len(pieces),
        )
    segments: list[Segment] = []
    for index, piece in enumerate(pieces[:-1], start=1):
        raw = piece.lstrip(_LINE_BREAKS) if index > 1 else piece
        bad = _BAD_CHAR.search(raw)
        if bad:
            raise X12SyntaxError(
                f"invalid character {bad.group()!r} at column {bad.start() + 1}",
                segment_id=raw.split(delimiters.element, 1)[0][:3] or None,
                position=index,
            )
        parts = raw.split(delimiters.element)
        if not _SEGMENT_ID.fullmatch(parts[0]):
            guess = _SEGMENT_ID.match(parts[0])
            raise X12SyntaxError(
                f"{parts[0][:10]!r} is not a segment identifier "
                f"(the ISA declares element separator {delimiters.element!r})",
                segment_id=guess.group() if guess else None,
                position=index,
            )
        segments.append(Segment(parts[0], tuple(parts[1:]), index, delimiters))
    return delimiters, segments


def _read_isa_delimiters(text: str) -> Delimiters:
    if len(text) < ISA_LENGTH:
        raise X12SyntaxError(
            f"ISA needs {ISA_LENGTH} characters, the text has {len(text)}",
            segment_id="ISA",
            position=1,
        )
    element = text[3]
    offset = 3
    fields: list[str] = []
    for number, width in enumerate(ISA_WIDTHS, start=1):
        if text[offset] != element:
            raise X12SyntaxError(
                f"ISA is not fixed width: expected {element!r} before ISA{number:02d} "
                f"at column {offset + 1}, found {text[offset]!r}",
                segment_id="ISA",
                position=1,
            )
        fields.append(text[offset + 1 : offset + 1 + width])
        offset += 1 + width
    problem = delimiter_problem(element, fields[10], fields[15], text[offset])
    if problem:
        raise X12SyntaxError(problem, segment_id="ISA", position=1)
    return Delimiters(
        element=element, repetition=fields[10], component=fields[15], segment=text[offset]
    )
