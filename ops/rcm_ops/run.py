"""`rcm run`: the platform's main job.

Starts Kafka and FerretDB (unless given), the eight processes under a fresh run id, and
the bots; drives N synthetic episodes from scheduling to a zero balance; shows progress;
ends with a summary and exit code 0 only if every episode closed with a balanced ledger.

Progress and the time per stage come from the events themselves: an aiokafka consumer
(no group, nothing committed) reads every topic of the run's prefix from the beginning,
and each event's `ce_time` (when the service made the change) dates the step. The money
and the final states come from collections' accounts, claim figures from claims' stats.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import signal
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from rcm_shared.auth import Role
from rcm_shared.topology import CONSOLE
from rich.console import Console
from rich.live import Live
from rich.table import Table

from .bots import Bots, Endpoints, Ledger
from .kpi_summary import kpi_table
from .platform import InfraUrls, Platform, PlatformConfig, SimulatorKnobs
from .synthetic import EpisodeGenerator, SyntheticEpisode
from .timeline import dollars as timeline_dollars
from .timeline import short_type
from .transport import kafka_options
from .worklist_summary import as_json, left_over, read_worklists, worklist_table

log = logging.getLogger("rcm.run")

DLQ_SUFFIX = ".dlq"


# --------------------------------------------------------------------------- events


@dataclass
class EpisodeEvents:
    first: dict[str, datetime] = field(default_factory=dict)
    last: dict[str, datetime] = field(default_factory=dict)
    count: Counter[str] = field(default_factory=Counter)
    latest: tuple[datetime, str] | None = None  # the newest event: where it stands


@dataclass(frozen=True)
class Stage:
    name: str
    start: tuple[str, ...]  # earliest of these events...
    end: tuple[str, ...]  # ...to the earliest of these
    start_last: bool = False  # use the newest start event instead (posted -> closed)


STAGES = (
    Stage(
        "scheduled -> eligibility",
        ("appointment-scheduled",),
        ("eligibility-verified", "eligibility-failed"),
    ),
    Stage("encounter -> coded", ("encounter-completed",), ("coding-completed",)),
    Stage("coded -> submitted", ("coding-completed",), ("claim-submitted",)),
    Stage("submitted -> adjudicated", ("claim-submitted",), ("payment-posted",)),
    Stage("posted -> closed", ("payment-posted",), ("episode-closed",), start_last=True),
    Stage("scheduled -> closed", ("appointment-scheduled",), ("episode-closed",)),
)

PROGRESS = (
    ("scheduled", "appointment-scheduled"),
    ("coded", "coding-completed"),
    ("billed", "claim-submitted"),
    ("paid", "claim-paid"),
    ("closed", "episode-closed"),
)


class Timelines:
    """The run's events per episode (only what the summary needs: types and times)."""

    def __init__(self) -> None:
        self.episodes: dict[str, EpisodeEvents] = defaultdict(EpisodeEvents)
        self.dead_letters: Counter[str] = Counter()
        self.records = 0

    def record(self, topic: str, headers: Mapping[str, str], key: bytes | None) -> None:
        self.records += 1
        if topic.endswith(DLQ_SUFFIX):
            self.dead_letters[short_type(headers.get("ce_type") or topic)] += 1
            return
        event_type = headers.get("ce_type")
        subject = headers.get("ce_subject") or (key.decode(errors="replace") if key else None)
        if not event_type or not subject:
            return
        try:
            when = datetime.fromisoformat(headers["ce_time"])
        except (KeyError, ValueError):
            return
        self.add(subject, short_type(event_type), when)

    def add(self, episode_id: str, event: str, when: datetime) -> None:
        events = self.episodes[episode_id]
        events.count[event] += 1
        if event not in events.first or when < events.first[event]:
            events.first[event] = when
        if event not in events.last or when > events.last[event]:
            events.last[event] = when
        if events.latest is None or when >= events.latest[0]:
            events.latest = (when, event)

    def reached(self, event: str, episode_ids: Sequence[str] | None = None) -> int:
        ids = self.episodes.keys() if episode_ids is None else episode_ids
        return sum(1 for e in ids if e in self.episodes and event in self.episodes[e].first)

    def durations(self, stage: Stage, episode_ids: Iterable[str] | None = None) -> list[float]:
        """The stage's time per episode (of these episodes, or of all) that went through it."""
        seconds: list[float] = []
        chosen = (
            self.episodes.values()
            if episode_ids is None
            else [self.episodes[e] for e in episode_ids if e in self.episodes]
        )
        for events in chosen:
            starts = [
                (events.last if stage.start_last else events.first)[name]
                for name in stage.start
                if name in events.first
            ]
            ends = [events.first[name] for name in stage.end if name in events.first]
            if starts and ends:
                start = max(starts) if stage.start_last else min(starts)
                seconds.append(max((min(ends) - start).total_seconds(), 0.0))
        return seconds


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(math.ceil(share * len(ordered)), 1)
    return ordered[rank - 1]


