"""`rcm dead-letters list|replay`: see what failed, and send it back once it is fixed.

A dead letter is a record on `<topic>.dlq` written by `rcm_shared.kafka.Consumer`: the
original key, value and headers plus `dlq_*` provenance headers.

Replay publishes a dead letter back to its original topic with the original key, value
and headers minus the `dlq_*` ones, plus `replayed_from` (the dead letter's position).
The `ce_id` is unchanged, so every consumer's idempotency guard still applies: a group
that had applied the event sees a duplicate and changes nothing.

Replaying once: Kafka records cannot be marked, so each replay is recorded in a
companion topic `<topic>.dlq.replayed` (one partition, key = the dead letter's position
`<dlq topic>:<partition>:<offset>`, value = JSON: event id, when, by whom, forced).
Before replaying, the tool reads that topic and skips dead letters already replayed
unless `--force`. The identity is the dead letter's position, not its `ce_id`: an event
that fails again after a replay is a new dead letter (new position) and can be replayed
again; the same dead letter cannot, by accident. A companion topic rather than a header
scan of the original topic: it is small, lives beside the dead letters, and needs no
read of the (large) original topic.

Order of writes: publish to the original topic, then record the replay. A crash in
between leaves a replay unrecorded, and a later replay publishes the same event again,
which the idempotent consumers absorb; the other order could record a replay that
never happened. Two operators replaying at the same moment may likewise both publish;
that is harmless for the same reason. Dead letters of several consumer groups for the
same original record are replayed as one publish (every group reads the topic anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import typer
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from rcm_shared.kafka import DLQ_HEADER_PREFIX, DLQ_SUFFIX
from rich.console import Console
from rich.table import Table

from .timeline import (
    BOOTSTRAP,
    PREFIX,
    REPLAYED_FROM,
    REPLAYED_SUFFIX,
    Message,
    list_topics,
    read_topics,
)
from .transport import kafka_options

app = typer.Typer(help="Dead letters: list them, replay them once fixed.", no_args_is_help=True)


@dataclass(frozen=True)
class DeadLetter:
    message: Message  # the record on the .dlq topic

    @classmethod
    def of(cls, message: Message) -> DeadLetter | None:
        return cls(message) if "dlq_original_topic" in message.headers else None

    @property
    def position(self) -> str:
        """Identity of the dead letter: where it sits on the dead-letter topic."""
        m = self.message
        return f"{m.topic}:{m.partition}:{m.offset}"

    def _header(self, name: str) -> str:
        return self.message.headers.get(name, "")

    @property
    def original_topic(self) -> str:
        return self._header("dlq_original_topic")

    @property
    def original_position(self) -> tuple[str, str, str]:
        return (
            self.original_topic,
            self._header("dlq_original_partition"),
            self._header("dlq_original_offset"),
        )

    @property
    def group(self) -> str:
        return self._header("dlq_consumer_group")

    @property
    def exception_class(self) -> str:
        return self._header("dlq_exception_class")

    @property
    def exception_message(self) -> str:
        return self._header("dlq_exception_message")

    @property
    def failed_at(self) -> str:
        return self._header("dlq_failed_at")

    @property
    def event_id(self) -> str | None:
        return self.message.headers.get("ce_id")

    @property
    def event_type(self) -> str | None:
        return self.message.headers.get("ce_type")

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The original headers (no dlq_*, no earlier replayed_from) and where it came from."""
        headers = [
            (name, value.encode())
            for name, value in self.message.headers.items()
            if not name.startswith(DLQ_HEADER_PREFIX) and name != REPLAYED_FROM
        ]
        return [*headers, (REPLAYED_FROM, self.position.encode())]

    def as_json(self, replay: Mapping[str, Any] | None = None) -> dict[str, Any]:
        topic, partition, offset = self.original_position
        return {
            "dead_letter": self.position,
            "original_topic": topic,
            "original_partition": int(partition) if partition.isdigit() else partition,
            "original_offset": int(offset) if offset.isdigit() else offset,
            "consumer_group": self.group,
            "exception_class": self.exception_class,
            "exception_message": self.exception_message,
            "failed_at": self.failed_at,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "replayed": dict(replay) if replay else None,
        }


def companion_of(dlq_topic: str) -> str:
    return f"{dlq_topic}{REPLAYED_SUFFIX}"


