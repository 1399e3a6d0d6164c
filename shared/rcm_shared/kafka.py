"""Publishing and consuming envelopes on Kafka, at least once.

Publishing: acks=all with the idempotent producer. Consuming: the offset is committed
only after the handler's effect is stored or the message is dead-lettered; transient
errors are retried in place with bounded backoff (keeps per-key order) and, if still
failing, the message is sought back and redelivered; anything else is permanent and
goes to `<topic>.dlq` with its provenance, and the partition moves on.

Every record reaches our code, whatever its bytes: FastStream's own parser, which reads
every header as UTF-8, is given a copy with readable headers, and the handler gets the
record as it came. What is said about a failure (dead-letter reasons, logs) comes from
`rcm_shared.redact.describe`: never the values of the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import IllegalStateError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from aiokafka.structs import TopicPartition
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.security import parse_security
from faststream.middlewares import AckPolicy
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter
from rcm_contracts import Event, Request

from .aggregates import PayloadMismatch, handling
from .envelope import Envelope, InvalidEnvelope, decode
from .errors import Refusal, is_transient
from .ownership import Ownership
from .redact import Redacted, describe
from .requests import Replies, Reply
from .settings import SASL_PROTOCOLS, TLS_PROTOCOLS, TransportSettings

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
Handler = Callable[[Envelope[E]], Awaitable[object]]

DLQ_SUFFIX = ".dlq"
# A joining replica makes the others rejoin, which they notice at their next heartbeat;
# a crashed one is noticed after the session timeout. Short ones keep both to seconds.
HEARTBEAT_INTERVAL_MS = 300
SESSION_TIMEOUT_MS = 6000
DLQ_HEADER_PREFIX = "dlq_"
# Names of the original headers whose value was null or not UTF-8, and so is not kept
# byte for byte on the dead letter (null: empty; undecodable bytes: U+FFFD).
DLQ_REPLACED_HEADERS = "dlq_replaced_headers"
DLQ_PARKED_DELIVERIES = "dlq_parked_deliveries"
UNAPPLIED = Reply(500, "the request could not be applied; it is with the dead letters")


SASL_SECURITY = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


def kafka_security(settings: TransportSettings) -> BaseSecurity | None:
    """The settings' Kafka security as FastStream's object (None: PLAINTEXT).

    The one translation of the settings: the broker takes this object, and every other
    aiokafka client takes `kafka_client_options`, derived from it the way FastStream does.
    """
    protocol = settings.kafka_security_protocol
    context = None
    if protocol in TLS_PROTOCOLS:
        # The system's CAs unless a CA file is given; hostnames are always checked.
        context = create_ssl_context(
            cafile=settings.kafka_ssl_ca_file,
            certfile=settings.kafka_ssl_cert_file,
            keyfile=settings.kafka_ssl_key_file,
        )
    if protocol not in SASL_PROTOCOLS:
        return None if context is None else BaseSecurity(ssl_context=context)
    mechanism, user, password = (
        settings.kafka_sasl_mechanism,
        settings.kafka_sasl_username,
        settings.kafka_sasl_password,
    )
    if mechanism is None or not user or password is None:  # validated; for the type checker
        raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs a SASL mechanism and user")
    return SASL_SECURITY[mechanism](
        username=user,
        password=password.get_secret_value(),
        ssl_context=context,
        use_ssl=context is not None,
    )


def kafka_client_options(security: BaseSecurity | None) -> dict[str, Any]:
    """aiokafka keyword arguments (AIOKafkaAdminClient/Consumer/Producer) for `security`."""
    return parse_security(security)


def make_broker(
    bootstrap_servers: str,
    client_id: str,
    tracer_provider: TracerProvider | None = None,
    registry: CollectorRegistry | None = None,
    security: BaseSecurity | None = None,
) -> KafkaBroker:
    middlewares: list[Any] = [KafkaTelemetryMiddleware(tracer_provider=tracer_provider)]
    if registry is not None:
        middlewares.append(KafkaPrometheusMiddleware(registry=registry))
    return KafkaBroker(
        bootstrap_servers,
        client_id=client_id,
        security=security,
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


async def ensure_topics(
    bootstrap_servers: str,
    names: list[str],
    partitions: int,
    replication_factor: int,
    settle_s: float = 15.0,
    security: BaseSecurity | None = None,
) -> None:
    """Create the topics that are missing; refuse topics of another partition count, on
    which one process would no longer own all of an aggregate's messages."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, **kafka_client_options(security)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile
                await admin.create_topics(
                    [NewTopic(name, partitions, replication_factor) for name in missing]
                )
        # A topic just created (here or by another service) may show no partitions yet.
        deadline = asyncio.get_running_loop().time() + settle_s
        while True:
            described = await admin.describe_topics(names)
            wrong = sorted(t["topic"] for t in described if len(t["partitions"]) != partitions)
            if not wrong or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    if wrong:
        raise RuntimeError(
            f"topics without {partitions} partitions (RCM_TOPIC_PARTITIONS): {', '.join(wrong)}"
        )


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