def stage_times(
    timelines: Timelines, episode_ids: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    rows = []
    for stage in STAGES:
        seconds = timelines.durations(stage, episode_ids)
        rows.append(
            {
                "stage": stage.name,
                "episodes": len(seconds),
                "median_s": round(statistics.median(seconds), 2) if seconds else None,
                "p95_s": round(percentile(seconds, 0.95), 2) if seconds else None,
                "max_s": round(max(seconds), 2) if seconds else None,
            }
        )
    return rows


class EventWatcher:
    """Reads every topic of the run (and its dead letters) as they appear."""

    def __init__(self, bootstrap: str, prefix: str, timelines: Timelines) -> None:
        self.bootstrap = bootstrap
        self.pattern = "^" + re.escape(prefix) + r"rcm\..*"
        self.timelines = timelines

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=2000,  # new topics are found within ~2 s
            client_id="rcm-run-watcher",
            **kafka_options(),
        )
        await consumer.start()
        try:
            consumer.subscribe(pattern=self.pattern)
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        headers = {
                            name: value.decode(errors="replace")
                            for name, value in record.headers or ()
                        }
                        self.timelines.record(record.topic, headers, record.key)
        finally:
            await consumer.stop()


# --------------------------------------------------------------------------- accounts


TOTAL_FIELDS = (
    "charges_cents",
    "payer_paid_cents",
    "adjustments_cents",
    "patient_paid_cents",
    "written_off_cents",
    "balance_cents",
)


def totals_of(account: Mapping[str, Any]) -> dict[str, int] | None:
    """The ledger totals of an account (nested under `totals` or at the top)."""
    for source in (account.get("totals"), account.get("ledger"), account):
        if isinstance(source, Mapping) and all(
            isinstance(source.get(name), int) for name in TOTAL_FIELDS
        ):
            return {name: int(source[name]) for name in TOTAL_FIELDS}
    return None


def state_of(account: Mapping[str, Any]) -> str:
    return str(account.get("state") or account.get("status") or "unknown")


def final_state(account: Mapping[str, Any] | None) -> str:
    """Where an account ended, finer than open/closed: what still keeps it open."""
    if account is None:
        return "no account"
    state = state_of(account)
    if state == "closed":
        return "closed"
    if account.get("cancelled"):
        return f"{state}: cancelled"
    if account.get("billing_over") is False:
        return f"{state}: in billing"
    if account.get("plan"):
        return f"{state}: on a payment plan"
    totals = totals_of(account)
    if totals is not None and totals["balance_cents"] < 0:
        return f"{state}: credit balance"
    statements = account.get("statements") or ()
    if any(isinstance(s, Mapping) and s.get("status") == "open" for s in statements):
        return f"{state}: statement open"
    return state


