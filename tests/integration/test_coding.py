"""The coding service on real Kafka and MongoDB: the coders' work queue end to end."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from rcm_coding.app import Settings, build
from rcm_contracts.claims import ClaimDenied, DenialCategory, DeniedReason, LineDenied
from rcm_contracts.coding import CodingCompleted, CodingCorrected, CodingEditHit
from rcm_contracts.registration import ClinicalDocumentation, EncounterCompleted
from rcm_edits.packs import ModifierIndicator, Pack, PtpEdit, write_pack
from rcm_shared.auth import Role
from rcm_shared.envelope import Envelope
from rcm_shared.kafka import Topics
from rcm_shared.service import Service

from tests.conftest import Infra

from .helpers import eventually, headers_of, read_topic
from .services import running, settings_for, signed_in

pytestmark = pytest.mark.integration


def encounter(episode_id: str) -> EncounterCompleted:
    return EncounterCompleted(
        episode_id=episode_id,
        encounter_id="N" + uuid.uuid4().hex[:12],
        patient_id="P" + uuid.uuid4().hex[:12],
        date_of_service=date(2025, 3, 4),
        place_of_service="11",
        rendering_provider_npi="1234567893",
        documentation=ClinicalDocumentation(
            note="Twisted the right ankle yesterday; chronic low back pain. X-ray negative.",
            diagnoses=[
                {"description": "Sprain of right ankle", "icd10_hint": None},
                {"description": "Low back pain", "icd10_hint": "M54.5"},
            ],
            procedures=[
                {"description": "Office visit, established", "code_hint": "99213"},
                {"description": "X-ray right ankle, 3 views", "code_hint": "73610"},
            ],
        ),
    )


def denied(episode_id: str, claim: str, category: DenialCategory) -> ClaimDenied:
    return ClaimDenied(
        episode_id=episode_id,
        claim_id=f"{episode_id}-{claim}",
        payer_id="ACME01",
        category=category,
        reasons=[DeniedReason(group_code="CO", reason_code="97", amount_cents=29000)],
        denied_at=datetime.now(UTC),
    )


def coding_service(infra: Infra, topics: Topics, database: Any) -> Service:
    settings = settings_for(Settings, infra, topics.prefix, database.name)
    assert isinstance(settings, Settings)
    return build(settings)


async def opened_case(client: httpx.AsyncClient, episode_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    async def in_queue() -> bool:
        response = await client.get("/queue", params={"status": "open"})
        found[:] = [case for case in response.json() if case["episode_id"] == episode_id]
        return bool(found)

    await eventually(in_queue)
    return found[0]


async def end_offset(bootstrap: str, topic: str) -> int:
    """How many records the topic holds (all partitions)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        while (known := consumer.partitions_for_topic(topic)) is None:
            await consumer.getmany(timeout_ms=200)  # subscribed: metadata arrives
        partitions = [TopicPartition(topic, partition) for partition in known]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


CODER_1 = signed_in("coder-1", Role.CODER)
CODER_2 = signed_in("coder-2", Role.CODER)
VALID = {
    "diagnoses": ["S93.401A", "M5450"],
    "lines": [
        {"procedure_code": "99213", "modifiers": ["25"], "units": 1, "diagnosis_pointers": [1, 2]},
        {"procedure_code": "73610", "modifiers": ["RT"], "units": 1, "diagnosis_pointers": [1]},
    ],
}


