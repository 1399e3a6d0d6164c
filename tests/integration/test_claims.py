"""The claims service on real Kafka and a real MongoDB wire protocol, sending 837P batches
to a small real HTTP clearinghouse (served here with uvicorn) that keeps every batch and
answers with a 999 and a 277CA in the mailbox."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient
from rcm_claims import domain
from rcm_claims.app import Settings, build
from rcm_claims.edi import interchange
from rcm_claims.store import MAX_CONTROL_NUMBER
from rcm_contracts import Event
from rcm_contracts.claims import (
    ClaimAccepted,
    ClaimClosed,
    ClaimDenied,
    ClaimEditFailed,
    ClaimPaid,
    ClaimRejected,
    ClaimResubmitted,
    ClaimSubmitted,
)
from rcm_contracts.coding import CodingCompleted
from rcm_contracts.eligibility import EligibilityVerified
from rcm_contracts.registration import CoverageRank, CoverageUpdated, PatientRegistered
from rcm_edits.packs import ModifierIndicator, Pack, PtpEdit, write_pack
from rcm_shared.aggregates import Decision
from rcm_shared.envelope import Envelope
from rcm_shared.kafka import EventPublisher, Topics, make_broker
from rcm_shared.ownership import partition_of
from rcm_shared.service import Service
from rcm_shared.store import MongoAggregates
from rcm_x12 import (
    AcknowledgmentDocument,
    ClaimAcknowledgment,
    ClaimAcknowledgmentDocument,
    ClaimAcknowledgmentEntry,
    ClaimBatch,
    ImplementationAcknowledgment,
    ProfessionalClaim,
    StatusCode,
    TransactionSetResponse,
    build_277ca,
    build_999,
    parse_837p,
    validate_with_pyx12,
)
from rcm_x12 import Envelope as X12Envelope

from tests.conftest import Infra, drop_topics
from tests.unit.claims import builders as b

from .helpers import eventually, serving
from .services import running, settings_for

pytestmark = pytest.mark.integration

EPISODE = b.EPISODE
SCRUB_PACK = Pack(
    version="it-scrub-2026",
    effective_from=b.SERVICE_DATE.replace(month=1, day=1),
    ptp=[
        PtpEdit(
            column1="29540",
            column2="99213",
            effective=b.SERVICE_DATE.replace(month=1, day=1),
            modifier_indicator=ModifierIndicator.ALLOWED,
        )
    ],
)


# --- the clearinghouse -------------------------------------------------------------------


@dataclass
class Clearinghouse:
    """Keeps every batch; for each, puts a 999 (all accepted) and a 277CA (accepted with a
    payer claim number, except the claims in `reject`) in the mailbox. The first
    `lose_answers` batches are kept but answered 503, as if the answer got lost."""

    reject: set[str] = field(default_factory=set)
    lose_answers: int = 0
    url: str = ""
    batches: list[str] = field(default_factory=list)
    mailbox: dict[str, tuple[str, str]] = field(default_factory=dict)
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def receive(self, text: str) -> Response:
        self.batches.append(text)
        batch = parse_837p(text)
        n = len(self.batches)
        self.mailbox[f"999-{n}"] = ("999", self._999(batch))
        self.mailbox[f"277CA-{n}"] = ("277CA", self._277ca(batch))
        if self.lose_answers > 0:
            self.lose_answers -= 1
            return PlainTextResponse("gateway timeout", status_code=503)
        return JSONResponse({"batch_id": f"CH{n}"}, status_code=202)

    def _envelope(self, batch: ClaimBatch) -> X12Envelope:
        number = 700_000 + next(self.numbers)
        return X12Envelope(
            sender_id=batch.envelope.receiver_id,
            receiver_id=batch.envelope.sender_id,
            control_number=number,
            group_control_number=number,
            created=datetime.now(UTC).replace(tzinfo=None),
        )

    def _999(self, batch: ClaimBatch) -> str:
        count = len(batch.transactions)
        ack = ImplementationAcknowledgment(
            control_number="0001",
            functional_id="HC",
            group_control_number=batch.envelope.group_control_number,
            version="005010X222A1",
            responses=[
                TransactionSetResponse(
                    transaction_id="837", control_number=t.control_number, status="A"
                )
                for t in batch.transactions
            ],
            status="A",
            included_count=count,
            received_count=count,
            accepted_count=count,
        )
        return build_999(AcknowledgmentDocument(envelope=self._envelope(batch), transactions=[ack]))

    def _277ca(self, batch: ClaimBatch) -> str:
        by_payer: dict[str, list[ProfessionalClaim]] = defaultdict(list)
        for transaction in batch.transactions:
            for claim in transaction.claims:
                by_payer[claim.payer.payer_id].append(claim)
        today = datetime.now(UTC).date()
        acks = [
            ClaimAcknowledgment(
                control_number=f"{n:04d}",
                reference_id=f"ACK{len(self.batches)}",
                created=datetime.now(UTC).replace(tzinfo=None),
                payer_name=claims[0].payer.name,
                payer_id=payer,
                receiver_name="RCM MEDICAL GROUP",
                receiver_id=batch.envelope.sender_id,
                source_trace=f"S{len(self.batches)}",
                receipt_date=today,
                process_date=today,
                batch_trace=batch.transactions[0].batch_id,
                claims=[self._entry(payer, claim) for claim in claims],
            )
            for n, (payer, claims) in enumerate(by_payer.items(), start=1)
        ]
        document = ClaimAcknowledgmentDocument(envelope=self._envelope(batch), transactions=acks)
        return build_277ca(document)

    def _entry(self, payer: str, claim: ProfessionalClaim) -> ClaimAcknowledgmentEntry:
        rejected = claim.patient_control_number in self.reject
        return ClaimAcknowledgmentEntry(
            patient_control_number=claim.patient_control_number,
            patient_last_name=claim.subscriber.last_name,
            patient_first_name=claim.subscriber.first_name,
            patient_member_id=claim.subscriber.member_id,
            billing_provider_name=claim.billing_provider.name,
            billing_provider_npi=claim.billing_provider.npi,
            status=StatusCode(
                category="A7" if rejected else "A1", code="164" if rejected else "20"
            ),
            effective_date=datetime.now(UTC).date(),
            total_charge_cents=claim.total_charge_cents,
            payer_claim_control_number=None if rejected else pccn(payer, claim),
            service_date=claim.lines[0].service_date,
            message="ENTITY NOT FOUND" if rejected else None,
        )

    def claim_ids(self, batch: int) -> list[str]:
        return [
            claim.patient_control_number
            for transaction in parse_837p(self.batches[batch]).transactions
            for claim in transaction.claims
        ]


def pccn(payer: str, claim: ProfessionalClaim) -> str:
    return f"{payer}-{claim.patient_control_number}-{claim.frequency_code}"


@contextlib.asynccontextmanager
async def clearinghouse(stub: Clearinghouse) -> AsyncIterator[Clearinghouse]:
    app = FastAPI()

    @app.post("/x12/batches")
    async def batches(request: Request) -> Response:
        return stub.receive((await request.body()).decode())

    @app.get("/mailbox/{partner}")
    async def waiting(partner: str, request: Request) -> list[dict[str, str]]:
        kinds = request.query_params.getlist("kind")
        return [
            {"id": key, "kind": kind}
            for key, (kind, _) in stub.mailbox.items()
            if not kinds or kind in kinds
        ]

    @app.get("/mailbox/{partner}/{document_id}")
    async def fetch(partner: str, document_id: str) -> Response:
        if document_id not in stub.mailbox:
            return PlainTextResponse("not found", status_code=404)
        return PlainTextResponse(stub.mailbox[document_id][1])

    @app.delete("/mailbox/{partner}/{document_id}")
    async def acknowledge(partner: str, document_id: str) -> Response:
        stub.mailbox.pop(document_id, None)
        return Response(status_code=204)

    async with serving(app) as url:
        stub.url = url
        yield stub


# --- the service and its inputs ----------------------------------------------------------


def claims_service(
    infra: Infra, topics: Topics, database: Any, stub: Clearinghouse, archive: Path
) -> Service:
    settings = settings_for(
        Settings,
        infra,
        topics.prefix,
        database.name,
        RCM_CLEARINGHOUSE_URL=stub.url,
        RCM_X12_ARCHIVE_DIR=str(archive),
        batch_interval_s=0.2,
        mailbox_poll_s=0.2,
        handler_retry_backoff_s=0.05,
    )
    assert isinstance(settings, Settings)
    return build(settings)


@contextlib.asynccontextmanager
async def publishing(infra: Infra, topics: Topics) -> AsyncIterator[EventPublisher]:
    broker: KafkaBroker = make_broker(infra.kafka, "test-claims-inputs")
    await broker.start()
    try:
        yield EventPublisher(broker, topics)
    finally:
        await broker.stop()


async def publish(publisher: EventPublisher, *events: Event) -> None:
    for event in events:
        await publisher.publish(Envelope(data=event, source="rcm/test"))


def episode_inputs(
    episode: str = EPISODE, secondary: bool = True, place: str = "11"
) -> list[Event]:
    """An episode's inputs, deliberately not in the order they happen."""
    items = [b.PRIMARY_COVERAGE, b.SECONDARY_COVERAGE] if secondary else [b.PRIMARY_COVERAGE]
    events: list[Event] = [b.coded(place=place, episode=episode)]
    events += [b.verified(item, episode=episode) for item in reversed(items)]
    events += [b.coverages(*items, episode=episode), b.registered(episode=episode)]
    return events


