"""Commands from people, applied by the process that owns their aggregate.

An HTTP handler on any replica publishes the command as a `Request` event keyed by its
aggregate and waits for the answer. The owner consumes it in order with that
aggregate's events (no second writer, whatever the store) and writes the answer to the
`replies` collection under the request's id, before it commits the offset. A redelivered
request is a duplicate: the owner answers again from the state as it is.

When the asker is the owner's own process (always, with one replica), the answer is
handed to the waiting asker in memory and nothing is written: the `replies` document is
for an asker in another process, which reads it by id. An asker whose request's
partition this process owns waits on the answer in memory and reads `replies` only now
and then, for when ownership moved meanwhile.

A request id comes from the caller's Idempotency-Key when there is one, so a retried
request is the same request; else it is new. The first use of a key records a hash of the
request (an insert, unique on any store): the same key with other content is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from rcm_contracts import Request

from .envelope import Envelope
from .errors import Conflict, Refusal, TransientError
from .store import Document

if TYPE_CHECKING:
    from .kafka import EventPublisher

REQUESTS = uuid.UUID("5b0c3f4e-9a51-4f9e-8d0e-6c1f2f4b7a10")  # namespace of request ids


def request_id(request_type: str, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(REQUESTS, f"{request_type}\n{idempotency_key}"))


@dataclass(frozen=True)
class Reply:
    """The answer to a request: what a request handler returns when the status is not
    200 (e.g. 201 for a resource it created), and what the asker gets back."""

    status: int
    body: Any

    def response(self) -> JSONResponse:
        """The answer as the HTTP response: the owner's status and body."""
        return JSONResponse(self.body, status_code=self.status)


# How often an asker that expects the answer in memory looks in `replies` all the same.
LOCAL_POLL_S = 1.0


class Replies:
    """The answers to requests, by request id (read by id only), or in memory to an
    asker waiting in this process."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["replies"]
        self._waiting: dict[str, list[asyncio.Future[Reply]]] = {}

    async def answer(self, request_id: str, outcome: object | Refusal) -> None:
        if isinstance(outcome, Refusal):
            reply = Reply(outcome.http_status, outcome.detail())
        elif isinstance(outcome, Reply):
            reply = Reply(outcome.status, jsonable_encoder(outcome.body))
        else:
            reply = Reply(200, jsonable_encoder(outcome))
        waiters = [w for w in self._waiting.pop(request_id, ()) if not w.done()]
        if waiters:
            for waiter in waiters:
                waiter.set_result(reply)
            return
        await self.collection.update_one(
            {"_id": request_id},
            {"$set": {"status": reply.status, "body": reply.body, "at": datetime.now(UTC)}},
            upsert=True,
        )

    @contextmanager
    def expecting(self, request_id: str) -> Iterator[asyncio.Future[Reply]]:
        """An answer given in this process while inside goes to the future, not to the
        database (enter before the request is sent)."""
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(request_id, []).append(future)
        try:
            yield future
        finally:
            waiters = self._waiting.get(request_id, [])
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._waiting.pop(request_id, None)

    async def wait(
        self,
        request_id: str,
        timeout_s: float,
        answered_here: asyncio.Future[Reply] | None = None,
        local: bool = False,
    ) -> Reply | None:
        """The answer: from `answered_here` once it is set, else from `replies`, read
        quickly at first, or every LOCAL_POLL_S when the answer is expected here."""
        deadline = time.monotonic() + timeout_s
        pause = LOCAL_POLL_S if local else 0.005
        while (remaining := deadline - time.monotonic()) > 0:
            document = None if local else await self._read(request_id)
            if document is not None:
                return document
            local = False  # from the second round on, read the database too
            if answered_here is None:
                await asyncio.sleep(min(pause, remaining))
            else:
                done, _ = await asyncio.wait({answered_here}, timeout=min(pause, remaining))
                if done:
                    return answered_here.result()
            if pause < LOCAL_POLL_S:
                pause = min(pause * 2, 0.1)
        return None

    async def _read(self, request_id: str) -> Reply | None:
        document = await self.collection.find_one({"_id": request_id})
        if document is None:
            return None
        # Read once: a retry of the same request is answered again by the owner.
        await self.collection.delete_one({"_id": request_id})
        return Reply(document["status"], document["body"])


class Requester:
    """Sends a request to its owner and waits for the answer."""

    def __init__(
        self,
        publisher: EventPublisher,
        replies: Replies,
        database: AsyncDatabase[Document],
        source: str,
        timeout_s: float,
        owns: Callable[[str], bool] = lambda key: False,
    ) -> None:
        self.publisher = publisher
        self.replies = replies
        self.keys = database["idempotency_keys"]
        self.source = source
        self.timeout_s = timeout_s
        self.owns = owns  # whether the request's key is this process's to answer

    async def ask(self, request: Request, idempotency_key: str | None = None) -> Reply:
        envelope = Envelope(
            data=request,
            source=self.source,
            id=request_id(request.event_type, idempotency_key),
        )
        if idempotency_key is not None:
            await self._same_as_before(envelope.id, request)
        with self.replies.expecting(envelope.id) as answered_here:
            await self.publisher.publish(envelope)
            local = self.owns(envelope.subject)
            reply = await self.replies.wait(envelope.id, self.timeout_s, answered_here, local)
        if reply is None:
            raise TransientError(
                f"no answer to {request.event_type} within {self.timeout_s:.0f} s; "
                "it may still be applied: retry with the same Idempotency-Key"
            )
        return reply

    async def _same_as_before(self, request_id: str, request: Request) -> None:
        digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
        try:
            await self.keys.insert_one({"_id": request_id, "sha256": digest})
        except DuplicateKeyError:
            first = await self.keys.find_one({"_id": request_id})
            if first is not None and first["sha256"] != digest:
                raise Conflict("this Idempotency-Key was used for another request") from None
