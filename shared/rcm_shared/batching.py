"""One database command for the writes that handlers ask for at the same moment.

The consumer handles a batch's keys at once (rcm_shared.kafka), so a service whose
handlers each write one independent document (the audit trail's inserts) would send one
command per record. A Coalescer gathers the items submitted while the event loop runs
those handlers and writes them with one call, at most `max_items` per call (FerretDB
wedges on large bulks). Every caller still waits for its own item, so a handler returns,
and its offset is committed, only once its write is done: at least once, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Each item's outcome: its result, or the exception for that item alone.
Write = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


class Coalescer(Generic[T, R]):
    def __init__(self, write: Write[T, R], max_items: int = 25) -> None:
        if not 1 <= max_items <= 25:
            raise ValueError("max_items must be between 1 and 25")
        self.write = write
        self.max_items = max_items
        self.calls = 0  # writes made: how well items were gathered
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flushing: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """`item` written with those submitted alongside it: its result, or its error."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._pending) == 1:
            # Runs once the handlers already scheduled have reached here too.
            task = asyncio.create_task(self._flush())
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        return await future

    async def _flush(self) -> None:
        taken, self._pending = self._pending, []
        chunks = [taken[i : i + self.max_items] for i in range(0, len(taken), self.max_items)]
        await asyncio.gather(*(self._write(chunk) for chunk in chunks))

    async def _write(self, chunk: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.calls += 1
        futures = [future for _, future in chunk]
        try:
            outcomes = list(await self.write([item for item, _ in chunk]))
        except Exception as error:  # the whole call failed: every item with it
            outcomes = [error] * len(chunk)
        except BaseException:  # cancelled (stopping): so are its callers
            for future in futures:
                future.cancel()
            raise
        if len(outcomes) != len(chunk):
            outcomes = [RuntimeError(f"{len(outcomes)} outcomes for {len(chunk)} items")] * len(
                chunk
            )
        for future, outcome in zip(futures, outcomes, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
