"""Running a service in this process, for integration tests against real Kafka and MongoDB."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from rcm_shared.auth import Role
from rcm_shared.service import Service
from rcm_shared.settings import ServiceSettings

from tests.conftest import TEST_ISSUER, Infra

from .helpers import eventually


def settings_for(
    settings_class: type[ServiceSettings],
    infra: Infra,
    prefix: str,
    database: str,
    **overrides: object,
) -> ServiceSettings:
    """Settings of a service isolated by the test's topic prefix and database."""
    return settings_class(  # type: ignore[call-arg]
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka,
        MONGODB_URL=infra.mongodb_url,
        mongodb_database=database,
        topic_prefix=prefix,
        relay_interval_s=0.1,
        **overrides,
    )


@contextlib.asynccontextmanager
async def running(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """Start the service (database, broker, relay, background jobs) and give its HTTP API,
    signed in as "tester" with every role, once every subscription has its partitions
    (the group has settled): events published from then on are consumed without waiting
    for a rebalance."""
    async with service.api.router.lifespan_context(service.api):

        async def subscribed() -> bool:
            return all(
                getattr(subscriber, "consumer", None) is not None
                and subscriber.consumer.assignment()
                for subscriber in service.broker.subscribers
            )

        await eventually(subscribed, timeout_s=60)
        transport = httpx.ASGITransport(app=service.api)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://service", headers=signed_in("tester", *Role)
        ) as client:
            yield client


def signed_in(user: str, *roles: Role) -> dict[str, str]:
    """Headers of a call by `user` holding `roles`."""
    return {"Authorization": f"Bearer {TEST_ISSUER.token(user, roles)}"}
