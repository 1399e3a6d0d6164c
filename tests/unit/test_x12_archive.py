"""The X12 archive keeps patient data: private modes whatever the umask, and a purge of
what is older than the retention period (a fake clock and set mtimes stand for time)."""

from __future__ import annotations

import importlib
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from rcm_shared.clearinghouse import (
    DEFAULT_RETENTION_DAYS,
    PURGE_JOB,
    ClearinghouseSettings,
    X12Archive,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A umask that lets everyone read what is created: the modes must not depend on it."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def kept_at(archive: X12Archive, clock: Clock, when: datetime, reference: str) -> Path:
    """A document archived at `when`, its mtime `when` too."""
    clock.now = when
    path = archive.keep("received", "271", reference, f"ISA*{reference}~")
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


@pytest.mark.usefixtures("permissive_umask")
def test_documents_are_0600_in_0700_folders_whatever_the_umask(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    root = tmp_path / "var" / "x12"
    archive = X12Archive(root, "eligibility", clock=Clock(NOW))
    path = archive.keep("sent", "270", "E123", "ISA*...~")
    assert path == root / "eligibility" / "2026-03-10" / path.name
    assert path.read_text() == "ISA*...~"
    assert mode(path) == 0o600
    # Every folder it made on the way is private, not only the last one.
    for folder in (tmp_path / "var", root, root / "eligibility", path.parent):
        assert mode(folder) == 0o700, folder
    assert mode(tmp_path) == 0o755  # what existed before is not its to change
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


@pytest.mark.usefixtures("permissive_umask")
def test_a_service_folder_left_world_readable_is_closed(tmp_path: Path) -> None:
    old = tmp_path / "payments" / "2020-01-01"
    old.mkdir(parents=True, mode=0o755)
    (old / "835.x12").write_text("ISA*old~")
    os.chmod(tmp_path / "payments", 0o755)
    archive = X12Archive(tmp_path, "payments", clock=Clock(NOW))
    archive.keep("received", "835", "doc-1", "ISA*new~")
    assert mode(tmp_path / "payments") == 0o700


def test_purge_deletes_only_what_is_older_than_the_retention(tmp_path: Path) -> None:
    clock = Clock(NOW)
    archive = X12Archive(tmp_path, "claims", retention_days=30, clock=clock)
    old = kept_at(archive, clock, NOW - timedelta(days=45), "old")
    old_too = kept_at(archive, clock, NOW - timedelta(days=45, hours=1), "old-too")
    # The cutoff's own day: one file older than the cutoff, one younger.
    edge = NOW - timedelta(days=30)
    before = kept_at(archive, clock, edge - timedelta(minutes=1), "before")
    after = kept_at(archive, clock, edge + timedelta(minutes=1), "after")
    young = kept_at(archive, clock, NOW - timedelta(days=1), "young")
    leftover = old.with_name(f".{old.name}.0123abcd")  # a crash between write and rename
    leftover.write_text("ISA*half")
    os.utime(leftover, (old.stat().st_mtime, old.stat().st_mtime))
    clock.now = NOW

    assert archive.purge() == 4
    assert [p.exists() for p in (old, old_too, leftover, before)] == [False] * 4
    assert not old.parent.exists()  # emptied and older than the cutoff's day: removed
    assert [p.exists() for p in (after, young)] == [True] * 2
    assert before.parent.exists()  # the cutoff's day may still hold younger files
    assert archive.purge() == 0


def test_purge_judges_by_age_not_by_the_folder_name(tmp_path: Path) -> None:
    clock = Clock(NOW)
    archive = X12Archive(tmp_path, "claims", retention_days=30, clock=clock)
    # Filed on an old day but written recently (e.g. restored): still within retention.
    restored = kept_at(archive, clock, NOW - timedelta(days=60), "restored")
    os.utime(restored, (NOW.timestamp(), NOW.timestamp()))
    clock.now = NOW
    assert archive.purge() == 0
    assert restored.exists()


def test_purge_leaves_what_the_archive_did_not_write(tmp_path: Path) -> None:
    clock = Clock(NOW)
    archive = X12Archive(tmp_path, "claims", retention_days=1, clock=clock)
    kept_at(archive, clock, NOW - timedelta(days=10), "old")
    stranger = tmp_path / "claims" / "notes"
    stranger.mkdir()
    (stranger / "readme.txt").write_text("not a document")
    nested = tmp_path / "claims" / "2020-01-01" / "nested"
    nested.mkdir(parents=True)
    long_ago = (NOW - timedelta(days=3000)).timestamp()
    os.utime(nested, (long_ago, long_ago))
    dated_file = tmp_path / "claims" / "2019-01-01"  # named like a day, but a file
    dated_file.write_text("not a folder")
    os.utime(dated_file, (long_ago, long_ago))
    clock.now = NOW
    assert archive.purge() == 1
    assert (stranger / "readme.txt").exists()
    assert nested.exists()
    assert dated_file.exists()


def test_purge_of_an_archive_never_written_is_nothing(tmp_path: Path) -> None:
    archive = X12Archive(tmp_path / "absent", "eligibility", clock=Clock(NOW))
    assert archive.purge() == 0
    assert not (tmp_path / "absent").exists()


async def test_the_job_step_purges_in_a_thread(tmp_path: Path) -> None:
    clock = Clock(NOW)
    archive = X12Archive(tmp_path, "claims", retention_days=1, clock=clock)
    old = kept_at(archive, clock, NOW - timedelta(days=3), "old")
    clock.now = NOW
    assert await archive.purge_round() == 1
    assert not old.exists()


def test_retention_setting_defaults_to_seven_years_and_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RCM_X12_ARCHIVE_RETENTION_DAYS", raising=False)
    assert ClearinghouseSettings(service_name="claims").x12_archive_retention_days == 2555
    assert DEFAULT_RETENTION_DAYS == 2555
    monkeypatch.setenv("RCM_X12_ARCHIVE_RETENTION_DAYS", "90")
    assert ClearinghouseSettings(service_name="claims").x12_archive_retention_days == 90
    for wrong in ("0", "-5", "36501", "seven years"):
        monkeypatch.setenv("RCM_X12_ARCHIVE_RETENTION_DAYS", wrong)
        with pytest.raises(ValidationError, match="x12_archive_retention_days"):
            ClearinghouseSettings(service_name="claims")


@pytest.mark.parametrize("name", ["rcm_claims", "rcm_eligibility", "rcm_payments"])
async def test_every_service_that_archives_purges_in_every_replica(name: str) -> None:
    app = importlib.import_module(f"{name}.app")
    service = app.build(app.Settings())
    try:
        assert PURGE_JOB in [job.__name__ for job in service.background]
    finally:
        await service.mongo.close()
