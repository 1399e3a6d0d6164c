"""Claims, payments and collections on real Kafka and FerretDB with the payer simulator
in process (a context manager, so each test module makes one)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pymongo import AsyncMongoClient
from rcm_claims import app as claims_app
from rcm_collections import app as collections_app
from rcm_contracts import Event
from rcm_payer_simulator import app as simulator_app
from rcm_payer_simulator.simulator import Simulator
from rcm_payments import app as payments_app
from rcm_shared.clock import Clock, utc_now
from rcm_shared.kafka import EventPublisher, Topics
from rcm_shared.service import Service

from tests.conftest import Infra, drop_topics

from .helpers import serving
from .services import running, settings_for
from .test_claims import emitted, publishing


@dataclass
class Platform:
    infra: Infra
    topics: Topics
    simulator: Simulator
    claims: httpx.AsyncClient
    collections: httpx.AsyncClient
    publisher: EventPublisher
    archive: Path
    payments: httpx.AsyncClient
    claims_db: str

    async def emitted(self, kind: type[Event], episode: str, count: int) -> list[dict[str, Any]]:
        return await emitted(self.infra, self.topics, kind, episode, count)

    async def account(self, episode: str) -> dict[str, Any]:
        response = await self.collections.get(f"/accounts/{episode}")
        return dict(response.json()) if response.status_code == 200 else {}

    async def episode(self, episode: str) -> dict[str, Any]:
        response = await self.claims.get(f"/episodes/{episode}/claims")
        return dict(response.json()) if response.status_code == 200 else {}


P = TypeVar("P", bound=Platform)


@contextlib.asynccontextmanager
async def platform(
    infra: Infra,
    archive: Path,
    seed: int,
    remit_delay_s: float,
    kind: type[P] = Platform,  # type: ignore[assignment]
    claims_clock: Clock = utc_now,
    **claims_settings: Any,
) -> AsyncIterator[P]:
    topics = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.")
    databases = [f"test_{uuid.uuid4().hex[:12]}" for _ in range(3)]
    simulator = simulator_app.build(
        simulator_app.Settings(
            seed=seed, ack_delay_s=0.1, remit_delay_s=remit_delay_s, x12_archive_dir=archive
        )
    )
    try:
        async with (
            serving(simulator, lifespan="on") as url,
            publishing(infra, topics) as publisher,
            contextlib.AsyncExitStack() as stack,
        ):
            edi: dict[str, Any] = {
                "RCM_CLEARINGHOUSE_URL": url,
                "RCM_X12_ARCHIVE_DIR": str(archive),
                "handler_retry_backoff_s": 0.05,
                "mailbox_poll_s": 0.2,
            }

            def service(app: Any, database: str, *clock: Clock, **overrides: Any) -> Service:
                built: Service = app.build(
                    settings_for(app.Settings, infra, topics.prefix, database, **overrides),
                    *clock,
                )
                return built

            claims_db, payments_db, collections_db = databases
            claims = service(
                claims_app, claims_db, claims_clock, **edi, batch_interval_s=0.2, **claims_settings
            )
            payments = service(payments_app, payments_db, **edi)
            collections = service(collections_app, collections_db)
            claims_client = await stack.enter_async_context(running(claims))
            payments_client = await stack.enter_async_context(running(payments))
            collections_client = await stack.enter_async_context(running(collections))
            yield kind(
                infra,
                topics,
                simulator.state.simulator,
                claims_client,
                collections_client,
                publisher,
                archive,
                payments_client,
                claims_db,
            )
    finally:
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url)
        for name in databases:
            await mongo.drop_database(name)
        await mongo.close()
        await drop_topics(infra.kafka, topics.prefix)
