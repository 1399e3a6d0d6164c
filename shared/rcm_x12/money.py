"""Exact conversion between integer cents and X12 decimal-dollar text."""

from __future__ import annotations

import re
from decimal import Decimal

from rcm_x12.errors import X12BuildError, X12ValueError

_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)")


def cents_to_x12(cents: int) -> str:
    """125_00 -> "125", 125_50 -> "125.5", -30_25 -> "-30.25"."""
    if abs(cents) >= 10**18:
        raise X12BuildError(f"{cents} cents has more than the 18 digits X12 allows")
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(cents), 100)
    if rest == 0:
        return f"{sign}{dollars}"
    if rest % 10 == 0:
        return f"{sign}{dollars}.{rest // 10}"
    return f"{sign}{dollars}.{rest:02d}"


def x12_to_cents(text: str) -> int:
    """Parse an X12 monetary amount; more than two decimals is an error, not a rounding."""
    if not _NUMBER.fullmatch(text):
        raise X12ValueError(f"{text!r} is not a decimal amount")
    if "." in text and len(text.split(".", 1)[1]) > 2:
        raise X12ValueError(f"{text!r} has more than 2 decimal places")
    if sum(c.isdigit() for c in text) > 18:
        raise X12ValueError(f"{text!r} has more than the 18 digits X12 allows")
    return int(Decimal(text).scaleb(2))


def decimal_to_x12(value: Decimal) -> str:
    """Plain notation without exponent or trailing zeros: Decimal("1.50") -> "1.5"."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def x12_to_decimal(text: str) -> Decimal:
    if not _NUMBER.fullmatch(text):
        raise X12ValueError(f"{text!r} is not a decimal number")
    return Decimal(text)