def ledger_problems(account: Mapping[str, Any]) -> list[str]:
    """Why the account is not closed at a balanced zero (empty: it is)."""
    totals = totals_of(account)
    if totals is None:
        return ["account has no ledger totals"]
    problems = []
    parts = sum(totals[name] for name in TOTAL_FIELDS[1:])
    if parts != totals["charges_cents"]:
        problems.append(
            f"ledger unbalanced: charges {totals['charges_cents']} != "
            f"payer paid + adjustments + patient paid + written off + balance = {parts}"
        )
    if totals["balance_cents"] != 0:
        problems.append(f"balance {totals['balance_cents']} cents")
    if state_of(account) != "closed":
        problems.append(f"account state {state_of(account)}")
    if account.get("invariant_holds") is False:
        problems += [str(p) for p in account.get("invariant_problems") or ["invariant broken"]]
    return problems


async def fetch_accounts(
    client: httpx.AsyncClient, episode_ids: Sequence[str]
) -> dict[str, dict[str, Any] | None]:
    async def one(episode_id: str) -> tuple[str, dict[str, Any] | None]:
        try:
            response = await client.get(f"/accounts/{episode_id}")
        except httpx.HTTPError:
            return episode_id, None
        if response.status_code != 200:
            return episode_id, None
        body = response.json()
        return episode_id, body if isinstance(body, dict) else None

    results: dict[str, dict[str, Any] | None] = {}
    for start in range(0, len(episode_ids), 20):
        pairs = await asyncio.gather(*(one(e) for e in episode_ids[start : start + 20]))
        results.update(pairs)
    return results


