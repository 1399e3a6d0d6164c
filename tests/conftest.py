"""Infrastructure for the whole test session: one Kafka and one MongoDB wire protocol.

Resolved in this order: KAFKA_BOOTSTRAP_SERVERS/MONGODB_URL from the environment,
else testcontainers when a Docker engine answers, else deploy/local (started here and
stopped at the end). Integration tests never skip: no infrastructure is an error.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient
from rcm_shared.auth import DevIssuer
from rcm_shared.kafka import Topics

REPO = Path(__file__).resolve().parent.parent

# The identity provider of this test session: every service built here trusts it, and
# tests sign in with its tokens (tests/integration/services.py).
TEST_ISSUER = DevIssuer(Path(tempfile.mkdtemp(prefix="rcm-test-issuer-")))
os.environ["RCM_AUTH_JWKS_URL"] = TEST_ISSUER.jwks_url
os.environ["RCM_AUTH_ISSUER"] = TEST_ISSUER.issuer


@dataclass(frozen=True)
class Infra:
    kafka: str
    mongodb_url: str


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    kafka, mongo = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URL")
    if kafka and mongo:
        yield Infra(kafka, mongo)
    elif _docker_answers():
        from testcontainers.community.kafka import KafkaContainer
        from testcontainers.community.mongodb import MongoDbContainer

        with (
            KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka_container,
            MongoDbContainer("mongo:8.0") as mongo_container,
        ):
            yield Infra(
                kafka_container.get_bootstrap_server(), mongo_container.get_connection_url()
            )
    else:
        script = REPO / "deploy" / "local" / "infra.sh"
        status = subprocess.run([script, "status"], capture_output=True, text=True, check=False)
        already_running = "Kafka running" in status.stderr and "FerretDB running" in status.stderr
        result = subprocess.run([script, "up"], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"deploy/local/infra.sh up failed:\n{result.stderr}")
        urls = dict(line.split("=", 1) for line in result.stdout.split())
        try:
            yield Infra(urls["KAFKA_BOOTSTRAP_SERVERS"], urls["MONGODB_URL"])
        finally:
            if not already_running:
                subprocess.run([script, "down"], check=False)


@pytest.fixture
async def topics(infra: Infra) -> AsyncIterator[Topics]:
    """A namespace of topics of this test alone, deleted afterwards."""
    namespace = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.")
    yield namespace
    await drop_topics(infra.kafka, namespace.prefix)


async def drop_topics(kafka: str, prefix: str) -> None:
    """Delete every topic of a namespace. One broker keeps each partition's files open, so
    a session that left its topics behind would run the broker out of file handles."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


@pytest.fixture
async def database(infra: Infra) -> AsyncIterator[object]:
    """A database of this test alone, dropped afterwards."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()
