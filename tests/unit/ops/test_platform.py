"""The platform runner with stand-in processes: start, readiness, kill, restart, stop."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest
from rcm_ops.platform import InfraUrls, Platform, PlatformConfig, PlatformError
from rcm_shared.topology import Process

INFRA = InfraUrls("127.0.0.1:9092", "mongodb://127.0.0.1:27017/")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def config(tmp_path: Path, **extra_env: str) -> PlatformConfig:
    ports = free_ports(2)
    processes = (
        Process("alpha", "tests.unit.ops.fake_service", ports[0]),
        Process("payer-simulator", "tests.unit.ops.fake_service", ports[1]),
    )
    return PlatformConfig(
        INFRA, run_id="t1", runs_dir=tmp_path, processes=processes, extra_env=extra_env
    )


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_starts_every_process_with_its_environment_and_stops_them(tmp_path: Path) -> None:
    settings = config(tmp_path)
    async with Platform(settings, ready_timeout_s=20) as platform:
        pids = [platform.pid(name) for name in ("alpha", "payer-simulator")]
        assert all(pids)
        platform.sample()
        usage = platform.resource_usage()
        assert usage["alpha"].peak_rss_bytes > 0
    assert not any(alive(pid) for pid in pids if pid)
    log = (tmp_path / "t1" / "alpha.log").read_text()
    assert "RCM_TOPIC_PREFIX=run-t1." in log
    assert "RCM_MONGODB_DATABASE=run_t1_alpha" in log
    assert f"RCM_HTTP_PORT={settings.port(settings.processes[0])}" in log
    simulator_port = settings.port(settings.processes[1])
    assert f"RCM_CLEARINGHOUSE_URL=http://127.0.0.1:{simulator_port}" in log


async def test_kill_and_restart_keep_the_environment(tmp_path: Path) -> None:
    async with Platform(config(tmp_path), ready_timeout_s=20) as platform:
        first = platform.pid("alpha")
        assert first is not None
        platform.kill("alpha", signal.SIGKILL)
        assert platform.pid("alpha") is None
        assert not alive(first)
        await platform.restart("alpha")
        second = platform.pid("alpha")
        assert second is not None
        assert second != first
        assert platform.restarts()["alpha"] == 1
    log = (tmp_path / "t1" / "alpha.log").read_text()
    assert log.count("RCM_TOPIC_PREFIX=run-t1.") == 2


async def test_an_error_inside_stops_everything(tmp_path: Path) -> None:
    pids: list[int | None] = []

    async def fail_inside() -> None:
        async with Platform(config(tmp_path), ready_timeout_s=20) as platform:
            pids.extend([platform.pid("alpha"), platform.pid("payer-simulator")])
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await fail_inside()
    assert pids
    assert not any(alive(pid) for pid in pids if pid)


async def test_a_process_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    platform = Platform(config(tmp_path, FAKE_SERVICE_FAIL="1"), ready_timeout_s=20)
    with pytest.raises(PlatformError, match="configured to fail at start"):
        async with platform:
            pass
    assert all(platform.pid(name) is None for name in ("alpha", "payer-simulator"))


async def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    settings = config(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", settings.port(settings.processes[0])))
        holder.listen()
        platform = Platform(settings)
        with pytest.raises(PlatformError, match="ports already in use: alpha"):
            async with platform:
                pass
    assert platform.pid("payer-simulator") is None
