"""`rcm bench --preload N`: the run's stores hold N finished episodes before it measures.

Generic, so it needs no knowledge of any service's documents: once the platform is ready,
a warm-up batch of K real episodes is driven through it to the end (every one closed at
a balanced zero, every outbox empty), and then every document of every service database
(`run_<id>_<service>`) is cloned ceil(N / K) - 1 times. In copy c, each warm-up episode
id is replaced by a new id of its own (the same length and first letter, a hash of the
id and c) wherever it occurs in the document: in any string value or field name, also
inside other ids (`<episode>-1`). A document whose `_id` holds no episode id gets a
unique suffix on it (`~preload-<c>`); if it is a per-day counter (an ISO `day` field, as
the KPI rollups), copy c counts day - c, as a platform that served those episodes over
time would hold, instead of piling every copy onto the warm-up's day. So the stores hold
K * ceil(N / K) >= N finished episodes: the warm-up's and their copies, which no event
ever names again.

Copies are inserted in batches of at most 25 documents (FerretDB wedges on larger bulk
writes), a few batches at a time, with a progress bar, while the six services are
stopped (the payer simulator keeps running); they start again on the filled stores
before the bench measures (a planned stop, not counted as a restart). The warm-up's
events stay in the run's topics; the bench leaves those episodes out of its figures.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient
from rcm_shared.topology import SERVICES
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .platform import Platform, PlatformError
from .transport import mongo_options

BATCH_DOCUMENTS = 25  # FerretDB wedges on larger bulk writes
INSERT_WORKERS = 8  # batches in flight at once
DEFAULT_WARMUP = 20
WARMUP_NUMBERS = 900_000  # warm-up episodes are syn-9000xx: keys apart from the batch's
OUTBOX_WAIT_S = 120.0

Document = dict[str, Any]


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class PreloadPlan:
    """N requested finished episodes from a warm-up of K: K * (copies + 1) >= N."""

    requested: int
    warmup: int = DEFAULT_WARMUP

    def __post_init__(self) -> None:
        if self.requested < 1 or self.warmup < 1:
            raise ValueError("a preload needs at least one episode and one warm-up episode")

    @property
    def warmup_episodes(self) -> int:
        return min(self.warmup, self.requested)

    @property
    def copies(self) -> int:
        return math.ceil(self.requested / self.warmup_episodes) - 1

    @property
    def episodes(self) -> int:
        return self.warmup_episodes * (self.copies + 1)


# --------------------------------------------------------------------------- cloning


def clone_id(original: str, copy: int) -> str:
    """The id episode `original` has in copy `copy`: same first letter and length (an
    episode id is E + 12 hex), different for every copy, the same every time."""
    digest = hashlib.sha256(f"preload/{copy}/{original}".encode()).hexdigest()
    length = max(len(original) - 1, 1)
    while len(digest) < length:
        digest += hashlib.sha256(digest.encode()).hexdigest()
    return original[:1] + digest[:length]


def unique_id(value: Any, copy: int) -> Any:
    """An `_id` with no episode id in it, made unique for copy `copy`."""
    if isinstance(value, str):
        return f"{value}~preload-{copy}"
    if isinstance(value, ObjectId):
        return ObjectId()
    return {"preloaded_from": value, "copy": copy}


def _day_of(document: Mapping[str, Any]) -> date | None:
    value = document.get("day")
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


class IdRewriter:
    """Replaces episode ids wherever they occur in a document, per copy."""

    def __init__(self, episode_ids: Iterable[str]) -> None:
        ids = sorted({e for e in episode_ids if e}, key=lambda e: (-len(e), e))
        if not ids:
            raise ValueError("no episode ids to rewrite")
        self.episode_ids = tuple(ids)
        # Longest first: an id that contains another one is replaced as a whole.
        self.pattern = re.compile("|".join(re.escape(e) for e in ids))
        self.split = re.compile(f"({self.pattern.pattern})")  # keeps the ids it splits at

    def mapping(self, copy: int) -> dict[str, str]:
        return {e: clone_id(e, copy) for e in self.episode_ids}

    def mentions(self, value: Any) -> bool:
        """Whether an episode id occurs anywhere in `value`."""
        if isinstance(value, str):
            return self.pattern.search(value) is not None
        if isinstance(value, Mapping):
            return any(self.mentions(k) or self.mentions(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return any(self.mentions(item) for item in value)
        return False

    def rewrite(self, value: Any, mapping: Mapping[str, str]) -> Any:
        """`value` with every episode id replaced by its id in `mapping`; parts without one
        are the very same objects (nothing is copied that does not change)."""
        if isinstance(value, str):
            if self.pattern.search(value) is None:
                return value
            return self.pattern.sub(lambda match: mapping[match.group(0)], value)
        if isinstance(value, Mapping):
            changed = False
            out: dict[Any, Any] = {}
            for key, item in value.items():
                new_key = self.rewrite(key, mapping) if isinstance(key, str) else key
                new_item = self.rewrite(item, mapping)
                changed = changed or new_key is not key or new_item is not item
                out[new_key] = new_item
            return out if changed else value
        if isinstance(value, list):
            items = [self.rewrite(item, mapping) for item in value]
            return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
        return value

    def clone(self, document: Mapping[str, Any], copy: int, mapping: Mapping[str, str]) -> Document:
        """Copy `copy` of a document (`mapping` = self.mapping(copy))."""
        return self.template(document)(copy, mapping)

    def template(self, document: Mapping[str, Any]) -> Callable[[int, Mapping[str, str]], Document]:
        """`clone` for one document, compiled once: the document is searched for episode
        ids once, and each copy then rebuilds only what holds one (a preload clones
        every document hundreds of times)."""
        build = self._compile(document)
        fresh_id = "_id" in document and not self.mentions(document["_id"])
        day = _day_of(document) if fresh_id else None

        def clone(copy: int, mapping: Mapping[str, str]) -> Document:
            cloned = dict(document if build is None else build(mapping))
            if fresh_id:
                cloned["_id"] = unique_id(document["_id"], copy)
            if day is not None:
                cloned["day"] = (day - timedelta(days=copy)).isoformat()
            return cloned

        return clone

    def _compile(self, value: Any) -> Callable[[Mapping[str, str]], Any] | None:
        """A function from a mapping to the rewritten value; None if nothing changes."""
        if isinstance(value, str):
            parts = self.split.split(value)
            if len(parts) == 1:
                return None
            # Odd positions are episode ids, even ones the text around them.
            return lambda mapping: "".join(
                mapping[part] if n % 2 else part for n, part in enumerate(parts)
            )
        if isinstance(value, Mapping):
            entries = [
                (key, self._compile(key), item, self._compile(item)) for key, item in value.items()
            ]
            if all(key_f is None and item_f is None for _, key_f, _, item_f in entries):
                return None
            return lambda mapping: {
                (key if key_f is None else key_f(mapping)): (
                    item if item_f is None else item_f(mapping)
                )
                for key, key_f, item, item_f in entries
            }
        if isinstance(value, list):
            items = [(item, self._compile(item)) for item in value]
            if all(item_f is None for _, item_f in items):
                return None
            return lambda mapping: [
                item if item_f is None else item_f(mapping) for item, item_f in items
            ]
        return None


@dataclass
class CollectionSource:
    database: str
    collection: str
    documents: list[Document]


def batches(
    sources: Sequence[CollectionSource],
    rewriter: IdRewriter,
    copies: int,
    size: int = BATCH_DOCUMENTS,
) -> Iterator[tuple[CollectionSource, list[Document]]]:
    """Every copy of every document, as insert batches of at most `size` documents of
    one collection; copy by copy, so that an interrupted preload leaves whole copies."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    templates = [[rewriter.template(doc) for doc in source.documents] for source in sources]
    for copy in range(1, copies + 1):
        mapping = rewriter.mapping(copy)
        for source, clones in zip(sources, templates, strict=True):
            for start in range(0, len(clones), size):
                chunk = clones[start : start + size]
                yield source, [clone(copy, mapping) for clone in chunk]


