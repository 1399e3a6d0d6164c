"""The transport settings against a real secured Kafka (decisions.md §22).

The shared test Kafka is PLAINTEXT, so this module starts a broker of its own from the
jars deploy/local/infra.sh keeps (RCM_CACHE), on free loopback ports, in a temporary
directory, and stops it at the end. It listens on SASL_PLAINTEXT and SASL_SSL (PLAIN,
SCRAM-SHA-256, SCRAM-SHA-512) and on SSL with client certificates required; its
certificates come from a throwaway CA (tests/pki.py). The platform's own code talks to
it: ensure_topics, the FastStream broker (producer and consumer) and the rcm tools.
Skipped where those jars or Java are missing (infrastructure from Docker or from the
environment); the unit tests still check every setting.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError
from rcm_contracts.payments import PatientPaymentReceived, PaymentMethod
from rcm_shared.envelope import Envelope
from rcm_shared.kafka import (
    Consumer,
    EventPublisher,
    Topics,
    ensure_topics,
    kafka_client_options,
    kafka_security,
    make_broker,
)
from rcm_shared.ownership import Ownership
from rcm_shared.settings import TransportSettings

from tests.conftest import REPO
from tests.pki import TestCA

from .helpers import eventually

pytestmark = pytest.mark.integration

KAFKA_VERSION = "4.3.1"  # deploy/local/infra.sh
CACHE = Path(os.environ.get("RCM_CACHE", Path.home() / ".cache" / "rcm-platform"))
KAFKA_LIB = CACHE / f"kafka-{KAFKA_VERSION}" / "lib"
LOG4J = REPO / "deploy" / "local" / "kafka" / "log4j2.properties"
USER = "claims"
PLAIN_PASSWORD = "plain-4b1d-secret"
SCRAM_PASSWORD = "scram-8e2c-secret"
PARTITIONS = 3
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class SecuredKafka:
    ports: dict[str, int]  # listener name -> port
    ca: TestCA
    client_cert: Path
    client_key: Path

    def bootstrap(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_properties(directory: Path, ports: dict[str, int], ca: TestCA) -> str:
    server = ca.issue("kafka-server", server=True)
    keystore = directory / "server-keystore.pem"  # Kafka's PEM keystore: key, then chain
    keystore.write_text(server.key.read_text() + server.cert.read_text())
    plain = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{USER}="{PLAIN_PASSWORD}";'
    )
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    clients = [name for name in ports if name != "CONTROLLER"]
    lines = [
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{ports['CONTROLLER']}",
        "listeners=" + ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items()),
        "advertised.listeners=" + ",".join(f"{n}://127.0.0.1:{ports[n]}" for n in clients),
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map="
        + ",".join(f"{n}:{n}" for n in clients)
        # the controller listener speaks PLAINTEXT
        + ",CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={keystore}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={ca.cert_file}",
        "listener.name.ssl.ssl.client.auth=required",  # mutual TLS on the SSL listener
        f"log.dirs={directory / 'data'}",
        f"num.partitions={PARTITIONS}",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
    ]
    for listener in ("sasl_plaintext", "sasl_ssl"):
        lines.append(f"listener.name.{listener}.plain.sasl.jaas.config={plain}")
        for mechanism in ("scram-sha-256", "scram-sha-512"):
            lines.append(f"listener.name.{listener}.{mechanism}.sasl.jaas.config={scram}")
    return "\n".join(lines) + "\n"


def java(*arguments: str) -> list[str]:
    return [
        "java",
        "-Xms128m",
        "-Xmx512m",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J}",
        "-cp",
        f"{KAFKA_LIB}/*",
        *arguments,
    ]


async def answers(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.list_topics()
    except (KafkaError, OSError):
        return False
    finally:
        await admin.close()
    return True


@pytest.fixture(scope="module")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    if not (KAFKA_LIB / ".complete").exists() or shutil.which("java") is None:
        pytest.skip(f"no Kafka jars in {KAFKA_LIB} or no java (deploy/local/infra.sh provision)")
    directory = tmp_path_factory.mktemp("secured-kafka")
    ca = TestCA(directory)
    client = ca.issue(USER)
    names = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL", "CONTROLLER")
    ports = {name: free_port() for name in names}
    config = directory / "server.properties"
    config.write_text(server_properties(directory, ports, ca))
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    scram = [
        argument
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
        for argument in ("--add-scram", f"{mechanism}=[name={USER},password={SCRAM_PASSWORD}]")
    ]
    subprocess.run(
        java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config), *scram),
        check=True,
        capture_output=True,
        timeout=START_TIMEOUT_S,
    )
    log = (directory / "kafka.log").open("wb")
    broker = subprocess.Popen(
        java("kafka.Kafka", str(config)), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not asyncio.run(answers(f"127.0.0.1:{ports['PLAINTEXT']}")):
            if broker.poll() is not None or time.monotonic() > deadline:
                tail = (directory / "kafka.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the secured Kafka did not start:\n{tail}")
            time.sleep(0.5)
        yield SecuredKafka(ports, ca, client.cert, client.key)
    finally:
        broker.terminate()
        try:
            broker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()
        log.close()


def sasl(protocol: str, mechanism: str, kafka: SecuredKafka, **more: str) -> TransportSettings:
    password = PLAIN_PASSWORD if mechanism == "PLAIN" else SCRAM_PASSWORD
    tls = {"KAFKA_SSL_CA_FILE": str(kafka.ca.cert_file)} if protocol == "SASL_SSL" else {}
    values = {
        "KAFKA_SECURITY_PROTOCOL": protocol,
        "KAFKA_SASL_MECHANISM": mechanism,
        "KAFKA_SASL_USERNAME": USER,
        "KAFKA_SASL_PASSWORD": password,
        **tls,
        **more,
    }
    return TransportSettings(**values)


def mutual_tls(kafka: SecuredKafka) -> TransportSettings:
    return TransportSettings(
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CA_FILE=str(kafka.ca.cert_file),
        KAFKA_SSL_CERT_FILE=str(kafka.client_cert),
        KAFKA_SSL_KEY_FILE=str(kafka.client_key),
    )


CASES = {
    "sasl-plaintext-plain": ("SASL_PLAINTEXT", lambda k: sasl("SASL_PLAINTEXT", "PLAIN", k)),
    "sasl-plaintext-scram-256": (
        "SASL_PLAINTEXT",
        lambda k: sasl("SASL_PLAINTEXT", "SCRAM-SHA-256", k),
    ),
    "sasl-ssl-plain": ("SASL_SSL", lambda k: sasl("SASL_SSL", "PLAIN", k)),
    "sasl-ssl-scram-512": ("SASL_SSL", lambda k: sasl("SASL_SSL", "SCRAM-SHA-512", k)),
    "ssl-client-certificate": ("SSL", mutual_tls),
}


@pytest.fixture(params=sorted(CASES))
def secured(
    request: pytest.FixtureRequest, secured_kafka: SecuredKafka
) -> tuple[str, TransportSettings]:
    listener, settings = CASES[request.param]
    return secured_kafka.bootstrap(listener), settings(secured_kafka)


async def test_the_platform_round_trips_events_over_each_protocol(
    secured: tuple[str, TransportSettings], topics: Topics
) -> None:
    bootstrap, settings = secured
    security = kafka_security(settings)
    topic = topics.of(PatientPaymentReceived)
    await ensure_topics(bootstrap, [topic], PARTITIONS, 1, security=security)

    broker = make_broker(bootstrap, "test-secured", security=security)
    consumer = Consumer(
        broker, topics, ownership=Ownership(PARTITIONS), group_id=f"{topics.prefix}g"
    )
    received: list[Envelope[PatientPaymentReceived]] = []

    @consumer.on(PatientPaymentReceived)
    async def collect(envelope: Envelope[PatientPaymentReceived]) -> None:
        received.append(envelope)

    sent = Envelope(
        data=PatientPaymentReceived(
            episode_id="ep-tls-1",
            payment_id="pay-tls-1",
            amount_cents=1500,
            method=PaymentMethod.CARD,
            received_at=datetime.now(UTC),
        ),
        source="rcm/test",
    )
    consumer.start()
    await broker.start()
    try:
        await EventPublisher(broker, topics).publish(sent)

        async def arrived() -> bool:
            return len(received) == 1

        await eventually(arrived)
    finally:
        await broker.stop()
    assert received[0] == sent


async def test_the_rcm_tools_use_the_same_variables(
    secured_kafka: SecuredKafka, monkeypatch: pytest.MonkeyPatch, topics: Topics
) -> None:
    from rcm_ops.timeline import list_topics, read_topics

    bootstrap = secured_kafka.bootstrap("SASL_SSL")
    settings = sasl("SASL_SSL", "SCRAM-SHA-256", secured_kafka)
    topic = topics.of(PatientPaymentReceived)
    await ensure_topics(bootstrap, [topic], PARTITIONS, 1, security=kafka_security(settings))

    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", USER)
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", SCRAM_PASSWORD)
    monkeypatch.setenv("KAFKA_SSL_CA_FILE", str(secured_kafka.ca.cert_file))
    assert topic in await list_topics(bootstrap)
    assert await read_topics(bootstrap, [topic]) == []


@pytest.mark.parametrize(
    "wrong",
    ["password", "no client certificate", "another CA", "plaintext on the SASL port"],
)
async def test_the_secured_listeners_refuse_what_the_settings_get_wrong(
    secured_kafka: SecuredKafka, tmp_path: Path, wrong: str
) -> None:
    """The other side of the round trip: the broker does check, so the settings matter."""
    if wrong == "password":
        bootstrap = secured_kafka.bootstrap("SASL_SSL")
        settings = sasl("SASL_SSL", "SCRAM-SHA-512", secured_kafka, KAFKA_SASL_PASSWORD="nope")
    elif wrong == "no client certificate":
        bootstrap = secured_kafka.bootstrap("SSL")
        settings = TransportSettings(
            KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CA_FILE=str(secured_kafka.ca.cert_file)
        )
    elif wrong == "another CA":
        bootstrap = secured_kafka.bootstrap("SASL_SSL")
        stranger = TestCA(tmp_path, name="stranger CA")
        settings = sasl(
            "SASL_SSL", "PLAIN", secured_kafka, KAFKA_SSL_CA_FILE=str(stranger.cert_file)
        )
    else:
        bootstrap = secured_kafka.bootstrap("SASL_PLAINTEXT")
        settings = TransportSettings()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=3000,
        **kafka_client_options(kafka_security(settings)),
    )
    try:
        with pytest.raises((KafkaConnectionError, KafkaError, OSError, asyncio.TimeoutError)):
            await asyncio.wait_for(admin.start(), timeout=20)
    finally:
        await admin.close()