def dlq_topic_of(topic: str) -> str:
    """The dead-letter topic of an original topic (a .dlq name is taken as it is)."""
    return topic if topic.endswith(DLQ_SUFFIX) else f"{topic}{DLQ_SUFFIX}"


def replays_of(messages: Iterable[Message]) -> dict[str, dict[str, Any]]:
    """Recorded replays by dead-letter position; the newest record of a position wins."""
    replays: dict[str, dict[str, Any]] = {}
    for message in messages:
        if not message.key:
            continue
        try:
            record = json.loads(message.value or b"")
        except ValueError:
            record = {}
        replays[message.key.decode(errors="replace")] = record if isinstance(record, dict) else {}
    return replays


@dataclass
class ReplayPlan:
    """What a replay will do: each batch is one original record, published once."""

    batches: list[list[DeadLetter]] = field(default_factory=list)
    skipped: list[DeadLetter] = field(default_factory=list)  # already replayed
    missing_ids: list[str] = field(default_factory=list)


def plan_replay(
    dead_letters: Sequence[DeadLetter],
    replayed: Mapping[str, Any],
    ids: Sequence[str] = (),
    force: bool = False,
) -> ReplayPlan:
    """Select dead letters (all, or those with the given ce_ids), skip replayed ones
    unless forced, and fold dead letters of the same original record into one batch."""
    wanted = set(ids)
    plan = ReplayPlan(
        missing_ids=[i for i in dict.fromkeys(ids) if all(d.event_id != i for d in dead_letters)]
    )
    batches: dict[tuple[str, str, str], list[DeadLetter]] = {}
    for dead_letter in dead_letters:
        if wanted and dead_letter.event_id not in wanted:
            continue
        if dead_letter.position in replayed and not force:
            plan.skipped.append(dead_letter)
            continue
        batches.setdefault(dead_letter.original_position, []).append(dead_letter)

    def original_order(batch: list[DeadLetter]) -> tuple[int, int, str]:
        _, partition, offset = batch[0].original_position
        number = (
            int(partition) if partition.isdigit() else -1,
            int(offset) if offset.isdigit() else -1,
        )
        return (*number, batch[0].position)

    plan.batches = sorted(batches.values(), key=original_order)
    return plan


async def load(
    bootstrap: str, dlq_topics: Sequence[str]
) -> tuple[list[DeadLetter], dict[str, Any]]:
    """The dead letters of the topics (oldest first per partition) and their replays."""
    messages = await read_topics(bootstrap, dlq_topics)
    messages.sort(key=lambda m: (m.topic, m.partition, m.offset))
    dead_letters = [d for m in messages if (d := DeadLetter.of(m)) is not None]
    replays = replays_of(await read_topics(bootstrap, [companion_of(t) for t in dlq_topics]))
    return dead_letters, replays


async def dead_letter_topics(bootstrap: str, prefix: str, topic: str | None) -> list[str]:
    if topic:
        return [dlq_topic_of(topic)]
    return [
        t
        for t in await list_topics(bootstrap)
        if t.startswith(f"{prefix}rcm.") and t.endswith(DLQ_SUFFIX)
    ]


async def _ensure_companion(bootstrap: str, dlq_topic: str) -> str:
    """Create the companion topic like its dead-letter topic (replication), 1 partition."""
    companion = companion_of(dlq_topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_options())
    await admin.start()
    try:
        if companion in await admin.list_topics():
            return companion
        (described,) = await admin.describe_topics([dlq_topic])
        replicas = len(described["partitions"][0]["replicas"]) if described["partitions"] else 1
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(companion, 1, replicas)])
        return companion
    finally:
        await admin.close()


@dataclass(frozen=True)
class Replayed:
    dead_letters: list[DeadLetter]
    to: str  # original topic:partition:offset of the re-published record


