"""Transport security settings: what each Kafka protocol and MongoDB TLS turn into for the
clients, what is refused, and that no secret shows in a repr or an error (decisions.md §22).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import SecretStr, ValidationError
from rcm_shared.kafka import kafka_client_options, kafka_security, make_broker
from rcm_shared.settings import ServiceSettings, TransportSettings, load_settings
from rcm_shared.store import connect, mongo_client_options

from tests.pki import Issued, TestCA

PASSWORD = "pw-7f3a-not-for-logs"
MONGO_PASSWORD = "mongo-9c1e-not-for-logs"
MONGO_URL = f"mongodb://claims:{MONGO_PASSWORD}@db.example:27017/rcm_claims?replicaSet=rs0"
TRANSPORT_VARIABLES = (
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_FILE",
    "KAFKA_SSL_CERT_FILE",
    "KAFKA_SSL_KEY_FILE",
    "MONGODB_TLS_CA_FILE",
    "MONGODB_URL",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test passes counts, not the variables of the shell running the suite."""
    for name in TRANSPORT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"RCM_{name}", raising=False)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def client_cert(ca: TestCA) -> Issued:
    return ca.issue("claims-client")


def transport(**values: Any) -> TransportSettings:
    return TransportSettings(**values)


def service(**values: Any) -> ServiceSettings:
    return ServiceSettings(service_name="claims", **values)


# --- what the clients get ------------------------------------------------------------------


def test_defaults_keep_local_runs_as_they_were() -> None:
    settings = service()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert kafka_security(settings) is None
    assert kafka_client_options(None) == {}
    assert mongo_client_options(settings) == {}
    assert settings.mongodb_url.get_secret_value() == "mongodb://127.0.0.1:27017/"


def test_ssl_checks_the_brokers_against_the_ca_file(ca: TestCA) -> None:
    settings = transport(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CA_FILE=str(ca.cert_file))
    security = kafka_security(settings)

    assert type(security) is BaseSecurity
    assert security.use_ssl
    context = security.ssl_context
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    issuers = [dict(item[0] for item in cert["subject"]) for cert in context.get_ca_certs()]
    assert {"commonName": "rcm test CA"} in issuers
    assert kafka_client_options(security) == {"security_protocol": "SSL", "ssl_context": context}


def test_ssl_without_a_ca_file_trusts_the_system_cas() -> None:
    security = kafka_security(transport(KAFKA_SECURITY_PROTOCOL="SSL"))
    assert security is not None
    assert security.ssl_context is not None
    assert security.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_mutual_tls_loads_the_client_certificate(ca: TestCA, client_cert: Issued) -> None:
    settings = transport(
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CA_FILE=str(ca.cert_file),
        KAFKA_SSL_CERT_FILE=str(client_cert.cert),
        KAFKA_SSL_KEY_FILE=str(client_cert.key),
    )
    assert kafka_security(settings) is not None

    other = ca.issue("someone-else")
    mismatched = transport(
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CERT_FILE=str(client_cert.cert),
        KAFKA_SSL_KEY_FILE=str(other.key),
    )
    with pytest.raises(ssl.SSLError):  # at start, not at the first connection
        kafka_security(mismatched)


@pytest.mark.parametrize(
    ("protocol", "mechanism", "kind"),
    [
        ("SASL_PLAINTEXT", "PLAIN", SASLPlaintext),
        ("SASL_PLAINTEXT", "SCRAM-SHA-256", SASLScram256),
        ("SASL_SSL", "PLAIN", SASLPlaintext),
        ("SASL_SSL", "SCRAM-SHA-256", SASLScram256),
        ("SASL_SSL", "SCRAM-SHA-512", SASLScram512),
    ],
)
def test_sasl_gives_faststream_and_aiokafka_the_same_credentials(
    ca: TestCA, protocol: str, mechanism: str, kind: type[BaseSecurity]
) -> None:
    tls = protocol == "SASL_SSL"
    settings = transport(
        KAFKA_SECURITY_PROTOCOL=protocol,
        KAFKA_SASL_MECHANISM=mechanism,
        KAFKA_SASL_USERNAME="claims",
        KAFKA_SASL_PASSWORD=PASSWORD,
        **({"KAFKA_SSL_CA_FILE": str(ca.cert_file)} if tls else {}),
    )
    security = kafka_security(settings)

    assert type(security) is kind
    assert security.use_ssl is tls
    options = kafka_client_options(security)
    assert options["security_protocol"] == protocol
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_username"] == "claims"
    assert options["sasl_plain_password"] == PASSWORD
    assert (options["ssl_context"] is not None) is tls


