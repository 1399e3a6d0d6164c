"""Service configuration from the environment, validated at start.

Infrastructure uses the conventional variable names (KAFKA_BOOTSTRAP_SERVERS,
MONGODB_URL, OTEL_EXPORTER_OTLP_ENDPOINT, KAFKA_SECURITY_PROTOCOL, ...); the platform's
own knobs start with RCM_. Secrets (the Kafka password, the MongoDB URL, which may hold
credentials) are SecretStr: never in a repr, a log line or a configuration error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from .topology import PROCESSES

PORTS = {process.name: process.http_port for process in PROCESSES}


def _env(name: str) -> AliasChoices:
    """The conventional variable name, or the same with the platform's RCM_ prefix."""
    return AliasChoices(name, f"RCM_{name}")


# --- transport security (decisions.md §22) ------------------------------------------------
# A base of ServiceSettings, so the rcm tools (watchers, dead letters, bench) read the same
# variables without a service's identity. Defaults: PLAINTEXT, as the local Kafka runs.
SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})


class TransportSettings(BaseSettings):
    """How clients reach Kafka and MongoDB: TLS, SASL and their files."""

    # hide_input_in_errors: a ValidationError's text would otherwise quote the input.
    model_config = SettingsConfigDict(
        env_prefix="RCM_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", validation_alias=_env("KAFKA_SECURITY_PROTOCOL")
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, validation_alias=_env("KAFKA_SASL_MECHANISM")
    )
    kafka_sasl_username: str | None = Field(
        default=None, validation_alias=_env("KAFKA_SASL_USERNAME")
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None, validation_alias=_env("KAFKA_SASL_PASSWORD")
    )
    kafka_ssl_ca_file: Path | None = Field(
        default=None,
        validation_alias=_env("KAFKA_SSL_CA_FILE"),
        description="PEM CA bundle the brokers' certificates are checked against; "
        "the system's CAs when unset.",
    )
    kafka_ssl_cert_file: Path | None = Field(
        default=None,
        validation_alias=_env("KAFKA_SSL_CERT_FILE"),
        description="PEM client certificate (mutual TLS); may hold the key too.",
    )
    kafka_ssl_key_file: Path | None = Field(
        default=None, validation_alias=_env("KAFKA_SSL_KEY_FILE"), description="PEM client key."
    )
    mongodb_tls_ca_file: Path | None = Field(
        default=None,
        validation_alias=_env("MONGODB_TLS_CA_FILE"),
        description="PEM CA bundle for MongoDB (tlsCAFile; implies TLS). Credentials and "
        "tls=true go in MONGODB_URL.",
    )

    @field_validator(
        "kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file", "mongodb_tls_ca_file"
    )
    @classmethod
    def _readable_file(cls, path: Path | None) -> Path | None:
        # Caught at start rather than at the first connection, which retries quietly.
        if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
            raise ValueError(f"no readable file at {path}")
        return path

    @model_validator(mode="after")
    def _consistent_kafka_security(self) -> Self:
        # Messages name variables, never values: a value here may be a secret.
        protocol = self.kafka_security_protocol
        sasl_set = [
            name
            for name, value in (
                ("KAFKA_SASL_MECHANISM", self.kafka_sasl_mechanism),
                ("KAFKA_SASL_USERNAME", self.kafka_sasl_username),
                ("KAFKA_SASL_PASSWORD", self.kafka_sasl_password),
            )
            if value is not None
        ]
        files_set = [
            name
            for name, value in (
                ("KAFKA_SSL_CA_FILE", self.kafka_ssl_ca_file),
                ("KAFKA_SSL_CERT_FILE", self.kafka_ssl_cert_file),
                ("KAFKA_SSL_KEY_FILE", self.kafka_ssl_key_file),
            )
            if value is not None
        ]
        if protocol in SASL_PROTOCOLS:
            if self.kafka_sasl_mechanism is None:
                raise ValueError(
                    f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_MECHANISM "
                    "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
                )
            password = self.kafka_sasl_password
            if not self.kafka_sasl_username or password is None or not password.get_secret_value():
                raise ValueError(
                    f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and "
                    "KAFKA_SASL_PASSWORD"
                )
        elif sasl_set:
            # Credentials that would go unused mean the protocol was forgotten.
            raise ValueError(
                f"{', '.join(sasl_set)} set, but KAFKA_SECURITY_PROTOCOL={protocol} does not "
                "authenticate: set it to SASL_SSL (or SASL_PLAINTEXT), or unset them"
            )
        if files_set and protocol not in TLS_PROTOCOLS:
            raise ValueError(
                f"{', '.join(files_set)} set, but KAFKA_SECURITY_PROTOCOL={protocol} does not "
                "use TLS: set it to SSL or SASL_SSL, or unset them"
            )
        if self.kafka_ssl_key_file is not None and self.kafka_ssl_cert_file is None:
            raise ValueError("KAFKA_SSL_KEY_FILE needs KAFKA_SSL_CERT_FILE (the certificate)")
        return self