async def get_json(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    try:
        response = await client.get(path, params=params or None)
    except httpx.HTTPError as error:
        return {"error": repr(error)}
    if response.status_code != 200:
        return {"error": f"HTTP {response.status_code}", "body": response.text[:500]}
    return response.json()


# --------------------------------------------------------------------------- the run


@dataclass
class RunOptions:
    episodes: int = 200
    seed: int = 1
    timeout_s: float = 1800.0
    rate_per_s: float = 1.0
    concurrency: int = 8
    coders: int = 2
    port_offset: int = 0
    ack_delay_s: float = 2.0
    remit_delay_s: float = 5.0
    stall_s: float = 180.0
    json_path: Path | None = None
    replicas: int = 1  # processes per service (the payer simulator stays one)


def progress_counts(timelines: Timelines, ledger: Ledger, total: int) -> dict[str, int]:
    ids = list(ledger.episode_ids())
    counts = {label: timelines.reached(event, ids) for label, event in PROGRESS}
    counts["scheduled"] = max(counts["scheduled"], len(ids))
    counts["total"] = total
    return counts


PROGRESS_LABELS = tuple(label for label, _ in PROGRESS)


def progress_table(counts: Mapping[str, int], elapsed_s: float, run_id: str) -> Table:
    table = Table(title=f"rcm run {run_id}: {elapsed_s:,.0f} s", title_justify="left")
    for label in PROGRESS_LABELS:
        table.add_column(label, justify="right")
    table.add_row(*(f"{counts[label]}/{counts['total']}" for label in PROGRESS_LABELS))
    return table


def progress_line(counts: Mapping[str, int], elapsed_s: float) -> str:
    parts = ", ".join(f"{label} {counts[label]}/{counts['total']}" for label in PROGRESS_LABELS)
    return f"[{elapsed_s:6.0f} s] {parts}"


def dollars(cents: int | None) -> str:
    return "-" if cents is None else timeline_dollars(cents)


def where_stopped(
    episode_id: str | None,
    step: str,
    error: str | None,
    events: EpisodeEvents | None,
    account: Mapping[str, Any] | None,
) -> str:
    """Where a stuck episode stands: the front desk step, its newest event, its account."""
    if episode_id is None or step == "failed":
        return f"front desk ({step}): {error or 'not scheduled'}"
    parts = []
    if events is not None and events.latest is not None:
        parts.append(f"last event {events.latest[1]} at {events.latest[0]:%H:%M:%S}")
    else:
        parts.append("no events")
    if step != "encounter":
        parts.append(f"front desk stopped at {step}")
    if account is None:
        parts.append("no account in collections")
    else:
        parts.extend(ledger_problems(account))
    return "; ".join(parts)


ProgressCallback = Callable[[Mapping[str, int], float], None]


@dataclass
class DriveOutcome:
    """What driving the episodes came to; the services hold the details."""

    episodes: list[SyntheticEpisode]
    ledger: Ledger
    timelines: Timelines
    accounts: dict[str, dict[str, Any] | None]
    elapsed_s: float
    timed_out: bool
    stalled: bool = False  # nothing happened for `stall_s`: waiting longer would not help

    @property
    def closed(self) -> int:
        return sum(
            1
            for account in self.accounts.values()
            if account is not None and not ledger_problems(account)
        )

    def __str__(self) -> str:
        late = ", timed out" if self.timed_out else ", stalled" if self.stalled else ""
        return f"{self.closed}/{len(self.episodes)} closed in {self.elapsed_s:.0f} s{late}"


def _settled(ledger: Ledger, total: int) -> bool:
    """The front desk is through with every episode (done or given up)."""
    records = ledger.episodes.values()
    return len(ledger.episodes) == total and all(r.step in ("encounter", "failed") for r in records)


async def drive_episodes(
    platform: Platform,
    episodes: int | Sequence[SyntheticEpisode],
    *,
    seed: int = 1,
    timeout_s: float = 1800.0,
    rate_per_s: float = 0.0,
    concurrency: int = 8,
    coders: int = 2,
    stall_s: float = 180.0,
    on_progress: ProgressCallback | None = None,
) -> DriveOutcome:
    """Play every episode through the running platform until each closed with a balanced
    ledger (checked in collections), the timeout, or a stall (no event and no bot action
    for `stall_s` once the front desk is through); the bots stop before this returns."""
    if isinstance(episodes, int):
        episodes = EpisodeGenerator(seed, datetime.now(UTC).date()).episodes(episodes)
    episodes = list(episodes)
    total = len(episodes)
    timelines = Timelines()
    ledger = Ledger()
    stop = asyncio.Event()
    config = platform.config
    watcher = EventWatcher(config.infra.kafka, config.topic_prefix, timelines)
    bots = Bots(
        Endpoints(  # the bots take a service's replicas in turn
            registration=platform.urls("registration"),
            coding=platform.urls("coding"),
            claims=platform.urls("claims"),
            payments=platform.urls("payments"),
            collections=platform.urls("collections"),
        ),
        episodes,
        ledger,
        stop,
        platform.sign_in,
        rate_per_s=rate_per_s,
        concurrency=concurrency,
        coders=coders,
    )
    tasks = [
        asyncio.create_task(watcher.run(), name="watcher"),
        asyncio.create_task(bots.run(), name="bots"),
    ]
    started = time.monotonic()
    accounts: dict[str, dict[str, Any] | None] = {}
    timed_out = stalled = False
    activity, active_at = (-1, -1), started
    try:
        async with platform.client("collections", "rcm-run", Role.COLLECTOR) as collections:
            while True:
                elapsed = time.monotonic() - started
                if on_progress is not None:
                    on_progress(progress_counts(timelines, ledger, total), elapsed)
                live_ids = [
                    r.episode_id
                    for r in ledger.episodes.values()
                    if r.episode_id and r.step != "failed"
                ]
                if _settled(ledger, total) and timelines.reached("episode-closed", live_ids) == len(
                    live_ids
                ):
                    accounts = await fetch_accounts(collections, list(ledger.episode_ids()))
                    if all(
                        (account := accounts.get(e)) is not None and not ledger_problems(account)
                        for e in live_ids
                    ):
                        break
                now_activity = (timelines.records, sum(ledger.counts.values()))
                if now_activity != activity:
                    activity, active_at = now_activity, time.monotonic()
                timed_out = elapsed > timeout_s
                stalled = _settled(ledger, total) and time.monotonic() - active_at > stall_s
                if timed_out or stalled:
                    accounts = await fetch_accounts(collections, list(ledger.episode_ids()))
                    break
                await asyncio.sleep(1.0)
        if on_progress is not None:
            on_progress(progress_counts(timelines, ledger, total), time.monotonic() - started)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return DriveOutcome(
        episodes, ledger, timelines, accounts, time.monotonic() - started, timed_out, stalled
    )


def collections_totals(account_stats: Any) -> dict[str, int] | None:
    """The totals of collections' GET /accounts (the run's database holds only this run's
    accounts), if the answer has them."""
    totals = account_stats.get("totals") if isinstance(account_stats, Mapping) else None
    if isinstance(totals, Mapping) and all(isinstance(totals.get(n), int) for n in TOTAL_FIELDS):
        return {name: int(totals[name]) for name in TOTAL_FIELDS}
    return None


def summarize(
    outcome: DriveOutcome,
    platform: Platform,
    claim_stats: Any,
    account_stats: Any,
    seed: int,
) -> dict[str, Any]:
    """The run's summary as JSON-ready data; `stuck` lists every episode not closed at a
    balanced zero, with where it stopped."""
    states: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    stuck = []
    for synthetic in outcome.episodes:
        record = outcome.ledger.episodes.get(synthetic.key)
        episode_id = record.episode_id if record else None
        account = outcome.accounts.get(episode_id) if episode_id else None
        states[final_state(account)] += 1
        if account and (episode_totals := totals_of(account)):
            totals.update(episode_totals)
        problems = ledger_problems(account) if account else ["no account"]
        if problems or record is None or record.step == "failed":
            stuck.append(
                {
                    "episode": synthetic.key,
                    "episode_id": episode_id,
                    "scenario": synthetic.scenario,
                    "self_pay": synthetic.self_pay,
                    "where": where_stopped(
                        episode_id,
                        record.step if record else "new",
                        record.error if record else None,
                        outcome.timelines.episodes.get(episode_id) if episode_id else None,
                        account,
                    ),
                }
            )
    return {
        "run_id": platform.run_id,
        "topic_prefix": platform.config.topic_prefix,
        "episodes": len(outcome.episodes),
        "seed": seed,
        "elapsed_s": round(outcome.elapsed_s, 1),
        "timed_out": outcome.timed_out,
        "stalled": outcome.stalled,
        "episodes_by_state": dict(states),
        "collections_accounts": account_stats,
        "claims": claim_stats,
        # Summed over the episodes' accounts (each was read for the ledger check) and
        # compared with collections' own totals, which must say the same.
        "money_cents": {name: int(totals.get(name, 0)) for name in TOTAL_FIELDS},
        "collections_totals": collections_totals(
            account_stats.get("all") if isinstance(account_stats, Mapping) else None
        ),
        # This batch's episodes only: the run's topics may hold others (a bench's warm-up).
        "stage_times": stage_times(outcome.timelines, outcome.ledger.episode_ids()),
        "dead_letters": dict(outcome.timelines.dead_letters),
        "bots": dict(outcome.ledger.counts),
        "resources": {name: asdict(u) for name, u in platform.resource_usage().items()},
        "restarts": platform.restarts(),
        "stuck": stuck,
        "ok": not stuck,
    }


@dataclass
class RunResult:
    run_id: str
    ok: bool
    summary: dict[str, Any]


Prepare = Callable[[Platform], Awaitable[None]]


class Run:
    """`rcm run` on given infrastructure: platform, bots, progress, summary.

    `prepare`, if given, runs once the platform is ready and before the episodes are
    driven (a bench's preload); the summary's CPU seconds then count from its end."""

    def __init__(
        self,
        infra: InfraUrls,
        options: RunOptions,
        console: Console,
        prepare: Prepare | None = None,
    ) -> None:
        self.options = options
        self.console = console
        self.prepare = prepare
        self.config = PlatformConfig(
            infra=infra,
            port_offset=options.port_offset,
            simulator=SimulatorKnobs(options.seed, options.ack_delay_s, options.remit_delay_s),
            replicas=options.replicas,
        )

    @property
    def run_id(self) -> str:
        return self.config.run_id

    async def execute(self) -> RunResult:
        options = self.options
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
        handler = self._log_to_file()
        self.console.print(
            f"run {self.run_id}: {options.episodes} episodes, seed {options.seed}; "
            f"logs in {self.config.run_dir}"
        )
        started = time.monotonic()
        try:
            async with Platform(self.config) as platform:
                self.console.print(
                    f"platform ready in {time.monotonic() - started:.0f} s "
                    f"(topics {self.config.topic_prefix}*, databases "
                    f"{self.config.database('<service>')})"
                )
                if options.replicas > 1:
                    self.console.print(replica_ports(platform))
                if any(p.name == CONSOLE.name for p in self.config.processes):
                    self.console.print(
                        f"web console: {platform.url(CONSOLE.name)}/ (sign in with "
                        "`.venv/bin/rcm token --role biller --user you`)"
                    )
                sampler = asyncio.create_task(platform.sample_forever(), name="sampler")
                try:
                    if self.prepare is not None:
                        await self.prepare(platform)
                        platform.sample()
                        platform.mark_usage()
                    outcome = await self._drive(platform)
                finally:
                    sampler.cancel()
                    await asyncio.gather(sampler, return_exceptions=True)
                    platform.sample()
                async with (
                    platform.client("claims", "rcm-run", Role.OPS) as claims,
                    platform.client("collections", "rcm-run", Role.OPS) as collections,
                    platform.client("kpis", "rcm-run", Role.OPS) as kpis,
                    platform.client("payer-simulator", "rcm-run", Role.OPS) as payer,
                ):
                    claim_stats = await get_json(claims, "/stats")
                    account_stats = {
                        "all": await get_json(collections, "/accounts"),
                        "open": await get_json(collections, "/accounts", state="open"),
                        "closed": await get_json(collections, "/accounts", state="closed"),
                    }
                    kpi_report = await get_json(kpis, "/kpis")
                    # What the payers denied and why (by CARC): their rules at work.
                    payer_stats = await get_json(payer, "/stats")
                worklists = await read_worklists(platform, list(outcome.ledger.episode_ids()))
                summary = summarize(outcome, platform, claim_stats, account_stats, options.seed)
                summary["kpis"] = kpi_report
                summary["payer"] = payer_stats
                with_worklists(summary, as_json(worklists))
        finally:
            logging.getLogger("rcm").removeHandler(handler)
            handler.close()
        text = json.dumps(summary, indent=2, default=str)
        (self.config.run_dir / "summary.json").write_text(text)
        if options.json_path is not None:
            options.json_path.write_text(text)
        return RunResult(self.run_id, bool(summary["ok"]), summary)

    async def _drive(self, platform: Platform) -> DriveOutcome:
        if self.console.is_terminal:
            with Live(console=self.console, refresh_per_second=2) as live:

                def show(counts: Mapping[str, int], elapsed_s: float) -> None:
                    live.update(progress_table(counts, elapsed_s, self.run_id))

                return await self._drive_with(platform, show)
        last = [-math.inf]

        def print_line(counts: Mapping[str, int], elapsed_s: float) -> None:
            if elapsed_s - last[0] >= 5 or counts["closed"] == counts["total"]:
                print(progress_line(counts, elapsed_s), flush=True)
                last[0] = elapsed_s

        return await self._drive_with(platform, print_line)

    async def _drive_with(self, platform: Platform, show: ProgressCallback) -> DriveOutcome:
        options = self.options
        return await drive_episodes(
            platform,
            options.episodes,
            seed=options.seed,
            timeout_s=options.timeout_s,
            rate_per_s=options.rate_per_s,
            concurrency=options.concurrency,
            coders=options.coders,
            stall_s=options.stall_s,
            on_progress=show,
        )

    def _log_to_file(self) -> logging.Handler:
        handler = logging.FileHandler(self.config.run_dir / "driver.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root = logging.getLogger("rcm")
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False  # the console belongs to the progress display
        return handler


# --------------------------------------------------------------------------- report


def replica_ports(platform: Platform) -> str:
    """Where each service's replicas listen, one line."""
    services = dict.fromkeys(r.process.name for r in platform.running.values())
    parts = []
    for service in services:
        ports = ", ".join(url.rsplit(":", 1)[1] for url in platform.urls(service))
        parts.append(f"{service} {ports}")
    return "HTTP ports: " + "; ".join(parts)


def claim_figure(stats: Any, *names: str) -> str:
    """A number from claims' GET /stats, wherever it sits (flat or under `claims`/`counts`)."""
    if not isinstance(stats, Mapping):
        return "-"
    for source in (stats, stats.get("counts"), stats.get("claims"), stats.get("by_status")):
        if isinstance(source, Mapping):
            for name in names:
                value = source.get(name)
                if isinstance(value, int):
                    return str(value)
    return "-"


def render_summary(summary: Mapping[str, Any], console: Console) -> None:
    outcome = Table(title="episodes", title_justify="left")
    outcome.add_column("final state")
    outcome.add_column("episodes", justify="right")
    for state, count in sorted(summary["episodes_by_state"].items()):
        outcome.add_row(state, str(count))

    claims = Table(title="claims", title_justify="left")
    for name in ("submitted", "accepted", "rejected", "denied", "paid"):
        claims.add_column(name, justify="right")
    stats = summary["claims"]
    claims.add_row(
        *(
            claim_figure(stats, name)
            for name in ("submitted", "accepted", "rejected", "denied", "paid")
        )
    )

    money = Table(title="money", title_justify="left")
    money.add_column("")
    money.add_column("amount", justify="right")
    labels = {
        "charges_cents": "charged",
        "payer_paid_cents": "paid by payers",
        "adjustments_cents": "adjusted",
        "patient_paid_cents": "paid by patients",
        "written_off_cents": "written off",
        "balance_cents": "still open",
    }
    for name, label in labels.items():
        money.add_row(label, dollars(summary["money_cents"].get(name)))

    stages = Table(title="time per stage (from event times)", title_justify="left")
    stages.add_column("stage")
    for name in ("episodes", "median", "p95", "max"):
        stages.add_column(name, justify="right")
    for row in summary["stage_times"]:
        stages.add_row(
            row["stage"],
            str(row["episodes"]),
            *(
                "-" if row[key] is None else f"{row[key]:.1f} s"
                for key in ("median_s", "p95_s", "max_s")
            ),
        )

    resources = Table(title="processes", title_justify="left")
    resources.add_column("process")
    resources.add_column("CPU", justify="right")
    resources.add_column("peak RSS", justify="right")
    resources.add_column("restarts", justify="right")
    for name, usage in summary["resources"].items():
        resources.add_row(
            name,
            f"{usage['cpu_s']:.1f} s",
            f"{usage['peak_rss_bytes'] / 2**20:.0f} MiB",
            str(summary["restarts"].get(name, 0)),
        )

    console.print(outcome, claims, money, stages, resources)
    reported = summary.get("collections_totals")
    if reported is not None and reported != summary["money_cents"]:
        console.print(
            "[yellow]collections' GET /accounts totals differ from the sum of the accounts:[/] "
            + ", ".join(f"{k} {dollars(v)}" for k, v in reported.items())
        )
    collections = summary.get("collections_accounts") or {}
    counts = {
        name: part.get("accounts")
        for name, part in collections.items()
        if isinstance(part, Mapping) and isinstance(part.get("accounts"), int)
    }
    if counts:
        holds = (collections.get("all") or {}).get("invariant_holds")
        console.print(
            "collections: "
            + ", ".join(f"{name} {count}" for name, count in counts.items())
            + f" accounts; ledger invariant over all accounts holds: {holds}"
        )
    payer = summary.get("payer") or {}
    if isinstance(payer.get("denied_by_carc"), Mapping):
        denials = {
            **{f"CO-{k}": v for k, v in payer["denied_by_carc"].items()},
            **{f"CO-{k} (line)": v for k, v in (payer.get("denied_lines_by_carc") or {}).items()},
        }
        said = ", ".join(f"{k} {v}" for k, v in sorted(denials.items()))
        console.print(f"payer denials by reason: {said or 'none'}")
    bots = ", ".join(f"{k} {v}" for k, v in sorted(summary["bots"].items()))
    console.print(f"bots: {bots or '-'}")
    if summary["dead_letters"]:
        letters = ", ".join(f"{k} {v}" for k, v in sorted(summary["dead_letters"].items()))
        console.print(f"[yellow]dead letters:[/] {letters}")
    elapsed = summary["elapsed_s"]
    ended = " (timed out)" if summary["timed_out"] else " (stalled)" if summary["stalled"] else ""
    console.print(
        f"{summary['episodes']} episodes in {elapsed:.0f} s{ended}; run {summary['run_id']}, "
        f"logs and summary.json in var/runs/{summary['run_id']}"
    )
    stuck = summary["stuck"]
    if stuck:
        console.print(f"[red]{len(stuck)} episode(s) did not close at a balanced zero:[/]")
        for item in stuck[:50]:
            console.print(
                f"  {item['episode']} {item['episode_id'] or '-'} ({item['scenario']}"
                f"{', self-pay' if item['self_pay'] else ''}): {item['where']}"
            )
        if len(stuck) > 50:
            console.print(f"  ... and {len(stuck) - 50} more (see summary.json)")
    else:
        console.print("[green]every episode closed at zero; every ledger balanced[/]")
    if "kpis" in summary:
        console.print(kpi_table(summary["kpis"]))
    if "worklists" in summary:
        console.print(worklist_table(summary["worklists"]))
    left = summary.get("left_in_worklists") or {}
    if left:
        count = len({episode for episodes in left.values() for episode in episodes})
        console.print(
            f"[red]every episode closed at zero, yet {count} of them are still in a worklist "
            "that should be empty; the run fails:[/]"
        )
        for name, episodes in left.items():
            more = f" and {len(episodes) - 10} more" if len(episodes) > 10 else ""
            console.print(f"  {name}: {', '.join(episodes[:10])}{more}")


def with_worklists(summary: dict[str, Any], worklists: list[dict[str, Any]]) -> None:
    """Adds the end-of-run worklists; when every episode closed at zero, one of the run's
    episodes left in any of them fails the run (`ok` false, `left_in_worklists` says where)."""
    summary["worklists"] = worklists
    left = left_over(worklists) if not summary["stuck"] else {}
    summary["left_in_worklists"] = left
    summary["ok"] = bool(summary["ok"]) and not left


def main(infra: InfraUrls, options: RunOptions, console: Console | None = None) -> bool:
    """Run, print the summary; True when every episode closed at a balanced zero."""
    console = console or Console()
    run = Run(infra, options, console)

    async def go() -> RunResult:
        task = asyncio.current_task()
        if task is not None:  # SIGTERM ends the run like Ctrl-C: everything is stopped
            with contextlib.suppress(NotImplementedError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await run.execute()

    try:
        result = asyncio.run(go())
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    render_summary(result.summary, console)
    return result.ok
