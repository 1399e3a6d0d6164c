"""One exception hierarchy for everything that can go wrong reading or writing X12.

Callers catch `X12Error` to refuse a file; the subclasses let them route it (a
`X12BalanceError` goes to the unpostables queue, the rest back to the sender).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rcm_x12.remittance import Imbalance


class X12Error(Exception):
    """Base class. `segment_id` and `position` (1-based segment index in the
    interchange, ISA = 1) locate the problem when it has a place in the text.

    The message may quote element values (a name, a birth date, a member id): it is for
    whoever holds the document. Anywhere else, say `located()`.
    """

    def __init__(
        self, detail: str, *, segment_id: str | None = None, position: int | None = None
    ) -> None:
        self.detail = detail
        self.segment_id = segment_id
        self.position = position
        super().__init__(self._render())

    def located(self) -> str:
        """The kind of problem and its place, without the detail: safe to log and store
        (the archived document has the rest)."""
        kind = type(self).__name__
        where = self._where()
        return f"{kind} in {where}" if where else kind

    def _where(self) -> str:
        if self.segment_id is None and self.position is None:
            return ""
        where = self.segment_id or "?"
        if self.position is not None:
            where = f"{where} at segment {self.position}"
        return where

    def _render(self) -> str:
        where = self._where()
        return f"{where}: {self.detail}" if where else self.detail


class X12SyntaxError(X12Error):
    """The text cannot be tokenised: bad ISA, delimiters, characters, truncation."""


class X12EnvelopeError(X12Error):
    """ISA/GS/ST trailers disagree with their headers (counts, control numbers)."""


class X12StructureError(X12Error):
    """A segment is missing, unexpected or out of order for the transaction."""


class X12ValueError(X12Error):
    """An element value is malformed or not allowed (number, date, code, length)."""


class X12BuildError(X12Error):
    """A model cannot be written as X12 (e.g. a value contains a delimiter)."""


class X12BalanceError(X12Error):
    """An 835 remittance does not balance; `imbalances` lists every failed rule."""

    def __init__(
        self,
        imbalances: list[Imbalance],
        *,
        segment_id: str | None = None,
        position: int | None = None,
    ) -> None:
        self.imbalances = imbalances
        detail = "; ".join(i.describe() for i in imbalances)
        super().__init__(
            f"835 does not balance: {detail}", segment_id=segment_id, position=position
        )
