"""`rcm bench`: the whole platform as fast as it takes episodes, with raw baselines.

Starts Kafka/FerretDB (or uses KAFKA_BOOTSTRAP_SERVERS/MONGODB_URL), the eight
processes with the payer simulator's delays at 0, drives N episodes with the bots as
fast as the platform takes them, then reads every event of the run back from Kafka and
measures from the events' own `ce_time` headers (the time the producing service decided,
written into its outbox).

Hops. Each event is paired with the event that caused it: among the episode's earlier
events of the types its rule names (the same claim where the rule says so), the latest
one, because a service acts when its last missing input arrives. A hop's latency is
effect ce_time - cause ce_time: the cause's relay publish, Kafka, the consumer, the
handler's database write and, where a service batches or polls (claims' batch interval,
the mailboxes), that wait. A hop is *machine* when a service reacts on its own, *human*
when a person (a bot here) acts in between (coding, billing corrections, patient
payments, registration steps). Only machine hops are reported per hop.

End to end (per closed episode). Walk back from the episode's last episode-closed,
from each event to its cause, until appointment-scheduled: that is the episode's
critical path. machine_s = the sum of its machine hops, human_s = the sum of its human
hops (bot waiting), and machine_s + human_s = wall_s (episode-closed - appointment-
scheduled). The payer simulator's delays are 0 here, so the payer hop (claim-submitted
-> payment-posted) holds only the clearinghouse exchange and mailbox polling, which are
machine work and count in machine_s. Work off the critical path (e.g. an eligibility
check that finished while the coder was still coding) is in the hop table, not in
machine_s.

Times are ce_time, which the outbox stores as a BSON date: 1 ms resolution.

Also reported: episodes/s and events/s over the run window (first appointment-scheduled
to last episode-closed), CPU seconds and peak RSS per process (the platform's eight,
sampled every second, and this driver process with its bots), and the raw Kafka and
database baselines of `rawbench`, measured just before the platform starts so that they
run on a quiet machine. Everything goes to the JSON file, with these definitions.

Replicas (`--replicas N`): each service runs as N processes sharing its consumer group;
the bots spread their calls over the replicas; CPU and memory are per replica.

Preload (`--preload N`): before measuring, the run's stores are filled with N finished
episodes (a warm-up batch driven to the end, its documents cloned; see `preload`), so
the figures are those of a platform that already holds N episodes. The warm-up's
episodes are left out of every figure, and CPU seconds and peak memory count from the
end of the preload. The JSON's `preload` says how many episodes were preloaded and how
long it took (`preload.episodes` is 0 without one).

Infrastructure CPU: when deploy/local runs Kafka, FerretDB and PostgreSQL (their pid files
are in RCM_STATE), their CPU seconds over the same span are reported beside the services'
(PostgreSQL with its backends, those still running and those it has reaped), so the whole
machine's CPU per episode is on the report.

Database commands: every service counts the commands it sends to the database
(`rcm_database_commands_total`, by collection and command) and logs the counts when it
stops; the bench reads them from the run's logs and reports them per process, per
command and per event of the run. With a preload, the services restart after it, so
the counts are those of the measured run.

No figure is asserted anywhere: this measures, it does not judge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform as host
import resource
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import typer
from rcm_shared.telemetry import DATABASE_COMMANDS_LOGGED
from rich.console import Console
from rich.table import Table

from .platform import REPLICAS_HELP, Platform
from .rawbench import Baseline, kafka_baseline, latency_summary, mongo_baseline
from .timeline import Message, is_event_topic, list_topics, read_topics, short_type

MACHINE = "machine"
HUMAN = "human"
ANY = "*"  # any earlier event of the episode


@dataclass(frozen=True)
class Cause:
    types: frozenset[str]
    kind: str
    same_claim: bool = False


def _cause(kind: str, *types: str, same_claim: bool = False) -> Cause:
    return Cause(frozenset(types), kind, same_claim)


REGISTRATION = ("appointment-scheduled", "patient-registered", "coverage-updated")
ELIGIBILITY = ("eligibility-verified", "eligibility-failed")
# What collections reacts to when it decides to close, write off or bill the patient.
ACCOUNT_INPUTS = (
    "claim-closed",
    "payment-posted",
    "patient-payment-received",
    "coding-completed",
    "coding-corrected",
    *ELIGIBILITY,
    "appointment-cancelled",
)

# effect (short type) -> where its cause may be; the latest candidate over all wins.
RULES: dict[str, tuple[Cause, ...]] = {
    "patient-registered": (_cause(HUMAN, "appointment-scheduled"),),
    "coverage-updated": (_cause(HUMAN, "appointment-scheduled", "patient-registered"),),
    "patient-checked-in": (_cause(HUMAN, *REGISTRATION),),
    "encounter-completed": (_cause(HUMAN, "patient-checked-in"),),
    "appointment-cancelled": (_cause(HUMAN, ANY),),
    "eligibility-verified": (_cause(MACHINE, *REGISTRATION),),
    "eligibility-failed": (_cause(MACHINE, *REGISTRATION),),
    "coding-completed": (_cause(HUMAN, "encounter-completed"),),
    "coding-corrected": (_cause(HUMAN, "claim-denied"),),
    "claim-submitted": (
        _cause(
            MACHINE,
            "coding-completed",
            "coding-corrected",
            *ELIGIBILITY,
            "claim-resubmitted",
            "payment-posted",  # a secondary claim after the primary's posting
        ),
    ),
    "claim-accepted": (_cause(MACHINE, "claim-submitted", same_claim=True),),
    "claim-rejected": (_cause(MACHINE, "claim-submitted", same_claim=True),),
    "payment-posted": (_cause(MACHINE, "claim-submitted", same_claim=True),),
    "claim-paid": (_cause(MACHINE, "payment-posted", same_claim=True),),
    "claim-denied": (_cause(MACHINE, "payment-posted", same_claim=True),),
    "claim-resubmitted": (
        _cause(HUMAN, "claim-rejected", "claim-denied"),
        _cause(MACHINE, "coding-corrected"),
    ),
    "claim-closed": (
        _cause(MACHINE, "payment-posted", same_claim=True),
        _cause(HUMAN, "claim-rejected", "claim-denied", same_claim=True),
        _cause(MACHINE, "coding-corrected"),
    ),
    "statement-issued": (_cause(MACHINE, *ACCOUNT_INPUTS),),
    "balance-written-off": (_cause(MACHINE, *ACCOUNT_INPUTS),),
    "episode-closed": (_cause(MACHINE, *ACCOUNT_INPUTS),),
    "patient-payment-received": (_cause(HUMAN, "statement-issued"), _cause(HUMAN, ANY)),
    "payment-plan-created": (_cause(HUMAN, "statement-issued"),),
}


@dataclass(frozen=True)
class Event:
    kind: str  # short type, e.g. claim-submitted
    time: datetime
    claim_id: str | None = None


@dataclass(frozen=True)
class Hop:
    cause: Event
    effect: Event
    kind: str
    cause_index: int  # of the cause in the episode's events

    @property
    def label(self) -> str:
        return f"{self.cause.kind} -> {self.effect.kind}"

    @property
    def seconds(self) -> float:
        return (self.effect.time - self.cause.time).total_seconds()


def event_of(message: Message) -> Event:
    data = message.payload() or {}
    claim_id = data.get("claim_id")
    return Event(
        short_type(message.headers.get("ce_type", "?")),
        message.time,
        claim_id if isinstance(claim_id, str) else None,
    )


def cause_of(events: Sequence[Event], index: int) -> Hop | None:
    """The hop into events[index] (events in time order), or None if it has no cause."""
    effect = events[index]
    best: tuple[int, str] | None = None
    for rule in RULES.get(effect.kind, ()):
        for position in range(index - 1, -1, -1):
            candidate = events[position]
            if ANY not in rule.types and candidate.kind not in rule.types:
                continue
            if rule.same_claim and candidate.claim_id != effect.claim_id:
                continue
            if best is None or position > best[0]:
                best = (position, rule.kind)
            break  # the latest match of this rule
    if best is None:
        return None
    return Hop(events[best[0]], effect, best[1], best[0])


def hops_of(events: Sequence[Event]) -> list[Hop]:
    """Every event's hop from its cause (events in time order)."""
    return [hop for i in range(len(events)) if (hop := cause_of(events, i)) is not None]