async def test_a_coder_codes_an_encounter_and_coding_completed_goes_out_priced(
    infra: Infra, topics: Topics, database: Any
) -> None:
    episode = "E" + uuid.uuid4().hex[:12]
    service = coding_service(infra, topics, database)
    async with running(service) as client:
        sent = Envelope(data=encounter(episode), source="rcm/registration")
        await service.publisher.publish(sent)
        await service.publisher.publish(sent)  # redelivered: still one case

        summary = await opened_case(client, episode)
        case_id = summary["case_id"]
        assert summary["status"] == "open"
        assert summary["coder_id"] is None

        case = (await client.get(f"/cases/{case_id}")).json()
        assert case["documentation"]["note"].startswith("Twisted the right ankle")
        diagnoses = case["suggestions"]["diagnoses"]
        assert [(d["code"], d["source"]) for d in diagnoses] == [
            ("S93401A", "description"),
            ("M5450", "description"),
        ]
        assert diagnoses[1]["hint_problem"] == (
            "M54.5 is not billable; use one of M54.50, M54.51, M54.59"
        )
        lines = case["suggestions"]["lines"]
        assert [(line["procedure_code"], line["modifiers"]) for line in lines] == [
            ("99213", ["25"]),
            ("73610", []),  # the side is the coder's call
        ]
        assert (await client.get("/cases/K000000000000")).status_code == 404
        assert (await client.get("/queue", params={"status": "closed"})).status_code == 422

        assign = f"/cases/{case_id}/assign"
        taken = await client.post(assign, headers=CODER_1)
        assert taken.status_code == 200
        assert taken.json()["status"] == "in-progress"
        assert (await client.post(assign, headers=CODER_2)).status_code == 409
        assert (await client.post(assign, headers=CODER_1)).status_code == 200
        clerk = signed_in("clerk-1", Role.FRONT_DESK)
        assert (await client.post(assign, headers=clerk)).status_code == 403

        codes = f"/cases/{case_id}/codes"
        assert (await client.post(codes, json=VALID, headers=CODER_2)).status_code == 409
        invalid = {
            "diagnoses": ["M54.5", "S93.401A"],
            "lines": [
                {"procedure_code": "99213", "modifiers": [], "diagnosis_pointers": [1, 3]},
                {"procedure_code": "99999", "modifiers": ["QQ"], "diagnosis_pointers": [2]},
            ],
        }
        refused = await client.post(codes, json=invalid, headers=CODER_1)
        assert refused.status_code == 422
        assert refused.json()["detail"] == [
            "diagnoses[0]: M54.5 is not billable; use one of M54.50, M54.51, M54.59 "
            "(ICD-10-CM FY2026)",
            "lines[0].diagnosis_pointers[1]: 3 does not point at a diagnosis (1..2)",
            "lines[1].procedure_code: 99999 is not in the chargemaster",
            "lines[1].modifiers[0]: QQ is not a known modifier "
            "(25, 59, 76, 77, 91, LT, RT, XE, XP, XS, XU)",
        ]
        still = (await client.get(f"/cases/{case_id}")).json()
        assert (still["status"], still["coding"]) == ("in-progress", None)

        accepted = await client.post(codes, json=VALID, headers=CODER_1)
        assert accepted.status_code == 200, accepted.text
        priced = accepted.json()
        assert priced["event_type"] == CodingCompleted.event_type
        assert [(line["line_id"], line["charge_cents"]) for line in priced["charge_lines"]] == [
            (f"{episode}-L1", 15000),
            (f"{episode}-L2", 14000),
        ]
        assert priced["total_charge_cents"] == 29000
        again = await client.post(codes, json=VALID, headers=CODER_1)
        assert again.status_code == 200
        assert again.json()["repeated"] is True
        assert again.json()["charge_lines"] == priced["charge_lines"]

        topic = topics.of(CodingCompleted)
        (record,) = await read_topic(infra.kafka, topic, 1)
        assert record.key == episode.encode()
        assert headers_of(record)["ce_type"] == CodingCompleted.event_type
        event = CodingCompleted.model_validate_json(record.value)
        assert event.coding_case_id == case_id
        assert event.diagnoses == ["S93401A", "M5450"]
        assert [line.modifiers for line in event.charge_lines] == [["25"], ["RT"]]
        assert [line.charge_cents for line in event.charge_lines] == [15000, 14000]
        assert event.charge_lines[0].service_date == date(2025, 3, 4)
        assert event.total_charge_cents == 29000
        assert event.coder_id == "coder-1"

        async def published() -> bool:
            document = await database["cases"].find_one({"_id": episode})  # keyed by episode
            return document is not None and document["outbox"] == []

        await eventually(published)
        # The refused and the repeated submissions sent nothing: one record in all.
        assert await end_offset(infra.kafka, topic) == 1

        done = (await client.get("/queue", params={"status": "done", "coder_id": "coder-1"})).json()
        assert [case["case_id"] for case in done] == [case_id]
        assert (await client.get("/queue", params={"status": "open"})).json() == []
        final = (await client.get(f"/cases/{case_id}")).json()
        assert [(entry["who"], entry["action"]) for entry in final["audit"]] == [
            ("rcm/registration", "opened"),
            ("coder-1", "assigned"),
            ("coder-1", "coded"),
        ]


