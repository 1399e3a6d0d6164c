"""Infrastructure faults: the broker and the database crash while episodes flow.

The seven processes run as in `rcm run` (one per service) and the bots drive a few dozen
episodes. Once claims are being paid, the Kafka broker is killed with SIGKILL and started
again from its data (`deploy/local/infra.sh kill|start kafka`); once money moves again,
FerretDB, then its PostgreSQL (postmaster and backends at once: a crash of the server).
Then every episode must have closed at a balanced zero, no message may have gone to the
dead letters, no service process may have died, and nothing may be counted twice or
lost: each payer adjudication the payers sent is one posting in payments and one in the
collections ledger, each patient payment one ledger entry, with the same money on both
sides.

PostgreSQL must commit durably: with `synchronous_commit=off` a crash of the server
loses commits it had acknowledged (decisions.md §23), which no idempotence can make up
for, so the test refuses such a store before it crashes anything.

It crashes the session's shared infrastructure, so it needs the Kafka and FerretDB that
deploy/local/infra.sh started (its state dir from RCM_STATE or the default): elsewhere it
fails under CI=true and is skipped otherwise. It leaves them running and answering for
the tests after it. Pytest orders by name: tests/faults comes after the end-to-end test
and before the integration tests, which create most of the session's topics; each
partition costs time when the broker recovers from a SIGKILL (decisions.md §23).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest
from pymongo import AsyncMongoClient
from rcm_ops.platform import (
    INFRA_SCRIPT,
    InfraUrls,
    Platform,
    PlatformConfig,
    SimulatorKnobs,
    parse_key_values,
)
from rcm_ops.run import DriveOutcome, drive_episodes, fetch_accounts, ledger_problems
from rcm_shared.auth import Role
from rcm_x12 import parse_835

from tests.conftest import Infra

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

EPISODES = 24
SEED = 23
PORT_OFFSET = 500  # beside a `make run` (0) and the e2e test (900)
PROGRESS_STEP = 3  # claims paid plus episodes closed, before each crash
PROGRESS_TIMEOUT_S = 300.0
DOWN_S = 3.0  # how long a crashed component stays down before it is started again
SCRIPT_TIMEOUT_S = 400.0  # `start kafka` waits up to 300 s: it recovers every partition
PSQL = "/usr/lib/postgresql/15/bin/psql"  # infra.sh's POSTGRES_BIN
RUNNING = re.compile(r"\[infra\] (Kafka|FerretDB|PostgreSQL) running \(pid (\d+)(?:, ([^)]*))?\)")


def infra_sh(*args: str) -> subprocess.CompletedProcess[str]:
    """deploy/local/infra.sh with the session's environment (RCM_STATE, RCM_*_PORT)."""
    return subprocess.run(
        [str(INFRA_SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=SCRIPT_TIMEOUT_S,
    )


def infra_sh_ok(*args: str) -> None:
    result = infra_sh(*args)
    if result.returncode != 0:
        raise AssertionError(f"infra.sh {' '.join(args)} failed:\n{result.stderr[-3000:]}")


def port_of(address: str) -> int | None:
    return urlsplit(address if "//" in address else f"//{address}").port


def listens(pid: int, port: int | None) -> bool | None:
    """Whether that process listens on the port; None when it cannot be told."""
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


@dataclass(frozen=True)
class Managed:
    """The session's infrastructure, run by deploy/local/infra.sh."""

    backend: str  # postgresql | sqlite
    postgresql: str | None = None  # host:port when FerretDB runs on it

    def crashes(self) -> list[str]:
        if self.postgresql is None:
            return ["kafka", "ferretdb"]  # on SQLite, FerretDB's crash is the database's
        assert self.commits_durably(), (
            "PostgreSQL runs with synchronous_commit=off: its crash would lose commits it "
            "acknowledged (decisions.md §23)"
        )
        return ["kafka", "ferretdb", "postgresql"]

    def commits_durably(self) -> bool:
        assert self.postgresql is not None
        host, _, port = self.postgresql.rpartition(":")
        command = [PSQL, "-X", "-h", host, "-p", port, "-U", "postgres", "-d", "postgres"]
        shown = subprocess.run(
            [*command, "-tAc", "SHOW synchronous_commit"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return shown.stdout.strip() != "off"


def managed_or_why(infra: Infra) -> Managed | str:
    status = infra_sh("status")
    running = {name: (int(pid), more) for name, pid, more in RUNNING.findall(status.stderr)}
    printed = parse_key_values(status.stdout)
    state = os.environ.get("RCM_STATE") or "the default ~/.cache/rcm-platform/state"
    for name, url, key in (
        ("Kafka", infra.kafka, "KAFKA_BOOTSTRAP_SERVERS"),
        ("FerretDB", infra.mongodb_url, "MONGODB_URL"),
    ):
        if name not in running:
            return f"no {name} of deploy/local/infra.sh runs with state dir {state}"
        # Both: the process listens where the session connects, and infra.sh (its
        # RCM_*_PORT) would start it there again, not on another infrastructure's port.
        pid, port = running[name][0], port_of(url)
        if listens(pid, port) is False or port_of(printed.get(key, "")) != port:
            return (
                f"the session's {name} at {url} is not the one deploy/local/infra.sh runs "
                f"and would start again (pid {pid}, {printed.get(key)}, state dir {state})"
            )
    backend = running["FerretDB"][1].removesuffix(" backend") or "sqlite"
    if backend == "postgresql":
        if "PostgreSQL" not in running:
            return f"FerretDB runs on a PostgreSQL that infra.sh does not (state dir {state})"
        return Managed(backend, postgresql=running["PostgreSQL"][1])
    return Managed(backend)


@pytest.fixture
def managed(infra: Infra) -> Iterator[Managed]:
    """The session's infrastructure if infra.sh runs it; running and answering again
    afterwards (`up` starts whatever is down), for the tests that follow."""
    found = managed_or_why(infra)
    if isinstance(found, str):
        message = f"infrastructure faults crash only what deploy/local/infra.sh started: {found}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(f"{message} (skipped outside CI; under CI=true this fails)")
    try:
        yield found
    finally:
        infra_sh_ok("up")


@dataclass
class Progress:
    counts: Mapping[str, int] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def update(self, counts: Mapping[str, int], elapsed_s: float) -> None:
        self.counts = dict(counts)
        self.changed.set()

    @property
    def done(self) -> int:
        """Claims paid plus episodes closed: it moves while money moves."""
        return self.counts.get("paid", 0) + self.counts.get("closed", 0)

    async def reaches(self, target: int, drive: asyncio.Task[Any]) -> None:
        deadline = time.monotonic() + PROGRESS_TIMEOUT_S
        while self.done < target:
            assert not drive.done(), f"the run ended before the next crash: {drive.result()}"
            assert time.monotonic() < deadline, (
                f"no progress to {target} in {PROGRESS_TIMEOUT_S:.0f} s: {self.counts}"
            )
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 5.0)


@dataclass
class Crash:
    component: str
    progress: dict[str, int]  # where the run stood when it crashed
    start_s: float = 0.0  # from `infra.sh start` until it answered again


async def crash(component: str, progress: Progress) -> Crash:
    """SIGKILL the component, leave it down a moment, start it again from its data."""
    happened = Crash(component, dict(progress.counts))
    await asyncio.to_thread(infra_sh_ok, "kill", component)
    await asyncio.sleep(DOWN_S)
    started = time.monotonic()
    await asyncio.to_thread(infra_sh_ok, "start", component)
    happened.start_s = round(time.monotonic() - started, 1)
    return happened


def sent_835s(archive: Path) -> tuple[int, int]:
    """Transactions (one remittance each) and claim adjudications (CLP) the payers sent."""
    transactions = claims = 0
    for path in archive.glob("payer-simulator/*/*-sent-835-*.x12"):
        for remittance in parse_835(path.read_text()).transactions:
            transactions += 1
            claims += len(remittance.claims)
    return transactions, claims


def repeated(values: list[str]) -> list[str]:
    return sorted(value for value, times in Counter(values).items() if times > 1)


async def payments_state(mongodb_url: str, database: str) -> tuple[list[Any], list[Any]]:
    """Payments' remittances (their postings) and patient payments, as stored."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        db = client[database]
        remittances = [d async for d in db.remittances.find({}, {"postings": 1})]
        patient = [d async for d in db.patient_payments.find({}, {"outbox": 0, "applied": 0})]
    finally:
        await client.close()
    return remittances, patient


def counted_once(
    accounts: Mapping[str, dict[str, Any] | None],
    remittances: list[Any],
    patient_payments: list[Any],
    sent: tuple[int, int],
) -> dict[str, object]:
    """Where payments and the collections ledger count something twice, or lose it."""
    problems: dict[str, object] = {}
    postings = [p for r in remittances for p in r.get("postings", [])]
    ledger_postings = [p for a in accounts.values() if a for p in a["postings"]]
    transactions, adjudications = sent
    if len(remittances) != transactions:
        problems["remittances (835 transactions sent)"] = (len(remittances), transactions)
    if len(postings) != adjudications:
        problems["payments' postings (CLPs sent)"] = (len(postings), adjudications)
    for where, found in (("payments", postings), ("ledgers", ledger_postings)):
        if twice := repeated([p["posting_id"] for p in found]):
            problems[f"postings twice in {where}"] = twice
    if diff := {p["posting_id"] for p in postings} ^ {p["posting_id"] for p in ledger_postings}:
        problems["postings in only one of payments and the ledgers"] = sorted(diff)
    payer_paid: Counter[str] = Counter()
    for posting in postings:
        payer_paid[posting["episode_id"]] += posting["paid_cents"]
    patient_paid: Counter[str] = Counter()
    for payment in patient_payments:
        patient_paid[payment["episode_id"]] += payment["amount_cents"]
    for episode, account in accounts.items():
        entries = account["entries"] if account else []
        received = [e for e in entries if e["kind"] == "patient-payment"]
        if twice := repeated([e["reference"] for e in received]):
            problems[f"{episode}: patient payments twice in the ledger"] = twice
        ledger = (
            sum(e["amount_cents"] for e in entries if e["kind"] == "payer-payment"),
            sum(e["amount_cents"] for e in received),
        )
        if ledger != (payer_paid[episode], patient_paid[episode]):
            problems[f"{episode}: ledger (payer, patient) != payments"] = (
                ledger,
                (payer_paid[episode], patient_paid[episode]),
            )
    return problems


async def test_episodes_close_balanced_through_broker_and_database_crashes(
    infra: Infra, managed: Managed, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, logger="aiokafka")  # the watcher's refused connects
    config = PlatformConfig(
        infra=InfraUrls(infra.kafka, infra.mongodb_url),
        port_offset=PORT_OFFSET,
        runs_dir=tmp_path,
        simulator=SimulatorKnobs(seed=SEED, ack_delay_s=0.3, remit_delay_s=1.0),
        extra_env={"RCM_RELAY_INTERVAL_S": "0.2", "RCM_MAILBOX_POLL_S": "0.3"},
    )
    components = managed.crashes()
    progress = Progress()
    crashes: list[Crash] = []
    started = time.monotonic()
    async with Platform(config) as platform:
        drive = asyncio.create_task(
            drive_episodes(
                platform,
                EPISODES,
                seed=SEED,
                timeout_s=900,
                rate_per_s=3.0,
                stall_s=180,
                on_progress=progress.update,
            )
        )
        try:
            for component in components:
                await progress.reaches(progress.done + PROGRESS_STEP, drive)
                crashes.append(await crash(component, progress))
                await platform.wait_ready(timeout_s=120)
            outcome: DriveOutcome = await drive
        finally:
            drive.cancel()
            await asyncio.gather(drive, return_exceptions=True)
        died = [name for name in platform.running if platform.pid(name) is None]
        async with platform.client("collections", "faults", Role.COLLECTOR) as client:
            accounts = await fetch_accounts(client, list(outcome.ledger.episode_ids()))
    remittances, patient_payments = await payments_state(
        infra.mongodb_url, config.database("payments")
    )
    print(
        f"{time.monotonic() - started:.0f} s; crashes {crashes}; {outcome}; "
        f"bots {dict(outcome.ledger.counts)}; logs in {config.run_dir}"
    )

    problems: dict[str, object] = {}
    if died:
        problems["processes that died"] = died
    if outcome.timed_out or outcome.stalled:
        problems["run"] = str(outcome)
    if failed := {r.synthetic.key: r.error for r in outcome.ledger.episodes.values() if r.error}:
        problems["the front desk gave up"] = failed
    if outcome.timelines.dead_letters:
        problems["dead letters"] = dict(outcome.timelines.dead_letters)
    if len(accounts) != EPISODES:
        problems["accounts"] = f"{len(accounts)} of {EPISODES} episodes"
    for episode, account in accounts.items():
        if why := ledger_problems(account) if account else ["no account"]:
            problems[f"{episode} not closed at a balanced zero"] = why
    problems |= counted_once(
        accounts, remittances, patient_payments, sent_835s(config.run_dir / "x12")
    )
    assert [c.component for c in crashes] == components
    assert problems == {}