@dataclass(frozen=True)
class CriticalPath:
    machine_s: float
    human_s: float
    wall_s: float
    complete: bool  # reached appointment-scheduled


def critical_path(events: Sequence[Event]) -> CriticalPath | None:
    """Back from the last episode-closed along causes; None if the episode is not closed."""
    closed = [i for i, e in enumerate(events) if e.kind == "episode-closed"]
    if not closed:
        return None
    index = closed[-1]
    machine = human = 0.0
    while events[index].kind != "appointment-scheduled":
        hop = cause_of(events, index)
        if hop is None:
            break
        if hop.kind == MACHINE:
            machine += hop.seconds
        else:
            human += hop.seconds
        index = hop.cause_index
    start = events[index]
    return CriticalPath(
        machine_s=machine,
        human_s=human,
        wall_s=(events[closed[-1]].time - start.time).total_seconds(),
        complete=start.kind == "appointment-scheduled",
    )


def episodes_of(messages: Iterable[Message]) -> dict[str, list[Event]]:
    """Events by episode (ce_subject), each list in time order."""
    by_episode: dict[str, list[tuple[datetime, str, int, int, Event]]] = defaultdict(list)
    for m in messages:
        if m.subject and "dlq_original_topic" not in m.headers:
            event = event_of(m)
            by_episode[m.subject].append((event.time, m.topic, m.partition, m.offset, event))
    return {
        episode: [row[-1] for row in sorted(rows, key=lambda row: row[:4])]
        for episode, rows in by_episode.items()
    }


