"""The payments service on real Kafka, a real MongoDB wire protocol and a real HTTP mailbox.

The clearinghouse is a small FastAPI app served by uvicorn on a free port inside the test
(not the payer simulator): it serves the 835s each test builds with `build_835`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI, HTTPException, Query, Response
from rcm_contracts.claims import ClaimFrequency, ClaimSubmitted, SubmittedLine
from rcm_contracts.payments import PatientPaymentReceived, PaymentPosted, RemittanceProcessed
from rcm_contracts.registration import AppointmentScheduled, CoverageRank
from rcm_payments.app import Settings, build
from rcm_shared.envelope import Envelope
from rcm_shared.http import MAX_AMOUNT_CENTS
from rcm_shared.kafka import Topics
from rcm_shared.ownership import partition_of
from rcm_shared.service import Service
from rcm_x12 import (
    Address,
    Adjustment,
    Contact,
    Procedure,
    Remittance,
    RemittanceClaim,
    RemittanceDocument,
    RemittanceLine,
    RemittanceParty,
    RemittancePayee,
    RemittancePayer,
    build_835,
)
from rcm_x12 import Envelope as X12Envelope

from tests.conftest import Infra

from .helpers import eventually, read_topic, serving
from .services import running, settings_for

pytestmark = pytest.mark.integration

PARTNER = "RCMPLATFORM"


# --- a clearinghouse mailbox over real HTTP ----------------------------------------------


class Mailbox:
    def __init__(self) -> None:
        self.documents: dict[str, str] = {}
        self.acknowledged: list[str] = []

    def put(self, document_id: str, text: str) -> None:
        self.documents[document_id] = text

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/mailbox/{partner}")
        async def waiting(
            partner: str, kind: list[str] = Query(default=[])
        ) -> list[dict[str, str]]:
            if partner != PARTNER:
                raise HTTPException(404)
            return [{"id": d, "kind": "835"} for d in self.documents if not kind or "835" in kind]

        @app.get("/mailbox/{partner}/{document_id}")
        async def fetch(partner: str, document_id: str) -> Response:
            if partner != PARTNER or document_id not in self.documents:
                raise HTTPException(404)
            return Response(self.documents[document_id], media_type="application/edi-x12")

        @app.delete("/mailbox/{partner}/{document_id}", status_code=204)
        async def acknowledge(partner: str, document_id: str) -> None:
            if self.documents.pop(document_id, None) is None:
                raise HTTPException(404)
            self.acknowledged.append(document_id)

        return app


@pytest.fixture
async def mailbox() -> AsyncIterator[tuple[Mailbox, str]]:
    box = Mailbox()
    async with serving(box.app()) as url:
        yield box, url


# --- building inputs ---------------------------------------------------------------------


def episode() -> str:
    return f"E{uuid.uuid4().hex[:12]}"


def fresh_key() -> dict[str, str]:
    """An Idempotency-Key of its own: a new command, as a person's second click is."""
    return {"Idempotency-Key": uuid.uuid4().hex}


async def opened(service: Service, database: Any, episode_id: str) -> None:
    """Registration scheduled the episode, and payments has learned it."""
    scheduled = AppointmentScheduled(
        episode_id=episode_id, appointment_id=f"A{episode_id[1:]}", patient_id="P0123456789ab",
        scheduled_start=datetime.now(UTC), rendering_provider_npi="1234567893",
        visit_type="office-visit",
    )  # fmt: skip
    await service.publisher.publish(Envelope(data=scheduled, source="rcm/test"))

    async def known() -> bool:
        found = await database["episodes"].find_one({"_id": episode_id})
        return bool(found and found.get("opened"))

    await eventually(known)


def claim_submitted(claim_id: str, charge: int = 150_00) -> ClaimSubmitted:
    episode_id = claim_id.rsplit("-", 1)[0]
    return ClaimSubmitted(
        episode_id=episode_id,
        claim_id=claim_id,
        payer_id="ACME01",
        rank=CoverageRank.PRIMARY,
        frequency=ClaimFrequency.ORIGINAL,
        total_charge_cents=charge,
        lines=[
            SubmittedLine(
                line_id=f"{episode_id}-L1", procedure_code="99213", units=1, charge_cents=charge
            )
        ],
        interchange_control_number="000000001",
        submitted_at=datetime.now(UTC),
    )


