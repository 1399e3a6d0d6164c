"""The runtime every service shares: one composition of broker, database, relay and HTTP.

A service builds a `Service`, registers its stores, handlers and routes on it, and calls
`run()`. Start-up order: database indexes, Kafka broker (publisher and subscribers),
outbox relay, HTTP; shutdown in reverse on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo import IndexModel

from .kafka import Consumer, EventPublisher, Topics, make_broker
from .relay import OutboxRelay
from .settings import ServiceSettings
from .store import AggregateStore, connect
from .telemetry import Metrics, setup_tracing

log = logging.getLogger(__name__)

LAG_INTERVAL_S = 5.0


class Service:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.name = settings.service_name
        self.metrics = Metrics(self.name)
        self.tracer_provider = setup_tracing(self.name, settings.otlp_endpoint)
        self.broker = make_broker(
            settings.kafka_bootstrap_servers, self.name, self.tracer_provider, self.metrics.registry
        )
        self.topics = Topics(settings.topic_prefix)
        self.publisher = EventPublisher(self.broker, self.topics)
        self.consumer = Consumer(
            self.broker,
            self.topics,
            group_id=f"{settings.topic_prefix}{self.name}",
            retries=settings.handler_retries,
            backoff_s=settings.handler_retry_backoff_s,
            dead_letters=self.metrics.dead_letters,
        )
        self.mongo = connect(settings.mongodb_url)
        self.database = self.mongo[settings.database_name]
        self.stores: list[AggregateStore] = []
        self.indexes: dict[str, list[IndexModel]] = {}
        self.relay = OutboxRelay(self.stores, self.publisher, settings.relay_interval_s)
        self.background: list[Callable[[], Coroutine[Any, Any, None]]] = []
        # Closed after the broker stopped, when no handler can use them any more.
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self.api = FastAPI(title=f"rcm {self.name}", lifespan=self._lifespan)
        self._add_operational_routes()

    def store(self, collection: str, indexes: list[IndexModel] | None = None) -> AggregateStore:
        """An aggregate collection whose outbox this service's relay publishes."""
        store = AggregateStore(self.database, collection, source=f"rcm/{self.name}")
        self.stores.append(store)
        self.relay.watch(store)
        self.indexes[collection] = indexes or []
        return store

    @contextlib.asynccontextmanager
    async def _lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        for collection, indexes in self.indexes.items():
            for index in indexes:
                # One per call: FerretDB drops the connection when a multi-index
                # createIndexes meets indexes that already exist (a restart).
                await self.database[collection].create_indexes([index])
        await self.broker.start()
        tasks = [asyncio.create_task(self.relay.run(), name="outbox-relay")]
        tasks.append(asyncio.create_task(self._watch(), name="metrics"))
        tasks += [asyncio.create_task(job(), name=job.__name__) for job in self.background]
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
            await self.mongo.close()

    async def _watch(self) -> None:
        """Refresh gauges that are read, not counted: outbox backlog and consumer lag."""
        while True:
            with contextlib.suppress(Exception):
                backlog = sum([await store.backlog() for store in self.stores])
                self.metrics.outbox_backlog.set(backlog)
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
        return checks

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

        @self.api.get("/metrics", tags=["operations"])
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
