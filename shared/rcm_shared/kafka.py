"""Publishing and consuming envelopes on Kafka, at least once.

Publishing: acks=all with the idempotent producer. Consuming: the offset is committed
only after the handler's effect is stored or the message is dead-lettered; transient
errors are retried in place with bounded backoff (keeps per-key order) and, if still
failing, the message is sought back and redelivered; anything else is permanent and
goes to `<topic>.dlq` with its provenance, and the partition moves on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.middlewares import AckPolicy
from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter
from rcm_contracts import Event

from .envelope import Envelope, InvalidEnvelope, decode
from .errors import is_transient

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
Handler = Callable[[Envelope[E]], Awaitable[None]]

DLQ_SUFFIX = ".dlq"
# Each subscription is one group member; a joining member makes the others rejoin, which
# they notice at their next heartbeat. Short heartbeats keep a service's start (one join
# per subscription) and a restart after a crash to a few seconds.
HEARTBEAT_INTERVAL_MS = 300
SESSION_TIMEOUT_MS = 6000
DLQ_HEADER_PREFIX = "dlq_"
MAX_REASON_LENGTH = 1000


def make_broker(
    bootstrap_servers: str,
    client_id: str,
    tracer_provider: TracerProvider | None = None,
    registry: CollectorRegistry | None = None,
) -> KafkaBroker:
    middlewares: list[Any] = [KafkaTelemetryMiddleware(tracer_provider=tracer_provider)]
    if registry is not None:
        middlewares.append(KafkaPrometheusMiddleware(registry=registry))
    return KafkaBroker(
        bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        middlewares=middlewares,
        logger=logging.getLogger(f"rcm.{client_id}.kafka"),
        log_level=logging.DEBUG,  # "Received"/"Processed" per message: metrics count those
    )


class Topics:
    """Topic names: the event type, optionally namespaced (tests, tenants)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def of(self, event_type: type[Event] | str) -> str:
        name = event_type if isinstance(event_type, str) else event_type.event_type
        return f"{self.prefix}{name}"


class EventPublisher:
    def __init__(self, broker: KafkaBroker, topics: Topics) -> None:
        self.broker = broker
        self.topics = topics

    async def publish(self, envelope: Envelope[Any]) -> None:
        await self.broker.publish(
            envelope.value(),
            topic=self.topics.of(envelope.type),
            key=envelope.subject.encode(),
            headers=envelope.headers(),
        )


async def _raw_body(message: Any) -> bytes:
    """Leave decoding to `decode`: FastStream's own JSON decoding would fail outside our
    dead-letter handling (in its middlewares), and a poison message would loop forever."""
    return bytes(message.body)


class Consumer:
    """Registers handlers for event types under one consumer group."""

    def __init__(
        self,
        broker: KafkaBroker,
        topics: Topics,
        group_id: str,
        retries: int = 5,
        backoff_s: float = 0.2,
        dead_letters: Counter | None = None,
    ) -> None:
        self.broker = broker
        self.topics = topics
        self.group_id = group_id
        self.retries = retries
        self.backoff_s = backoff_s
        self.dead_letters = dead_letters

    def on(self, event_type: type[E]) -> Callable[[Handler[E]], Handler[E]]:
        topic = self.topics.of(event_type)

        def register(handler: Handler[E]) -> Handler[E]:
            async def consume(message: KafkaMessage) -> None:
                await self._consume(message, event_type, handler)

            consume.__name__ = handler.__name__
            consume.__doc__ = handler.__doc__
            self.broker.subscriber(
                topic,
                group_id=self.group_id,
                ack_policy=AckPolicy.NACK_ON_ERROR,
                auto_offset_reset="earliest",
                heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
                session_timeout_ms=SESSION_TIMEOUT_MS,
                decoder=_raw_body,
                title=f"{topic}:{self.group_id}",
            )(consume)
            return handler

        return register

    async def _consume(self, message: Any, event_type: type[E], handler: Handler[E]) -> None:
        record = message.raw_message
        try:
            envelope = decode(dict(record.headers or ()), record.value or b"", event_type)
        except InvalidEnvelope as error:
            await self.dead_letter(record, error)
            return
        for attempt in range(self.retries + 1):
            try:
                await handler(envelope)
                return
            except Exception as error:
                if not is_transient(error):
                    log.warning("dead-lettering %s %s: %r", envelope.type, envelope.id, error)
                    await self.dead_letter(record, error)
                    return
                if attempt == self.retries:
                    # Not dead-lettered: a transient failure is not the message's fault.
                    # Raising makes FastStream seek back, so it is redelivered, in order.
                    raise
                delay = self.backoff_s * 2**attempt
                log.info(
                    "transient %r on %s, retry %d in %.1fs", error, envelope.id, attempt + 1, delay
                )
                await asyncio.sleep(delay)

    async def dead_letter(self, record: Any, error: BaseException) -> None:
        reason = str(error)[:MAX_REASON_LENGTH]
        headers = {
            name: value.decode(errors="replace")
            for name, value in (record.headers or ())
            if not name.startswith(DLQ_HEADER_PREFIX)
        }
        headers.update(
            {
                "dlq_original_topic": record.topic,
                "dlq_original_partition": str(record.partition),
                "dlq_original_offset": str(record.offset),
                "dlq_consumer_group": self.group_id,
                "dlq_exception_class": f"{type(error).__module__}.{type(error).__qualname__}",
                "dlq_exception_message": reason,
                "dlq_failed_at": datetime.now(UTC).isoformat(),
            }
        )
        await self.broker.publish(
            record.value, topic=record.topic + DLQ_SUFFIX, key=record.key, headers=headers
        )
        if self.dead_letters is not None:
            self.dead_letters.labels(record.topic, self.group_id, type(error).__name__).inc()
