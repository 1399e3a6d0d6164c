"""The coders' worklists on real Kafka and FerretDB: a hold with a physician query and its
answer, a lead's reassignment, routing by specialty and priority, audit sampling and
review, and the productivity read model."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from rcm_coding.app import Settings, build
from rcm_contracts.coding import (
    CodingCaseReassigned,
    CodingCaseReviewed,
    CodingCorrected,
    CodingQueryAnswered,
    CodingQueryRaised,
)
from rcm_contracts.registration import ClinicalDocumentation, EncounterCompleted
from rcm_shared.auth import Role
from rcm_shared.envelope import Envelope
from rcm_shared.kafka import Topics
from rcm_shared.service import Service

from tests.conftest import Infra

from .helpers import read_topic
from .services import running, settings_for, signed_in
from .test_coding import CODER_1, CODER_2, VALID, encounter, opened_case

pytestmark = pytest.mark.integration

LEAD = signed_in("lead-1", Role.CODING_LEAD)
QUESTION = "Which ankle was x-rayed? The order and the note disagree."
ANSWER = "Addendum: right ankle, three views."


def coding_service(infra: Infra, topics: Topics, database: Any, **overrides: Any) -> Service:
    settings = settings_for(Settings, infra, topics.prefix, database.name, **overrides)
    assert isinstance(settings, Settings)
    return build(settings)


def visit(episode_id: str, code: str, day: date) -> EncounterCompleted:
    """An office visit alone: an evaluation-and-management case."""
    return encounter(episode_id).model_copy(
        update={
            "date_of_service": day,
            "documentation": ClinicalDocumentation(
                note="Follow-up of hypertension.",
                diagnoses=[{"description": "Essential hypertension", "icd10_hint": "I10"}],
                procedures=[{"description": "Office visit, established", "code_hint": code}],
            ),
        }
    )


async def test_a_query_holds_the_case_until_answered_and_a_lead_reassigns_it(
    infra: Infra, topics: Topics, database: Any
) -> None:
    episode = "E" + uuid.uuid4().hex[:12]
    service = coding_service(infra, topics, database)
    async with running(service) as client:
        await service.publisher.publish(Envelope(data=encounter(episode), source="rcm/test"))
        case_id = (await opened_case(client, episode))["case_id"]
        await client.post(f"/cases/{case_id}/assign", headers=CODER_1)

        query = {"reason": "laterality", "question": QUESTION}
        unknown = {"reason": "gut-feeling", "question": QUESTION}
        assert (
            await client.post(f"/cases/{case_id}/queries", json=unknown, headers=CODER_1)
        ).status_code == 422
        assert (
            await client.post(f"/cases/{case_id}/queries", json=query, headers=CODER_2)
        ).status_code == 409
        # Refused: its words are not kept.
        assert await database["query_texts"].count_documents({}) == 0
        raised = await client.post(f"/cases/{case_id}/queries", json=query, headers=CODER_1)
        assert raised.status_code == 200, raised.text
        query_id = raised.json()["query_id"]
        assert (raised.json()["status"], raised.json()["coder_id"]) == ("on-hold", "coder-1")

        # Off the workable queue: nobody pulls it, its coder cannot code it yet.
        assert (await client.post("/queue/next", headers=CODER_1)).status_code == 204
        codes = await client.post(f"/cases/{case_id}/codes", json=VALID, headers=CODER_1)
        assert codes.status_code == 409
        (listed,) = (await client.get("/queries", params={"status": "open"})).json()
        assert (listed["case_id"], listed["query_id"], listed["reason"]) == (
            case_id,
            query_id,
            "laterality",
        )
        assert listed["question"] == QUESTION
        assert 0 <= listed["age_minutes"] < 10

        (record,) = await read_topic(infra.kafka, topics.of(CodingQueryRaised), 1)
        assert b"ankle" not in record.value  # the words stay in coding's store
        assert CodingQueryRaised.model_validate_json(record.value).query_id == query_id

        reassign = f"/cases/{case_id}/reassign"
        assert (
            await client.post(reassign, json={"coder_id": "coder-2"}, headers=CODER_1)
        ).status_code == 403
        moved = await client.post(reassign, json={"coder_id": "coder-2"}, headers=LEAD)
        assert moved.status_code == 200, moved.text
        assert (moved.json()["status"], moved.json()["coder_id"]) == ("on-hold", "coder-2")
        (record,) = await read_topic(infra.kafka, topics.of(CodingCaseReassigned), 1)
        reassigned = CodingCaseReassigned.model_validate_json(record.value)
        assert (reassigned.from_coder_id, reassigned.to_coder_id) == ("coder-1", "coder-2")
        assert reassigned.reassigned_by == "lead-1"

        answer = f"/cases/{case_id}/queries/{query_id}/answer"
        assert (
            await client.post(
                f"/cases/{case_id}/queries/Q000000000000/answer",
                json={"answer": ANSWER},
                headers=LEAD,
            )
        ).status_code == 404
        answered = await client.post(answer, json={"answer": ANSWER}, headers=LEAD)
        assert answered.status_code == 200, answered.text
        assert (answered.json()["status"], answered.json()["coder_id"]) == (
            "in-progress",
            "coder-2",
        )
        again = await client.post(answer, json={"answer": "another"}, headers=CODER_1)
        assert again.json()["addenda"][0]["text"] == ANSWER  # the first answer stands

        case = (await client.get(f"/cases/{case_id}")).json()
        (addendum,) = case["addenda"]
        assert (addendum["query_id"], addendum["text"], addendum["recorded_by"]) == (
            query_id,
            ANSWER,
            "lead-1",
        )
        assert case["queries"][0]["question"] == QUESTION
        (record,) = await read_topic(infra.kafka, topics.of(CodingQueryAnswered), 1)
        assert b"ankle" not in record.value
        assert (await client.get("/queries", params={"status": "open"})).json() == []
        pulled = await client.post("/queue/next", headers=CODER_2)
        assert pulled.json()["case_id"] == case_id
        assert [(entry["who"], entry["action"]) for entry in case["audit"]] == [
            ("rcm/test", "opened"),
            ("coder-1", "assigned"),
            ("coder-1", "query-raised"),
            ("lead-1", "reassigned"),
            ("lead-1", "query-answered"),
        ]


async def test_routing_sampling_review_and_productivity(
    infra: Infra, topics: Topics, database: Any
) -> None:
    radiology, small, large = ("E" + uuid.uuid4().hex[:12] for _ in range(3))
    service = coding_service(infra, topics, database, audit_sample_rate=1.0)
    async with running(service) as client:
        older = date(2025, 2, 1)
        for event in (
            encounter(radiology),  # 99213 + 73610 on 2025-03-04
            visit(small, "99214", older),
            visit(large, "99215", older),
        ):
            await service.publisher.publish(Envelope(data=event, source="rcm/registration"))
        for episode in (radiology, small, large):
            await opened_case(client, episode)

        profile = {"specialties": ["radiology"]}
        assert (
            await client.put("/coders/coder-r", json=profile, headers=CODER_1)
        ).status_code == 403
        unknown = await client.put("/coders/coder-r", json={"specialties": ["x"]}, headers=LEAD)
        assert unknown.status_code == 422
        assert (await client.put("/coders/coder-r", json=profile, headers=LEAD)).status_code == 200
        (listed,) = (await client.get("/coders", headers=CODER_1)).json()
        assert (listed["coder_id"], listed["specialties"]) == ("coder-r", ["radiology"])

        async def pull(coder: str) -> httpx.Response:
            return await client.post("/queue/next", headers=signed_in(coder, Role.CODER))

        # The radiologist coder gets the radiology case though the visits are older; a
        # coder with no profile gets the oldest date of service, the larger charge first.
        mine = (await pull("coder-r")).json()
        assert (mine["episode_id"], mine["specialty"]) == (radiology, "radiology")
        generalist = (await pull("coder-g")).json()
        assert (generalist["episode_id"], generalist["specialty"]) == (
            large,
            "evaluation-management",
        )

        case_id = mine["case_id"]
        coder_r = signed_in("coder-r", Role.CODER)
        coded = await client.post(f"/cases/{case_id}/codes", json=VALID, headers=coder_r)
        assert coded.status_code == 200, coded.text
        (review,) = (await client.get("/reviews", params={"status": "open"}, headers=LEAD)).json()
        assert (review["case_id"], review["review"]["coder_id"]) == (case_id, "coder-r")
        assert (await client.get("/reviews", headers=CODER_1)).status_code == 403

        corrected = {
            "agreed": False,
            "diagnoses": ["S93.401A"],
            "lines": [{"procedure_code": "73610", "modifiers": ["RT"], "diagnosis_pointers": [1]}],
        }
        reviewed = await client.post(f"/cases/{case_id}/review", json=corrected, headers=LEAD)
        assert reviewed.status_code == 200, reviewed.text
        case = reviewed.json()
        assert (case["status"], case["coder_id"], case["recode"]["reason"]) == (
            "in-progress",
            "coder-r",
            "audit",
        )
        (record,) = await read_topic(infra.kafka, topics.of(CodingCaseReviewed), 1)
        assert CodingCaseReviewed.model_validate_json(record.value).agreed is False
        assert (await client.get("/reviews", headers=LEAD)).json() == []

        recode = {key: corrected[key] for key in ("diagnoses", "lines")}
        recoded = await client.post(f"/cases/{case_id}/codes", json=recode, headers=coder_r)
        assert recoded.status_code == 200, recoded.text
        (record,) = await read_topic(infra.kafka, topics.of(CodingCorrected), 1)
        assert CodingCorrected.model_validate_json(record.value).reason == "audit"

        today = datetime.now(UTC).date().isoformat()
        assert (
            await client.get("/productivity", params={"day": today}, headers=CODER_1)
        ).status_code == 403
        figures = (await client.get("/productivity", params={"day": today}, headers=LEAD)).json()
        (coder,) = [c for c in figures["coders"] if c["coder_id"] == "coder-r"]
        assert (coder["cases_coded"], coder["lines"]) == (1, 3)  # coded twice: 2 + 1 lines
        assert coder["median_minutes"] is not None
        assert (coder["reviewed"], coder["agreed"], coder["accuracy"]) == (1, 0, 0.0)
        assert (
            await client.get("/productivity", params={"day": "2001-01-01"}, headers=LEAD)
        ).json()["coders"] == []
