"""The eligibility service on real Kafka and a real MongoDB wire protocol, asking a small
real HTTP clearinghouse (served here with uvicorn) that answers 270s with built 271s."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from faststream.kafka import KafkaBroker
from rcm_contracts import Event
from rcm_contracts.eligibility import EligibilityFailed, EligibilityVerified
from rcm_contracts.registration import (
    Address,
    AppointmentScheduled,
    Coverage,
    CoverageRank,
    CoverageUpdated,
    PatientRegistered,
    Person,
    Relationship,
    Sex,
)
from rcm_eligibility.app import Settings, build
from rcm_eligibility.store import MAX_CONTROL_NUMBER
from rcm_shared.envelope import Envelope
from rcm_shared.kafka import EventPublisher, Topics, make_broker
from rcm_shared.ownership import partition_of
from rcm_shared.service import Service
from rcm_x12 import Coverage as Benefits
from rcm_x12 import (
    EligibilityResponse,
    EligibilityResponseDocument,
    Rejection,
    build_271,
    parse_270,
)
from rcm_x12 import Envelope as X12Envelope

from tests.conftest import Infra

from .helpers import eventually, headers_of, read_topic, serving
from .services import running, settings_for

pytestmark = pytest.mark.integration

NPI = "1987654328"
GOLD = Benefits(
    active=True,
    plan_name="GOLD PPO 1500",
    copay_cents=2500,
    deductible_cents=150000,
    deductible_remaining_cents=120000,
    coinsurance_percent=Decimal("20"),
    out_of_pocket_remaining_cents=465075,
)
INACTIVE = Benefits(active=False, plan_name="TERMINATED PLAN")
NOT_FOUND = Rejection(reason="75")


@dataclass
class Clearinghouse:
    """Answers by member id: benefits, a rejection, 'garbage' (not X12) or an outage
    (HTTP 503) for the first `outages` calls about a member."""

    answers: dict[str, Benefits | Rejection | str]
    outages: dict[str, int] = field(default_factory=dict)
    # Members whose payer answers for the subscriber even when asked about a dependent.
    subscriber_level: set[str] = field(default_factory=set)
    url: str = ""
    received: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)

    def answer(self, text: str) -> tuple[int, str]:
        inquiry_document = parse_270(text)
        (inquiry,) = inquiry_document.transactions
        member = inquiry.subscriber.member_id
        if self.outages.get(member, 0) > 0:
            self.outages[member] -= 1
            return 503, "payer gateway down"
        self.received.append(text)
        answer = self.answers[member]
        if isinstance(answer, str):
            reply = answer
        else:
            ignored = {"service_date", "service_types", "trace_originator", "created"}
            if member in self.subscriber_level:
                ignored.add("dependent")
            response = EligibilityResponse(
                **inquiry.model_dump(exclude=ignored),
                created=datetime.now(UTC).replace(tzinfo=None),
                trace_originator="9SIMULATOR",
                coverage=answer if isinstance(answer, Benefits) else None,
                rejection=answer if isinstance(answer, Rejection) else None,
            )
            sent = inquiry_document.envelope
            envelope = X12Envelope(
                sender_id=sent.receiver_id,
                receiver_id=sent.sender_id,
                control_number=sent.control_number,
                group_control_number=sent.control_number,
                created=datetime.now(UTC).replace(tzinfo=None),
            )
            reply = build_271(
                EligibilityResponseDocument(envelope=envelope, transactions=[response])
            )
        self.answered.append(reply)
        return 200, reply


@contextlib.asynccontextmanager
async def clearinghouse(
    answers: dict[str, Benefits | Rejection | str],
    outages: dict[str, int] | None = None,
    subscriber_level: set[str] | None = None,
) -> AsyncIterator[Clearinghouse]:
    stub = Clearinghouse(answers, outages or {}, subscriber_level or set())
    app = FastAPI()

    @app.post("/x12/realtime")
    async def realtime(request: Request) -> Response:
        status, text = stub.answer((await request.body()).decode())
        return Response(text, status_code=status, media_type="application/edi-x12")

    async with serving(app) as url:
        stub.url = url
        yield stub


def person(first: str, sex: Sex = Sex.FEMALE) -> Person:
    return Person(
        first_name=first,
        last_name="Rivera",
        birth_date=date(1975, 11, 30),
        sex=sex,
        address=Address(line1="9 Elm Rd", city="Portland", state="OR", postal_code="97201"),
    )


def coverage(rank: CoverageRank, member: str, spouse: bool = False) -> Coverage:
    return Coverage(
        coverage_id=f"V{member[-12:].lower()}",
        rank=rank,
        payer_id="ACME01" if rank is CoverageRank.PRIMARY else "SUMMIT",
        payer_name="Acme Health Plan" if rank is CoverageRank.PRIMARY else "Summit Mutual",
        member_id=member,
        relationship=Relationship.SPOUSE if spouse else Relationship.SELF,
        subscriber=person("Marco", Sex.MALE) if spouse else None,
    )


class Episode:
    """Publishes one episode's registration events as registration would."""

    def __init__(self, broker: KafkaBroker, topics: Topics, episode_id: str) -> None:
        self.publisher = EventPublisher(broker, topics)
        self.id = episode_id
        self.patient_id = "P" + episode_id[1:]

    async def send(self, event: Event) -> Envelope[Any]:
        envelope = Envelope(data=event, source="rcm/test")
        await self.publisher.publish(envelope)
        return envelope

    async def appointment(self) -> Envelope[Any]:
        return await self.send(
            AppointmentScheduled(
                episode_id=self.id,
                appointment_id="A" + self.id[1:],
                patient_id=self.patient_id,
                scheduled_start=datetime(2026, 4, 7, 16, 0, tzinfo=UTC),
                rendering_provider_npi=NPI,
                visit_type="office-visit-established",
            )
        )

    async def patient(self) -> Envelope[Any]:
        return await self.send(
            PatientRegistered(
                episode_id=self.id,
                patient_id=self.patient_id,
                patient=person("Lucia"),
                guarantor_id="G" + self.id[1:],
            )
        )

    async def coverages(self, *items: Coverage) -> Envelope[Any]:
        return await self.send(
            CoverageUpdated(episode_id=self.id, patient_id=self.patient_id, coverages=list(items))
        )


