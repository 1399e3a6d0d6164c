"""A small ordered-slot reader for transaction bodies.

Each loop is described as slots in the implementation guide's order. Slots with no key
are legal segments this module does not model: they are accepted and skipped, while a
segment no slot expects is refused with its position.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from pydantic import ValidationError

from rcm_x12.errors import X12StructureError, X12ValueError
from rcm_x12.segments import Segment


@dataclass(frozen=True)
class Slot:
    seg_id: str
    key: str | None
    qualifiers: frozenset[str] | None
    required: bool
    max_use: int

    def matches(self, segment: Segment) -> bool:
        if segment.id != self.seg_id:
            return False
        return self.qualifiers is None or segment.get(1) in self.qualifiers

    def describe(self) -> str:
        if self.qualifiers is None:
            return self.seg_id
        return f"{self.seg_id}*{'/'.join(sorted(self.qualifiers))}"


def slot(
    seg_id: str,
    key: str | None,
    *qualifiers: str,
    required: bool = False,
    max_use: int = 1,
) -> Slot:
    return Slot(seg_id, key, frozenset(qualifiers) if qualifiers else None, required, max_use)


class Block:
    """The segments one loop's slots consumed, by key."""

    def __init__(self, found: dict[str, list[Segment]]) -> None:
        self._found = found

    def one(self, key: str) -> Segment:
        return self._found[key][0]

    def opt(self, key: str) -> Segment | None:
        segments = self._found.get(key)
        return segments[0] if segments else None

    def all(self, key: str) -> list[Segment]:
        return self._found.get(key, [])


class Cursor:
    def __init__(self, segments: Sequence[Segment], trailer: Segment) -> None:
        self._segments = segments
        self._trailer = trailer
        self._index = 0

    def peek(self) -> Segment | None:
        return self._segments[self._index] if self._index < len(self._segments) else None

    def at(self, seg_id: str, *qualifiers: str) -> bool:
        segment = self.peek()
        if segment is None or segment.id != seg_id:
            return False
        return not qualifiers or segment.get(1) in qualifiers

    def block(self, loop: str, slots: Sequence[Slot]) -> Block:
        found: dict[str, list[Segment]] = {}
        for s in slots:
            taken: list[Segment] = []
            # Past max_use a segment stays put: it either starts the next repetition of
            # the loop or the caller refuses it as unexpected.
            while (
                (segment := self.peek()) is not None
                and s.matches(segment)
                and len(taken) < s.max_use
            ):
                taken.append(segment)
                self._index += 1
            if s.required and not taken:
                raise self._here().error(
                    X12StructureError,
                    f"loop {loop} needs {s.describe()} here, found {self._here_name()}",
                )
            if s.key is not None:
                found.setdefault(s.key, []).extend(taken)
        return Block(found)

    def unexpected(self, context: str) -> X12StructureError:
        return self._here().error(X12StructureError, f"unexpected {self._here_name()} {context}")

    def expect_end(self, context: str) -> None:
        if self.peek() is not None:
            raise self.unexpected(context)

    def _here(self) -> Segment:
        return self.peek() or self._trailer

    def _here_name(self) -> str:
        segment = self.peek()
        if segment is None:
            return "end of transaction"
        qualifier = segment.get(1)
        return f"{segment.id}*{qualifier}" if qualifier else segment.id


@contextmanager
def model_errors(segment: Segment) -> Iterator[None]:
    """Report a model's validation failure at the segment the values came from."""
    try:
        yield
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in exc.errors()
        )
        raise segment.error(X12ValueError, problems) from None
