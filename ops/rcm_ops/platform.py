"""Starting and stopping what a run needs: Kafka and FerretDB, then the eight processes.

`Infrastructure` uses KAFKA_BOOTSTRAP_SERVERS/MONGODB_URL when both are set, else
`deploy/local/infra.sh up` (and `down` at the end, only if it was not running before).
`Platform` runs every process of `rcm_shared.topology.PROCESSES` as its own OS process,
namespaced by a run id (topic prefix `run-<id>.`, databases `run_<id>_<service>`), so
runs never mix with each other or with tests. Both are context managers: whatever they
started is stopped on the way out, also on Ctrl-C or an exception.

Replicas. With `PlatformConfig.replicas = N > 1` every service runs as N processes
(the payer simulator stays one): `claims-1` ... `claims-N`, each with its own HTTP port
(the service's port + port offset + (i - 1) * REPLICA_PORT_STRIDE, so claims on 8004,
8104, 8204, ...) and its own log (`claims-2.log`), and otherwise the same environment:
same topic prefix, same database, hence the same consumer group. With one replica the
process is named after the service (`claims`, `claims.log`), as it always was.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx
import psutil
from rcm_shared.auth import DevIssuer, Role
from rcm_shared.topology import CONSOLE, PAYER_SIMULATOR, PROCESSES, SERVICES, Process

REPO = Path(__file__).resolve().parents[2]
INFRA_SCRIPT = REPO / "deploy" / "local" / "infra.sh"
RUNS_DIR = REPO / "var" / "runs"

STOP_GRACE_S = 10.0
LOG_TAIL_LINES = 30
REPLICA_PORT_STRIDE = 100  # replica i listens on the service's port + (i - 1) * this
LOCAL_PARTITIONS = 3  # per topic, unless --replicas asks for more
REPLICAS_HELP = (
    "Processes per service (the payer simulator stays one), sharing the service's "
    "consumer group and database. Replica i of a service is named <service>-i, logs to "
    "<service>-i.log in the run directory and listens on the service's port + "
    f"--port-offset + (i-1)*{REPLICA_PORT_STRIDE} (claims: 8004, 8104, 8204, ...); "
    "the bots use every replica in turn. 1: one process per service, named and logged "
    "as the service."
)


def dev_issuer() -> DevIssuer:
    """This machine's identity provider for runs and tests (`rcm token` signs with it)."""
    default = Path.home() / ".cache" / "rcm-platform" / "dev-issuer"
    return DevIssuer(Path(os.environ.get("RCM_DEV_ISSUER_DIR", default)))


class Bearer(httpx.Auth):
    """Signs every request in as `user` with `role`, with a fresh token each time."""

    def __init__(self, issuer: DevIssuer, user: str, role: Role) -> None:
        self.issuer = issuer
        self.user = user
        self.role = role

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.issuer.token(self.user, [self.role])}"
        yield request


class PlatformError(RuntimeError):
    """Something the run needs did not start; the message says what and shows the logs."""


def parse_key_values(text: str) -> dict[str, str]:
    """The KEY=value lines of a script's stdout; anything else on it is ignored."""
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(\S+)", line.strip())
        if match:
            pairs[match.group(1)] = match.group(2)
    return pairs


@dataclass(frozen=True)
class InfraUrls:
    kafka: str
    mongodb_url: str = field(repr=False)  # may hold credentials


class Infrastructure:
    """Kafka and a MongoDB wire protocol for the run (the same rules as tests/conftest.py)."""

    def __init__(
        self, environ: Mapping[str, str] | None = None, script: Path = INFRA_SCRIPT
    ) -> None:
        self.environ = os.environ if environ is None else environ
        self.script = script
        self.started = False  # True when `down` is ours to call

    def __enter__(self) -> InfraUrls:
        kafka = self.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        mongo = self.environ.get("MONGODB_URL")
        if kafka and mongo:
            return InfraUrls(kafka, mongo)
        status = self._script("status")
        already_running = "Kafka running" in status.stderr and "FerretDB running" in status.stderr
        self.started = not already_running
        result = self._script("up")
        if result.returncode != 0:
            self.__exit__(None, None, None)
            raise PlatformError(f"{self.script} up failed:\n{result.stderr[-4000:]}")
        urls = parse_key_values(result.stdout)
        try:
            return InfraUrls(urls["KAFKA_BOOTSTRAP_SERVERS"], urls["MONGODB_URL"])
        except KeyError as missing:
            self.__exit__(None, None, None)
            raise PlatformError(f"{self.script} up printed no {missing}") from None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.started:
            self.started = False
            self._script("down")

    def _script(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.script), command], capture_output=True, text=True, check=False
        )


