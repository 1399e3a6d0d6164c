"""How a consumer classifies a failure: retry it in place, or dead-letter it."""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NotEnoughReplicasError
from pymongo.errors import AutoReconnect, ConnectionFailure, ExecutionTimeout, WTimeoutError


class TransientError(Exception):
    """Worth retrying as is: the same message may succeed later (e.g. a write conflict)."""


class PermanentError(Exception):
    """Retrying cannot help: the message breaks a domain rule. It goes to the dead letters."""


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
