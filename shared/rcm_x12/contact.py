"""PER contact segments (835 PER*BL, 837P PER*IC)."""

from __future__ import annotations

from pydantic import model_validator

from rcm_x12.common import Name60, X12Model
from rcm_x12.envelope import OutSegment, seg
from rcm_x12.errors import X12ValueError
from rcm_x12.reader import model_errors
from rcm_x12.segments import Segment

_FIELDS = {"TE": "phone", "EM": "email", "UR": "url", "FX": "fax"}


class Contact(X12Model):
    name: Name60 | None = None
    phone: Name60 | None = None
    email: Name60 | None = None
    url: Name60 | None = None
    fax: Name60 | None = None

    @model_validator(mode="after")
    def _fits_in_per(self) -> Contact:
        if sum(getattr(self, field) is not None for field in _FIELDS.values()) > 3:
            raise ValueError("PER carries at most three communication numbers")
        return self

    def has_number(self) -> bool:
        return any(getattr(self, field) is not None for field in _FIELDS.values())


def per_segment(function: str, contact: Contact) -> OutSegment:
    elements: list[str | None] = [function, contact.name]
    for qualifier, field in _FIELDS.items():
        value = getattr(contact, field)
        if value is not None:
            elements += [qualifier, value]
    return seg("PER", *elements)


def read_per(segment: Segment) -> Contact:
    values: dict[str, str] = {}
    for first in (3, 5, 7):
        qualifier, number = segment.get(first), segment.get(first + 1)
        if not qualifier and not number:
            continue
        if qualifier not in _FIELDS or not number:
            raise segment.error(
                X12ValueError, f"{segment.ref(first)} needs TE/EM/UR/FX and a number"
            )
        if _FIELDS[qualifier] in values:
            raise segment.error(X12ValueError, f"{qualifier} appears twice")
        values[_FIELDS[qualifier]] = number
    with model_errors(segment):
        return Contact(name=segment.optional(2), **values)