async def emitted(
    infra: Infra, topics: Topics, kind: type[Event], episode: str, count: int
) -> list[dict[str, Any]]:
    """The first `count` events of a kind about one episode (keyed by it), in order."""
    consumer = AIOKafkaConsumer(
        topics.of(kind),
        bootstrap_servers=infra.kafka,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + 30
    try:
        while len(found) < count and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                found += [json.loads(r.value) for r in records if r.key == episode.encode()]
    finally:
        await consumer.stop()
    assert len(found) >= count, f"{kind.event_type} of {episode}: {len(found)} of {count}"
    return found[:count]


async def topic_size(infra: Infra, topic: str) -> int:
    """Every record ever written to the topic (its end offsets), to assert 'exactly'."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=infra.kafka, enable_auto_commit=False)
    await consumer.start()
    try:

        async def known() -> bool:
            return bool(consumer.partitions_for_topic(topic))

        await eventually(known)
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions)
        return sum(ends.values())
    finally:
        await consumer.stop()


def batch_with(stub: Clearinghouse, claim_id: str) -> ProfessionalClaim:
    """The claim as the clearinghouse received it (the first batch that carried it)."""
    for text in stub.batches:
        for transaction in parse_837p(text).transactions:
            for claim in transaction.claims:
                if claim.patient_control_number == claim_id:
                    return claim
    raise AssertionError(f"{claim_id} was never sent")


@dataclass
class Running:
    """One claims service (with its clearinghouse) shared by the scenario tests below;
    each test uses episodes of its own."""

    infra: Infra
    topics: Topics
    stub: Clearinghouse
    client: httpx.AsyncClient
    publisher: EventPublisher
    archive: Path
    database: Any

    async def emitted(self, kind: type[Event], episode: str, count: int) -> list[dict[str, Any]]:
        return await emitted(self.infra, self.topics, kind, episode, count)

    async def publish(self, *events: Event) -> None:
        await publish(self.publisher, *events)


@pytest.fixture(scope="module")
async def claims(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    topics = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.")
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    database = mongo[f"test_{uuid.uuid4().hex[:12]}"]
    archive = tmp_path_factory.mktemp("x12")
    try:
        async with (
            clearinghouse(Clearinghouse()) as stub,
            publishing(infra, topics) as publisher,
        ):
            # A pack of the tests' own, in force on the builders' dates of service.
            packs = tmp_path_factory.mktemp("edit-packs")
            write_pack(SCRUB_PACK, packs)
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("RCM_EDIT_PACKS_DIR", str(packs))
                service = claims_service(infra, topics, database, stub, archive)
            async with running(service) as client:
                yield Running(infra, topics, stub, client, publisher, archive, database)
    finally:
        await mongo.drop_database(database.name)
        await mongo.close()
        await drop_topics(infra.kafka, topics.prefix)


# --- tests -------------------------------------------------------------------------------


async def test_claim_is_sent_acknowledged_paid_then_billed_to_the_secondary(
    claims: Running,
) -> None:
    first, second = f"{EPISODE}-1", f"{EPISODE}-2"
    await claims.publish(*episode_inputs())
    (submitted,) = await claims.emitted(ClaimSubmitted, EPISODE, 1)
    assert (submitted["claim_id"], submitted["rank"]) == (first, "primary")

    (text,) = [text for text in claims.stub.batches if first in text]
    ok, errors = validate_with_pyx12(text)
    assert ok, errors
    batch = parse_837p(text)
    assert f"{batch.envelope.control_number:09d}" == submitted["interchange_control_number"]
    claim = batch_with(claims.stub, first)
    assert [line.line_control_number for line in claim.lines] == [
        f"{EPISODE}-L1",
        f"{EPISODE}-L2",
    ]
    icn = submitted["interchange_control_number"]
    (archived,) = (claims.archive / "claims").glob(f"*/*-sent-837P-{icn}.x12")
    assert archived.read_bytes() == text.encode()  # verbatim

    accepted = await claims.emitted(ClaimAccepted, EPISODE, 2)
    assert sorted(a["stage"] for a in accepted) == ["277CA", "999"]
    view = (await claims.client.get(f"/claims/{first}")).json()
    assert view["status"] == "accepted"
    assert view["payer_claim_control_number"] == pccn("ACME01", claim)

    await claims.publish(b.paid_posting(first, "P-1"))
    (paid,) = await claims.emitted(ClaimPaid, EPISODE, 1)
    assert (paid["paid_cents"], paid["patient_responsibility_cents"]) == (7600, 4400)

    submitted_both = await claims.emitted(ClaimSubmitted, EPISODE, 2)
    assert (submitted_both[1]["claim_id"], submitted_both[1]["rank"]) == (second, "secondary")
    (secondary_text,) = [text for text in claims.stub.batches if second in text]
    assert validate_with_pyx12(secondary_text)[0]
    secondary = batch_with(claims.stub, second)
    assert secondary.subscriber.payer_responsibility == "S"
    (prior,) = secondary.prior_payers
    assert (prior.payer_id, prior.paid_cents, prior.payer_claim_control_number) == (
        "ACME01",
        7600,
        pccn("ACME01", claim),
    )
    assert [len(line.adjudications) for line in secondary.lines] == [1, 1]

    posting = b.paid_posting(second, "P-2", patient_share=False, rank=CoverageRank.SECONDARY)
    await claims.publish(posting)
    closed_first, closed_last = await claims.emitted(ClaimClosed, EPISODE, 2)
    assert (closed_first["claim_id"], closed_first["open_claims"]) == (first, 1)
    assert closed_first["sequence"] == 1
    assert (closed_last["claim_id"], closed_last["open_claims"]) == (second, 0)
    assert closed_last["sequence"] == 2
    assert closed_last["posting_ids"] == ["P-1", "P-2"]

    episode = (await claims.client.get(f"/episodes/{EPISODE}/claims")).json()
    assert [c["claim_id"] for c in episode["claims"]] == [first, second]
    assert [c["outcome"] for c in episode["claims"]] == ["paid", "paid"]
    assert (await claims.client.get("/episodes/E000000000000/claims")).status_code == 404


async def test_a_rejection_is_worked_by_the_biller_and_sent_as_a_new_claim(
    claims: Running,
) -> None:
    episode = "E00000000e0e1"
    first, second = f"{episode}-1", f"{episode}-2"
    claims.stub.reject.add(first)
    client = claims.client
    await claims.publish(*episode_inputs(episode, secondary=False))
    (rejected,) = await claims.emitted(ClaimRejected, episode, 1)
    assert (rejected["claim_id"], rejected["stage"]) == (first, "277CA")
    assert rejected["status_codes"] == ["A7:164"]

    queue = (await client.get("/work-queue", params={"kind": "rejection"})).json()
    assert first in [item["claim_id"] for item in queue["items"]]
    denials = (await client.get("/work-queue", params={"kind": "denial"})).json()
    assert first not in [item["claim_id"] for item in denials["items"]]
    assert (await client.get("/work-queue", params={"kind": "other"})).status_code == 422
    # Bounded reads: no more episodes than the service is configured to read.
    most = Settings.model_fields["work_queue_limit"].default
    assert (await client.get("/work-queue", params={"limit": most + 1})).status_code == 422
    one = (await client.get("/work-queue", params={"kind": "rejection", "limit": 1})).json()
    assert one["count"] <= 1
    most = Settings.model_fields["stats_limit"].default
    assert (await client.get("/stats", params={"limit": most + 1})).status_code == 422

    body = {"note": "member id corrected"}
    url = f"/claims/{first}/corrections"
    assert (await client.post(url, json={})).status_code == 422
    response = await client.post(url, json=body)
    assert response.status_code == 202
    assert response.json() == {
        "claim_id": second,
        "replaces_claim_id": first,
        "frequency": "1",
        "changed": [],
    }
    assert (await client.post(url, json=body)).status_code == 409
    missing = await client.post(f"/claims/{episode}-9/corrections", json=body)
    assert missing.status_code == 404

    (resubmitted,) = await claims.emitted(ClaimResubmitted, episode, 1)
    assert (resubmitted["claim_id"], resubmitted["frequency"]) == (second, "1")
    (closed,) = await claims.emitted(ClaimClosed, episode, 1)
    assert (closed["claim_id"], closed["outcome"], closed["open_claims"]) == (first, "replaced", 1)
    submitted = await claims.emitted(ClaimSubmitted, episode, 2)
    assert [s["claim_id"] for s in submitted] == [first, second]
    assert batch_with(claims.stub, second).frequency_code == "1"
    queue = (await client.get("/work-queue", params={"kind": "rejection"})).json()
    assert first not in [item["claim_id"] for item in queue["items"]]


async def test_a_claim_pyx12_refuses_is_not_sent(claims: Running) -> None:
    bad, good = "E00000000bad0", "E0000000000d0"
    await claims.publish(*episode_inputs(bad, secondary=False, place="00"))
    await claims.publish(*episode_inputs(good, secondary=False))
    (submitted,) = await claims.emitted(ClaimSubmitted, good, 1)
    assert submitted["claim_id"] == f"{good}-1"

    async def refused() -> bool:
        queue = (await claims.client.get("/work-queue", params={"kind": "rejection"})).json()
        return f"{bad}-1" in [item["claim_id"] for item in queue["items"]]

    await eventually(refused)
    view = (await claims.client.get(f"/claims/{bad}-1")).json()
    assert view["status"] == "rejected"
    assert view["work"]["stage"] == "pyx12"
    assert "Place of Service" in view["work"]["message"]
    assert view["submitted_at"] is None
    assert all(f"{bad}-1" not in text for text in claims.stub.batches)


async def test_a_claim_breaking_an_edit_is_held_for_the_biller_not_sent(claims: Running) -> None:
    episode = "E00000000ed17"
    first, second = f"{episode}-1", f"{episode}-2"
    coded = b.coded(episode=episode, lines=[("99213", [], 1, 15000), ("29540", [], 1, 7500)])
    inputs = [e for e in episode_inputs(episode, secondary=False) if not isinstance(e, type(coded))]
    await claims.publish(coded, *inputs)

    (failed,) = await claims.emitted(ClaimEditFailed, episode, 1)
    assert (failed["claim_id"], failed["edit_pack_version"]) == (first, "it-scrub-2026")
    (hit,) = failed["hits"]
    assert (hit["rule"], hit["codes"], hit["allowed_modifiers"]) == (
        "ptp",
        ["29540", "99213"],
        ["25"],
    )
    queue = (await claims.client.get("/work-queue", params={"kind": "rejection"})).json()
    (item,) = [item for item in queue["items"] if item["claim_id"] == first]
    assert (item["stage"], item["edit_hits"]) == ("scrub", [hit])
    view = (await claims.client.get(f"/claims/{first}")).json()
    assert (view["status"], view["submitted_at"]) == ("rejected", None)
    assert view["edit_pack_version"] == "it-scrub-2026"
    assert all(first not in text for text in claims.stub.batches)

    url = f"/claims/{first}/corrections"
    still_bad = {"note": "units", "changes": {"lines": [{"line_id": f"{episode}-L2", "units": 1}]}}
    refused = await claims.client.post(url, json=still_bad)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["rule"] == "ptp"
    with_25 = {
        "note": "separately identifiable visit, documented",
        "changes": {"lines": [{"line_id": f"{episode}-L1", "modifiers": ["25"]}]},
    }
    corrected = await claims.client.post(url, json=with_25)
    assert corrected.status_code == 202, corrected.text
    assert corrected.json()["claim_id"] == second

    (submitted,) = await claims.emitted(ClaimSubmitted, episode, 1)
    assert (submitted["claim_id"], submitted["edit_pack_version"]) == (second, "it-scrub-2026")
    assert batch_with(claims.stub, second).lines[0].procedure.modifiers == ["25"]
    assert await topic_size(claims.infra, claims.topics.of(ClaimEditFailed)) == 1


async def test_denials_coding_recode_replaces_and_accepted_denial_closes(
    claims: Running,
) -> None:
    coding, other = "E00000000c0d1", "E00000000a0a2"
    client = claims.client
    await claims.publish(*episode_inputs(coding, secondary=False))
    await claims.publish(*episode_inputs(other, secondary=False))
    for episode in (coding, other):
        await claims.emitted(ClaimAccepted, episode, 2)  # 999 and 277CA

    await claims.publish(b.denial_posting(f"{coding}-1", "97", episode=coding))
    await claims.publish(b.denial_posting(f"{other}-1", "197", episode=other))
    (denied_coding,) = await claims.emitted(ClaimDenied, coding, 1)
    (denied_other,) = await claims.emitted(ClaimDenied, other, 1)
    assert (denied_coding["category"], denied_other["category"]) == ("coding", "authorization")

    async def denial_queued() -> bool:
        queue = (await client.get("/work-queue", params={"kind": "denial"})).json()
        return f"{other}-1" in [item["claim_id"] for item in queue["items"]]

    await eventually(denial_queued)
    queue = (await client.get("/work-queue", params={"kind": "denial"})).json()
    assert f"{coding}-1" not in [item["claim_id"] for item in queue["items"]]
    body = {"note": "no prior authorization on file"}
    response = await client.post(f"/claims/{other}-1/accept-denial", json=body)
    assert response.status_code == 200
    again = await client.post(f"/claims/{other}-1/accept-denial", json=body)
    assert again.status_code == 409
    assert (await client.post(f"/claims/{coding}-1/corrections", json=body)).status_code == 409
    (closed_other,) = await claims.emitted(ClaimClosed, other, 1)
    assert (closed_other["outcome"], closed_other["open_claims"]) == ("denial-accepted", 0)

    await claims.publish(b.recoded(episode=coding))
    (resubmitted,) = await claims.emitted(ClaimResubmitted, coding, 1)
    assert (resubmitted["claim_id"], resubmitted["frequency"]) == (f"{coding}-2", "7")
    (closed_coding,) = await claims.emitted(ClaimClosed, coding, 1)
    assert (closed_coding["outcome"], closed_coding["open_claims"]) == ("replaced", 1)

    await claims.emitted(ClaimSubmitted, coding, 2)
    replacement = batch_with(claims.stub, f"{coding}-2")
    original = batch_with(claims.stub, f"{coding}-1")
    assert replacement.frequency_code == "7"
    assert replacement.payer_claim_control_number == pccn("ACME01", original)
    assert replacement.lines[0].procedure.code == "99214"


async def test_an_unreadable_mailbox_document_is_set_aside(claims: Running) -> None:
    claims.stub.mailbox["junk-1"] = ("277CA", "this is not X12")

    async def acknowledged() -> bool:
        return "junk-1" not in claims.stub.mailbox

    await eventually(acknowledged)
    record = await claims.database["mailbox"].find_one({"_id": "junk-1"})
    assert (record["kind"], record["outcome"]) == ("277CA", "unreadable")
    assert record["error"]
    (archived,) = (claims.archive / "claims").glob("*/*-received-277CA-junk-1.x12")
    assert archived.read_text() == "this is not X12"


async def test_after_a_crash_claims_go_out_under_their_own_ids_and_are_submitted_once(
    infra: Infra, topics: Topics, database: Any, tmp_path: Path
) -> None:
    """Three crash points: after marking claims sending but before storing the
    interchange (episode A), after storing it but before the POST (episode B), and a
    POST that reached the clearinghouse whose answer was lost (B again)."""
    orphan, prepared = "E00000000a001", "E00000000b002"
    partitions = Settings().topic_partitions
    episodes = MongoAggregates(database, "episodes", "rcm/test", domain.Episode)
    config = Settings().billing_config()
    for episode in (orphan, prepared):
        for event in episode_inputs(episode, secondary=False):
            await episodes.apply(episode, decision(event, config))
    await episodes.apply(
        orphan,
        lambda state: domain.mark_sending(state, {f"{orphan}-1": "0001"}, 999, b.NOW),
    )
    marking = await episodes.apply(
        prepared,
        lambda state: domain.mark_sending(state, {f"{prepared}-1": "0001"}, 500, b.NOW),
    )
    assert marking.result is not None
    ((_, st, x12),) = marking.result
    text = interchange(
        Settings().partners(), 500, b.NOW, [(st, ProfessionalClaim.model_validate(x12))]
    )
    await database["interchanges"].insert_one(
        {
            "_id": "000000500",
            "interchange_control_number": 500,
            "partition": partition_of(prepared, partitions),
            "state": "prepared",
            "done": False,
            "text": text,
            "claims": [{"episode_id": prepared, "claim_id": f"{prepared}-1", "st": st}],
            "created_at": datetime.now(UTC),
            "batch_id": None,
            "error": None,
        }
    )

    async with (
        clearinghouse(Clearinghouse(lose_answers=1)) as stub,
        publishing(infra, topics),
    ):
        service = claims_service(infra, topics, database, stub, tmp_path)
        async with running(service) as client:
            (first,) = await emitted(infra, topics, ClaimSubmitted, prepared, 1)
            (second,) = await emitted(infra, topics, ClaimSubmitted, orphan, 1)
            assert first["interchange_control_number"] == "000000500"
            # The first number of the range of the orphan's partition.
            span = MAX_CONTROL_NUMBER // partitions
            first_of_range = partition_of(orphan, partitions) * span + 1
            assert second["interchange_control_number"] == f"{first_of_range:09d}"
            assert stub.batches[:2] == [text, text]  # the same bytes again, same ISA13
            assert stub.claim_ids(2) == [f"{orphan}-1"]

            async def accepted() -> bool:
                stats = (await client.get("/stats")).json()
                return bool(stats["accepted"] == 2)

            await eventually(accepted)
            stats = (await client.get("/stats")).json()
            assert (stats["claims"], stats["submitted"], stats["open"]) == (2, 2, 2)
            assert stats["closed"] == {"paid": 0, "denial-accepted": 0, "replaced": 0, "voided": 0}
            await eventually(lambda: _drained(database))
    assert await topic_size(infra, topics.of(ClaimSubmitted)) == 2


async def _drained(database: Any) -> bool:
    pending: int = await database["episodes"].count_documents({"outbox.0": {"$exists": True}})
    return pending == 0


def decision(event: Event, config: Any) -> Callable[[Any], Decision[domain.Episode, None]]:
    for kind, decide in (
        (PatientRegistered, domain.patient_registered),
        (CoverageUpdated, domain.coverage_updated),
        (EligibilityVerified, domain.eligibility_verified),
        (CodingCompleted, domain.coding_completed),
    ):
        if isinstance(event, kind):
            return partial(decide, event=event, config=config, now=b.NOW)
    raise AssertionError(f"no decision for {type(event).__name__}")
