"""Several processes per service: names, ports, environments, logs, kill and restart."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest
from rcm_ops.bots import Endpoints, Http, RoundRobin
from rcm_ops.platform import (
    REPLICA_PORT_STRIDE,
    InfraUrls,
    Platform,
    PlatformConfig,
    Replica,
    replica_name,
)
from rcm_ops.run import replica_ports
from rcm_shared.topology import PAYER_SIMULATOR, PROCESSES, SERVICES, Process

from .test_platform import alive, free_ports

INFRA = InfraUrls("127.0.0.1:9092", "mongodb://127.0.0.1:27017/")
CLAIMS = next(p for p in PROCESSES if p.name == "claims")


def test_a_single_replica_is_named_after_its_service() -> None:
    assert replica_name("claims", 1, 1) == "claims"
    assert [replica_name("claims", i, 3) for i in (1, 2, 3)] == ["claims-1", "claims-2", "claims-3"]
    assert Replica(CLAIMS, 2, 2).name == "claims-2"
    with pytest.raises(ValueError, match="replica"):
        replica_name("claims", 3, 2)
    with pytest.raises(ValueError, match="replica"):
        replica_name("claims", 0, 2)
    with pytest.raises(ValueError, match="at least 1"):
        PlatformConfig(INFRA, replicas=0)


def test_every_service_runs_n_times_and_the_payer_simulator_once() -> None:
    config = PlatformConfig(INFRA, run_id="r1", replicas=3)
    names = [replica.name for replica in config.all_replicas()]
    assert len(names) == 3 * len(SERVICES) + 2  # the payer simulator and the console: one each
    assert names.count("payer-simulator") == 1
    assert names.count("console") == 1
    assert "claims-3" in names
    assert "claims" not in names
    one = PlatformConfig(INFRA, run_id="r1")
    assert [replica.name for replica in one.all_replicas()] == [p.name for p in PROCESSES]


def test_replica_ports_step_by_the_stride_from_the_offset_port() -> None:
    config = PlatformConfig(INFRA, run_id="r1", port_offset=3000, replicas=3)
    assert [config.port(CLAIMS, i) for i in (1, 2, 3)] == [
        CLAIMS.http_port + 3000,
        CLAIMS.http_port + 3000 + REPLICA_PORT_STRIDE,
        CLAIMS.http_port + 3000 + 2 * REPLICA_PORT_STRIDE,
    ]
    ports = [config.port(r.process, r.index) for r in config.all_replicas()]
    assert len(set(ports)) == len(ports)  # no two processes of a run share a port
    # Without replicas, ports are what they always were.
    assert PlatformConfig(INFRA).port(CLAIMS) == 8004
    # An explicit port of a service moves its replicas; one of a replica wins.
    explicit = PlatformConfig(INFRA, replicas=2, ports={"claims": 18004, "coding-2": 19003})
    assert explicit.port(CLAIMS, 2) == 18004 + REPLICA_PORT_STRIDE
    coding = next(p for p in PROCESSES if p.name == "coding")
    assert explicit.port(coding, 1) == 8003
    assert explicit.port(coding, 2) == 19003


def test_replicas_share_everything_but_their_port() -> None:
    config = PlatformConfig(INFRA, run_id="r1", replicas=2)
    first, second = config.environment(CLAIMS, 1), config.environment(CLAIMS, 2)
    assert {k for k in first if first[k] != second[k]} == {"RCM_HTTP_PORT"}
    assert first["RCM_MONGODB_DATABASE"] == "run_r1_claims"
    assert first["RCM_TOPIC_PREFIX"] == second["RCM_TOPIC_PREFIX"] == "run-r1."
    # Every replica reaches the one payer simulator.
    simulator = config.port(PAYER_SIMULATOR)
    assert second["RCM_CLEARINGHOUSE_URL"] == f"http://127.0.0.1:{simulator}"


def replicated(tmp_path: Path, replicas: int = 2) -> PlatformConfig:
    ports = free_ports(2)
    processes = (
        Process("alpha", "tests.unit.ops.fake_service", ports[0]),
        Process("payer-simulator", "tests.unit.ops.fake_service", ports[1]),
    )
    # Replicas step by the stride: explicit ones keep the test off ports in use.
    extra = free_ports(replicas - 1)
    explicit = {f"alpha-{n + 2}": port for n, port in enumerate(extra)}
    return PlatformConfig(
        INFRA,
        run_id="t2",
        runs_dir=tmp_path,
        processes=processes,
        replicas=replicas,
        ports=explicit,
    )


async def test_replicas_start_with_their_own_port_and_log_and_answer(tmp_path: Path) -> None:
    config = replicated(tmp_path)
    async with Platform(config, ready_timeout_s=20) as platform:
        assert list(platform.running) == ["alpha-1", "alpha-2", "payer-simulator"]
        assert platform.replicas("alpha") == ["alpha-1", "alpha-2"]
        urls = platform.urls("alpha")
        assert len(set(urls)) == 2
        assert platform.url("alpha") == urls[0]
        async with httpx.AsyncClient(timeout=5) as client:
            for url in urls:
                assert (await client.get(f"{url}/health/ready")).status_code == 200
        pids = [platform.pid(name) for name in platform.running]
        assert all(pids)
        assert len(set(pids)) == 3
        platform.sample()
        usage = platform.resource_usage()
        assert set(usage) == {"alpha-1", "alpha-2", "payer-simulator"}
        assert all(u.peak_rss_bytes > 0 for u in usage.values())
        assert "alpha " in replica_ports(platform)
    for n in (1, 2):
        log = (tmp_path / "t2" / f"alpha-{n}.log").read_text()
        assert "RCM_MONGODB_DATABASE=run_t2_alpha" in log
        assert f"RCM_HTTP_PORT={urls[n - 1].rsplit(':', 1)[1]}" in log
    assert not (tmp_path / "t2" / "alpha.log").exists()
    assert not any(alive(pid) for pid in pids if pid)


async def test_one_replica_or_all_of_a_service_are_killed_and_restarted(tmp_path: Path) -> None:
    async with Platform(replicated(tmp_path), ready_timeout_s=20) as platform:
        first, second = platform.pid("alpha-1"), platform.pid("alpha-2")
        assert first
        assert second
        platform.kill("alpha-2", signal.SIGKILL)
        assert platform.pid("alpha-2") is None
        assert platform.pid("alpha-1") == first  # the other replica goes on
        await platform.restart("alpha-2")
        assert platform.pid("alpha-2") not in (None, second)
        assert platform.restarts() == {"alpha-1": 0, "alpha-2": 1, "payer-simulator": 0}
        await platform.restart("alpha")  # a service's name: every replica
        assert platform.restarts() == {"alpha-1": 1, "alpha-2": 2, "payer-simulator": 0}
        assert platform.pid("alpha-1") not in (None, first)
    assert (tmp_path / "t2" / "alpha-2.log").read_text().count("starting") == 3


async def test_a_service_stopped_on_purpose_resumes_without_counting_a_restart(
    tmp_path: Path,
) -> None:
    async with Platform(replicated(tmp_path), ready_timeout_s=20) as platform:
        simulator = platform.pid("payer-simulator")
        before = [platform.pid("alpha-1"), platform.pid("alpha-2")]
        platform.stop(["alpha"])
        assert platform.pid("alpha-1") is None
        assert platform.pid("alpha-2") is None
        assert platform.pid("payer-simulator") == simulator  # the others go on
        assert not any(alive(pid) for pid in before if pid)
        await platform.resume(["alpha"])
        assert None not in (platform.pid("alpha-1"), platform.pid("alpha-2"))
        assert platform.restarts() == {"alpha-1": 0, "alpha-2": 0, "payer-simulator": 0}
        await platform.restart("alpha-1")
        assert platform.restarts()["alpha-1"] == 1


def test_round_robin_takes_each_base_url_in_turn() -> None:
    turns = RoundRobin(["http://a:1/", "http://b:2"])
    assert [turns.next() for _ in range(5)] == [
        "http://a:1",
        "http://b:2",
        "http://a:1",
        "http://b:2",
        "http://a:1",
    ]
    with pytest.raises(ValueError, match="no base URL"):
        RoundRobin([])


async def test_the_bots_spread_calls_over_replicas_and_step_past_one_that_is_down() -> None:
    seen: list[str] = []

    def replicas(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url.host}{request.url.path}")
        if request.url.host == "down":
            raise httpx.ConnectError("connection refused")
        return httpx.Response(200, json={"host": request.url.host})

    stop = asyncio.Event()
    http = Http(["http://one", "http://two"], stop, transport=httpx.MockTransport(replicas))
    answers = [(await http.get_json("/queue"))["host"] for _ in range(4)]
    assert answers == ["one", "two", "one", "two"]
    await http.close()

    seen.clear()
    http = Http(["http://down", "http://up"], stop, transport=httpx.MockTransport(replicas))
    assert await http.get_json("/x") == {"host": "up"}
    assert seen == ["down/x", "up/x"]  # the retry went to the next replica at once
    await http.close()
    # One URL, as before: every call to it.
    http = Http("http://one", stop, transport=httpx.MockTransport(replicas))
    assert [(await http.get_json("/y"))["host"] for _ in range(2)] == ["one", "one"]
    await http.close()
    assert Endpoints("a", ["b", "c"], "d", "e", "f").coding == ["b", "c"]