def analyse(episodes: Mapping[str, Sequence[Event]]) -> dict[str, Any]:
    """Per machine hop and end-to-end latencies of the episodes (closed ones for paths)."""
    samples: dict[str, list[float]] = defaultdict(list)
    machine, human, wall = [], [], []
    complete = 0
    for events in episodes.values():
        for hop in hops_of(events):
            if hop.kind == MACHINE:
                samples[hop.label].append(hop.seconds)
        path = critical_path(events)
        if path is not None:
            machine.append(path.machine_s)
            human.append(path.human_s)
            wall.append(path.wall_s)
            complete += path.complete
    return {
        "hops": {label: latency_summary(values) for label, values in sorted(samples.items())},
        "end_to_end": {
            "episodes": len(machine),
            "complete_paths": complete,
            "machine": latency_summary(machine),
            "human": latency_summary(human),
            "wall": latency_summary(wall),
        },
    }


def run_window(episodes: Mapping[str, Sequence[Event]]) -> tuple[datetime, datetime] | None:
    """First appointment-scheduled to last episode-closed of the run."""
    starts = [e.time for es in episodes.values() for e in es if e.kind == "appointment-scheduled"]
    ends = [e.time for es in episodes.values() for e in es if e.kind == "episode-closed"]
    if not starts or not ends:
        return None
    return min(starts), max(ends)


# ---------------------------------------------------------------------------- the run


