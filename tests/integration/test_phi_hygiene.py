"""No patient value reaches a metric label, a span or a log line.

One episode with unmistakable fake patient values goes through registration,
eligibility (a real 270/271 with the payer simulator), coding, claims (837P, 999,
277CA) and payments (835), every service in this process on real Kafka and MongoDB.
Commands are asked through each service's Kafka path (`Service.ask`), not its HTTP API.
Then every finished span (name, attributes, events, status), every label of every
service's Prometheus registry and every log record is searched for those values.

The search is not vacuous: the same values are found where they belong (the stored
episodes and the archived X12), and the scanners find them when planted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, Counter
from pymongo import AsyncMongoClient
from rcm_claims import app as claims_app
from rcm_coding import app as coding_app
from rcm_contracts import Request
from rcm_contracts.coding import CaseAssignmentRequested, CodedLine, CodesSubmissionRequested
from rcm_contracts.eligibility import EligibilityVerified
from rcm_contracts.payments import PaymentPosted
from rcm_contracts.registration import (
    Address,
    AppointmentRequested,
    CheckInRequested,
    ClinicalDocumentation,
    CoverageDraft,
    CoverageRank,
    DocumentedDiagnosis,
    DocumentedProcedure,
    EncounterCompletionRequested,
    Person,
    RegistrationRequested,
    Sex,
)
from rcm_eligibility import app as eligibility_app
from rcm_payer_simulator import adjudication as rules
from rcm_payer_simulator import app as simulator_app
from rcm_payer_simulator.mailbox import Mailbox
from rcm_payments import app as payments_app
from rcm_registration import app as registration_app
from rcm_shared.errors import NotFound, TransientError
from rcm_shared.kafka import Topics
from rcm_shared.requests import Reply
from rcm_shared.service import Service

from tests.conftest import Infra

from .helpers import eventually, read_topic, serving
from .services import running, settings_for

pytestmark = pytest.mark.integration

SEED = 20261125
NPI = "1234567893"
BIRTH_DATE = date(1931, 7, 29)
PATIENT = Person(
    first_name="Ottoline",
    last_name="Quillfeather",
    birth_date=BIRTH_DATE,
    sex=Sex.FEMALE,
    address=Address(line1="77 Zephyrine Lane", city="Xanthoria", state="OR", postal_code="97201"),
)
SYMPTOM = "Zorblaxian"  # free text of the visit note and a documented diagnosis


def active_member() -> str:
    """A member id the simulator's payer knows as active (so the claim is paid)."""
    return next(
        member
        for n in range(1000)
        if rules.member_status(SEED, "ACME01", member := f"QZ{n:09d}") == "active"
        and rules.retro_termination(SEED, "ACME01", member) is None
    )


def paid_episode() -> str:
    """Any episode id: the simulator pays a claim that follows its rules, whatever its id."""
    return f"E{0:012x}"


MEMBER = active_member()
# Every way the values are written: as given, in X12 (upper case, CCYYMMDD), as JSON dates.
PHI = [
    PATIENT.first_name,
    PATIENT.last_name,
    PATIENT.address.line1,
    PATIENT.address.city,
    MEMBER,
    SYMPTOM,
    BIRTH_DATE.isoformat(),
    BIRTH_DATE.strftime("%Y%m%d"),
    BIRTH_DATE.strftime("%m/%d/%Y"),
]


def leaks(texts: Iterable[str]) -> list[str]:
    """Each text that contains a patient value, whatever its case."""
    wanted = [value.lower() for value in PHI]
    return [text for text in texts if any(value in text.lower() for value in wanted)]


# --- what is said outside the stores -------------------------------------------------------


def span_texts(spans: Iterable[ReadableSpan]) -> list[str]:
    texts: list[str] = []
    for span in spans:
        texts.append(f"span name {span.name}")
        texts += [f"{span.name} attribute {k}={v}" for k, v in (span.attributes or {}).items()]
        for event in span.events:
            texts.append(f"{span.name} event {event.name}")
            texts += [f"{span.name} event {k}={v}" for k, v in (event.attributes or {}).items()]
        if span.status.description:
            texts.append(f"{span.name} status {span.status.description}")
    return texts


def label_texts(registries: Iterable[CollectorRegistry]) -> list[str]:
    return [
        f"{sample.name}{{{label}={value}}}"
        for registry in registries
        for metric in registry.collect()
        for sample in metric.samples
        for label, value in sample.labels.items()
    ]


STANDARD_RECORD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
FORMAT = logging.Formatter("%(name)s %(levelname)s %(message)s")