async def test_a_coding_denial_reopens_the_case_and_the_recode_goes_out_corrected(
    infra: Infra, topics: Topics, database: Any
) -> None:
    episode = "E" + uuid.uuid4().hex[:12]
    service = coding_service(infra, topics, database)
    async with running(service) as client:
        await service.publisher.publish(Envelope(data=encounter(episode), source="rcm/test"))
        case_id = (await opened_case(client, episode))["case_id"]
        await client.post(f"/cases/{case_id}/assign", headers=CODER_1)
        accepted = await client.post(f"/cases/{case_id}/codes", json=VALID, headers=CODER_1)
        assert accepted.status_code == 200
        await read_topic(infra.kafka, topics.of(CodingCompleted), 1)

        # Not the coders' business: billers work a documentation denial.
        for claim, category in (("1", DenialCategory.DOCUMENTATION), ("2", DenialCategory.CODING)):
            denial = Envelope(data=denied(episode, claim, category), source="rcm/claims")
            await service.publisher.publish(denial)

        async def reopened() -> bool:
            case = (await client.get(f"/cases/{case_id}")).json()
            return bool(case["status"] == "open")

        await eventually(reopened)
        case = (await client.get(f"/cases/{case_id}")).json()
        assert case["recode"]["reason"] == "coding-denial"
        assert case["recode"]["claim_id"] == f"{episode}-2"
        assert case["recode"]["reason_codes"] == ["CO-97"]
        reopenings = [entry for entry in case["audit"] if entry["action"] == "reopened"]
        assert [entry["detail"]["claim_id"] for entry in reopenings] == [f"{episode}-2"]
        assert case["coder_id"] is None

        await client.post(f"/cases/{case_id}/assign", headers=CODER_2)
        recoded = {
            "diagnoses": ["S93401A"],
            "lines": [
                {"procedure_code": "99213", "modifiers": ["25"], "diagnosis_pointers": [1]},
                {"procedure_code": "73610", "modifiers": ["RT"], "diagnosis_pointers": [1]},
                {"procedure_code": "29540", "modifiers": ["RT"], "diagnosis_pointers": [1]},
            ],
        }
        response = await client.post(f"/cases/{case_id}/codes", json=recoded, headers=CODER_2)
        assert response.status_code == 200, response.text
        assert response.json()["event_type"] == CodingCorrected.event_type

        (record,) = await read_topic(infra.kafka, topics.of(CodingCorrected), 1)
        corrected = CodingCorrected.model_validate_json(record.value)
        assert corrected.reason == "coding-denial"
        assert corrected.coding_case_id == case_id
        assert corrected.coder_id == "coder-2"
        assert corrected.diagnoses == ["S93401A"]
        assert [line.procedure_code for line in corrected.charge_lines] == [
            "99213",
            "73610",
            "29540",
        ]
        assert corrected.total_charge_cents == 15000 + 14000 + 7500
        assert json.loads(record.value)["charge_lines"][2]["line_id"] == f"{episode}-L3"

        case = (await client.get(f"/cases/{case_id}")).json()
        assert case["status"] == "done"
        assert case["recode"] is None
        assert [entry["action"] for entry in case["audit"]] == [
            "opened",
            "assigned",
            "coded",
            "reopened",
            "assigned",
            "coded",
        ]