async def _no_body(message: Any) -> None:
    """Leave decoding to `decode`: FastStream's own JSON decoding would fail outside our
    dead-letter handling (in its middlewares), and a poison message would loop forever."""
    return None


def _readable_headers(record: Any) -> Any:
    readable = copy.copy(record)
    readable.headers = [(name, _text_of(value).encode()) for name, value in record.headers or ()]
    return readable


async def _parse_any_bytes(
    records: Any, parse: Callable[[Any], Awaitable[KafkaMessage]]
) -> KafkaMessage:
    """FastStream's batch parser, fed records whose headers it can read.

    It decodes every header value as UTF-8 and fails on null or other bytes before our
    code runs; the batch is then neither handled nor rewound, and the next commit skips
    it. Here it parses readable copies, and the message keeps the records as they came,
    for `decode` to refuse and the dead letter to keep."""
    batch = records if isinstance(records, tuple) else (records,)
    message = await parse(tuple(_readable_headers(record) for record in batch))
    message.raw_message = batch
    return message


class BatchRewound(Redacted, Exception):
    """A batch to be delivered again: a record of it failed transiently."""


class Parked(Redacted, Exception):
    """A message whose handling failed transiently delivery after delivery: set aside on
    the dead letters so that its partition goes on."""

    def __init__(self, deliveries: int, failing_s: float, last: BaseException) -> None:
        super().__init__(
            f"parked after {deliveries} deliveries failing transiently for {failing_s:.0f} s;"
            f" last: {describe(last)}"
        )
        self.deliveries = deliveries
        self.last = last


@dataclasses.dataclass
class Redeliveries:
    """How often one record was delivered and failed transiently, and since when."""

    count: int
    first_failed_at: float