DEFINITIONS = {
    "hop": "effect ce_time - ce_time of its cause: the latest earlier event of the episode "
    "of the types the effect's rule names (same claim id where the rule says); machine hops "
    "only; ce_time comes from the outbox entry's BSON date, so resolution is 1 ms",
    "end_to_end.machine": "per closed episode: sum of the machine hops on the critical path "
    "(last episode-closed back to appointment-scheduled, each event to its cause); human "
    "(bot) hops are excluded; the payer simulator's delays are 0, so the payer hop is "
    "clearinghouse exchange + mailbox polling and counts as machine",
    "end_to_end.human": "per closed episode: sum of the human (bot) hops on that path",
    "end_to_end.wall": "per closed episode: episode-closed - appointment-scheduled",
    "run.events_to_kafka_burst": "platform events/s over the raw Kafka burst's messages/s "
    "of the same run: the share of the broker's capacity the platform uses",
    "episodes_per_s": "closed episodes / run window (first appointment-scheduled to last "
    "episode-closed, from ce_time)",
    "events_per_s": "events of the run (all rcm.* topics of the run's prefix, no dead "
    "letters) / run window",
    "processes": "CPU seconds (user+system) from the platform's readiness (with a preload, "
    "from its end) to the end of the run, and peak resident memory (sampled every second), "
    "per OS process (per replica: claims-2)",
    "infrastructure": "CPU seconds (user+system) over the same span as processes of Kafka, "
    "FerretDB and PostgreSQL with its backends, when deploy/local runs them (pid files in "
    "RCM_STATE); empty otherwise",
    "run.machine_cpu_s_per_episode": "CPU seconds of the platform's processes, the bots' "
    "driver and the infrastructure / closed episodes (null without infrastructure figures)",
    "run.platform_cpu_s_per_episode": "CPU seconds of the platform's processes (not the "
    "bots' driver) / closed episodes",
    "database": "database commands the services sent from their (last) start to their "
    "stop, as each logged on stopping: in all, per event of the run, per process and per "
    "command",
    "preload": "finished episodes put into the stores before measuring: a warm-up batch "
    "driven to the end, then every document of every service database cloned with new "
    "episode ids; the warm-up's episodes are left out of every other figure",
}


INFRA_PID_FILES = {
    "kafka": "kafka/pid",
    "ferretdb": "ferretdb/pid",
    "postgresql": "postgresql/pid",
}


def infra_cpu_s(state: Path | None = None) -> dict[str, float]:
    """CPU seconds so far of each infrastructure process deploy/local runs from `state`
    (RCM_STATE), with its children, running or reaped; {} when it runs none."""
    state = state or Path(
        os.environ.get("RCM_STATE", Path.home() / ".cache" / "rcm-platform" / "state")
    )
    found: dict[str, float] = {}
    for name, pid_file in INFRA_PID_FILES.items():
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            process = psutil.Process(int((state / pid_file).read_text().split()[0]))
            times = process.cpu_times()
            found[name] = sum(
                (times.user, times.system, times.children_user, times.children_system)
            ) + sum(_own_cpu_s(child) for child in process.children(recursive=True))
    return found


def _own_cpu_s(process: psutil.Process) -> float:
    try:
        return float(sum(process.cpu_times()[:2]))
    except psutil.Error:  # gone meanwhile: its parent counts it once reaped
        return 0.0


Commands = dict[str, dict[str, int]]  # process -> "collection command" -> count


def database_commands(run_dir: Path) -> Commands:
    """Each process's database commands, from the last line its service logged on
    stopping (its last incarnation: after a preload's restart, the measured run)."""
    found: Commands = {}
    for log_path in sorted(run_dir.glob("*.log")):
        counts: dict[str, int] | None = None
        with log_path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                _, marker, rest = line.partition(DATABASE_COMMANDS_LOGGED)
                if marker:
                    with contextlib.suppress(ValueError):
                        counts = {str(k): int(v) for k, v in json.loads(rest).items()}
        if counts is not None:
            found[log_path.stem] = counts
    return found


def database_figures(commands: Commands, events: int) -> dict[str, Any]:
    by_command: dict[str, float] = defaultdict(float)
    by_process: dict[str, float] = {}
    for name, counts in commands.items():
        by_process[name] = sum(counts.values())
        for key, value in counts.items():
            by_command[key.split(" ")[-1]] += value
    total = sum(by_process.values())
    return {
        "commands": int(total),
        "commands_per_event": round(total / events, 2) if events else None,
        "by_process": {name: int(value) for name, value in sorted(by_process.items())},
        "by_command": {
            name: int(value) for name, value in sorted(by_command.items(), key=lambda i: -i[1])
        },
        "by_collection_command": {
            f"{name} {key}": int(value)
            for name, counts in sorted(commands.items())
            for key, value in sorted(counts.items(), key=lambda i: -i[1])
            if value
        },
    }


