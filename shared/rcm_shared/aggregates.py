"""The aggregate port: how a handler loads, decides and saves, whatever the store.

A handler calls `apply(id, decide, cause)`. `decide` is pure: it gets the aggregate's
current state (None if it does not exist yet) and returns a `Decision`: the new state
(None: nothing changes), the events the change emits and a result for the caller. The
store saves state and events together and remembers the cause (the consumed event's or
the command's id), so a redelivered cause changes nothing. Only the adapter knows how:
`MongoAggregates` (rcm_shared.store) keeps the outbox, the applied ids, the version and
the trace inside the document; `InMemoryAggregates` below serves unit tests of handlers.

Every change of an aggregate comes from the one process that owns its Kafka partition
(the aggregate id is the key of every message that changes it), so there is one writer
per aggregate by design; see rcm_shared.ownership.

An id alone cannot tell a redelivery from another message under a reused id. So the
consumer says, in a context variable (`handling`), which message it is handling and a
digest of its payload; when a handler's `cause` is that message's id, the store keeps
the digest with the id, and the same id with another digest raises `PayloadMismatch`
instead of passing for a duplicate. Handlers pass `cause=envelope.id` as before and
know nothing of it; a cause that is not the message's id (`check-3`), or a change
made outside a consumer, is remembered by its id alone, as ids applied before digests
were kept are.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel
from rcm_contracts import Event

from .errors import Conflict

A = TypeVar("A", bound=BaseModel)
R = TypeVar("R")


class Outcome(Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # the cause was applied before: nothing to do
    UNCHANGED = "unchanged"  # the decision was to change nothing


@dataclass(frozen=True)
class Decision(Generic[A, R]):
    """What a rule decided: the new state (None: no change), events to emit, a result."""

    state: A | None = None
    events: Sequence[Event] = ()
    result: R | None = None


@dataclass(frozen=True)
class Applied(Generic[A, R]):
    """How `apply` ended, the state after it, and the decision's result (None when the
    cause was a duplicate: the decision did not run again)."""

    outcome: Outcome
    state: A | None
    result: R | None = None


Decide = Callable[[A | None], Decision[A, R]]


class PayloadMismatch(Conflict):
    """A cause applied before comes again with another payload: not a redelivery, so not
    applied, and not quietly dropped either (a reused id, or a forged message)."""

    def __init__(self, cause: str) -> None:
        super().__init__(f"same ce_id, different payload: {cause} was applied with another")


@dataclass(frozen=True)
class Handled:
    """The message a consumer is handling: its id and its payload's digest."""

    id: str
    digest: str


_handled: ContextVar[Handled | None] = ContextVar("rcm_handled", default=None)


def payload_digest(event: Event) -> str:
    """A short digest of what an event says, as this process reads it.

    Over the model (not the record's bytes), without default values, so the same event
    serialised by another version (an optional field added) has the same digest. 96 bits:
    enough that two payloads never share one by accident."""
    canonical = f"{event.event_type}\n{event.model_dump_json(exclude_defaults=True)}"
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()[:12]).decode()


@contextlib.contextmanager
def handling(message_id: str, event: Event) -> Iterator[None]:
    """While a handler runs: the message it handles, for `apply(cause=message_id)`."""
    token = _handled.set(Handled(message_id, payload_digest(event)))
    try:
        yield
    finally:
        _handled.reset(token)


def digest_of(cause: str | None) -> str | None:
    """The payload digest of `cause` when it is the message being handled here."""
    handled = _handled.get()
    if cause is None or handled is None or handled.id != cause:
        return None
    return handled.digest


class Aggregates(Protocol[A]):
    async def get(self, aggregate_id: str) -> A | None: ...

    async def apply(
        self, aggregate_id: str, decide: Decide[A, R], cause: str | None = None
    ) -> Applied[A, R]: ...

    async def find(self, where: Mapping[str, object], limit: int = 100) -> list[A]:
        """Aggregates whose fields equal `where` (dotted paths reach inside)."""
        ...


def _field(document: Mapping[str, Any], path: str) -> object:
    value: object = document
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


@dataclass
class InMemoryAggregates(Generic[A]):
    """The port in a dict, for unit tests of handlers: same outcomes, same events."""

    model: type[A]
    states: dict[str, A] = field(default_factory=dict)
    applied: dict[str, set[str]] = field(default_factory=dict)
    digests: dict[str, dict[str, str]] = field(default_factory=dict)  # by aggregate, cause
    emitted: list[Event] = field(default_factory=list)

    async def get(self, aggregate_id: str) -> A | None:
        return self.states.get(aggregate_id)

    async def apply(
        self, aggregate_id: str, decide: Decide[A, R], cause: str | None = None
    ) -> Applied[A, R]:
        current = self.states.get(aggregate_id)
        digest = digest_of(cause)
        if cause is not None and cause in self.applied.get(aggregate_id, set()):
            known = self.digests.get(aggregate_id, {}).get(cause)
            if digest is not None and known is not None and known != digest:
                raise PayloadMismatch(cause)
            return Applied(Outcome.DUPLICATE, current)
        decision = decide(current)
        if decision.state is None and not decision.events:
            return Applied(Outcome.UNCHANGED, current, decision.result)
        state = decision.state or current
        if state is not None:
            self.states[aggregate_id] = state
        if cause is not None:
            self.applied.setdefault(aggregate_id, set()).add(cause)
            if digest is not None:
                self.digests.setdefault(aggregate_id, {})[cause] = digest
        self.emitted += decision.events
        return Applied(Outcome.APPLIED, state, decision.result)

    async def find(self, where: Mapping[str, object], limit: int = 100) -> list[A]:
        found = [
            state
            for state in self.states.values()
            if all(_field(state.model_dump(mode="json"), k) == v for k, v in where.items())
        ]
        return found[:limit]