def new_run_id() -> str:
    """Sortable and safe in topic, database and directory names."""
    return f"{datetime.now(UTC):%Y%m%d%H%M%S}{uuid.uuid4().hex[:4]}"


@dataclass(frozen=True)
class SimulatorKnobs:
    seed: int = 1
    ack_delay_s: float = 2.0
    remit_delay_s: float = 5.0


@dataclass
class Usage:
    """CPU seconds and peak resident memory of one process (over all its restarts)."""

    cpu_s: float = 0.0
    peak_rss_bytes: int = 0


def replica_name(service: str, index: int, count: int) -> str:
    """`claims` when a service runs as one process, else `claims-1` ... `claims-<count>`."""
    if not 1 <= index <= count:
        raise ValueError(f"replica {index} of {count}")
    return service if count == 1 else f"{service}-{index}"


@dataclass(frozen=True)
class Replica:
    """One OS process of a service: replica `index` (from 1) of `count`."""

    process: Process
    index: int = 1
    count: int = 1

    @property
    def name(self) -> str:
        return replica_name(self.process.name, self.index, self.count)


@dataclass
class _Running:
    process: Process
    port: int
    env: dict[str, str] = field(repr=False)  # MONGODB_URL, KAFKA_SASL_PASSWORD
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None
    handle: psutil.Process | None = None
    cpu_before_s: float = 0.0  # CPU of earlier incarnations (before a restart)
    cpu_now_s: float = 0.0
    cpu_mark_s: float = 0.0  # CPU at `mark_usage`: counted from there
    rss_now_bytes: int = 0
    peak_rss_bytes: int = 0
    starts: int = 0
    resumes: int = 0  # starts after a stop on purpose (not restarts)