def remitted_claim(
    claim_id: str, status: str, *adjustments: tuple[str, str, int], charge: int = 150_00
) -> RemittanceClaim:
    cas = [Adjustment(group=g, reason=r, amount_cents=a) for g, r, a in adjustments]
    paid = charge - sum(a.amount_cents for a in cas)
    episode_id = claim_id.rsplit("-", 1)[0]
    line = RemittanceLine(
        procedure=Procedure(code="99213"),
        charge_cents=charge,
        paid_cents=paid,
        adjustments=cas,
        line_control_number=f"{episode_id}-L1",
        allowed_cents=charge - sum(a.amount_cents for a in cas if a.group == "CO"),
    )
    return RemittanceClaim(
        patient_control_number=claim_id,
        status=status,
        charge_cents=charge,
        paid_cents=paid,
        filing_indicator="12",
        payer_claim_control_number=f"P{uuid.uuid4().hex[:10]}",
        patient=RemittanceParty(
            last_name="DOE", first_name="JANE", id_qualifier="MI", identifier="AB123456789"
        ),
        lines=[line],
    )


def remittance(trace: str, control: str, claims: list[RemittanceClaim]) -> Remittance:
    paid = sum(c.paid_cents for c in claims)
    return Remittance(
        control_number=control,
        payment_cents=paid,
        payment_method="CHK",
        payment_date=date(2026, 2, 1),
        trace_number=trace,
        payer_trace_id="1512345678",
        payer=RemittancePayer(
            name="ACME HEALTH PLAN",
            identifier="ACME01",
            address=Address(line1="1 MAIN ST", city="HARTFORD", state="CT", postal_code="06103"),
            technical_contact=Contact(phone="8005550199"),
        ),
        payee=RemittancePayee(name="GOOD CLINIC", npi="1234567893"),
        claims=claims,
    )


def x12_835(control_number: int, *transactions: Remittance) -> str:
    envelope = X12Envelope(
        sender_id="ACMECLEARING",
        receiver_id=PARTNER,
        control_number=control_number,
        group_control_number=control_number,
        created=datetime(2026, 2, 1, 9, 30),  # noqa: DTZ001 - X12 stamps are naive
    )
    document = RemittanceDocument(envelope=envelope, transactions=list(transactions))
    return build_835(document, check_balance=False)


# --- reading outputs ---------------------------------------------------------------------