async def baselines(kafka: str, mongodb_url: str, scale: int) -> dict[str, Baseline]:
    """The raw figures, sized to the run (at least a few hundred operations each)."""
    return {
        "kafka_burst": await kafka_baseline(kafka, max(1000, scale * 50)),
        "kafka_one_at_a_time": await kafka_baseline(kafka, 200, one_at_a_time=True),
        "database_writes": await mongo_baseline(mongodb_url, max(500, scale * 10)),
    }


async def drive(
    episodes: int,
    concurrency: int,
    coders: int,
    timeout_s: float,
    port_offset: int,
    console: Console,
    replicas: int = 1,
    preload: int = 0,
    warmup: int = 20,
) -> dict[str, Any]:
    """Baselines first (on a quiet machine), then the platform run (after the preload,
    if any), then the analysis."""
    from .platform import Infrastructure
    from .preload import Preloader, PreloadPlan, PreloadReport
    from .run import Run, RunOptions

    with Infrastructure() as infra:
        console.print("raw baselines ...")
        raw = await baselines(infra.kafka, infra.mongodb_url, episodes)
        options = RunOptions(
            episodes=episodes,
            timeout_s=timeout_s,
            rate_per_s=0.0,  # all at once: as fast as the front desk is let in
            concurrency=concurrency,
            coders=coders,
            port_offset=port_offset,
            ack_delay_s=0.0,
            remit_delay_s=0.0,
            replicas=replicas,
        )
        driver = psutil.Process()
        cpu_before = sum(driver.cpu_times()[:2])
        infra_before = infra_cpu_s()
        preloader = (
            Preloader(
                PreloadPlan(preload, warmup),
                console,
                concurrency=concurrency,
                coders=coders,
                timeout_s=timeout_s,
            )
            if preload
            else None
        )

        async def prepare(platform: Platform) -> None:
            nonlocal cpu_before
            if preloader is not None:
                await preloader(platform)
            cpu_before = sum(driver.cpu_times()[:2])  # the driver's CPU counts from here
            infra_before.update(infra_cpu_s())

        run = Run(infra, options, console, prepare=prepare)
        result = await run.execute()
        infra_usage = {
            name: {"cpu_s": cpu_s - infra_before.get(name, 0.0)}
            for name, cpu_s in infra_cpu_s().items()
        }
        commands = database_commands(run.config.run_dir)
        driver_usage = {
            "cpu_s": sum(driver.cpu_times()[:2]) - cpu_before,
            # ru_maxrss is in KiB on Linux: the peak of this process, baselines included.
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }
        prefix = result.summary["topic_prefix"]
        topics = [t for t in await list_topics(infra.kafka) if is_event_topic(t, prefix)]
        messages = await read_topics(infra.kafka, topics)
    summary = {**result.summary}
    summary["resources"] = {**summary.get("resources", {}), "driver (bots)": driver_usage}
    summary["infrastructure"] = infra_usage
    preloaded = preloader.report if preloader else PreloadReport(requested=0)
    return report_of(summary, messages, raw, options, preloaded.as_json(), commands)


