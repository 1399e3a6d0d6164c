"""`rcm edits import|list|check`: edit packs from CMS's quarterly files.

`import` reads one CMS practitioner file (PTP or MUE) into pack VERSION in the packs
folder (`--dir`, else RCM_EDIT_PACKS_DIR, else var/edit-packs): a new pack starts on
`--effective` with the scrubber's rules of the pack in force that day; importing the
other kind into the same version completes it. A file with a bad line writes nothing
and names every bad line. The services read the folder at start (RCM_EDIT_PACKS_DIR).
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Literal

import typer
from rcm_edits import ClaimFacts, LineFacts, PackError, check, errors, load_library
from rcm_edits.cms import parse_date, parse_mue, parse_ptp
from rcm_edits.packs import ModifierIndicator, Pack, packs_dir, read_folder, summary, write_pack

app = typer.Typer(no_args_is_help=True, help="Edit packs: NCCI PTP, MUE and scrub rules.")

DEFAULT_DIR = Path("var/edit-packs")
LINE = re.compile(r"^(?P<code>[0-9A-Za-z]{5})(?::(?P<mods>[A-Za-z0-9,]+))?(?:x(?P<units>\d+))?$")


def _folder(folder: Path | None) -> Path:
    return folder or packs_dir() or DEFAULT_DIR


def _day(text: str, option: str) -> date:
    try:
        return parse_date(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None


def _text(file: Path) -> str:
    """UTF-8 (with or without a byte order mark), else Windows-1252 as Excel saves it."""
    raw = file.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def import_file(
    kind: Literal["ptp", "mue"],
    text: str,
    version: str,
    effective: date,
    folder: Path,
    until: date | None = None,
) -> Pack:
    """The pack as written: raises PackError (nothing written) on any bad line."""
    ptp = parse_ptp(text) if kind == "ptp" else None
    if ptp is not None:
        # Edits deleted before the pack starts, and indicator 9 (no edit), can never hit
        # in it: CMS's files carry many, and every service holds its packs in memory.
        ptp = [
            edit
            for edit in ptp
            if edit.modifier_indicator is not ModifierIndicator.NOT_APPLICABLE
            and (edit.deletion is None or edit.deletion >= effective)
        ]
    mue = parse_mue(text) if kind == "mue" else None
    existing = {pack.version: pack for pack in read_folder(folder)} if folder.is_dir() else {}
    pack = existing.get(version)
    if pack is None:
        in_force = load_library(folder).for_date(effective)
        pack = Pack(
            version=version,
            effective_from=effective,
            effective_to=until,
            note="imported from CMS practitioner files (rcm edits import)",
            rules=list(in_force.rules) if in_force is not None else [],
        )
    elif pack.effective_from != effective:
        raise PackError(
            f"pack {version} starts on {pack.effective_from}, not {effective}",
            ["import into a new version, or give the pack's own --effective"],
        )
    update: dict[str, object] = {
        "note": f"{pack.note}; {kind}" if pack.mue or pack.ptp else pack.note
    }
    if ptp is not None:
        update["ptp"] = ptp
    if mue is not None:
        update["mue"] = mue
    if until is not None:
        update["effective_to"] = until
    pack = Pack.model_validate({**pack.model_dump(), **update})
    write_pack(pack, folder)
    return pack


@app.command("import")
def import_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="The CMS file."),
    kind: str = typer.Option(..., "--kind", help="ptp or mue."),
    version: str = typer.Option(..., "--version", help="The pack's version, e.g. 2026q2."),
    effective: str = typer.Option(..., "--effective", help="First date of service it applies to."),
    until: str | None = typer.Option(None, "--until", help="Last date of service, if known."),
    folder: Path | None = typer.Option(None, "--dir", help="The packs folder."),
) -> None:
    """Read a CMS practitioner PTP or MUE file into an edit pack."""
    if kind not in ("ptp", "mue"):
        raise typer.BadParameter("ptp or mue", param_hint="--kind")
    text = _text(file)
    try:
        pack = import_file(
            "ptp" if kind == "ptp" else "mue",
            text,
            version,
            _day(effective, "--effective"),
            _folder(folder),
            _day(until, "--until") if until else None,
        )
    except PackError as error:
        typer.echo(f"refused, nothing written: {error.message}", err=True)
        for problem in error.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(summary(pack)))


@app.command("list")
def list_command(
    folder: Path | None = typer.Option(None, "--dir", help="The packs folder."),
) -> None:
    """The packs the services would load, newest first."""
    library = load_library(_folder(folder))
    for pack in sorted(library.packs.values(), key=lambda p: p.effective_from, reverse=True):
        typer.echo(json.dumps(summary(pack)))


@app.command("check")
def check_command(
    lines: list[str] = typer.Argument(..., help="CODE[:MOD,MOD][xUNITS], e.g. 99213:25 29540"),
    service_date: str = typer.Option(..., "--date", help="The date of service."),
    folder: Path | None = typer.Option(None, "--dir", help="The packs folder."),
) -> None:
    """The hits of the pack in force on the date for these lines (one diagnosis each)."""
    day = _day(service_date, "--date")
    pack = load_library(_folder(folder)).for_date(day)
    if pack is None:
        typer.echo(f"no pack is in force on {day}", err=True)
        raise typer.Exit(2)
    facts = []
    for number, text in enumerate(lines, start=1):
        match = LINE.match(text.strip())
        if match is None:
            raise typer.BadParameter(f"{text!r} is not CODE[:MOD,MOD][xUNITS]")
        modifiers = tuple(m.upper() for m in (match["mods"] or "").split(",") if m)
        facts.append(
            LineFacts(number, match["code"].upper(), modifiers, int(match["units"] or 1), (1,))
        )
    hits = check(pack, ClaimFacts(service_date=day, diagnoses=1, lines=tuple(facts)))
    typer.echo(json.dumps({"pack": pack.version, "hits": [h.model_dump() for h in hits]}))
    if errors(hits):
        raise typer.Exit(1)
