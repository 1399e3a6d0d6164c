"""How the rcm tools reach Kafka and MongoDB: with the services' transport settings.

The same variables as every service (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*,
MONGODB_TLS_CA_FILE; decisions.md §22), read from the environment at each client, so a
tool talks to a secured cluster exactly as the services do. Bad settings end the tool
with the same message a service would print.
"""

from __future__ import annotations

from typing import Any

from rcm_shared.kafka import kafka_client_options, kafka_security
from rcm_shared.settings import TransportSettings, load_settings
from rcm_shared.store import mongo_client_options


def transport_settings() -> TransportSettings:
    return load_settings(TransportSettings)


def kafka_options() -> dict[str, Any]:
    """Keyword arguments for an aiokafka client (admin, consumer, producer)."""
    return kafka_client_options(kafka_security(transport_settings()))


def mongo_options() -> dict[str, Any]:
    """Keyword arguments for a PyMongo client; credentials are in the URL."""
    return mongo_client_options(transport_settings())
