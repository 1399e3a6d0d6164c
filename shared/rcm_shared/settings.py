"""Service configuration from the environment, validated at start.

Infrastructure uses the conventional variable names (KAFKA_BOOTSTRAP_SERVERS,
MONGODB_URL, OTEL_EXPORTER_OTLP_ENDPOINT); the platform's own knobs start with RCM_.
"""

from __future__ import annotations

import sys
from typing import Self, TypeVar

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .topology import PROCESSES

PORTS = {process.name: process.http_port for process in PROCESSES}


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RCM_", extra="ignore", frozen=True)

    service_name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "RCM_KAFKA_BOOTSTRAP_SERVERS"),
    )
    mongodb_url: str = Field(
        default="mongodb://127.0.0.1:27017/",
        validation_alias=AliasChoices("MONGODB_URL", "RCM_MONGODB_URL"),
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
    def _mongo_scheme(cls, value: str) -> str:
        if not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value

    @property
    def database_name(self) -> str:
        return self.mongodb_database or f"rcm_{self.service_name.replace('-', '_')}"


S = TypeVar("S", bound=ServiceSettings)


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