async def execute(bootstrap: str, dlq_topic: str, plan: ReplayPlan, force: bool) -> list[Replayed]:
    """Publish each batch once, then record every dead letter of it as replayed."""
    if not plan.batches:
        return []
    companion = await _ensure_companion(bootstrap, dlq_topic)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        client_id="rcm-ops-replay",
        **kafka_options(),
    )
    await producer.start()
    done: list[Replayed] = []
    try:
        try:
            operator = getpass.getuser()
        except (KeyError, OSError):  # no user name in this environment
            operator = "unknown"
        for batch in plan.batches:
            first = batch[0]
            sent = await producer.send_and_wait(
                first.original_topic,
                value=first.message.value,
                key=first.message.key,
                headers=first.replay_headers(),
            )
            to = f"{sent.topic}:{sent.partition}:{sent.offset}"
            for dead_letter in batch:
                record = {
                    "event_id": dead_letter.event_id,
                    "replayed_at": datetime.now(UTC).isoformat(),
                    "replayed_by": operator,
                    "replayed_to": to,
                    "forced": force,
                }
                await producer.send_and_wait(
                    companion, value=json.dumps(record).encode(), key=dead_letter.position.encode()
                )
            done.append(Replayed(batch, to))
    finally:
        await producer.stop()
    return done


# ---------------------------------------------------------------------------- commands


def _short_class(name: str) -> str:
    return name.rsplit(".", 1)[-1]


@app.command("list")
def list_(
    prefix: str = PREFIX,
    topic: str | None = typer.Option(None, "--topic", help="Only this original topic."),
    bootstrap: str = BOOTSTRAP,
    as_json: bool = typer.Option(False, "--json", help="One JSON document on stdout."),
) -> None:
    """Dead letters with their provenance, and whether they were replayed."""

    async def collect() -> tuple[list[DeadLetter], dict[str, Any]]:
        return await load(bootstrap, await dead_letter_topics(bootstrap, prefix, topic))

    dead_letters, replays = asyncio.run(collect())
    if as_json:
        print(json.dumps([d.as_json(replays.get(d.position)) for d in dead_letters], indent=2))
        return
    table = Table(title=f"{len(dead_letters)} dead letter(s)", title_justify="left")
    columns = ("original topic:partition:offset", "group", "exception", "failed at")
    for column in (*columns, "event id / type", "replayed"):
        table.add_column(column, overflow="fold")
    for d in dead_letters:
        topic_name, partition, offset = d.original_position
        replay = replays.get(d.position)
        table.add_row(
            f"{topic_name}:{partition}:{offset}",
            d.group,
            f"{_short_class(d.exception_class)}: {d.exception_message[:300]}",
            d.failed_at,
            f"{d.event_id or '-'}\n{d.event_type or '-'}",
            f"{replay.get('replayed_at', 'yes')}" if replay else "no",
        )
    Console().print(table)


@app.command()
def replay(
    topic: str = typer.Option(..., "--topic", help="The original topic (as `list` shows it)."),
    ids: list[str] = typer.Option([], "--id", help="Only the dead letters with this ce_id."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be replayed."),
    force: bool = typer.Option(False, "--force", help="Replay even if replayed before."),
    bootstrap: str = BOOTSTRAP,
) -> None:
    """Re-publish dead letters to their original topic (same ce_id), once each."""
    console = Console()
    dlq_topic = dlq_topic_of(topic)
    dead_letters, replays = asyncio.run(load(bootstrap, [dlq_topic]))
    plan = plan_replay(dead_letters, replays, ids, force)
    for missing in plan.missing_ids:
        console.print(f"[red]no dead letter with ce_id {missing} on {dlq_topic}[/]")
    for d in plan.skipped:
        when = replays[d.position].get("replayed_at", "?")
        console.print(
            f"[yellow]skipped[/] {d.event_id} ({d.position}): already replayed at {when}; "
            "--force replays it again"
        )
    verb = "would replay" if dry_run else "replayed"
    done = [Replayed(batch, "-") for batch in plan.batches] if dry_run else []
    if not dry_run:
        done = asyncio.run(execute(bootstrap, dlq_topic, plan, force))
    for item in done:
        first = item.dead_letters[0]
        groups = ", ".join(d.group for d in item.dead_letters)
        target = f" as {item.to}" if item.to != "-" else ""
        console.print(
            f"{verb} {first.event_id} ({first.event_type}) from {first.position} "
            f"to {first.original_topic}{target} [dim](failed in {groups})[/]"
        )
    if not dead_letters:
        console.print(f"no dead letters on {dlq_topic}")
    if plan.missing_ids or (plan.skipped and not plan.batches):
        raise typer.Exit(1)