@dataclass
class CloneResult:
    documents: int = 0  # inserted
    seconds: float = 0.0
    by_database: Counter[str] = field(default_factory=Counter)


async def read_sources(
    client: AsyncMongoClient[Document], databases: Sequence[str]
) -> list[CollectionSource]:
    """Every document of every collection of these databases (those that exist)."""
    present = set(await client.list_database_names())
    sources = []
    for name in databases:
        if name not in present:
            continue
        database = client[name]
        for collection in sorted(await database.list_collection_names()):
            if collection.startswith("system."):
                continue
            documents = [doc async for doc in database[collection].find({})]
            if documents:
                sources.append(CollectionSource(name, collection, documents))
    return sources


async def pending_outboxes(client: AsyncMongoClient[Document], databases: Sequence[str]) -> int:
    """Documents whose outbox (the platform's aggregate convention) still holds events."""
    present = set(await client.list_database_names())
    pending = 0
    for name in databases:
        if name not in present:
            continue
        for collection in await client[name].list_collection_names():
            if not collection.startswith("system."):
                pending += await client[name][collection].count_documents(
                    {"outbox.0": {"$exists": True}}
                )
    return pending


async def insert_copies(
    client: AsyncMongoClient[Document],
    sources: Sequence[CollectionSource],
    rewriter: IdRewriter,
    copies: int,
    *,
    workers: int = INSERT_WORKERS,
    batch_size: int = BATCH_DOCUMENTS,
    on_progress: Callable[[int], None] = lambda _: None,
) -> CloneResult:
    """Insert every copy, `workers` batches in flight; `on_progress(n)` after each batch."""
    result = CloneResult()
    queue: asyncio.Queue[tuple[CollectionSource, list[Document]] | None] = asyncio.Queue(
        maxsize=workers * 2
    )
    started = time.monotonic()

    async def produce() -> None:
        try:
            for item in batches(sources, rewriter, copies, batch_size):
                await queue.put(item)
        finally:
            for _ in range(workers):
                await queue.put(None)

    async def insert() -> None:
        while (item := await queue.get()) is not None:
            source, documents = item
            collection = client[source.database][source.collection]
            await collection.insert_many(documents, ordered=False)
            result.documents += len(documents)
            result.by_database[source.database] += len(documents)
            on_progress(len(documents))

    tasks = [asyncio.create_task(produce())]
    tasks += [asyncio.create_task(insert()) for _ in range(workers)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    result.seconds = time.monotonic() - started
    return result


# --------------------------------------------------------------------------- the preload


@dataclass
class PreloadReport:
    requested: int
    episodes: int = 0  # finished episodes in the stores before measuring
    warmup_episodes: int = 0
    copies: int = 0
    source_documents: int = 0  # the warm-up's documents, over every service database
    documents_inserted: int = 0
    documents_by_database: dict[str, int] = field(default_factory=dict)
    warmup_s: float = 0.0
    clone_s: float = 0.0
    resume_s: float = 0.0  # the services' start on the filled stores
    total_s: float = 0.0
    warmup_episode_ids: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["documents_per_s"] = (
            round(self.documents_inserted / self.clone_s, 1) if self.clone_s > 0 else None
        )
        for name in ("warmup_s", "clone_s", "resume_s", "total_s"):
            data[name] = round(data[name], 1)
        return data


class Preloader:
    """`prepare` for `Run`: warm-up, then clones, with progress on the console."""

    def __init__(
        self,
        plan: PreloadPlan,
        console: Console,
        *,
        seed: int = 1,
        concurrency: int = 16,
        coders: int = 4,
        timeout_s: float = 1800.0,
        stall_s: float = 180.0,
        workers: int = INSERT_WORKERS,
    ) -> None:
        self.plan = plan
        self.console = console
        self.seed = seed
        self.concurrency = concurrency
        self.coders = coders
        self.timeout_s = timeout_s
        self.stall_s = stall_s
        self.workers = workers
        self.report = PreloadReport(requested=plan.requested)

    def warmup_episodes(self) -> list[Any]:
        from .synthetic import EpisodeGenerator

        generator = EpisodeGenerator(self.seed + WARMUP_NUMBERS, datetime.now(UTC).date())
        return [
            dataclasses.replace(episode, number=WARMUP_NUMBERS + episode.number)
            for episode in generator.episodes(self.plan.warmup_episodes)
        ]

    async def __call__(self, platform: Platform) -> None:
        from .run import ledger_problems

        plan, report = self.plan, self.report
        started = time.monotonic()
        self.console.print(
            f"preload: {plan.requested} finished episodes = a warm-up of "
            f"{plan.warmup_episodes} real episodes + {plan.copies} copies of its documents"
        )
        outcome = await self._warm_up(platform)
        report.warmup_s = time.monotonic() - started
        report.warmup_episode_ids = sorted(outcome.ledger.episode_ids())
        bad = {
            episode: ledger_problems(account) if account else ["no account"]
            for episode, account in outcome.accounts.items()
        }
        bad = {episode: problems for episode, problems in bad.items() if problems}
        if outcome.closed < len(outcome.episodes) or bad:
            raise PlatformError(
                f"preload: the warm-up did not finish ({outcome}); its documents are no "
                f"finished episodes to clone: {dict(list(bad.items())[:5])}"
            )
        self.console.print(f"preload: warm-up done, {outcome}")
        databases = [platform.config.database(service.name) for service in SERVICES]
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            platform.config.infra.mongodb_url, serverSelectionTimeoutMS=10_000, **mongo_options()
        )
        services = [service.name for service in SERVICES]
        try:
            await self._wait_for_outboxes(client, databases)
            report.warmup_episodes = len(report.warmup_episode_ids)
            report.copies = plan.copies
            report.episodes = report.warmup_episodes * (plan.copies + 1)
            if plan.copies:
                # The services are stopped while the copies go in: nothing changes what is
                # read, and their sweeps and queue polls over ever larger collections do
                # not compete with the inserts (measured: 200 documents/s instead of ~1000).
                self.console.print("preload: services stopped while their stores are filled")
                platform.stop(services)
                sources = await read_sources(client, databases)
                report.source_documents = sum(len(s.documents) for s in sources)
                result = await self._clone(client, sources)
                report.documents_inserted = result.documents
                report.documents_by_database = dict(result.by_database)
                report.clone_s = result.seconds
                resumed = time.monotonic()
                await platform.resume(services)
                report.resume_s = time.monotonic() - resumed
                self.console.print(f"preload: services ready again in {report.resume_s:.0f} s")
            else:
                sources = await read_sources(client, databases)
                report.source_documents = sum(len(s.documents) for s in sources)
        finally:
            await client.close()
        report.total_s = time.monotonic() - started
        rate = report.as_json()["documents_per_s"]
        self.console.print(
            f"preload: {report.episodes} finished episodes in the stores "
            f"({report.source_documents} warm-up documents, {report.documents_inserted} "
            f"copies inserted at {rate or '-'} documents/s) in {report.total_s:.0f} s "
            f"(warm-up {report.warmup_s:.0f} s, cloning {report.clone_s:.0f} s)"
        )

    async def _warm_up(self, platform: Platform) -> Any:
        from .run import drive_episodes, progress_line

        last = [-math.inf]

        def show(counts: Mapping[str, int], elapsed_s: float) -> None:
            if elapsed_s - last[0] >= 5 or counts["closed"] == counts["total"]:
                self.console.print(f"preload warm-up {progress_line(counts, elapsed_s)}")
                last[0] = elapsed_s

        return await drive_episodes(
            platform,
            self.warmup_episodes(),
            timeout_s=self.timeout_s,
            rate_per_s=0.0,
            concurrency=self.concurrency,
            coders=self.coders,
            stall_s=self.stall_s,
            on_progress=show,
        )

    async def _wait_for_outboxes(
        self, client: AsyncMongoClient[Document], databases: Sequence[str]
    ) -> None:
        """Clones of an outbox that still holds events would be published: wait until
        the relays emptied every one."""
        deadline = time.monotonic() + OUTBOX_WAIT_S
        while (pending := await pending_outboxes(client, databases)) > 0:
            if time.monotonic() > deadline:
                raise PlatformError(
                    f"preload: {pending} documents still hold outbox events after "
                    f"{OUTBOX_WAIT_S:.0f} s; cloning them would publish their events again"
                )
            await asyncio.sleep(1.0)

    async def _clone(
        self, client: AsyncMongoClient[Document], sources: Sequence[CollectionSource]
    ) -> CloneResult:
        rewriter = IdRewriter(self.report.warmup_episode_ids)
        total = sum(len(s.documents) for s in sources) * self.plan.copies
        progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
        )
        task = progress.add_task("preload: cloning documents", total=total)
        done = [0]
        started = time.monotonic()
        last = [started]

        def advance(count: int) -> None:
            progress.advance(task, count)
            done[0] += count
            now = time.monotonic()
            if not self.console.is_terminal and (now - last[0] >= 5 or done[0] == total):
                rate = done[0] / max(now - started, 1e-9)
                self.console.print(
                    f"preload: {done[0]}/{total} documents cloned "
                    f"({rate:.0f}/s, {now - started:.0f} s)"
                )
                last[0] = now

        with progress:
            result = await insert_copies(
                client,
                sources,
                rewriter,
                self.plan.copies,
                workers=self.workers,
                on_progress=advance,
            )
        return result