@contextlib.asynccontextmanager
async def publishing(infra: Infra) -> AsyncIterator[KafkaBroker]:
    broker = make_broker(infra.kafka, "test-eligibility-inputs")
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


def eligibility(
    infra: Infra, topics: Topics, database: Any, stub: Clearinghouse, archive: Path
) -> Service:
    settings = settings_for(
        Settings,
        infra,
        topics.prefix,
        database.name,
        RCM_CLEARINGHOUSE_URL=stub.url,
        RCM_X12_ARCHIVE_DIR=str(archive),
        handler_retry_backoff_s=0.05,
    )
    return build(settings)  # type: ignore[arg-type]


async def values(infra: Infra, topic: str, count: int) -> list[dict[str, Any]]:
    return [json.loads(record.value) for record in await read_topic(infra.kafka, topic, count)]


async def settled(service: Service, database: Any, expected: int) -> None:
    """Waits for an empty outbox and checks how many events went out in all."""

    async def drained() -> bool:
        pending = await database["verifications"].count_documents({"outbox.0": {"$exists": True}})
        return pending == 0 and service.relay.published >= expected

    await eventually(drained)
    assert service.relay.published == expected


def archived(archive: Path) -> dict[str, list[str]]:
    files = sorted((archive / "eligibility").glob("*/*.x12"))
    kept: dict[str, list[str]] = {"270": [], "271": []}
    for path in files:
        kept[path.stem.split("-")[2]].append(path.read_text(encoding="utf-8"))
    return kept