def log_texts(records: Iterable[logging.LogRecord]) -> list[str]:
    """Each record as a handler would write it (message, exception, stack), and any extra
    fields it carries (a structured formatter would write those too)."""
    texts = []
    for record in records:
        extra = {k: v for k, v in vars(record).items() if k not in STANDARD_RECORD}
        texts.append(f"{FORMAT.format(record)} {extra!r}")
    return texts


def test_the_scanners_find_a_planted_value() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("probe")
    with tracer.start_as_current_span("probe") as span:
        span.set_attribute("patient", PATIENT.last_name)
    with tracer.start_as_current_span("probe") as span:
        span.add_event("checked", {"member": MEMBER})
    with contextlib.suppress(ValueError), tracer.start_as_current_span("probe"):
        raise ValueError(f"born {BIRTH_DATE:%Y%m%d}")
    assert len(leaks(span_texts(exporter.get_finished_spans()))) >= 3

    registry = CollectorRegistry()
    Counter("probe", "A planted label.", ["who"], registry=registry).labels("QUILLFEATHER").inc()
    assert leaks(label_texts([registry]))

    record = logging.makeLogRecord({"msg": "checked %s", "args": (MEMBER,)})
    assert leaks(log_texts([record]))
    assert leaks(log_texts([logging.makeLogRecord({"msg": "x", "patient": SYMPTOM})]))


# --- the platform, in this process ---------------------------------------------------------


@pytest.fixture
async def databases(infra: Infra) -> AsyncIterator[list[str]]:
    """One database per service, as deployed; dropped afterwards."""
    names = [f"test_{uuid.uuid4().hex[:12]}" for _ in range(5)]
    yield names
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url)
    for name in names:
        await client.drop_database(name)
    await client.close()


async def ask(service: Service, request: Request) -> Reply:
    """The request answered; asked again (the same request: the same key) while its
    aggregate is not there yet or its owner is busy (coding loads ICD-10 first)."""
    key = f"phi-{uuid.uuid4().hex}"
    answered: list[Reply] = []

    async def answer() -> bool:
        with contextlib.suppress(NotFound, TransientError):
            answered.append(await service.ask(request, key))
        return bool(answered)

    await eventually(answer, timeout_s=180)
    return answered[0]


def capture_spans(services: Iterable[Service]) -> InMemorySpanExporter:
    """Every span the services end from now on: theirs and the global provider's (the
    stores' spans), which is the first service's built in this process."""
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    providers = {id(s.tracer_provider): s.tracer_provider for s in services}
    global_provider = trace.get_tracer_provider()
    if isinstance(global_provider, TracerProvider):
        providers[id(global_provider)] = global_provider
    for provider in providers.values():
        provider.add_span_processor(processor)
    return exporter


def stored(texts: Iterable[str]) -> str:
    return "\n".join(texts)


async def documents(infra: Infra, database: str, collection: str) -> str:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url)
    try:
        found = [document async for document in client[database][collection].find()]
    finally:
        await client.close()
    return json.dumps(found, default=str)


