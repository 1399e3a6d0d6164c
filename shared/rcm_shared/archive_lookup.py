"""Finding a document in an X12 archive (clearinghouse.X12Archive) by what it was filed
under: the service, direction, kind and reference, and about when.

The archive files by day and time, so a lookup looks only in the day folders around
the times the caller knows (the day before and after each, for a clock a little apart
from the archive's), never through the whole archive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from .clearinghouse import DAY_FORMAT, Direction, Filed


def archived_name(reference: str) -> str:
    """The reference as X12Archive.keep writes it into a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", reference)[:80]


def find_archived(
    root: Path,
    service: str,
    direction: Direction,
    kind: Filed,
    reference: str,
    around: Iterable[datetime],
) -> Path | None:
    """The earliest copy filed under this reference near these times (a document re-sent
    after a crash is the same bytes again), or None."""
    days = sorted(
        {(moment + timedelta(days=shift)).date() for moment in around for shift in (-1, 0, 1)}
    )
    pattern = f"*-{direction}-{kind}-{archived_name(reference)}.x12"
    for day in days:
        folder = root / service / day.strftime(DAY_FORMAT)
        if folder.is_dir():
            found = sorted(path for path in folder.glob(pattern) if path.is_file())
            if found:
                return found[0]
    return None


def read_archived(path: Path) -> str:
    return path.read_text(encoding="utf-8")
