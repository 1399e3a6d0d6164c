"""`rcm edits import|list|check` on a folder of its own."""

from __future__ import annotations

import json
from pathlib import Path

from rcm_ops.cli import app
from typer.testing import CliRunner

PTP = (
    "Copyright line\n"
    "Column 1\tColumn 2\t* = In existence prior to 1996\tEffective Date\t"
    "Deletion Date *=no data\tModifier 0=not allowed 1=allowed 9=not applicable\t"
    "PTP Edit Rationale\n"
    "29540\t99213\t\t20260101\t*\t1\tillustrative\n"
)
DROPPED = (
    "29540\t99214\t\t20200101\t20251231\t1\tdeleted before the pack starts\n"
    "29540\t99215\t\t20200101\t*\t9\tno edit\n"
)
MUE = (
    "HCPCS/CPT Code,Practitioner Services MUE Values,MUE Adjudication Indicator,MUE Rationale\n"
    '99213,1,"2 Date of Service Edit: Policy",illustrative\n'
)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["edits", *args])
    return result.exit_code, result.stdout, result.stderr


def test_import_both_kinds_into_one_pack_then_check_lines(tmp_path: Path) -> None:
    (tmp_path / "ptp.txt").write_text(PTP + DROPPED)
    (tmp_path / "mue.csv").write_text(MUE)
    packs = str(tmp_path / "packs")
    common = ["--version", "2026q1", "--effective", "2026-01-01", "--dir", packs]
    assert run("import", str(tmp_path / "ptp.txt"), "--kind", "ptp", *common)[0] == 0
    code, out, _ = run("import", str(tmp_path / "mue.csv"), "--kind", "mue", *common)
    assert code == 0
    assert (json.loads(out)["ptp"], json.loads(out)["mue"]) == (1, 1)

    code, out, _ = run("check", "99213", "29540", "--date", "2026-02-01", "--dir", packs)
    assert code == 1  # an error hit
    found = json.loads(out)
    assert found["pack"] == "2026q1"
    assert [(h["rule"], h["allowed_modifiers"]) for h in found["hits"] if h["rule"] == "ptp"] == [
        ("ptp", ["25"])
    ]
    code, out, _ = run("check", "99213:25", "29540", "--date", "2026-02-01", "--dir", packs)
    assert (code, json.loads(out)["hits"]) == (0, [])

    listed = [json.loads(line)["version"] for line in run("list", "--dir", packs)[1].splitlines()]
    assert listed[0] == "2026q1"


def test_a_file_with_a_bad_line_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "ptp.txt").write_text(PTP + "29540\t99214\t\t2026XX01\t*\t1\tbad date\n")
    packs = tmp_path / "packs"
    code, _, err = run(
        "import",
        str(tmp_path / "ptp.txt"),
        "--kind",
        "ptp",
        "--version",
        "2026q1",
        "--effective",
        "20260101",
        "--dir",
        str(packs),
    )
    assert code == 1
    assert "line 4:" in err
    assert not packs.exists() or list(packs.iterdir()) == []


def test_importing_into_a_pack_with_another_start_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ptp.txt").write_text(PTP)
    packs = str(tmp_path / "packs")
    base = ["import", str(tmp_path / "ptp.txt"), "--kind", "ptp", "--version", "v", "--dir", packs]
    assert run(*base, "--effective", "2026-01-01")[0] == 0
    code, _, err = run(*base, "--effective", "2026-04-01")
    assert code == 1
    assert "starts on 2026-01-01" in err


def test_a_file_saved_by_excel_in_windows_1252_is_read(tmp_path: Path) -> None:
    text = PTP.replace("illustrative", "Misuse of column two code \u2013 CPT manual")
    (tmp_path / "ptp.txt").write_bytes(text.encode("cp1252"))
    packs = str(tmp_path / "packs")
    code, out, err = run(
        "import", str(tmp_path / "ptp.txt"), "--kind", "ptp", "--version", "w",
        "--effective", "2026-01-01", "--dir", packs,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["ptp"] == 1