async def test_coders_pulling_work_get_different_cases_and_keep_theirs(
    infra: Infra, topics: Topics, database: Any
) -> None:
    episodes = ["E" + uuid.uuid4().hex[:12] for _ in range(3)]
    service = coding_service(infra, topics, database)
    async with running(service) as client:

        async def pull(coder: str) -> httpx.Response:
            return await client.post("/queue/next", headers=signed_in(coder, Role.CODER))

        assert (await pull("coder-1")).status_code == 204  # nothing to do yet
        for episode in episodes:
            await service.publisher.publish(
                Envelope(data=encounter(episode), source="rcm/registration")
            )
        for episode in episodes:
            await opened_case(client, episode)

        first, second = await asyncio.gather(pull("coder-1"), pull("coder-2"))
        assert (first.status_code, second.status_code) == (200, 200)
        assert first.json()["case_id"] != second.json()["case_id"]
        assert first.json()["coder_id"] == "coder-1"
        assert first.json()["status"] == "in-progress"
        # Work in progress comes first: pulling again gives the same case.
        assert (await pull("coder-1")).json()["case_id"] == first.json()["case_id"]

        third = await pull("coder-3")
        assert third.json()["case_id"] not in {first.json()["case_id"], second.json()["case_id"]}
        assert (await pull("coder-4")).status_code == 204


async def test_a_line_denied_for_coding_reopens_the_case_with_its_line_and_procedure(
    infra: Infra, topics: Topics, database: Any
) -> None:
    episode = "E" + uuid.uuid4().hex[:12]
    service = coding_service(infra, topics, database)
    async with running(service) as client:
        await service.publisher.publish(Envelope(data=encounter(episode), source="rcm/test"))
        case_id = (await opened_case(client, episode))["case_id"]
        await client.post(f"/cases/{case_id}/assign", headers=CODER_1)
        accepted = await client.post(f"/cases/{case_id}/codes", json=VALID, headers=CODER_1)
        assert accepted.status_code == 200
        line = LineDenied(
            episode_id=episode,
            claim_id=f"{episode}-1",
            payer_id="ACME01",
            line_id=f"{episode}-L2",
            procedure_code="73610",
            category=DenialCategory.CODING,
            reasons=[DeniedReason(group_code="CO", reason_code="97", amount_cents=14000)],
            posting_id="R1-T1-1",
            denied_at=datetime.now(UTC),
        )
        for _ in range(2):  # a redelivery changes nothing
            await service.publisher.publish(Envelope(data=line, source="rcm/claims"))

        async def reopened() -> bool:
            case = (await client.get(f"/cases/{case_id}")).json()
            return bool(case["status"] == "open")

        await eventually(reopened)
        case = (await client.get(f"/cases/{case_id}")).json()
        assert case["recode"]["claim_id"] == f"{episode}-1"
        assert case["recode"]["lines"] == [
            {"line_id": f"{episode}-L2", "procedure_code": "73610", "reason_codes": ["CO-97"]}
        ]
        queue = (await client.get("/queue", params={"status": "open"})).json()
        listed = [c for c in queue if c["case_id"] == case_id]
        assert listed[0]["recode"]["lines"][0]["procedure_code"] == "73610"
        reopenings = [entry for entry in case["audit"] if entry["action"] == "reopened"]
        assert len(reopenings) == 1
        assert reopenings[0]["detail"]["line_id"] == f"{episode}-L2"