class Consumer:
    """The service's one subscriber: every topic it consumes, dispatched on `ce_type`.

    Messages come in batches. A batch is split by key (aggregate): one key's messages
    are handled in order, different keys at once. Only messages of partitions this
    process still owns are handled (rcm_shared.ownership); the others are rewound for
    their new owner. The offsets are committed after the whole batch is handled or
    dead-lettered; a transient failure that outlasts its retries rewinds the batch, and
    the handlers' idempotence absorbs the repeats.
    A request (rcm_contracts.Request) is answered whether it is applied or refused.

    A record that keeps failing transiently is parked (dead-lettered, counted in
    `parked`, a request answered) after `max_deliveries` deliveries if other records
    were handled meanwhile: then the failure is the record's, not an outage's, which
    would otherwise park every record in turn and scramble their order. After
    `max_redelivery_age_s` of failing it is parked in any case. Deliveries are counted
    in memory: a new owner of the partition starts again from zero.
    """

    MAX_BATCH = 100
    MAX_CONCURRENT_KEYS = 32

    def __init__(
        self,
        broker: KafkaBroker,
        topics: Topics,
        group_id: str,
        ownership: Ownership,
        retries: int = 5,
        backoff_s: float = 0.2,
        dead_letters: Counter | None = None,
        max_deliveries: int = 10,
        max_redelivery_age_s: float = 3600.0,
        parked: Counter | None = None,
        payload_mismatches: Counter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.broker = broker
        self.topics = topics
        self.group_id = group_id
        self.ownership = ownership
        self.retries = retries
        self.backoff_s = backoff_s
        self.dead_letters = dead_letters
        self.max_deliveries = max_deliveries
        self.max_redelivery_age_s = max_redelivery_age_s
        self.parked = parked
        self.payload_mismatches = payload_mismatches
        self.clock = clock
        self.replies: Replies | None = None
        self.handlers: dict[str, tuple[type[Event], Handler[Any]]] = {}
        self.redeliveries: dict[tuple[str, int, int], Redeliveries] = {}
        self._last_handled_at = -math.inf  # when a handler last got through

    def subscribe(self, table: Mapping[type[Event], Handler[Any]]) -> None:
        for event_type, handler in table.items():
            self.on(event_type)(handler)

    def on(self, event_type: type[E]) -> Callable[[Handler[E]], Handler[E]]:
        def register(handler: Handler[E]) -> Handler[E]:
            if event_type.event_type in self.handlers:
                raise ValueError(f"{event_type.event_type} has a handler already")
            self.handlers[event_type.event_type] = (event_type, handler)
            return handler

        return register

    @property
    def topic_names(self) -> list[str]:
        return sorted(self.topics.of(name) for name in self.handlers)

    def start(self) -> None:
        """Register the subscriber (before the broker starts), if there is anything to consume."""
        if not self.handlers:
            return
        self.broker.subscriber(
            *self.topic_names,
            group_id=self.group_id,
            batch=True,
            max_records=self.MAX_BATCH,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            partition_assignment_strategy=(RangePartitionAssignor,),
            listener=self.ownership,
            parser=_parse_any_bytes,
            decoder=_no_body,
            title=self.group_id,
        )(self._consume_batch)

    async def _consume_batch(self, message: KafkaMessage) -> None:
        records = message.raw_message
        records = records if isinstance(records, tuple) else (records,)
        async with self.ownership.working():
            if self.redeliveries:  # forget records whose partition went to another member
                self.redeliveries = {
                    where: seen
                    for where, seen in self.redeliveries.items()
                    if where[1] in self.ownership.owned
                }
            by_key: dict[bytes | None, list[Any]] = {}
            not_ours: dict[TopicPartition, int] = {}
            for record in records:
                if record.partition in self.ownership.owned:
                    by_key.setdefault(record.key, []).append(record)
                else:
                    where = TopicPartition(record.topic, record.partition)
                    not_ours[where] = min(record.offset, not_ours.get(where, record.offset))
            # Revoked while fetched: rewind, or the ack after this batch would commit past
            # them while the revocation waits, and their new owner would never see them.
            for where, offset in not_ours.items():
                with contextlib.suppress(IllegalStateError):  # the revocation is complete
                    message.consumer.seek(where, offset)
            limit = asyncio.Semaphore(self.MAX_CONCURRENT_KEYS)

            async def in_order(group: list[Any]) -> None:
                async with limit:
                    for record in group:
                        await self._consume(record)

            outcomes = await asyncio.gather(
                *(in_order(group) for group in by_key.values()), return_exceptions=True
            )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                # FastStream rewinds the batch (it comes again) and logs this with its
                # traceback: the failure as describe says it, not as raised.
                raise BatchRewound(describe(outcome)) from None

    async def _consume(self, record: Any) -> None:
        try:
            envelope, handler = self._decode(record)
        except Exception as error:  # malformed, or a bug in reading it: not retried
            log.warning(
                "dead-lettering %s:%d:%d: %s",
                record.topic,
                record.partition,
                record.offset,
                describe(error),
            )
            await self.dead_letter(record, error)
            return
        where = (record.topic, record.partition, record.offset)
        await self._handle(record, envelope, handler)
        self.redeliveries.pop(where, None)  # done with: handled, refused or dead-lettered

    async def _handle(self, record: Any, envelope: Envelope[Any], handler: Handler[Any]) -> None:
        """Handle, retrying transient failures in place; raises when the record is to
        come again."""
        for attempt in range(self.retries + 1):
            try:
                with handling(envelope.id, envelope.data):
                    result = await handler(envelope)
            except PayloadMismatch as mismatch:
                self._last_handled_at = self.clock()
                await self._refuse_mismatch(record, envelope, mismatch)
                return
            except Refusal as refusal:
                self._last_handled_at = self.clock()
                if isinstance(envelope.data, Request):
                    await self._answer(envelope.id, refusal)
                    return
                log.warning(
                    "dead-lettering %s %s: %s", envelope.type, envelope.id, describe(refusal)
                )
                await self.dead_letter(record, refusal)
                return
            except Exception as error:
                if not is_transient(error):
                    log.warning(
                        "dead-lettering %s %s: %s", envelope.type, envelope.id, describe(error)
                    )
                    await self.dead_letter(record, error)
                    if isinstance(envelope.data, Request):  # the asker is waiting
                        await self._answer(envelope.id, UNAPPLIED)
                    return
                if attempt == self.retries:
                    parked = self._parks(record, error)
                    if parked is None:
                        # Not dead-lettered: a transient failure is not the message's fault.
                        raise
                    await self._park(record, envelope, parked)
                    return
                delay = self.backoff_s * 2**attempt
                log.info(
                    "transient %s on %s, retry %d in %.1fs",
                    describe(error),
                    envelope.id,
                    attempt + 1,
                    delay,
                )
                await asyncio.sleep(delay)
            else:
                self._last_handled_at = self.clock()
                if isinstance(envelope.data, Request):
                    await self._answer(envelope.id, result)
                return

    def _decode(self, record: Any) -> tuple[Envelope[Any], Handler[Any]]:
        headers = dict(record.headers or ())
        expected, handler = self.handlers.get(_header(headers, "ce_type"), (None, None))
        envelope = decode(headers, record.value or b"", expected)
        if handler is None:
            raise InvalidEnvelope(f"no handler here for {envelope.type}")
        # The key decides the partition, so the owner: a record keyed otherwise than its
        # subject would reach a process that does not own the aggregate.
        if record.key is None:
            raise InvalidEnvelope("the record has no key (it must be the ce_subject)")
        if record.key != envelope.subject.encode():
            raise InvalidEnvelope("the record's key is not its ce_subject")
        return envelope, handler

    def _parks(self, record: Any, error: BaseException) -> Parked | None:
        """Count a delivery that failed transiently; whether the record is parked now."""
        now = self.clock()
        where = (record.topic, record.partition, record.offset)
        seen = self.redeliveries.setdefault(where, Redeliveries(0, now))
        seen.count += 1
        failing_s = now - seen.first_failed_at
        others_went_through = self._last_handled_at > seen.first_failed_at
        if (
            seen.count >= self.max_deliveries and others_went_through
        ) or failing_s >= self.max_redelivery_age_s:
            return Parked(seen.count, failing_s, error)
        return None

    async def _park(self, record: Any, envelope: Envelope[Any], parked: Parked) -> None:
        log.error("%s %s: %s", envelope.type, envelope.id, describe(parked))
        await self.dead_letter(record, parked, {DLQ_PARKED_DELIVERIES: str(parked.deliveries)})
        if self.parked is not None:
            self.parked.labels(record.topic, self.group_id, type(parked.last).__name__).inc()
        if isinstance(envelope.data, Request):
            await self._answer(envelope.id, UNAPPLIED)

    async def _refuse_mismatch(
        self, record: Any, envelope: Envelope[Any], mismatch: PayloadMismatch
    ) -> None:
        log.warning("dead-lettering %s %s: %s", envelope.type, envelope.id, describe(mismatch))
        await self.dead_letter(record, mismatch)
        if self.payload_mismatches is not None:
            self.payload_mismatches.labels(record.topic, self.group_id).inc()
        if isinstance(envelope.data, Request):
            await self._answer(envelope.id, mismatch)

    async def _answer(self, request_id: str, outcome: object) -> None:
        if self.replies is None:
            raise RuntimeError("a request arrived, but this consumer has no replies store")
        await self.replies.answer(request_id, outcome)

    async def dead_letter(
        self, record: Any, error: BaseException, extra: Mapping[str, str] | None = None
    ) -> None:
        """Publish the record as it came (key, value, headers) to `<topic>.dlq`, with
        where it came from and what went wrong, said without the message's values."""
        headers: dict[str, str] = {}
        replaced: list[str] = []
        for name, value in record.headers or ():
            if name.startswith(DLQ_HEADER_PREFIX):
                continue
            headers[name] = _text_of(value)
            if value is None or headers[name].encode() != value:
                replaced.append(name)
        headers.update(
            {
                "dlq_original_topic": record.topic,
                "dlq_original_partition": str(record.partition),
                "dlq_original_offset": str(record.offset),
                "dlq_consumer_group": self.group_id,
                "dlq_exception_class": f"{type(error).__module__}.{type(error).__qualname__}",
                "dlq_exception_message": describe(error),
                "dlq_failed_at": datetime.now(UTC).isoformat(),
                **(extra or {}),
            }
        )
        if replaced:
            headers[DLQ_REPLACED_HEADERS] = ",".join(replaced)
        await self.broker.publish(
            record.value, topic=record.topic + DLQ_SUFFIX, key=record.key, headers=headers
        )
        if self.dead_letters is not None:
            self.dead_letters.labels(record.topic, self.group_id, type(error).__name__).inc()


def _header(headers: Mapping[str, bytes | None], name: str) -> str:
    return _text_of(headers.get(name))


def _text_of(value: bytes | None) -> str:
    """A header value as text, whatever its bytes: null is empty, others are replaced."""
    return "" if value is None else value.decode(errors="replace")