async def test_inputs_in_any_order_verify_each_coverage_once(
    infra: Infra, topics: Topics, database: Any, tmp_path: Path
) -> None:
    primary = coverage(CoverageRank.PRIMARY, "AC100000001")
    secondary = coverage(CoverageRank.SECONDARY, "SU200000002", spouse=True)
    answers: dict[str, Any] = {primary.member_id: GOLD, secondary.member_id: INACTIVE}
    async with clearinghouse(answers) as stub, publishing(infra) as broker:
        service = eligibility(infra, topics, database, stub, tmp_path)
        async with running(service) as client:
            episode = Episode(broker, topics, "E00000000e001")
            await episode.coverages(secondary, primary)
            await episode.patient()
            appointment = await episode.appointment()

            async def checked(number: int) -> bool:
                response = await client.get(f"/verifications/{episode.id}")
                view = response.json() if response.status_code == 200 else {}
                return view.get("checks") == number and view.get("status") == "checked"

            await eventually(lambda: checked(1))
            # Redelivery and an unchanged coverage list: nothing new is asked or emitted.
            await episode.publisher.publish(appointment)
            await episode.coverages(primary, secondary)
            await episode.coverages(primary)  # a change: asked again
            await eventually(lambda: checked(2))
            await settled(service, database, expected=3)
            assert len(stub.received) == 3
            view = (await client.get(f"/verifications/{episode.id}")).json()
            assert [r["outcome"] for r in view["check"]["results"]] == ["verified"]
            assert (await client.get("/verifications/E00000000ffff")).status_code == 404

    first, second = await values(infra, topics.of(EligibilityVerified), 2)
    (failed,) = await values(infra, topics.of(EligibilityFailed), 1)
    assert {key: first[key] for key in first if key != "verified_at"} == {
        "episode_id": episode.id,
        "coverage_id": primary.coverage_id,
        "rank": "primary",
        "payer_id": "ACME01",
        "plan_name": "GOLD PPO 1500",
        "copay_cents": 2500,
        "deductible_cents": 150000,
        "deductible_remaining_cents": 120000,
        "coinsurance_basis_points": 2000,
        "out_of_pocket_remaining_cents": 465075,
        "trace_number": f"{episode.id}-1-1",
    }
    assert second["trace_number"] == f"{episode.id}-2-1"
    assert failed["coverage_id"] == secondary.coverage_id
    assert (failed["reason"], failed["self_pay"]) == ("inactive", False)

    asked = [parse_270(text) for text in stub.received]
    assert [a.transactions[0].subscriber.member_id for a in asked] == [
        primary.member_id,  # rank order
        secondary.member_id,
        primary.member_id,
    ]
    spouse = asked[1].transactions[0].subscriber
    assert (spouse.first_name, spouse.gender) == ("Marco", "M")  # the subscriber, not the patient
    inquiry = asked[0].transactions[0]
    assert (inquiry.provider.npi, inquiry.service_date) == (NPI, date(2026, 4, 7))
    assert inquiry.service_types == ["30"]
    controls = [a.envelope.control_number for a in asked]
    assert len(set(controls)) == 3
    # Drawn from the episode's partition's range, which only its owner draws from.
    partitions = service.settings.topic_partitions
    partition, span = partition_of(episode.id, partitions), MAX_CONTROL_NUMBER // partitions
    assert all(partition * span < n <= (partition + 1) * span for n in controls)
    assert all(f"*{n:09d}*" in text for n, text in zip(controls, stub.received, strict=True))
    kept = archived(tmp_path)
    assert (sorted(kept["270"]), sorted(kept["271"])) == (
        sorted(stub.received),
        sorted(stub.answered),
    )


async def test_no_coverage_is_self_pay_without_asking_and_not_found_too(
    infra: Infra, topics: Topics, database: Any, tmp_path: Path
) -> None:
    unknown = coverage(CoverageRank.PRIMARY, "AC300000003")
    async with clearinghouse({unknown.member_id: NOT_FOUND}) as stub, publishing(infra) as broker:
        service = eligibility(infra, topics, database, stub, tmp_path)
        async with running(service) as client:
            episode = Episode(broker, topics, "E00000000e002")
            await episode.appointment()
            await episode.patient()
            await episode.coverages()
            (no_coverage,) = await values(infra, topics.of(EligibilityFailed), 1)
            assert stub.received == []
            await episode.coverages(unknown)

            async def second_check_done() -> bool:
                view = (await client.get(f"/verifications/{episode.id}")).json()
                return bool(view["checks"] == 2 and view["status"] == "checked")

            await eventually(second_check_done)
            await settled(service, database, expected=2)

    assert {k: no_coverage[k] for k in ("reason", "self_pay", "coverage_id")} == {
        "reason": "no-coverage",
        "self_pay": True,
        "coverage_id": None,
    }
    _, not_found = await values(infra, topics.of(EligibilityFailed), 2)
    assert {k: not_found[k] for k in ("reason", "self_pay", "coverage_id", "payer_id")} == {
        "reason": "subscriber-not-found",
        "self_pay": True,
        "coverage_id": unknown.coverage_id,
        "payer_id": "ACME01",
    }
    assert len(stub.received) == 1