def test_the_broker_connects_with_the_security(ca: TestCA) -> None:
    security = kafka_security(
        transport(
            KAFKA_SECURITY_PROTOCOL="SASL_SSL",
            KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
            KAFKA_SASL_USERNAME="claims",
            KAFKA_SASL_PASSWORD=PASSWORD,
            KAFKA_SSL_CA_FILE=str(ca.cert_file),
        )
    )
    broker = make_broker("127.0.0.1:9092", "claims", security=security)

    assert broker.specification.security is security
    wanted = kafka_client_options(security)
    # The producer's connection and the subscribers' consumers (FastStream's builder).
    producer = broker._connection_kwargs
    consumer = broker.config.broker_config.builder.keywords
    for options in (producer, consumer):
        assert {key: options[key] for key in wanted} == wanted


async def test_aiokafka_clients_take_the_options(ca: TestCA) -> None:
    """aiokafka checks the combination when a client is built (SSL needs a context,
    SASL a mechanism and credentials): every client the code builds takes these."""
    for settings in (
        transport(),
        transport(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CA_FILE=str(ca.cert_file)),
        transport(
            KAFKA_SECURITY_PROTOCOL="SASL_SSL",
            KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
            KAFKA_SASL_USERNAME="claims",
            KAFKA_SASL_PASSWORD=PASSWORD,
        ),
    ):
        options = kafka_client_options(kafka_security(settings))
        admin = AIOKafkaAdminClient(bootstrap_servers="127.0.0.1:9", **options)
        consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", **options)
        producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", **options)
        assert consumer._client._security_protocol == settings.kafka_security_protocol
        assert producer.client._security_protocol == settings.kafka_security_protocol
        await admin.close()
        await consumer.stop()
        await producer.stop()


