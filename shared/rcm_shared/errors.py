"""The platform's one family of errors, and how a consumer classifies a failure.

A decision refuses with `NotFound`, `Conflict` or `Invalid`; HTTP maps them to 404, 409
and 422 in one place (`Service`), a consumer dead-letters them. Anything transient (the
database or broker unreachable, a write conflict) is retried in place instead.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NotEnoughReplicasError
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    ExecutionTimeout,
    OperationFailure,
    WTimeoutError,
)

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


# FerretDB answers a command whose PostgreSQL is down, starting up or gone mid-query with
# InternalError (code 1) and the driver's words: the same command succeeds once it is back.
# (Its other InternalErrors are not retried: they would be retried forever.)
FERRETDB_INTERNAL_ERROR = 1
BACKEND_UNAVAILABLE = re.compile(
    r"failed to connect to|SQLSTATE (08|57P)|unexpected EOF|connection reset by peer"
    r"|conn closed|broken pipe"
)


def is_transient(error: BaseException) -> bool:
    if isinstance(error, TRANSIENT_ERRORS):
        return True
    return (
        isinstance(error, OperationFailure)
        and error.code == FERRETDB_INTERNAL_ERROR
        and BACKEND_UNAVAILABLE.search(str(error)) is not None
    )
