"""Commands from people, applied by the process that owns their aggregate.

An HTTP handler on any replica publishes the command as a `Request` event keyed by its
aggregate and waits for the answer. The owner consumes it in order with that
aggregate's events (no second writer, whatever the store) and writes the answer to the
`replies` collection under the request's id, before it commits the offset. A redelivered
request is a duplicate: the owner answers again from the state as it is.

A request id comes from the caller's Idempotency-Key when there is one, so a retried
request is the same request; else it is new. The first use of a key records a hash of the
request (an insert, unique on any store): the same key with other content is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
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


class Replies:
    """The answers to requests, by request id (read by id only)."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.collection = database["replies"]

    async def answer(self, request_id: str, outcome: object | Refusal) -> None:
        if isinstance(outcome, Refusal):
            reply = {"status": outcome.http_status, "body": outcome.detail()}
        elif isinstance(outcome, Reply):
            reply = {"status": outcome.status, "body": jsonable_encoder(outcome.body)}
        else:
            reply = {"status": 200, "body": jsonable_encoder(outcome)}
        await self.collection.update_one(
            {"_id": request_id}, {"$set": {**reply, "at": datetime.now(UTC)}}, upsert=True
        )

    async def wait(self, request_id: str, timeout_s: float) -> Reply | None:
        deadline = time.monotonic() + timeout_s
        pause = 0.005
        while time.monotonic() < deadline:
            document = await self.collection.find_one({"_id": request_id})
            if document is not None:
                # Read once: a retry of the same request is answered again by the owner.
                await self.collection.delete_one({"_id": request_id})
                return Reply(document["status"], document["body"])
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)
        return None


class Requester:
    """Sends a request to its owner and waits for the answer."""

    def __init__(
        self,
        publisher: EventPublisher,
        replies: Replies,
        database: AsyncDatabase[Document],
        source: str,
        timeout_s: float,
    ) -> None:
        self.publisher = publisher
        self.replies = replies
        self.keys = database["idempotency_keys"]
        self.source = source
        self.timeout_s = timeout_s

    async def ask(self, request: Request, idempotency_key: str | None = None) -> Reply:
        envelope = Envelope(
            data=request,
            source=self.source,
            id=request_id(request.event_type, idempotency_key),
        )
        if idempotency_key is not None:
            await self._same_as_before(envelope.id, request)
        await self.publisher.publish(envelope)
        reply = await self.replies.wait(envelope.id, self.timeout_s)
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