def test_the_conventional_variables_and_their_rcm_twins_are_read(
    monkeypatch: pytest.MonkeyPatch, ca: TestCA
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "claims")
    monkeypatch.setenv("RCM_KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("KAFKA_SSL_CA_FILE", str(ca.cert_file))
    monkeypatch.setenv("MONGODB_TLS_CA_FILE", str(ca.cert_file))
    monkeypatch.setenv("MONGODB_URL", MONGO_URL)

    settings = service()
    assert settings.kafka_sasl_password == SecretStr(PASSWORD)
    assert settings.kafka_ssl_ca_file == ca.cert_file
    assert settings.mongodb_url.get_secret_value() == MONGO_URL

    from rcm_ops.transport import kafka_options, mongo_options

    options = kafka_options()  # the rcm tools read the same variables
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_plain_password"] == PASSWORD
    assert mongo_options() == {"tlsCAFile": str(ca.cert_file)}


async def test_mongo_client_gets_the_ca_file_and_the_url_in_clear(ca: TestCA) -> None:
    settings = service(MONGODB_URL=MONGO_URL, MONGODB_TLS_CA_FILE=str(ca.cert_file))
    assert mongo_client_options(settings) == {"tlsCAFile": str(ca.cert_file)}

    client = connect(settings.mongodb_url, settings)
    try:
        pool = client.options.pool_options
        assert pool._ssl_context is not None  # tlsCAFile implies TLS
        assert pool._credentials.username == "claims"
        assert pool._credentials.password == MONGO_PASSWORD  # in clear for the driver only
        assert pool._credentials.source == "rcm_claims"
        assert MONGO_PASSWORD not in repr(client)
    finally:
        await client.close()

    plain = connect("mongodb://127.0.0.1:27017/")
    try:
        assert plain.options.pool_options._ssl_context is None
    finally:
        await plain.close()


# --- what is refused -------------------------------------------------------------------------

SASL = {
    "KAFKA_SASL_MECHANISM": "PLAIN",
    "KAFKA_SASL_USERNAME": "claims",
    "KAFKA_SASL_PASSWORD": PASSWORD,
}


@pytest.mark.parametrize(
    ("values", "named"),
    [
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_PASSWORD": PASSWORD},
            "KAFKA_SASL_MECHANISM",
        ),
        (
            {**SASL, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": ""},
            "KAFKA_SASL_USERNAME",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
                "KAFKA_SASL_USERNAME": "claims",
            },
            "KAFKA_SASL_PASSWORD",
        ),
        (
            {**SASL, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_PASSWORD": ""},
            "KAFKA_SASL_PASSWORD",
        ),
        ({**SASL}, "KAFKA_SASL_PASSWORD"),  # credentials for a PLAINTEXT cluster
        ({**SASL, "KAFKA_SECURITY_PROTOCOL": "SSL"}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SSL_CA_FILE": "{ca}"}, "KAFKA_SSL_CA_FILE"),  # TLS files, no TLS
        (
            {**SASL, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SSL_CA_FILE": "{ca}"},
            "KAFKA_SSL_CA_FILE",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": "/nowhere/ca.pem"},
            "KAFKA_SSL_CA_FILE",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEY_FILE": "{key}"},
            "KAFKA_SSL_CERT_FILE",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        (
            {**SASL, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI"},
            "KAFKA_SASL_MECHANISM",
        ),
        ({"MONGODB_TLS_CA_FILE": "/nowhere/ca.pem"}, "MONGODB_TLS_CA_FILE"),
        (
            {"MONGODB_TLS_CA_FILE": "{ca}", "MONGODB_URL": MONGO_URL + "&tls=false"},
            "MONGODB_TLS_CA_FILE",
        ),
        ({"MONGODB_URL": MONGO_URL.replace("mongodb://", "http://")}, "MONGODB_URL"),
    ],
)
def test_inconsistent_settings_are_refused_naming_the_variable_not_the_secret(
    ca: TestCA,
    client_cert: Issued,
    capsys: pytest.CaptureFixture[str],
    values: dict[str, str],
    named: str,
) -> None:
    values = {
        name: value.format(ca=ca.cert_file, key=client_cert.key) for name, value in values.items()
    }
    with pytest.raises(ValidationError) as refused:
        service(**values)
    error = refused.value
    messages = [f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in error.errors()]
    assert any(named in message for message in messages), messages
    for shown in (str(error), repr(error), *messages):
        assert PASSWORD not in shown
        assert MONGO_PASSWORD not in shown

    # What a service prints when it refuses to start.
    with pytest.raises(SystemExit) as exited:
        load_settings(ServiceSettings, service_name="claims", **values)
    assert exited.value.code == 2
    printed = capsys.readouterr().err
    assert named in printed
    assert PASSWORD not in printed
    assert MONGO_PASSWORD not in printed


def test_secrets_never_show_in_a_repr_or_a_dump(ca: TestCA) -> None:
    settings = service(
        MONGODB_URL=MONGO_URL,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="claims",
        KAFKA_SASL_PASSWORD=PASSWORD,
        KAFKA_SSL_CA_FILE=str(ca.cert_file),
    )
    for shown in (repr(settings), str(settings), settings.model_dump_json(), str(dict(settings))):
        assert PASSWORD not in shown
        assert MONGO_PASSWORD not in shown
        assert "db.example" not in shown  # the whole URL is the secret, not just its password


def test_every_platform_settings_class_hides_input_in_errors() -> None:
    """Subclasses (a service's Settings) keep the switch that keeps values out of errors."""
    from rcm_shared.clearinghouse import ClearinghouseSettings

    for settings_class in (TransportSettings, ServiceSettings, ClearinghouseSettings):
        assert settings_class.model_config.get("hide_input_in_errors") is True


def test_tls_files_must_be_readable(tmp_path: Path) -> None:
    directory = tmp_path / "a-directory.pem"
    directory.mkdir()
    with pytest.raises(ValidationError, match="no readable file"):
        transport(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CA_FILE=str(directory))
