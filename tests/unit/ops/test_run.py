"""The driver's pure parts: infrastructure URLs, namespacing, ledgers, stage times."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rcm_ops.platform import Infrastructure, InfraUrls, PlatformConfig, parse_key_values
from rcm_ops.run import (
    STAGES,
    EpisodeEvents,
    Timelines,
    final_state,
    ledger_problems,
    percentile,
    stage_times,
    totals_of,
    where_stopped,
)
from rcm_shared.settings import ServiceSettings
from rcm_shared.topology import PROCESSES

INFRA = InfraUrls("127.0.0.1:9092", "mongodb://127.0.0.1:27017/")
T0 = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)


def test_only_key_value_lines_of_the_script_count() -> None:
    stdout = (
        "\x1b[1mnoise\x1b[0m\nKAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092\n"
        "  MONGODB_URL=mongodb://x:1/\nnot a=pair\n"
    )
    assert parse_key_values(stdout) == {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "MONGODB_URL": "mongodb://x:1/",
    }


def test_given_infrastructure_starts_nothing(tmp_path: Path) -> None:
    environ = {"KAFKA_BOOTSTRAP_SERVERS": "k:1", "MONGODB_URL": "mongodb://m:2/"}
    with Infrastructure(environ, script=tmp_path / "absent.sh") as urls:
        assert urls == InfraUrls("k:1", "mongodb://m:2/")


def fake_script(tmp_path: Path, running: bool) -> tuple[Path, Path]:
    """A stand-in for deploy/local/infra.sh that records how it was called."""
    calls = tmp_path / "calls"
    script = tmp_path / "infra.sh"
    state = "running" if running else "not running"
    script.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$1" >> {calls}\n'
        f'case "$1" in status) echo "[infra] Kafka {state}" >&2; '
        f'echo "[infra] FerretDB {state}" >&2;;\n'
        "up) echo '[infra] starting' >&2; echo KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092; "
        "echo MONGODB_URL=mongodb://127.0.0.1:37017/;;\nesac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, calls


@pytest.mark.parametrize(
    ("running", "calls_expected"), [(True, "status up"), (False, "status up down")]
)
def test_local_infrastructure_is_stopped_only_if_this_run_started_it(
    tmp_path: Path, running: bool, calls_expected: str
) -> None:
    script, calls = fake_script(tmp_path, running)
    with Infrastructure({}, script=script) as urls:
        assert urls == InfraUrls("127.0.0.1:19092", "mongodb://127.0.0.1:37017/")
    assert calls.read_text().split() == calls_expected.split()


def test_local_infrastructure_is_stopped_on_an_error_too(tmp_path: Path) -> None:
    script, calls = fake_script(tmp_path, running=False)
    with pytest.raises(RuntimeError), Infrastructure({}, script=script):
        raise RuntimeError("boom")
    assert calls.read_text().split() == ["status", "up", "down"]


def test_every_process_gets_its_own_namespace_and_valid_settings(tmp_path: Path) -> None:
    config = PlatformConfig(INFRA, run_id="20250314090000ab12", port_offset=100, runs_dir=tmp_path)
    databases = set()
    for process in PROCESSES:
        env = config.environment(process)
        assert env["RCM_HTTP_PORT"] == str(process.http_port + 100)
        assert env["RCM_TOPIC_PREFIX"] == "run-20250314090000ab12."
        assert env["RCM_CLEARINGHOUSE_URL"] == "http://127.0.0.1:8110"
        assert env["RCM_X12_ARCHIVE_DIR"] == str(tmp_path / "20250314090000ab12" / "x12")
        databases.add(env["RCM_MONGODB_DATABASE"])
        settings = ServiceSettings(  # type: ignore[call-arg]
            service_name=process.name,
            KAFKA_BOOTSTRAP_SERVERS=env["KAFKA_BOOTSTRAP_SERVERS"],
            MONGODB_URL=env["MONGODB_URL"],
            topic_prefix=env["RCM_TOPIC_PREFIX"],
            mongodb_database=env["RCM_MONGODB_DATABASE"],
            http_port=int(env["RCM_HTTP_PORT"]),
        )
        assert settings.database_name.startswith("run_20250314090000ab12_")
    assert len(databases) == len(PROCESSES)
    assert "run_20250314090000ab12_payer_simulator" in databases
    explicit = PlatformConfig(INFRA, ports={"claims": 18004})
    claims = next(p for p in PROCESSES if p.name == "claims")
    assert explicit.environment(claims)["RCM_HTTP_PORT"] == "18004"


def account(state: str = "closed", **totals: int) -> dict[str, object]:
    base = dict(
        charges_cents=10_000,
        payer_paid_cents=6_000,
        adjustments_cents=3_000,
        patient_paid_cents=900,
        written_off_cents=100,
        balance_cents=0,
    )
    base.update(totals)
    return {"episode_id": "E1", "state": state, "totals": base}


def test_a_closed_balanced_account_has_no_problems() -> None:
    assert ledger_problems(account()) == []
    assert totals_of({"state": "closed", **account()["totals"]}) == account()["totals"]  # type: ignore[dict-item]


def test_unbalanced_open_or_owing_accounts_are_named() -> None:
    problems = ledger_problems(account(payer_paid_cents=6_001))
    assert problems
    assert "unbalanced" in problems[0]
    owing = ledger_problems(account("statement-issued", patient_paid_cents=400, balance_cents=500))
    assert owing == ["balance 500 cents", "account state statement-issued"]
    assert ledger_problems({"state": "closed"}) == ["account has no ledger totals"]


def timelines_of(events: dict[str, list[tuple[str, float]]]) -> Timelines:
    timelines = Timelines()
    for episode, items in events.items():
        for event, seconds in items:
            timelines.add(episode, event, T0 + timedelta(seconds=seconds))
    return timelines


def test_stage_times_come_from_the_events() -> None:
    timelines = timelines_of(
        {
            "E1": [
                ("appointment-scheduled", 0),
                ("eligibility-verified", 2),
                ("encounter-completed", 5),
                ("coding-completed", 9),
                ("claim-submitted", 12),
                ("payment-posted", 20),
                ("claim-submitted", 25),  # a secondary claim
                ("payment-posted", 30),
                ("episode-closed", 31),
            ],
            "E2": [
                ("appointment-scheduled", 0),
                ("eligibility-failed", 4),
                ("encounter-completed", 6),
                ("coding-completed", 7),
                ("episode-closed", 8),
            ],
        }
    )
    rows = {row["stage"]: row for row in stage_times(timelines)}
    assert rows["scheduled -> eligibility"]["episodes"] == 2
    assert rows["scheduled -> eligibility"]["max_s"] == 4
    assert rows["encounter -> coded"]["median_s"] == 2.5
    assert rows["coded -> submitted"]["episodes"] == 1  # self-pay is never billed
    assert rows["submitted -> adjudicated"]["median_s"] == 8  # first claim to first posting
    assert rows["posted -> closed"]["median_s"] == 1  # from the last posting
    assert rows["scheduled -> closed"]["p95_s"] == 31
    assert [s.name for s in STAGES] == list(rows)
    assert timelines.reached("episode-closed") == 2
    assert timelines.reached("claim-submitted", ["E2", "E9"]) == 0


def test_records_from_kafka_headers_and_dead_letters() -> None:
    timelines = Timelines()
    headers = {
        "ce_type": "rcm.claims.claim-paid.v1",
        "ce_subject": "E1",
        "ce_time": "2025-03-14T09:00:05Z",
    }
    timelines.record("run-x.rcm.claims.claim-paid.v1", headers, b"E1")
    timelines.record("run-x.rcm.claims.claim-paid.v1.dlq", headers, b"E1")
    timelines.record("run-x.rcm.claims.claim-paid.v1", {"ce_type": "x"}, None)
    assert timelines.episodes["E1"].first["claim-paid"] == T0 + timedelta(seconds=5)
    assert timelines.dead_letters == {"claim-paid": 1}


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.95) == 95
    assert percentile([3.0], 0.95) == 3
    assert percentile([1.0, 2.0], 0.5) == 1


def test_a_stuck_episode_says_where_it_stopped() -> None:
    events = EpisodeEvents()
    events.latest = (T0, "claim-denied")
    where = where_stopped("E1", "encounter", None, events, account("billing", balance_cents=0))
    assert where == "last event claim-denied at 09:00:00; account state billing"
    assert where_stopped(None, "failed", "schedule: HTTP 422", None, None) == (
        "front desk (failed): schedule: HTTP 422"
    )
    assert "no account in collections" in where_stopped("E1", "encounter", None, None, None)


def test_final_states_say_what_keeps_an_account_open() -> None:
    assert final_state(account()) == "closed"
    assert final_state(None) == "no account"
    assert final_state({**account("open"), "billing_over": False}) == "open: in billing"
    statement = {"statement_id": "S1", "status": "open"}
    assert (
        final_state({**account("open"), "billing_over": True, "statements": [statement]})
        == "open: statement open"
    )
    assert final_state({**account("open"), "billing_over": True, "plan": {"plan_id": "X"}}) == (
        "open: on a payment plan"
    )


def test_an_account_whose_own_invariant_check_fails_is_a_problem() -> None:
    broken = {**account(), "invariant_holds": False, "invariant_problems": ["entries differ"]}
    assert ledger_problems(broken) == ["entries differ"]


def test_a_credit_balance_is_named() -> None:
    credit = {**account("open", patient_paid_cents=8_000, balance_cents=-7_100), "plan": None}
    assert final_state({**credit, "billing_over": True}) == "open: credit balance"
    assert "balance -7100 cents" in ledger_problems(credit)
