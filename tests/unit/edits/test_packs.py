"""Packs: which one is in force on a date of service, reading and writing them, and the
shipped illustrative pack."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from rcm_edits.packs import (
    Library,
    Pack,
    PackError,
    load_library,
    read_folder,
    shipped_packs,
    write_pack,
)


def pack(version: str, start: date, end: date | None = None) -> Pack:
    return Pack(version=version, effective_from=start, effective_to=end)


def test_the_pack_in_force_is_the_last_started_that_has_not_ended() -> None:
    library = Library(
        [
            pack("2025q4", date(2025, 10, 1)),
            pack("2026q1", date(2026, 1, 1)),
            pack("2026q2", date(2026, 4, 1), date(2026, 6, 30)),
        ]
    )
    assert library.for_date(date(2025, 9, 30)) is None
    assert library.for_date(date(2025, 12, 31)).version == "2025q4"  # type: ignore[union-attr]
    assert library.for_date(date(2026, 1, 1)).version == "2026q1"  # type: ignore[union-attr]
    assert library.for_date(date(2026, 6, 30)).version == "2026q2"  # type: ignore[union-attr]
    # 2026q2 has ended: the earlier open pack applies again
    assert library.for_date(date(2026, 7, 1)).version == "2026q1"  # type: ignore[union-attr]


def test_a_version_twice_and_dates_out_of_order_are_refused() -> None:
    with pytest.raises(PackError, match="twice"):
        Library([pack("v1", date(2026, 1, 1)), pack("v1", date(2026, 4, 1))])
    with pytest.raises(ValueError, match="before effective_from"):
        pack("v1", date(2026, 4, 1), date(2026, 1, 1))


def test_written_packs_read_back_and_leave_no_temporary_files(tmp_path: Path) -> None:
    written = pack("2026q1", date(2026, 1, 1))
    write_pack(written, tmp_path)
    assert read_folder(tmp_path) == [written]
    assert [p.name for p in tmp_path.iterdir()] == ["2026q1.json"]


def test_a_malformed_pack_file_is_refused_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"version": "x"}')
    with pytest.raises(PackError, match=r"broken\.json"):
        read_folder(tmp_path)


def test_the_library_is_the_shipped_packs_and_the_folder_of_imported_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pack(pack("imported-2030", date(2030, 1, 1)), tmp_path)
    monkeypatch.setenv("RCM_EDIT_PACKS_DIR", str(tmp_path))
    library = load_library()
    assert set(library.packs) == {p.version for p in shipped_packs()} | {"imported-2030"}
    assert library.for_date(date(2030, 2, 1)).version == "imported-2030"  # type: ignore[union-attr]


def test_the_shipped_pack_says_it_is_an_illustrative_excerpt() -> None:
    (shipped,) = shipped_packs()
    assert "ILLUSTRATIVE EXCERPT" in shipped.note
    assert shipped.ptp == []  # no pair was verified against a CMS file
    assert {rule.rule for rule in shipped.rules} == {
        "diagnosis-pointers",
        "units",
        "charges",
        "em-modifier-25",
        "code-dates",
    }
