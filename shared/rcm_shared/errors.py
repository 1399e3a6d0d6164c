"""The platform's one family of errors, and how a consumer classifies a failure.

A decision refuses with `NotFound`, `Conflict` or `Invalid`; HTTP maps them to 404, 409
and 422 in one place (`Service`), a consumer dead-letters them. Anything transient (the
database or broker unreachable, a write conflict) is retried in place instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NotEnoughReplicasError
from pymongo.errors import AutoReconnect, ConnectionFailure, ExecutionTimeout, WTimeoutError

from .redact import Redacted


class TransientError(Exception):
    """Worth retrying as is: the same message may succeed later (e.g. a write conflict)."""


class PermanentError(Exception):
    """Retrying cannot help: the message breaks a domain rule. It goes to the dead letters."""


class Refusal(Redacted, PermanentError):
    """A decision's no, said to the person or system that asked. Messages name ids and
    rules, never patient values."""

    http_status = 400

    def __init__(self, message: str, reasons: Sequence[object] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.reasons = list(reasons)

    def detail(self) -> object:
        return self.reasons or self.message


class NotFound(Refusal):
    """The aggregate the request names does not exist (here)."""

    http_status = 404


class Conflict(Refusal):
    """The aggregate's state does not allow the request (now, or any more)."""

    http_status = 409


class Invalid(Refusal):
    """The request's values do not fit the rules; `reasons` lists every problem at once."""

    http_status = 422


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,
    ConnectionFailure,  # includes AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError
    AutoReconnect,
    ExecutionTimeout,
    WTimeoutError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NotEnoughReplicasError,
    asyncio.TimeoutError,
    ConnectionError,
)


def is_transient(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_ERRORS)
