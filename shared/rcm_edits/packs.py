"""Edit packs: NCCI PTP pairs, MUE values and the scrubber's own rules, versioned and
effective-dated. The pack in force on a date of service is the one that started last on
or before it and has not ended; a quarterly pack supersedes the one before from its date.

A pack is a JSON file (`<version>.json`). The shipped ones are in this package's `data`
folder; `RCM_EDIT_PACKS_DIR` adds a folder of packs a user imported (`rcm edits import`).
"""

from __future__ import annotations

import importlib.resources
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from datetime import date
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

PACKS_DIR_VARIABLE = "RCM_EDIT_PACKS_DIR"
Version = str


class PackError(ValueError):
    """A pack or a CMS file that cannot be used; `problems` names every one (with lines)."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message if not problems else f"{message}: " + "; ".join(problems[:20]))
        self.message = message
        self.problems = list(problems)


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModifierIndicator(IntEnum):
    """NCCI PTP: 0 never together, 1 together with an NCCI-associated modifier, 9 no edit."""

    NOT_ALLOWED = 0
    ALLOWED = 1
    NOT_APPLICABLE = 9


class PtpEdit(Frozen):
    column1: str
    column2: str
    effective: date
    deletion: date | None = None  # the last day the edit applies; None: in force
    modifier_indicator: ModifierIndicator
    rationale: str = ""

    def in_force(self, day: date) -> bool:
        return self.effective <= day and (self.deletion is None or day <= self.deletion)


class MueIndicator(IntEnum):
    """MUE adjudication indicator: 1 per claim line, 2 per day (policy, absolute), 3 per
    day (clinical)."""

    LINE = 1
    DAY_POLICY = 2
    DAY_CLINICAL = 3


class MueEdit(Frozen):
    code: str
    units: int = Field(ge=0)  # 0: not payable at all
    adjudication_indicator: MueIndicator
    rationale: str = ""


class Severity(StrEnum):
    ERROR = "error"  # refused by coding, held by claims
    WARNING = "warning"  # shown, not stopped


class ScrubRule(Frozen):
    """One of the scrubber's own rules, switched on by the pack with its parameters."""

    rule: Literal["diagnosis-pointers", "em-modifier-25", "units", "charges", "code-dates"]
    severity: Severity = Severity.ERROR
    max_units: int | None = Field(default=None, ge=1)
    max_line_charge_cents: int | None = Field(default=None, ge=1)
    # em-modifier-25: the procedures that make an E/M on the same day need 25 (empty: any
    # procedure that is not itself an E/M).
    procedures: list[str] = Field(default_factory=list)
    # code-dates: code -> [first day, last day] (either may be null).
    codes: dict[str, tuple[date | None, date | None]] = Field(default_factory=dict)


class Pack(Frozen):
    version: Version = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    effective_from: date
    effective_to: date | None = None
    note: str = ""
    ptp: list[PtpEdit] = Field(default_factory=list)
    mue: list[MueEdit] = Field(default_factory=list)
    rules: list[ScrubRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _dates_in_order(self) -> Pack:
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        return self

    def covers(self, day: date) -> bool:
        ended = self.effective_to is not None and self.effective_to < day
        return self.effective_from <= day and not ended

    # Built on first use and kept: a pack is checked per submission and per claim.
    _ptp_index: dict[tuple[str, str], list[PtpEdit]] | None = PrivateAttr(default=None)
    _mue_index: dict[str, MueEdit] | None = PrivateAttr(default=None)

    def ptp_index(self) -> dict[tuple[str, str], list[PtpEdit]]:
        if self._ptp_index is None:
            index: dict[tuple[str, str], list[PtpEdit]] = {}
            for edit in self.ptp:
                index.setdefault((edit.column1, edit.column2), []).append(edit)
            self._ptp_index = index
        return self._ptp_index

    def mue_index(self) -> dict[str, MueEdit]:
        if self._mue_index is None:
            self._mue_index = {edit.code: edit for edit in self.mue}
        return self._mue_index


class Library:
    """The packs known, and which one is in force on a date of service."""

    def __init__(self, packs: Iterable[Pack]) -> None:
        self.packs: dict[Version, Pack] = {}
        for pack in packs:
            if pack.version in self.packs:
                raise PackError(f"pack {pack.version} is there twice")
            self.packs[pack.version] = pack
        # Sorted once: newest start first, then version, so the choice is stable.
        self._by_start = sorted(
            self.packs.values(), key=lambda p: (p.effective_from, p.version), reverse=True
        )

    def for_date(self, day: date) -> Pack | None:
        return next((pack for pack in self._by_start if pack.covers(day)), None)

    def __len__(self) -> int:
        return len(self.packs)


def read_pack(text: str, where: str) -> Pack:
    try:
        return Pack.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as error:
        raise PackError(f"{where} is not an edit pack", [str(error)]) from None


def read_folder(folder: Path) -> list[Pack]:
    return [read_pack(path.read_text("utf-8"), str(path)) for path in sorted(folder.glob("*.json"))]


def shipped_packs() -> list[Pack]:
    data = importlib.resources.files("rcm_edits").joinpath("data")
    return [
        read_pack(item.read_text("utf-8"), item.name)
        for item in sorted(data.iterdir(), key=lambda item: item.name)
        if item.name.endswith(".json")
    ]


def packs_dir(environ: dict[str, str] | None = None) -> Path | None:
    value = (os.environ if environ is None else environ).get(PACKS_DIR_VARIABLE, "").strip()
    return Path(value) if value else None


def load_library(folder: Path | None = None) -> Library:
    """The shipped packs and those in `folder` (default: RCM_EDIT_PACKS_DIR, if set)."""
    folder = folder if folder is not None else packs_dir()
    imported = read_folder(folder) if folder is not None and folder.is_dir() else []
    return Library([*shipped_packs(), *imported])


def write_pack(pack: Pack, folder: Path) -> Path:
    """Whole or not at all: written beside its place, then renamed over it."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{pack.version}.json"
    body = pack.model_dump_json(indent=1, exclude_defaults=False)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{pack.version}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def summary(pack: Pack) -> dict[str, Any]:
    return {
        "version": pack.version,
        "effective_from": pack.effective_from.isoformat(),
        "effective_to": pack.effective_to.isoformat() if pack.effective_to else None,
        "ptp": len(pack.ptp),
        "mue": len(pack.mue),
        "rules": [rule.rule for rule in pack.rules],
        "note": pack.note,
    }