@dataclass
class PlatformConfig:
    infra: InfraUrls
    run_id: str = field(default_factory=new_run_id)
    port_offset: int = 0
    ports: Mapping[str, int] = field(default_factory=dict)  # explicit, wins over the offset
    simulator: SimulatorKnobs = field(default_factory=SimulatorKnobs)
    runs_dir: Path = RUNS_DIR
    extra_env: Mapping[str, str] = field(default_factory=dict)  # e.g. RCM_RELAY_INTERVAL_S
    processes: tuple[Process, ...] = PROCESSES
    replicas: int = 1  # processes per service; the payer simulator is always one
    issuer: DevIssuer = field(default_factory=dev_issuer)

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"replicas must be at least 1, not {self.replicas}")

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / self.run_id

    @property
    def topic_prefix(self) -> str:
        return f"run-{self.run_id}."

    def database(self, name: str) -> str:
        return f"run_{self.run_id}_{name}".replace("-", "_")

    @property
    def partitions(self) -> int:
        """Partitions of the run's topics: enough for every replica to own some, and few,
        because the broker's CPU grows with the partitions each fetch names (on 2 cores
        3 partitions instead of 6 took a third off Kafka's CPU per episode)."""
        return max(LOCAL_PARTITIONS, self.replicas)

    def replica_count(self, process: Process) -> int:
        single = (PAYER_SIMULATOR.name, CONSOLE.name)  # no partitions to share
        return 1 if process.name in single else self.replicas

    def replicas_of(self, process: Process) -> list[Replica]:
        count = self.replica_count(process)
        return [Replica(process, index, count) for index in range(1, count + 1)]

    def all_replicas(self) -> list[Replica]:
        return [replica for process in self.processes for replica in self.replicas_of(process)]

    def service_urls(self) -> str:
        """JSON: each service's first replica, as the console asks them."""
        running = [p for p in self.processes if p.name in {s.name for s in SERVICES}]
        return json.dumps({p.name: f"http://127.0.0.1:{self.port(p)}" for p in running})

    def port(self, process: Process, index: int = 1) -> int:
        """Replica `index`'s HTTP port: an explicit port of the replica (or, for the
        first, of the service) wins; else the service's port + offset + a stride each."""
        name = replica_name(process.name, index, self.replica_count(process))
        base = self.ports.get(process.name, process.http_port + self.port_offset)
        return self.ports.get(name, base + (index - 1) * REPLICA_PORT_STRIDE)

    def environment(self, process: Process, index: int = 1) -> dict[str, str]:
        """What one process (replica `index` of a service) is told, on top of the
        caller's own environment. Replicas differ only in their HTTP port."""
        simulator = next(
            (p for p in self.processes if p.name == PAYER_SIMULATOR.name), PAYER_SIMULATOR
        )
        simulator_port = self.port(simulator)
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.infra.kafka,
            "MONGODB_URL": self.infra.mongodb_url,
            "RCM_HTTP_PORT": str(self.port(process, index)),
            "RCM_TOPIC_PREFIX": self.topic_prefix,
            "RCM_TOPIC_PARTITIONS": str(self.partitions),
            "RCM_AUTH_JWKS_URL": self.issuer.jwks_url,
            "RCM_AUTH_ISSUER": self.issuer.issuer,
            "RCM_MONGODB_DATABASE": self.database(process.name),
            "RCM_CLEARINGHOUSE_URL": f"http://127.0.0.1:{simulator_port}",
            "RCM_X12_ARCHIVE_DIR": str(self.run_dir / "x12"),
            "RCM_SIMULATOR_SEED": str(self.simulator.seed),
            "RCM_SIMULATOR_ACK_DELAY_S": str(self.simulator.ack_delay_s),
            "RCM_SIMULATOR_REMIT_DELAY_S": str(self.simulator.remit_delay_s),
            "RCM_SERVICE_URLS": self.service_urls(),
            "RCM_DEV_ISSUER_DIR": str(self.issuer.directory),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class Platform:
    """The run's processes (eight, or seven services times their replicas plus the payer
    simulator). `async with Platform(config) as platform:` starts them all and waits until
    each answers GET /health/ready; leaving stops them all.

    Processes are named by replica (`claims`, or `claims-1`, `claims-2`, ...). Where a
    method takes a name, a service's name also works: `url`, `pid` and `log_path` then
    mean its first replica, `kill` and `restart` every replica of it."""

    def __init__(self, config: PlatformConfig, ready_timeout_s: float = 90.0) -> None:
        self.config = config
        self.ready_timeout_s = ready_timeout_s
        self.running: dict[str, _Running] = {
            replica.name: _Running(
                process=replica.process,
                port=config.port(replica.process, replica.index),
                env={**os.environ, **config.environment(replica.process, replica.index)},
                log_path=config.run_dir / f"{replica.name}.log",
            )
            for replica in config.all_replicas()
        }

    @property
    def run_id(self) -> str:
        return self.config.run_id

    def replicas(self, name: str) -> list[str]:
        """The process names of a service (or the one named, if it is a process)."""
        if name in self.running:
            return [name]
        names = [n for n, running in self.running.items() if running.process.name == name]
        if not names:
            raise KeyError(name)
        return names

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.running[self.replicas(name)[0]].port}"

    def client(
        self, name: str, user: str, role: Role, timeout_s: float = 10.0
    ) -> httpx.AsyncClient:
        """An HTTP client of a service's first replica, signed in as `user` with `role`."""
        return httpx.AsyncClient(
            base_url=self.url(name), auth=self.sign_in(user, role), timeout=timeout_s
        )

    def sign_in(self, user: str, role: Role) -> httpx.Auth:
        """Credentials of `user` with `role` from the run's identity provider."""
        return Bearer(self.config.issuer, user, role)

    def urls(self, name: str) -> list[str]:
        """Every replica's base URL: any of them serves the service's HTTP API."""
        return [f"http://127.0.0.1:{self.running[n].port}" for n in self.replicas(name)]

    def pid(self, name: str) -> int | None:
        popen = self.running[self.replicas(name)[0]].popen
        return popen.pid if popen is not None and popen.poll() is None else None

    def log_path(self, name: str) -> Path:
        return self.running[self.replicas(name)[0]].log_path

    async def __aenter__(self) -> Self:
        try:
            self.start()
            await self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, names: Iterable[str] | None = None) -> None:
        """Spawn the processes (all by default); refuses ports someone else holds."""
        selected = {
            replica: self.running[replica]
            for name in (names or self.running)
            for replica in self.replicas(name)
        }
        busy = [f"{name}:{r.port}" for name, r in selected.items() if _port_in_use(r.port)]
        if busy:
            raise PlatformError(
                f"ports already in use: {', '.join(busy)} (another run or docker-compose?); "
                "choose others with --port-offset"
            )
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
        for running in selected.values():
            self._spawn(running)

    def _spawn(self, running: _Running) -> None:
        running.log_file = running.log_path.open("ab")
        running.log_file.write(
            f"--- {datetime.now(UTC).isoformat()} starting {running.process.module}\n".encode()
        )
        running.log_file.flush()
        # A session of its own: Ctrl-C in the terminal reaches only the runner, which then
        # stops the processes in order instead of all of them dying at once.
        running.popen = subprocess.Popen(
            [sys.executable, "-m", running.process.module],
            env=running.env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=running.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        running.starts += 1
        running.cpu_now_s = 0.0
        try:
            running.handle = psutil.Process(running.popen.pid)
        except psutil.Error:
            running.handle = None

    async def wait_ready(
        self, names: Iterable[str] | None = None, timeout_s: float | None = None
    ) -> None:
        """Until every named process (every replica of a named service) answers 200 on
        GET /health/ready; a process that exits or a timeout raises PlatformError with
        the tail of its log."""
        waiting = {replica for name in (names or self.running) for replica in self.replicas(name)}
        deadline = time.monotonic() + (timeout_s or self.ready_timeout_s)
        async with httpx.AsyncClient(timeout=2.0) as client:
            while waiting:
                for name in sorted(waiting):
                    running = self.running[name]
                    if running.popen is None or running.popen.poll() is not None:
                        code = None if running.popen is None else running.popen.returncode
                        raise PlatformError(
                            f"{name} exited (code {code}) before it was ready; "
                            f"{running.log_path}:\n{log_tail(running.log_path)}"
                        )
                    with contextlib.suppress(httpx.HTTPError):
                        response = await client.get(f"{self.url(name)}/health/ready")
                        if response.status_code == 200:
                            waiting.discard(name)
                if not waiting:
                    return
                if time.monotonic() > deadline:
                    paths = [self.running[name].log_path for name in sorted(waiting)]
                    tails = "\n".join(f"--- {path}:\n{log_tail(path)}" for path in paths)
                    raise PlatformError(f"not ready in time: {', '.join(sorted(waiting))}\n{tails}")
                await asyncio.sleep(0.3)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send a signal to one process (every replica of a service named) and, for
        SIGKILL/SIGTERM, wait until it is gone."""
        self.sample()
        for replica in self.replicas(name):
            running = self.running[replica]
            if running.popen is None or running.popen.poll() is not None:
                continue
            running.popen.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                try:
                    running.popen.wait(STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    running.popen.kill()
                    running.popen.wait()
                self._retire(running)

    async def restart(self, name: str, timeout_s: float | None = None) -> None:
        """SIGKILL (if still alive), start again with the same environment, wait ready
        (one replica, or every replica of a service named)."""
        self.kill(name, signal.SIGKILL)
        for replica in self.replicas(name):
            self._spawn(self.running[replica])
        await self.wait_ready([name], timeout_s)

    def stop(self, names: Iterable[str] | None = None) -> None:
        """SIGTERM to all (or the named: processes, or every replica of a service), SIGKILL
        to whoever is still there after the grace period."""
        self.sample()
        selected = [
            self.running[replica]
            for name in (names or self.running)
            for replica in self.replicas(name)
        ]
        alive = [r for r in selected if r.popen is not None and r.popen.poll() is None]
        for running in alive:
            with contextlib.suppress(ProcessLookupError):
                running.popen.terminate()  # type: ignore[union-attr]
        deadline = time.monotonic() + STOP_GRACE_S
        for running in alive:
            popen = running.popen
            assert popen is not None
            try:
                popen.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        for running in selected:
            self._retire(running)

    async def resume(self, names: Iterable[str], timeout_s: float | None = None) -> None:
        """Start processes stopped on purpose (`stop(names)`) again and wait until they are
        ready; unlike `restart`, this is not counted as a restart."""
        names = list(names)
        for name in names:
            for replica in self.replicas(name):
                running = self.running[replica]
                if running.popen is None or running.popen.poll() is not None:
                    running.resumes += 1
                    self._spawn(running)
        await self.wait_ready(names, timeout_s)

    def _retire(self, running: _Running) -> None:
        running.cpu_before_s += running.cpu_now_s
        running.cpu_now_s = 0.0
        running.handle = None
        if running.log_file is not None:
            running.log_file.close()
            running.log_file = None

    def sample(self) -> None:
        """Read CPU time and resident memory of every live process (peak = sampled max)."""
        for running in self.running.values():
            if running.handle is None:
                continue
            try:
                with running.handle.oneshot():
                    times = running.handle.cpu_times()
                    rss = running.handle.memory_info().rss
            except psutil.Error:
                continue
            running.cpu_now_s = times.user + times.system
            running.rss_now_bytes = rss
            running.peak_rss_bytes = max(running.peak_rss_bytes, rss)

    async def sample_forever(self, interval_s: float = 1.0) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(interval_s)

    def mark_usage(self) -> None:
        """From now on, `resource_usage` counts CPU from here and the peak memory from the
        last sample (what came before, e.g. a preload, is left out)."""
        for running in self.running.values():
            running.cpu_mark_s = running.cpu_before_s + running.cpu_now_s
            running.peak_rss_bytes = running.rss_now_bytes

    def resource_usage(self) -> dict[str, Usage]:
        """Per process (replica): CPU seconds over all its restarts and peak RSS."""
        return {
            name: Usage(
                cpu_s=running.cpu_before_s + running.cpu_now_s - running.cpu_mark_s,
                peak_rss_bytes=running.peak_rss_bytes,
            )
            for name, running in self.running.items()
        }

    def restarts(self) -> dict[str, int]:
        return {
            name: max(running.starts - 1 - running.resumes, 0)
            for name, running in self.running.items()
        }