class ServiceSettings(TransportSettings):
    model_config = SettingsConfigDict(
        env_prefix="RCM_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    service_name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "RCM_KAFKA_BOOTSTRAP_SERVERS"),
    )
    mongodb_url: SecretStr = Field(
        default=SecretStr("mongodb://127.0.0.1:27017/"),
        validation_alias=AliasChoices("MONGODB_URL", "RCM_MONGODB_URL"),
        description="May hold credentials and tls=true: a secret (decisions.md §22).",
    )
    mongodb_database: str | None = Field(
        default=None, description="Defaults to rcm_<service name>: one database per service."
    )
    topic_prefix: str = Field(
        default="", pattern=r"^([a-z0-9-]+\.)?$", description="Namespaces topics, e.g. 'test-7.'."
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(
        default=0, ge=0, le=65535, description="Defaults to the service's port in topology."
    )
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "RCM_OTLP_ENDPOINT"),
    )
    handler_retries: int = Field(default=5, ge=0, le=20)
    handler_retry_backoff_s: float = Field(default=0.2, gt=0, le=10)
    handler_max_deliveries: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Deliveries failing transiently, while others go through, before a"
        " message is parked on the dead letters.",
    )
    handler_max_redelivery_age_s: float = Field(
        default=3600.0,
        gt=0,
        le=7 * 24 * 3600,
        description="How long a message may keep failing transiently before it is parked,"
        " whatever else happens (an outage too).",
    )
    relay_interval_s: float = Field(default=0.5, gt=0, le=60)
    aggregate_cache_size: int = Field(
        default=2000,
        ge=0,
        le=1_000_000,
        description="Documents of owned aggregates kept in memory per collection, so a"
        " change is one write (decisions.md NN); 0 reads before every change.",
    )
    topic_partitions: int = Field(
        default=6,
        ge=1,
        le=1000,
        description="Partitions of every topic: the most replicas a service can spread over.",
    )
    topic_replication_factor: int = Field(default=1, ge=1, le=10)
    request_timeout_s: float = Field(default=10.0, gt=0, le=120)
    auth_jwks_url: str = Field(
        min_length=1,
        description="Where the identity provider's signing keys are (https://, or file:// "
        "for the dev issuer of `rcm token`). Required: no service answers unsigned calls.",
    )
    auth_issuer: str = Field(min_length=1, description="The `iss` every token must carry.")
    auth_audience: str = Field(default="rcm-platform", description="The `aud` tokens carry.")
    auth_roles_claim: str = Field(
        default="roles",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
        description="The claim holding the roles; dotted for nested (realm_access.roles).",
    )
    api_docs: bool = Field(default=False, description="Serve /docs and /openapi.json.")
    max_body_bytes: int = Field(default=1_000_000, ge=1024, le=100_000_000)

    @model_validator(mode="after")
    def _port_from_topology(self) -> Self:
        if "http_port" not in self.model_fields_set:
            port = PORTS.get(self.service_name)
            if port is not None:
                object.__setattr__(self, "http_port", port)  # frozen: set while validating
        return self

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    @field_validator("mongodb_url")
    @classmethod
    def _mongo_scheme(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value

    @model_validator(mode="after")
    def _mongo_tls_consistent(self) -> Self:
        # tlsCAFile turns TLS on; a URL that turns it off would fail at the first connection.
        if self.mongodb_tls_ca_file is not None:
            query = parse_qs(urlsplit(self.mongodb_url.get_secret_value()).query)
            if any(v.lower() == "false" for k in ("tls", "ssl") for v in query.get(k, [])):
                raise ValueError("MONGODB_TLS_CA_FILE is set, but MONGODB_URL says tls=false")
        return self

    @property
    def database_name(self) -> str:
        return self.mongodb_database or f"rcm_{self.service_name.replace('-', '_')}"


S = TypeVar("S", bound=BaseSettings)


def load_settings(settings_class: type[S], **overrides: object) -> S:
    """Read and validate settings; on bad config, say what is wrong and exit non-zero."""
    try:
        return settings_class(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        lines = [f"invalid configuration for {settings_class.__name__}:"]
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"]) or "(settings)"
            lines.append(f"  {where}: {problem['msg']}")  # values may hold secrets
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