async def everything_in(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Any]:
    """Every record of the topic up to its end offsets now: an exact count."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    deadline = time.monotonic() + timeout_s
    records: list[Any] = []
    try:
        while not consumer.assignment():
            assert time.monotonic() < deadline, f"{topic}: no partitions"
            await consumer.getmany(timeout_ms=200)
        partitions = list(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        while any([await consumer.position(p) < ends[p] for p in partitions]):
            assert time.monotonic() < deadline, f"{topic}: end offsets not reached"
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += batch
        return records
    finally:
        await consumer.stop()


def values(records: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(record.value) for record in records]


async def settled(service: Service) -> None:
    """Every event written so far has been published."""

    async def empty() -> bool:
        return all([not await store.pending() for store in service.stores])

    await eventually(empty)


def payments_service(
    infra: Infra, topics: Topics, database: Any, url: str, archive: Path
) -> Service:
    settings = settings_for(
        Settings,
        infra,
        topics.prefix,
        database.name,
        RCM_CLEARINGHOUSE_URL=url,
        RCM_X12_ARCHIVE_DIR=str(archive),
        mailbox_poll_s=0.1,
    )
    assert isinstance(settings, Settings)
    return build(settings)


async def acknowledged(box: Mailbox, document_id: str, times: int = 1) -> None:
    async def done() -> bool:
        return box.acknowledged.count(document_id) >= times

    await eventually(done)


# --- tests -------------------------------------------------------------------------------


async def test_posts_matched_claims_parks_the_unknown_one_and_never_posts_twice(
    infra: Infra, topics: Topics, database: Any, mailbox: tuple[Mailbox, str], tmp_path: Path
) -> None:
    box, url = mailbox
    paid_id, denied_id, late_id = (f"{episode()}-1" for _ in range(3))
    text = x12_835(
        5001,
        remittance(
            "CHK5001",
            "0001",
            [
                remitted_claim(
                    paid_id,
                    "1",
                    ("CO", "45", 30_00),
                    ("PR", "3", 25_00),
                    ("PR", "1", 20_00),
                    ("PR", "2", 5_00),
                ),
                remitted_claim(denied_id, "4", ("CO", "97", 150_00)),
                remitted_claim(late_id, "1", ("CO", "45", 50_00)),
            ],
        ),
    )
    rid = "R1512345678-CHK5001"
    service = payments_service(infra, topics, database, url, tmp_path)
    async with running(service) as client:
        for claim_id in (paid_id, denied_id):
            await service.publisher.publish(
                Envelope(data=claim_submitted(claim_id), source="rcm/test")
            )

        async def claims_known() -> bool:
            return bool(await database["episodes"].count_documents({}) == 2)

        await eventually(claims_known)
        box.put("doc-5001", text)
        await acknowledged(box, "doc-5001")

        posted = values(await read_topic(infra.kafka, topics.of(PaymentPosted), 2))
        by_claim = {p["claim_id"]: p for p in posted}
        paid, denied = by_claim[paid_id], by_claim[denied_id]
        assert (paid["status"], paid["charge_cents"], paid["paid_cents"]) == ("paid", 150_00, 70_00)
        assert paid["posting_id"] == f"{rid}-1"
        assert paid["episode_id"] == paid_id.rsplit("-", 1)[0]
        assert paid["allowed_cents"] == 120_00
        assert paid["patient_responsibility"] == {
            "deductible_cents": 20_00, "coinsurance_cents": 5_00, "copay_cents": 25_00,
            "other_cents": 0,
        }  # fmt: skip
        assert {a["line_id"] for a in paid["adjustments"]} == {f"{paid['episode_id']}-L1"}
        assert (denied["status"], denied["paid_cents"]) == ("denied", 0)
        (processed,) = values(await read_topic(infra.kafka, topics.of(RemittanceProcessed), 1))
        assert (processed["claims_posted"], processed["claims_unpostable"]) == (2, 1)
        assert processed["remittance_id"] == rid

        # The third claim waits: its claim-submitted has not arrived.
        (waiting,) = (await client.get("/unpostables")).json()
        assert (waiting["unpostable_id"], waiting["claim_id"]) == (f"{rid}-3", late_id)
        assert waiting["kind"] == "unmatched-claim"
        assert "no claim-submitted" in waiting["reason"]
        refused = await client.post(f"/unpostables/{rid}-3/retry", headers=fresh_key())
        assert refused.status_code == 409
        assert "still unknown" in refused.json()["detail"]
        nope = await client.post("/unpostables/nope-1/retry", headers=fresh_key())
        assert nope.status_code == 404

        await service.publisher.publish(Envelope(data=claim_submitted(late_id), source="rcm/test"))

        async def nothing_open() -> bool:
            return bool((await client.get("/unpostables")).json() == [])

        await eventually(nothing_open)
        posted = values(await read_topic(infra.kafka, topics.of(PaymentPosted), 3))
        late = next(p for p in posted if p["claim_id"] == late_id)
        assert (late["posting_id"], late["status"], late["paid_cents"]) == (
            f"{rid}-3", "paid", 100_00,
        )  # fmt: skip
        again = await client.post(f"/unpostables/{rid}-3/retry", headers=fresh_key())  # twice
        assert again.status_code == 200
        assert again.json()["posting"]["posting_id"] == f"{rid}-3"

        summary = await client.get(f"/remittances/{rid}")
        assert summary.status_code == 200
        assert [p["posting_id"] for p in summary.json()["postings"]] == [
            f"{rid}-1", f"{rid}-2", f"{rid}-3",
        ]  # fmt: skip
        assert "DOE" not in summary.text
        assert "AB123456789" not in summary.text
        assert (await client.get("/remittances/R000000000-NONE")).status_code == 404

        # The mailbox delivers the same document again (as after a crash before the ack).
        await settled(service)
        before = await database["remittances"].find_one({"_id": rid})
        box.put("doc-5001", text)
        await acknowledged(box, "doc-5001", times=2)
        await settled(service)
        assert await database["remittances"].find_one({"_id": rid}) == before
        assert len(await everything_in(infra.kafka, topics.of(PaymentPosted))) == 3
        assert len(await everything_in(infra.kafka, topics.of(RemittanceProcessed))) == 1

    (archived, *_) = sorted((tmp_path / "payments").glob("*/*-received-835-doc-5001.x12"))
    assert archived.read_bytes() == text.encode()


async def test_unbalanced_transaction_posts_nothing_and_bad_documents_are_kept(
    infra: Infra, topics: Topics, database: Any, mailbox: tuple[Mailbox, str], tmp_path: Path
) -> None:
    box, url = mailbox
    bad_id, good_id = f"{episode()}-1", f"{episode()}-1"
    unbalanced = remitted_claim(bad_id, "1", ("CO", "45", 50_00))
    unbalanced = unbalanced.model_copy(update={"paid_cents": unbalanced.paid_cents - 1})
    text = x12_835(
        6001,
        remittance("CHKBAD", "0001", [unbalanced]),
        remittance("CHKGOOD", "0002", [remitted_claim(good_id, "1", ("CO", "45", 50_00))]),
    )
    service = payments_service(infra, topics, database, url, tmp_path)
    async with running(service) as client:
        for claim_id in (bad_id, good_id):
            await service.publisher.publish(
                Envelope(data=claim_submitted(claim_id), source="rcm/test")
            )

        async def claims_known() -> bool:
            return bool(await database["episodes"].count_documents({}) == 2)

        await eventually(claims_known)
        box.put("doc-6001", text)
        box.put("doc-junk", "this is not X12")
        await acknowledged(box, "doc-6001")
        await acknowledged(box, "doc-junk")
        await settled(service)

        posted = values(await everything_in(infra.kafka, topics.of(PaymentPosted)))
        assert [p["claim_id"] for p in posted] == [good_id]
        processed = values(await everything_in(infra.kafka, topics.of(RemittanceProcessed)))
        assert sorted((p["remittance_id"], p["claims_posted"]) for p in processed) == [
            ("R1512345678-CHKBAD", 0), ("R1512345678-CHKGOOD", 1),
        ]  # fmt: skip

        open_ones = {u["unpostable_id"]: u for u in (await client.get("/unpostables")).json()}
        assert set(open_ones) == {"R1512345678-CHKBAD", "D-doc-junk"}
        assert open_ones["R1512345678-CHKBAD"]["kind"] == "unbalanced-transaction"
        assert "does not balance" in open_ones["R1512345678-CHKBAD"]["reason"]
        assert open_ones["D-doc-junk"]["kind"] == "unreadable-document"
        for unpostable_id in open_ones:
            refused = await client.post(f"/unpostables/{unpostable_id}/retry", headers=fresh_key())
            assert refused.status_code == 409
            assert refused.json()["detail"] == open_ones[unpostable_id]["reason"]
        bad = (await client.get("/remittances/R1512345678-CHKBAD")).json()
        assert (bad["balanced"], bad["postings"]) == (False, [])


async def test_patient_payments_are_idempotent(
    infra: Infra, topics: Topics, database: Any, mailbox: tuple[Mailbox, str], tmp_path: Path
) -> None:
    _, url = mailbox
    service = payments_service(infra, topics, database, url, tmp_path)
    body = {"payment_id": "pay-1", "episode_id": episode(), "amount_cents": 45_00, "method": "card"}
    async with running(service) as client:
        await opened(service, database, body["episode_id"])
        first = await client.post("/patient-payments", json=body, headers=fresh_key())
        assert first.status_code == 201, first.text
        again = await client.post("/patient-payments", json=body, headers=fresh_key())
        assert again.status_code == 200
        assert again.json() == first.json()
        conflict = await client.post(
            "/patient-payments", json={**body, "amount_cents": 46_00}, headers=fresh_key()
        )
        assert conflict.status_code == 409
        for bad in ({"amount_cents": 0}, {"amount_cents": 12.5}, {"amount_cents": "4500"},
                    {"method": "bitcoin"}, {"payment_id": "no spaces"}):  # fmt: skip
            refused = await client.post(
                "/patient-payments", json={**body, **bad}, headers=fresh_key()
            )
            assert refused.status_code == 422, bad
        assert await database["patient_payments"].count_documents({}) == 1
        await settled(service)

    (received,) = values(await everything_in(infra.kafka, topics.of(PatientPaymentReceived)))
    assert (received["payment_id"], received["amount_cents"]) == ("pay-1", 45_00)
    assert received["received_at"].replace("Z", "+00:00") == first.json()["received_at"].replace(
        "Z", "+00:00"
    )


async def test_a_patient_payment_retried_under_its_idempotency_key_is_answered_as_it_was(
    infra: Infra, topics: Topics, database: Any, mailbox: tuple[Mailbox, str], tmp_path: Path
) -> None:
    _, url = mailbox
    service = payments_service(infra, topics, database, url, tmp_path)
    body = {"payment_id": "pay-7", "episode_id": episode(), "amount_cents": 12_00, "method": "cash"}
    key = {"Idempotency-Key": "portal-pay-7"}
    async with running(service) as client:
        await opened(service, database, body["episode_id"])
        first = await client.post("/patient-payments", json=body, headers=key)
        assert first.status_code == 201, first.text
        retried = await client.post("/patient-payments", json=body, headers=key)
        assert (retried.status_code, retried.json()) == (201, first.json())
        # Sent again as a new command (another key): the payment_id keeps it once.
        again = await client.post("/patient-payments", json=body, headers=fresh_key())
        assert (again.status_code, again.json()) == (200, first.json())
        other = await client.post(
            "/patient-payments", json={**body, "amount_cents": 13_00}, headers=key
        )
        assert other.status_code == 409
        await settled(service)

    (received,) = values(await everything_in(infra.kafka, topics.of(PatientPaymentReceived)))
    assert (received["payment_id"], received["amount_cents"]) == ("pay-7", 12_00)


async def test_a_patient_payment_needs_a_key_a_sane_amount_and_a_known_episode(
    infra: Infra, topics: Topics, database: Any, mailbox: tuple[Mailbox, str], tmp_path: Path
) -> None:
    _, url = mailbox
    service = payments_service(infra, topics, database, url, tmp_path)
    known, ghost = episode(), episode()
    body = {"payment_id": "pay-9", "episode_id": known, "amount_cents": 20_00, "method": "card"}
    async with running(service) as client:
        await opened(service, database, known)
        unkeyed = await client.post("/patient-payments", json=body)
        assert unkeyed.status_code == 400
        assert "Idempotency-Key" in unkeyed.json()["detail"]
        # Beyond $10,000,000.00, and beyond what MongoDB can hold: refused before asking.
        for amount in (MAX_AMOUNT_CENTS + 1, 2**63, 10**30):
            refused = await client.post(
                "/patient-payments", json={**body, "amount_cents": amount}, headers=fresh_key()
            )
            assert refused.status_code == 422, amount
            assert refused.json()["detail"][0]["loc"] == ["body", "amount_cents"]
        # An episode registration never opened: not found, and no ghost account follows.
        unknown = await client.post(
            "/patient-payments",
            json={**body, "payment_id": "pay-ghost", "episode_id": ghost},
            headers=fresh_key(),
        )
        assert unknown.status_code == 404, unknown.text
        most = {**body, "amount_cents": MAX_AMOUNT_CENTS}
        taken = await client.post("/patient-payments", json=most, headers=fresh_key())
        assert taken.status_code == 201, taken.text
        kept = [d["_id"] async for d in database["patient_payments"].find({}, {"_id": 1})]
        assert kept == ["pay-9"]
        retry = await client.post("/unpostables/R000000001-T-1/retry")
        assert retry.status_code == 400
        await settled(service)

    received = values(await everything_in(infra.kafka, topics.of(PatientPaymentReceived)))
    assert [(r["episode_id"], r["amount_cents"]) for r in received] == [(known, MAX_AMOUNT_CENTS)]


def one_per_partition(make: Any, partitions: int) -> list[str]:
    """Ids made by make(n), one whose key falls in each partition."""
    chosen: dict[int, str] = {}
    n = 0
    while len(chosen) < partitions:
        n += 1
        chosen.setdefault(partition_of(make(n), partitions), make(n))
    return [chosen[p] for p in range(partitions)]


async def test_two_replicas_post_each_claim_once_whichever_owns_what(
    infra: Infra, topics: Topics, database: Any, mailbox: tuple[Mailbox, str], tmp_path: Path
) -> None:
    box, url = mailbox
    control = 7001
    async with contextlib.AsyncExitStack() as stack:
        first = payments_service(infra, topics, database, url, tmp_path / "first")
        second = payments_service(infra, topics, database, url, tmp_path / "second")
        clients = [
            await stack.enter_async_context(running(first)),
            await stack.enter_async_context(running(second)),
        ]
        partitions = first.settings.topic_partitions

        async def split() -> bool:
            mine, theirs = first.ownership.owned, second.ownership.owned
            return bool(mine) and bool(theirs) and mine | theirs == set(range(partitions))

        await eventually(split, timeout_s=60)
        assert first.ownership.owned.isdisjoint(second.ownership.owned)
        holders = [s.ownership.holds("payments-mailbox") for s in (first, second)]
        assert holders.count(True) == 1

        # Remittances, early claims (submitted before the 835) and late ones (after) in
        # every partition: both replicas own some of each.
        traces = one_per_partition(lambda n: f"R1512345678-T{n}", partitions)
        tag = uuid.uuid4().hex[:6]
        early = one_per_partition(lambda n: f"E{tag}a{n:05d}", partitions)
        late = one_per_partition(lambda n: f"E{tag}b{n:05d}", partitions)
        for episode_id in early:
            await first.publisher.publish(
                Envelope(data=claim_submitted(f"{episode_id}-1"), source="rcm/test")
            )

        async def early_known() -> bool:
            return bool(await database["episodes"].count_documents({}) == partitions)

        await eventually(early_known)
        transactions = [
            remittance(
                rid.rsplit("-", 1)[1],
                f"{n:04d}",
                [
                    remitted_claim(f"{early[n]}-1", "1", ("CO", "45", 50_00)),
                    remitted_claim(f"{late[n]}-1", "1", ("CO", "45", 40_00)),
                ],
            )
            for n, rid in enumerate(traces)
        ]
        box.put("doc-7001", x12_835(control, *transactions))
        await acknowledged(box, "doc-7001")
        assert box.acknowledged == ["doc-7001"]

        async def late_awaited() -> bool:
            opened = (await clients[1].get("/unpostables")).json()
            return len(opened) == partitions

        await eventually(late_awaited)
        for episode_id in late:
            await second.publisher.publish(
                Envelope(data=claim_submitted(f"{episode_id}-1"), source="rcm/test")
            )

        async def nothing_open() -> bool:
            return bool((await clients[0].get("/unpostables")).json() == [])

        await eventually(nothing_open)

        # The same patient payment through both replicas at once (two clicks, each its
        # own command): recorded once.
        body = {"payment_id": f"pay-{tag}", "episode_id": early[0], "amount_cents": 10_00,
                "method": "card"}  # fmt: skip
        answers = await asyncio.gather(
            *(
                client.post("/patient-payments", json=body, headers=fresh_key())
                for client in clients
            )
        )
        assert sorted(answer.status_code for answer in answers) == [200, 201]
        assert answers[0].json() == answers[1].json()
        await settled(first)
        await settled(second)

    posted = values(await everything_in(infra.kafka, topics.of(PaymentPosted)))
    assert sorted(p["posting_id"] for p in posted) == sorted(
        f"{rid}-{index}" for rid in traces for index in (1, 2)
    )
    assert {p["claim_id"] for p in posted} == {f"{e}-1" for e in early + late}
    processed = values(await everything_in(infra.kafka, topics.of(RemittanceProcessed)))
    assert sorted(p["remittance_id"] for p in processed) == sorted(traces)
    received = values(await everything_in(infra.kafka, topics.of(PatientPaymentReceived)))
    assert [r["payment_id"] for r in received] == [f"pay-{tag}"]
    async for document in database["remittances"].find({}):
        assert [u["status"] for u in document["unpostables"]] == ["posted"]
        assert document["outbox"] == []
