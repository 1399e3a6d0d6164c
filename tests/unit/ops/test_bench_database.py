"""`rcm bench` takes each service's database commands from what it logged on stopping."""

from __future__ import annotations

import json
from pathlib import Path

from rcm_ops.bench import database_commands, database_figures
from rcm_shared.telemetry import DATABASE_COMMANDS_LOGGED


def logged(counts: dict[str, int]) -> str:
    return f"2026-01-01 00:00:00 INFO rcm_shared.service {DATABASE_COMMANDS_LOGGED} " + (
        json.dumps(counts) + "\n"
    )


def test_the_last_incarnation_s_counts_are_taken_per_process(tmp_path: Path) -> None:
    (tmp_path / "claims.log").write_text(
        "started\n"
        + logged({"episodes find": 900})  # stopped for a preload's cloning
        + "started again\n"
        + logged({"episodes find": 3, "episodes update": 40})
    )
    (tmp_path / "payer-simulator.log").write_text("no database here\n")
    (tmp_path / "audit.log").write_text(logged({"records insert": 7}) + "garbage after\n")
    commands = database_commands(tmp_path)
    assert commands == {
        "audit": {"records insert": 7},
        "claims": {"episodes find": 3, "episodes update": 40},
    }
    figures = database_figures(commands, events=25)
    assert figures["commands"] == 50
    assert figures["commands_per_event"] == 2.0
    assert figures["by_process"] == {"audit": 7, "claims": 43}
    assert figures["by_command"] == {"update": 40, "insert": 7, "find": 3}


def test_no_counts_no_ratio(tmp_path: Path) -> None:
    assert database_figures(database_commands(tmp_path), events=0)["commands_per_event"] is None