async def test_patient_values_reach_no_metric_label_span_or_log_line(
    infra: Infra,
    topics: Topics,
    databases: list[str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Production logs at INFO; our own loggers (and FastStream's per-message ones) are
    # read at DEBUG too. Libraries' DEBUG (pymongo's commands) is not what runs.
    caplog.set_level(logging.INFO)
    for name in ("rcm", "rcm_shared", "rcm_x12", "rcm_payer_simulator"):
        caplog.set_level(logging.DEBUG, logger=name)
    for service_name in ("registration", "eligibility", "coding", "claims", "payments"):
        caplog.set_level(logging.DEBUG, logger=f"rcm_{service_name}")

    archive = tmp_path / "x12"
    simulator = simulator_app.build(
        simulator_app.Settings(
            seed=SEED, ack_delay_s=0.1, remit_delay_s=0.3, x12_archive_dir=archive
        )
    )
    reg_db, elig_db, coding_db, claims_db, payments_db = databases
    async with serving(simulator, lifespan="on") as url:
        edi: dict[str, Any] = {
            "RCM_CLEARINGHOUSE_URL": url,
            "RCM_X12_ARCHIVE_DIR": str(archive),
            "handler_retry_backoff_s": 0.05,
        }

        def service(app: Any, database: str, **overrides: Any) -> Service:
            built: Service = app.build(
                settings_for(app.Settings, infra, topics.prefix, database, **overrides)
            )
            return built

        registration = service(registration_app, reg_db)
        eligibility = service(eligibility_app, elig_db, **edi)
        coding = service(coding_app, coding_db)
        claims = service(claims_app, claims_db, **edi, batch_interval_s=0.2, mailbox_poll_s=0.2)
        payments = service(payments_app, payments_db, **edi, mailbox_poll_s=0.2)
        platform = [registration, eligibility, coding, claims, payments]
        spans = capture_spans(platform)
        try:
            async with contextlib.AsyncExitStack() as stack:
                for each in platform:
                    await stack.enter_async_context(running(each))
                mailbox = simulator.state.simulator.mailbox
                episode = await drive_one_episode(infra, topics, registration, coding, mailbox)
        finally:
            spans.shutdown()  # the providers outlive this test; the exporter stops here

        registries = [s.metrics.registry for s in platform]
        # The simulator's registry lives inside its build(); this is what its /metrics serves.
        simulator_registry = CollectorRegistry()
        simulator_registry.register(simulator_app._StatsCollector(simulator.state.simulator))
        registries.append(simulator_registry)

        # Not vacuous: the values went where patient data belongs.
        for database, collection in (
            (reg_db, "episodes"),
            (elig_db, "verifications"),
            (claims_db, "episodes"),
        ):
            kept = await documents(infra, database, collection)
            assert PATIENT.last_name in kept, (database, collection)
            assert MEMBER in kept
        assert SYMPTOM in await documents(infra, coding_db, "cases")
        files = {path.name: path.read_text() for path in archive.rglob("*.x12")}

        def kept_as(kind: str) -> str:
            return stored(text for name, text in files.items() if f"-{kind}-" in name)

        for text in (kept_as("sent-270"), kept_as("sent-837P")):
            assert f"*{BIRTH_DATE:%Y%m%d}" in text
        for text in (
            kept_as("sent-270"),
            kept_as("received-271"),
            kept_as("sent-837P"),
            kept_as("received-277CA"),
            kept_as("received-835"),
        ):
            assert PATIENT.last_name.upper() in text.upper()
            assert MEMBER in text
        assert episode in kept_as("sent-837P")

        finished = spans.get_finished_spans()
        assert len(finished) > 20  # the services' spans were seen
        assert any(episode in str(s.attributes) for s in finished)  # and this episode's
        assert leaks(span_texts(finished)) == []
        labels = label_texts(registries)
        assert any("rcm_simulator_eligibility" in label for label in labels)
        assert leaks(labels) == []
        assert len(caplog.records) > 10
        assert leaks(log_texts(caplog.records)) == []


async def drive_one_episode(
    infra: Infra, topics: Topics, registration: Service, coding: Service, mailbox: Mailbox
) -> str:
    """Registration to a posted payment, by the services' Kafka paths; the episode id."""
    episode = paid_episode()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    clerk = "front-desk-1"
    await ask(
        registration,
        AppointmentRequested(
            episode_id=episode,
            requested_by=clerk,
            scheduled_start=start,
            rendering_provider_npi=NPI,
            visit_type="office-visit-established",
        ),
    )
    await ask(
        registration,
        RegistrationRequested(
            episode_id=episode,
            requested_by=clerk,
            patient=PATIENT,
            coverages=[
                CoverageDraft(
                    rank=CoverageRank.PRIMARY,
                    payer_id="ACME01",
                    payer_name="Acme Health Plan",
                    member_id=MEMBER,
                )
            ],
        ),
    )
    await ask(registration, CheckInRequested(episode_id=episode, requested_by=clerk))
    await ask(
        registration,
        EncounterCompletionRequested(
            episode_id=episode,
            requested_by=clerk,
            place_of_service="11",
            documentation=ClinicalDocumentation(
                note=f"{SYMPTOM} fatigue for three weeks; type 2 diabetes follow-up.",
                diagnoses=[
                    DocumentedDiagnosis(description=f"{SYMPTOM} fatigue", icd10_hint=None),
                    DocumentedDiagnosis(description="Type 2 diabetes", icd10_hint="E11.9"),
                ],
                procedures=[DocumentedProcedure(description="Office visit", code_hint="99213")],
            ),
        ),
    )
    (verified,) = await read_topic(infra.kafka, topics.of(EligibilityVerified), 1, 60)
    assert json.loads(verified.value)["episode_id"] == episode

    coder = "coder-1"
    await ask(coding, CaseAssignmentRequested(episode_id=episode, requested_by=coder))
    await ask(
        coding,
        CodesSubmissionRequested(
            episode_id=episode,
            requested_by=coder,
            diagnoses=["E11.9"],
            lines=[CodedLine(procedure_code="99213", diagnosis_pointers=[1])],
        ),
    )
    (posted,) = await read_topic(infra.kafka, topics.of(PaymentPosted), 1, 90)
    assert json.loads(posted.value)["claim_id"] == f"{episode}-1"

    async def all_read() -> bool:  # the 277CA may come after the 835: it is read too
        return len(mailbox) == 0

    await eventually(all_read, timeout_s=60)
    return episode