async def test_outage_is_retried_and_an_unreadable_271_is_dead_lettered(
    infra: Infra, topics: Topics, database: Any, tmp_path: Path
) -> None:
    flaky = coverage(CoverageRank.PRIMARY, "AC400000004")
    broken = coverage(CoverageRank.PRIMARY, "AC500000005")
    answers: dict[str, Any] = {flaky.member_id: GOLD, broken.member_id: "this is not X12"}
    async with (
        clearinghouse(answers, outages={flaky.member_id: 2}) as stub,
        publishing(infra) as broker,
    ):
        service = eligibility(infra, topics, database, stub, tmp_path)
        async with running(service) as client:
            recovering = Episode(broker, topics, "E00000000e003")
            await recovering.appointment()
            await recovering.patient()
            await recovering.coverages(flaky)

            poisoned = Episode(broker, topics, "E00000000e004")
            await poisoned.appointment()
            await poisoned.patient()

            async def only_coverages_missing() -> bool:
                response = await client.get(f"/verifications/{poisoned.id}")
                return response.status_code == 200 and response.json()["missing"] == ["coverages"]

            await eventually(only_coverages_missing)
            await poisoned.coverages(broken)

            (dead,) = await read_topic(infra.kafka, topics.of(CoverageUpdated) + ".dlq", 1)
            headers = headers_of(dead)
            assert headers["dlq_exception_class"] == "rcm_shared.clearinghouse.X12Problem"
            assert "unreadable 271" in headers["dlq_exception_message"]
            view = (await client.get(f"/verifications/{poisoned.id}")).json()
            assert view["status"] == "checking"
            assert "unreadable 271" in view["check"]["last_error"]

            (verified,) = await values(infra, topics.of(EligibilityVerified), 1)
            assert verified["episode_id"] == recovering.id
            await settled(service, database, expected=1)

    assert stub.outages == {flaky.member_id: 0}
    assert sorted(archived(tmp_path)["271"]) == sorted(stub.answered)


async def test_a_child_is_verified_as_a_dependent_of_the_parent_who_holds_the_plan(
    infra: Infra, topics: Topics, database: Any, tmp_path: Path
) -> None:
    father = person("Marco", Sex.MALE).model_copy(update={"birth_date": date(1979, 6, 2)})
    on_fathers_plan = coverage(CoverageRank.PRIMARY, "AC600000006").model_copy(
        update={"relationship": Relationship.CHILD, "subscriber": father}
    )
    on_mothers_plan = coverage(CoverageRank.PRIMARY, "AC700000007").model_copy(
        update={"relationship": Relationship.CHILD, "subscriber": person("Rosa")}
    )
    answers: dict[str, Any] = {on_fathers_plan.member_id: GOLD, on_mothers_plan.member_id: GOLD}
    async with (
        clearinghouse(answers, subscriber_level={on_mothers_plan.member_id}) as stub,
        publishing(infra) as broker,
    ):
        service = eligibility(infra, topics, database, stub, tmp_path)
        async with running(service) as client:
            child = Episode(broker, topics, "E00000000e005")
            await child.coverages(on_fathers_plan)
            await child.patient()
            await child.appointment()
            (verified,) = await values(infra, topics.of(EligibilityVerified), 1)
            assert (verified["episode_id"], verified["coverage_id"]) == (
                child.id,
                on_fathers_plan.coverage_id,
            )
            assert (verified["plan_name"], verified["copay_cents"]) == ("GOLD PPO 1500", 2500)

            # A payer that answers with the parent's benefits is not read as the child's.
            misread = Episode(broker, topics, "E00000000e006")
            await misread.appointment()
            await misread.patient()

            async def only_coverages_missing() -> bool:
                response = await client.get(f"/verifications/{misread.id}")
                return response.status_code == 200 and response.json()["missing"] == ["coverages"]

            await eventually(only_coverages_missing)
            await misread.coverages(on_mothers_plan)
            (dead,) = await read_topic(infra.kafka, topics.of(CoverageUpdated) + ".dlq", 1)
            assert "not the dependent" in headers_of(dead)["dlq_exception_message"]
            await settled(service, database, expected=1)

    first, second = (parse_270(text).transactions[0] for text in stub.received)
    assert (first.subscriber.first_name, first.subscriber.birth_date) == ("Marco", date(1979, 6, 2))
    assert first.subscriber.member_id == on_fathers_plan.member_id
    assert first.dependent is not None
    assert (first.dependent.first_name, first.dependent.relationship) == ("Lucia", "19")
    assert first.dependent.birth_date == date(1975, 11, 30)
    assert first.trace_number == f"{child.id}-1-1"
    assert second.dependent is not None
    assert "HL*4*3*23*0~" in stub.received[0]
    assert "HL*4*3*23*0~" in stub.answered[0]  # answered at the dependent's level
    assert "HL*4*3*23*0~" not in stub.answered[1]
