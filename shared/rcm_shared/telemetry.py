"""Traces (OpenTelemetry, OTLP when configured) and Prometheus metrics of one service."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CollectorRegistry, Counter, Gauge

# What a service logs on stopping, followed by its database command counts as JSON.
DATABASE_COMMANDS_LOGGED = "database commands since start:"


def setup_tracing(service_name: str, otlp_endpoint: str | None) -> TracerProvider:
    """A tracer provider for the service; spans leave the process only with an endpoint."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if otlp_endpoint:
        exporter = OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


class Metrics:
    """The service's own metrics, beside FastStream's per-message ones in one registry."""

    def __init__(self, service_name: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"service": service_name}
        self.dead_letters = Counter(
            "rcm_dead_letters",
            "Messages sent to a dead-letter topic, by reason.",
            ["topic", "group", "reason"],
            registry=self.registry,
        )
        self.parked = Counter(
            "rcm_parked",
            "Messages set aside on the dead letters after failing transiently delivery after"
            " delivery: their partition was blocked. An alert.",
            ["topic", "group", "error"],
            registry=self.registry,
        )
        self.payload_mismatches = Counter(
            "rcm_payload_mismatches",
            "Messages refused because their ce_id was applied before with another payload.",
            ["topic", "group"],
            registry=self.registry,
        )
        self.outbox_quarantined = Counter(
            "rcm_outbox_quarantined",
            "Outbox entries set aside because they can never be published (kept in the"
            " aggregate's document under `quarantine`).",
            ["collection", "error"],
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "rcm_outbox_backlog",
            "Aggregates with events not yet published.",
            registry=self.registry,
        )
        self.outbox_published = Counter(
            "rcm_outbox_published",
            "Events published by the outbox relay.",
            registry=self.registry,
        )
        self.database_commands = Counter(
            "rcm_database_commands",
            "Commands sent to the database, by collection and command (find, update, ...):"
            " the database's load, which bounds throughput on FerretDB.",
            ["collection", "command"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "rcm_consumer_lag",
            "Messages behind the end of the partition, per topic and partition.",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.service_info = Gauge(
            "rcm_service_info",
            "Always 1; labels name the service.",
            list(labels),
            registry=self.registry,
        )
        self.service_info.labels(**labels).set(1)

    def database_command_counts(self) -> dict[str, int]:
        """`rcm_database_commands_total` as `{"<collection> <command>": count}`."""
        return {
            f"{sample.labels['collection']} {sample.labels['command']}": int(sample.value)
            for metric in self.database_commands.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        }