def report_of(
    summary: Mapping[str, Any],
    messages: Sequence[Message],
    raw: Mapping[str, Baseline],
    options: Any,
    preload: Mapping[str, Any] | None = None,
    commands: Commands | None = None,
) -> dict[str, Any]:
    """The figures of the run's events; those of a preload's warm-up episodes are left out."""
    preload = dict(preload or {"requested": 0, "episodes": 0})
    warmup = set(preload.pop("warmup_episode_ids", None) or ())
    messages = [m for m in messages if m.subject not in warmup] if warmup else messages
    by_episode = episodes_of(messages)
    report = analyse(by_episode)
    window = run_window(by_episode)
    closed = sum(
        1 for events in by_episode.values() if any(e.kind == "episode-closed" for e in events)
    )
    window_s = (window[1] - window[0]).total_seconds() if window else 0.0
    report["run"] = {
        "run_id": summary.get("run_id"),
        "topic_prefix": summary.get("topic_prefix"),
        "at": datetime.now(UTC).isoformat(),
        "host": {"cpus": os.cpu_count(), "python": host.python_version()},
        "episodes_requested": options.episodes,
        "episodes_closed": closed,
        "all_closed_and_balanced": summary.get("ok"),
        "stuck": [
            {"episode_id": item.get("episode_id"), "where": item.get("where")}
            for item in summary.get("stuck") or []
        ],
        "dead_letters": summary.get("dead_letters"),
        "window_s": round(window_s, 3),
        "driver_elapsed_s": summary.get("elapsed_s"),
        "episodes_per_s": round(closed / window_s, 3) if window_s > 0 else None,
        "events": len(messages),
        "events_per_s": round(len(messages) / window_s, 1) if window_s > 0 else None,
        "bots": {"concurrency": options.concurrency, "coders": options.coders, "rate_per_s": 0},
        "replicas": getattr(options, "replicas", 1),
        "simulator": {"ack_delay_s": options.ack_delay_s, "remit_delay_s": options.remit_delay_s},
    }
    report["processes"] = {
        name: {
            "cpu_s": round(float(usage.get("cpu_s", 0.0)), 2),
            "peak_rss_mb": round(int(usage.get("peak_rss_bytes", 0)) / 2**20, 1),
        }
        for name, usage in (summary.get("resources") or {}).items()
    }
    report["infrastructure"] = {
        name: {"cpu_s": round(float(usage["cpu_s"]), 2)}
        for name, usage in (summary.get("infrastructure") or {}).items()
    }
    platform_cpu_s = sum(
        u["cpu_s"] for name, u in report["processes"].items() if name != "driver (bots)"
    )
    machine_cpu_s = sum(u["cpu_s"] for u in report["processes"].values()) + sum(
        u["cpu_s"] for u in report["infrastructure"].values()
    )
    report["run"]["platform_cpu_s_per_episode"] = (
        round(platform_cpu_s / closed, 3) if closed else None
    )
    report["run"]["machine_cpu_s_per_episode"] = (
        round(machine_cpu_s / closed, 3) if closed and report["infrastructure"] else None
    )
    report["database"] = database_figures(commands or {}, len(messages))
    report["baselines"] = {name: b.as_json() for name, b in raw.items()}
    burst = raw.get("kafka_burst")
    events_per_s = report["run"]["events_per_s"]
    report["run"]["events_to_kafka_burst"] = (
        round(events_per_s / burst.per_second, 5) if burst and events_per_s else None
    )
    report["preload"] = preload
    report["definitions"] = DEFINITIONS
    return report


