"""The runtime every service shares: one composition of broker, database, relay and HTTP.

A service builds a `Service` and declares on it its aggregates, its subscription table
(`{EventType: handler}`), its singleton jobs and its routes, then calls `run()`. Start-up
order: database indexes, topics, Kafka (publisher and the one subscriber), outbox relay,
jobs, HTTP; shutdown in reverse on SIGTERM/SIGINT. Any number of replicas may run: Kafka
gives each one its share of the aggregates (rcm_shared.ownership).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

import uvicorn
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo import IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError
from rcm_contracts import CATALOG, Event
from rcm_contracts import Request as CommandRequest
from rcm_contracts.audit import AccessRecorded

from .aggregates import A
from .audit import AuditTrail
from .auth import KeySet, Role, Verifier, allow
from .envelope import Envelope
from .errors import Conflict, Invalid, NotFound, Refusal, TransientError, is_transient
from .http import BodyLimit
from .kafka import Consumer, EventPublisher, Topics, ensure_topics, kafka_security, make_broker
from .ownership import Ownership
from .redact import describe
from .relay import OutboxRelay
from .requests import Replies, Reply, Requester
from .settings import ServiceSettings
from .store import PENDING, Document, MongoAggregates, Outboxed, connect
from .telemetry import DATABASE_COMMANDS_LOGGED, Metrics, setup_tracing

log = logging.getLogger(__name__)

REFUSALS: dict[int, type[Refusal]] = {r.http_status: r for r in (NotFound, Conflict, Invalid)}

H = TypeVar("H")
# A service's subscription table: which handler method takes each event or request.
Subscriptions = Mapping[type[Event], Callable[[H, Envelope[Any]], Awaitable[object]]]

LAG_INTERVAL_S = 5.0


class Service:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.name = settings.service_name
        self.metrics = Metrics(self.name)
        self.tracer_provider = setup_tracing(self.name, settings.otlp_endpoint)
        self.broker = make_broker(
            settings.kafka_bootstrap_servers,
            self.name,
            self.tracer_provider,
            self.metrics.registry,
            security=kafka_security(settings),
        )
        self.topics = Topics(settings.topic_prefix)
        self.publisher = EventPublisher(self.broker, self.topics)
        self.ownership = Ownership(settings.topic_partitions)
        self.consumer = Consumer(
            self.broker,
            self.topics,
            group_id=f"{settings.topic_prefix}{self.name}",
            ownership=self.ownership,
            retries=settings.handler_retries,
            backoff_s=settings.handler_retry_backoff_s,
            dead_letters=self.metrics.dead_letters,
            max_deliveries=settings.handler_max_deliveries,
            max_redelivery_age_s=settings.handler_max_redelivery_age_s,
            parked=self.metrics.parked,
            payload_mismatches=self.metrics.payload_mismatches,
        )
        self.mongo = connect(settings.mongodb_url, settings, self.metrics.database_commands)
        self.database = self.mongo[settings.database_name]
        self.consumer.replies = Replies(self.database)
        self.requester = Requester(
            self.publisher,
            self.consumer.replies,
            self.database,
            f"rcm/{self.name}",
            settings.request_timeout_s,
            owns=self.ownership.owns,
        )
        self.stores: list[Outboxed] = []
        self.indexes: dict[str, list[IndexModel]] = {}
        self.relay = OutboxRelay(
            self.stores,
            self.publisher,
            settings.relay_interval_s,
            owns=self.ownership.owns,
            quarantines=self.metrics.outbox_quarantined,
        )
        self.ownership.on_assigned.append(self.relay.sweep_soon)
        self.background: list[Callable[[], Coroutine[Any, Any, None]]] = []
        # Work the service must finish before it is ready (loading code sets): started
        # with the background jobs, reported by /health/ready until done.
        self.warm_ups: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {}
        self._warmed: dict[str, asyncio.Task[None]] = {}
        # Closed after the broker stopped, when no handler can use them any more.
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self.audit = AuditTrail(self.name, self.publisher)
        docs = settings.api_docs
        self.api = FastAPI(
            title=f"rcm {self.name}",
            lifespan=self._lifespan,
            docs_url="/docs" if docs else None,
            redoc_url=None,
            openapi_url="/openapi.json" if docs else None,
        )
        self.api.state.verifier = Verifier(
            KeySet(settings.auth_jwks_url),
            settings.auth_issuer,
            settings.auth_audience,
            settings.auth_roles_claim,
        )
        self.api.middleware("http")(self.audit.around)
        self.api.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
        self._add_error_handlers()
        self._add_operational_routes()

    def aggregates(
        self, collection: str, model: type[A], indexes: list[IndexModel] | None = None
    ) -> MongoAggregates[A]:
        """An aggregate collection (the port of rcm_shared.aggregates), relayed from here."""
        aggregates = MongoAggregates(
            self.database,
            collection,
            f"rcm/{self.name}",
            model,
            self.ownership,
            self.settings.aggregate_cache_size,
        )
        self._keep(aggregates, collection, indexes)
        return aggregates

    def collection(
        self, name: str, indexes: list[IndexModel] | None = None
    ) -> AsyncCollection[Document]:
        """A collection of the service's database that holds no aggregates (e.g. an
        append-only log), with its indexes created at start."""
        self.indexes[name] = list(indexes or [])
        return self.database[name]

    def _keep(self, store: Outboxed, collection: str, indexes: list[IndexModel] | None) -> None:
        self.stores.append(store)
        self.relay.watch(store)
        self.indexes[collection] = [IndexModel(PENDING), *(indexes or [])]

    def subscribe(self, handlers: H, table: Subscriptions[H]) -> None:
        """Consume the events and requests of the service's subscription table (a module
        constant, `{EventType: Handlers.method}`), each handled by `handlers`."""
        self.consumer.subscribe(
            {
                event_type: functools.partial(handle, handlers)
                for event_type, handle in table.items()
            }
        )

    def singleton(
        self, name: str, interval_s: float, step: Callable[[], Coroutine[Any, Any, Any]]
    ) -> None:
        """A job that runs every `interval_s` in exactly one replica: the one that owns
        the partition its name hashes to. A hand-over waits until a round is done."""
        self._repeat(name, interval_s, step, lambda: self.ownership.holds(name))

    def in_every_replica(
        self, name: str, interval_s: float, step: Callable[[], Coroutine[Any, Any, Any]]
    ) -> None:
        """A job that runs every `interval_s` in each replica, for what that replica owns."""
        self._repeat(name, interval_s, step, lambda: True)

    def _repeat(
        self,
        name: str,
        interval_s: float,
        step: Callable[[], Coroutine[Any, Any, Any]],
        runs_here: Callable[[], bool],
    ) -> None:
        async def loop() -> None:
            while True:
                async with self.ownership.working():
                    if runs_here():
                        try:
                            await step()
                        except Exception as error:
                            if not is_transient(error):
                                log.error("%s round failed: %s", name, describe(error))
                            else:
                                log.warning("%s: %s (retrying)", name, describe(error))
                await asyncio.sleep(interval_s)

        loop.__name__ = name
        self.background.append(loop)

    async def ask(self, request: CommandRequest, idempotency_key: str | None = None) -> Reply:
        """Send a person's command to the replica that owns its aggregate: its answer, or
        the owner's refusal raised here (NotFound, Conflict, Invalid)."""
        reply = await self.requester.ask(request, idempotency_key)
        if reply.status < 400:
            return reply
        refusal = REFUSALS.get(reply.status)
        if refusal is None:
            raise HTTPException(reply.status, reply.body)
        body = reply.body
        raise refusal(
            body if isinstance(body, str) else "refused",
            reasons=body if isinstance(body, list) else (),
        )

    def _own_topics(self) -> list[str]:
        """The topics this service consumes and those it publishes to."""
        produced = [name for name in CATALOG if name.split(".")[1] == self.name]
        produced.append(AccessRecorded.event_type)  # every service keeps the audit trail
        return sorted({*self.consumer.topic_names, *map(self.topics.of, produced)})

    @contextlib.asynccontextmanager
    async def _lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        for collection, indexes in self.indexes.items():
            for index in indexes:
                # One per call: FerretDB drops the connection when a multi-index
                # createIndexes meets indexes that already exist (a restart).
                await self.database[collection].create_indexes([index])
        await ensure_topics(
            self.settings.kafka_bootstrap_servers,
            self._own_topics(),
            self.settings.topic_partitions,
            self.settings.topic_replication_factor,
            security=kafka_security(self.settings),
        )
        if self.consumer.handlers:
            self.consumer.start()
        else:  # consumes nothing, so no partitions are handed out: it owns all it writes
            self.ownership.owned = frozenset(range(self.settings.topic_partitions))
        await self.broker.start()
        tasks = [asyncio.create_task(self.relay.run(), name="outbox-relay")]
        tasks.append(asyncio.create_task(self._watch(), name="metrics"))
        tasks += [asyncio.create_task(job(), name=job.__name__) for job in self.background]
        self._warmed = {
            name: asyncio.create_task(job(), name=name) for name, job in self.warm_ups.items()
        }
        tasks += self._warmed.values()
        log.info("%s ready on %s:%s", self.name, self.settings.http_host, self.settings.http_port)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.broker.stop()
            for close in self.closers:
                await close()
            try:  # else the next owner publishes them once more
                await self.relay.remove_published()
            except Exception as error:
                log.warning("published entries left in outboxes: %s", describe(error))
            await self.mongo.close()
            # For `rcm bench`, which reads it from the log: the database load of the run.
            counts = json.dumps(self.metrics.database_command_counts(), sort_keys=True)
            log.info("%s %s", DATABASE_COMMANDS_LOGGED, counts)

    async def _watch(self) -> None:
        """Refresh gauges that are read, not counted: outbox backlog and consumer lag."""
        while True:
            with contextlib.suppress(Exception):
                self.metrics.outbox_backlog.set(self.relay.backlog)
                for subscriber in self.broker.subscribers:
                    consumer: Any = getattr(subscriber, "consumer", None)
                    if consumer is None:
                        continue
                    for partition in consumer.assignment():
                        end = consumer.highwater(partition)
                        position = await consumer.position(partition)
                        if end is not None:
                            self.metrics.consumer_lag.labels(
                                partition.topic, partition.partition
                            ).set(max(end - position, 0))
            await asyncio.sleep(LAG_INTERVAL_S)

    async def ready(self) -> dict[str, bool]:
        checks = {"kafka": False, "mongodb": False}
        with contextlib.suppress(Exception):
            checks["kafka"] = await self.broker.ping(timeout=2.0)
        with contextlib.suppress(Exception):
            await self.database.command("ping")
            checks["mongodb"] = True
        for name, task in self._warmed.items():
            checks[name] = task.done() and not task.cancelled() and task.exception() is None
        return checks

    def _add_error_handlers(self) -> None:
        """Refusals and transient failures mean the same on every endpoint of every service."""

        @self.api.exception_handler(Refusal)
        async def refused(_: Request, error: Refusal) -> JSONResponse:
            return JSONResponse({"detail": error.detail()}, status_code=error.http_status)

        async def infrastructure_failed(_: Request, error: Exception) -> JSONResponse:
            if not is_transient(error):
                log.error("answered 500: %s", describe(error))
                return JSONResponse({"detail": "internal error"}, status_code=500)
            log.warning("answered 503: %s", describe(error))
            return JSONResponse({"detail": "busy, try again"}, status_code=503)

        # The database or the broker away (a restart, a failover) is a 503 to retry; any
        # other failure of theirs a plain 500, said without its values.
        for failure in (TransientError, PyMongoError, KafkaError):
            self.api.add_exception_handler(failure, infrastructure_failed)

        @self.api.exception_handler(RequestValidationError)
        async def malformed(_: Request, error: RequestValidationError) -> JSONResponse:
            """Where and what is wrong, without echoing the input, which may be PHI."""
            problems = [
                {"loc": list(problem["loc"]), "msg": problem["msg"], "type": problem["type"]}
                for problem in error.errors()
            ]
            return JSONResponse({"detail": problems}, status_code=422)

    def _add_operational_routes(self) -> None:
        @self.api.get("/health/live", tags=["operations"])
        async def live() -> dict[str, str]:
            return {"status": "alive", "service": self.name}

        @self.api.get("/health/ready", tags=["operations"])
        async def ready(response: Response) -> dict[str, Any]:
            checks = await self.ready()
            ok = all(checks.values())
            response.status_code = 200 if ok else 503
            return {"status": "ready" if ok else "not-ready", "checks": checks}

        @self.api.get("/metrics", tags=["operations"], dependencies=[Depends(allow(Role.OPS))])
        async def metrics() -> Response:
            return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def run(self) -> None:
        """Serve until SIGTERM/SIGINT (uvicorn handles the signals)."""
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
        config = uvicorn.Config(
            self.api,
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_level="warning",
            lifespan="on",
        )
        asyncio.run(uvicorn.Server(config).serve())