async def test_codes_breaking_a_ptp_edit_are_refused_with_the_modifier_it_allows(
    infra: Infra,
    topics: Topics,
    database: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pack of the test's own, in force on the encounter's date of service: the X-ray in
    column 1 and the visit in column 2, allowed with a modifier."""
    pack = Pack(
        version="it-coding-2025",
        effective_from=date(2025, 1, 1),
        ptp=[
            PtpEdit(
                column1="73610",
                column2="99213",
                effective=date(2025, 1, 1),
                modifier_indicator=ModifierIndicator.ALLOWED,
            )
        ],
    )
    write_pack(pack, tmp_path)
    monkeypatch.setenv("RCM_EDIT_PACKS_DIR", str(tmp_path))
    episode = "E" + uuid.uuid4().hex[:12]
    service = coding_service(infra, topics, database)
    async with running(service) as client:
        await service.publisher.publish(
            Envelope(data=encounter(episode), source="rcm/registration")
        )
        case_id = (await opened_case(client, episode))["case_id"]
        assert (await client.post(f"/cases/{case_id}/assign", headers=CODER_1)).status_code == 200

        codes = f"/cases/{case_id}/codes"
        without_25 = json.loads(json.dumps(VALID))
        without_25["lines"][0]["modifiers"] = []
        refused = await client.post(codes, json=without_25, headers=CODER_1)
        assert refused.status_code == 422
        (hit,) = refused.json()["detail"]
        assert (hit["rule"], hit["codes"], hit["line_numbers"]) == (
            "ptp",
            ["73610", "99213"],
            [1, 2],
        )
        assert hit["allowed_modifiers"] == ["25"]
        assert "modifier" in hit["msg"]
        # The same codes again: the same answer and no second event.
        again = await client.post(codes, json=without_25, headers=CODER_1)
        assert (again.status_code, again.json()) == (422, refused.json())

        case = (await client.get(f"/cases/{case_id}")).json()
        assert (case["status"], case["coding"]) == ("in-progress", None)
        assert case["edit_pack_version"] == "it-coding-2025"
        assert [h["rule"] for h in case["edit_hits"]] == ["ptp"]
        queued = (await client.get("/queue", params={"status": "in-progress"})).json()
        (summary,) = [c for c in queued if c["case_id"] == case_id]
        assert summary["edit_hits"] == case["edit_hits"]

        accepted = await client.post(codes, json=VALID, headers=CODER_1)
        assert accepted.status_code == 200, accepted.text

        (record,) = await read_topic(infra.kafka, topics.of(CodingEditHit), 1)
        assert record.key == episode.encode()
        event = CodingEditHit.model_validate_json(record.value)
        assert (event.action, event.coding_case_id, event.coder_id) == (
            "refused",
            case_id,
            "coder-1",
        )
        assert event.edit_pack_version == "it-coding-2025"
        assert event.hits[0].allowed_modifiers == ["25"]
        (completed,) = await read_topic(infra.kafka, topics.of(CodingCompleted), 1)
        sent = CodingCompleted.model_validate_json(completed.value)
        assert sent.edit_pack_version == "it-coding-2025"
        assert [line.modifiers for line in sent.charge_lines] == [["25"], ["RT"]]

        async def published() -> bool:
            document = await database["cases"].find_one({"_id": episode})
            return document is not None and document["outbox"] == []

        await eventually(published)
        assert await end_offset(infra.kafka, topics.of(CodingEditHit)) == 1
        final = (await client.get(f"/cases/{case_id}")).json()
        assert [entry["action"] for entry in final["audit"]] == [
            "opened",
            "assigned",
            "edits-refused",
            "coded",
        ]
        assert final["edit_hits"] == []


async def test_coding_is_ready_only_once_its_code_sets_are_loaded(
    infra: Infra, topics: Topics, database: Any
) -> None:
    service = coding_service(infra, topics, database)
    loaded = asyncio.Event()
    service.warm_ups["code-sets"] = loaded.wait  # a load that ends when the test says
    async with running(service) as client:
        waiting = await client.get("/health/ready")
        assert waiting.status_code == 503
        assert waiting.json()["checks"] == {"kafka": True, "mongodb": True, "code-sets": False}
        loaded.set()

        async def ready() -> bool:
            return (await client.get("/health/ready")).status_code == 200

        await eventually(ready)