def render(report: Mapping[str, Any], console: Console) -> None:
    run = report["run"]
    if not run["all_closed_and_balanced"]:
        console.print(f"[yellow]not every episode closed balanced: {len(run['stuck'])} stuck[/]")
        for item in run["stuck"][:10]:
            console.print(f"  {item['episode_id']}: {item['where']}", markup=False)
    preload = report.get("preload") or {}
    at = f", {preload['episodes']} episodes preloaded" if preload.get("episodes") else ""
    replicas = run.get("replicas", 1)
    per_service = f", {replicas} replicas per service" if replicas > 1 else ""
    console.print(
        f"[bold]{run['episodes_closed']}/{run['episodes_requested']} episodes closed[/] in "
        f"{run['window_s']} s: {run['episodes_per_s']} episodes/s, {run['events']} events, "
        f"{run['events_per_s']} events/s (run {run['run_id']}, simulator delays 0"
        f"{per_service}{at})"
    )
    if run.get("events_to_kafka_burst") is not None:
        console.print(
            f"platform events/s = {run['events_to_kafka_burst']:.3%} of raw Kafka's burst msg/s"
        )
    if preload.get("episodes"):
        console.print(
            f"preload: {preload['episodes']} finished episodes ({preload['warmup_episodes']} "
            f"warm-up x {preload['copies'] + 1}), {preload['documents_inserted']} documents "
            f"inserted at {preload['documents_per_s']}/s; took {preload['total_s']} s "
            f"(warm-up {preload['warmup_s']} s, cloning {preload['clone_s']} s, services "
            f"ready again {preload['resume_s']} s)"
        )
    hops = Table(title="machine hops (ms, from ce_time)", title_justify="left")
    hops.add_column("hop", no_wrap=True)
    for column in ("n", "p50", "p95", "p99", "max"):
        hops.add_column(column, justify="right")
    for label, s in report["hops"].items():
        hops.add_row(label, *(str(s[k]) for k in ("count", "p50_ms", "p95_ms", "p99_ms", "max_ms")))
    e2e = report["end_to_end"]
    for name in ("machine", "human", "wall"):
        s = e2e[name]
        hops.add_row(
            f"[bold]end to end: {name}[/]",
            *(str(s[k]) for k in ("count", "p50_ms", "p95_ms", "p99_ms", "max_ms")),
        )
    console.print(hops)
    console.print(
        f"[dim]end to end = critical path from appointment-scheduled to episode-closed; "
        f"machine = its service hops, human = bot waiting; "
        f"{e2e['complete_paths']}/{e2e['episodes']} paths complete. "
        f"Definitions are in the JSON report.[/]"
    )
    processes = Table(title="processes", title_justify="left")
    for column in ("process", "CPU s", "peak RSS MB"):
        processes.add_column(column, justify="left" if column == "process" else "right")
    for name, u in report["processes"].items():
        processes.add_row(name, str(u["cpu_s"]), str(u["peak_rss_mb"]))
    for name, u in (report.get("infrastructure") or {}).items():
        processes.add_row(f"{name} (infrastructure)", str(u["cpu_s"]), "")
    console.print(processes)
    database = report.get("database") or {}
    if database.get("commands"):
        top = ", ".join(f"{name} {n}" for name, n in list(database["by_command"].items())[:6])
        console.print(
            f"database: {database['commands']} commands, {database['commands_per_event']} per "
            f"event ({top}); platform CPU {run.get('platform_cpu_s_per_episode')} s per episode"
            + (
                f", whole machine {run['machine_cpu_s_per_episode']} s"
                if run.get("machine_cpu_s_per_episode")
                else ""
            )
        )
    raw = Table(title="raw baselines (same run)", title_justify="left")
    for column in ("what", "n", "per s", "p50 ms", "p95 ms"):
        raw.add_column(column, justify="left" if column == "what" else "right")
    for b in report["baselines"].values():
        raw.add_row(
            b["what"],
            str(b["operations"]),
            str(b["per_second"]),
            str(b["latency"]["p50_ms"]),
            str(b["latency"]["p95_ms"]),
        )
    console.print(raw)


def command(
    episodes: int = typer.Option(100, "--episodes", min=1, help="How many episodes to drive."),
    json_path: Path = typer.Option(
        Path("var/bench.json"), "--json", help="Where to write figures."
    ),
    concurrency: int = typer.Option(16, min=1, help="Episodes at the front desk at once."),
    coders: int = typer.Option(4, min=1, help="Coder bots working the queue."),
    timeout_s: float = typer.Option(1800.0, min=1, help="Give up waiting after this long."),
    port_offset: int = typer.Option(0, help="Added to every service's HTTP port."),
    replicas: int = typer.Option(1, min=1, help=REPLICAS_HELP),
    preload: int = typer.Option(
        0,
        min=0,
        help="First fill the stores with this many finished episodes (a warm-up batch "
        "driven to the end, then its documents cloned with new episode ids while the "
        "services are stopped), then measure; the warm-up is left out of the figures.",
    ),
    warmup: int = typer.Option(
        20, min=1, help="Preload: real episodes in the warm-up batch that is cloned."
    ),
) -> None:
    """Benchmark the platform end to end, with raw Kafka and database baselines."""
    from .platform import PlatformError

    console = Console()
    try:
        report = asyncio.run(
            drive(
                episodes,
                concurrency,
                coders,
                timeout_s,
                port_offset,
                console,
                replicas=replicas,
                preload=preload,
                warmup=warmup,
            )
        )
    except PlatformError as error:
        typer.echo(f"rcm bench: {error}", err=True)
        raise typer.Exit(2) from None
    render(report, console)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    console.print(f"figures written to {json_path}")
