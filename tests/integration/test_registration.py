"""The registration service on real Kafka and a real MongoDB wire protocol, through its API."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from rcm_contracts.registration import (
    AppointmentCancelled,
    AppointmentScheduled,
    CoverageUpdated,
    EncounterCompleted,
    PatientCheckedIn,
    PatientRegistered,
)
from rcm_registration.app import Settings, build
from rcm_shared.kafka import Topics
from rcm_shared.service import Service

from tests.conftest import Infra

from .helpers import eventually, read_topic
from .services import running, settings_for

pytestmark = pytest.mark.integration

NPI = "1234567893"
PATIENT = {
    "first_name": "Ann",
    "last_name": "Lee",
    "birth_date": "1980-05-01",
    "sex": "F",
    "address": {"line1": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701"},
}
PRIMARY = {
    "rank": "primary",
    "payer_id": "ACME01",
    "payer_name": "Acme Health Plan",
    "member_id": "AC123456789",
}
SECONDARY = {
    "rank": "secondary",
    "payer_id": "SUMMIT",
    "payer_name": "Summit Mutual",
    "member_id": "SU987654321",
    "relationship": "01",
    "subscriber": {**PATIENT, "first_name": "Bob", "sex": "M"},
}
APPOINTMENT = {
    "scheduled_start": "2026-03-02T09:30:00-05:00",
    "rendering_provider_npi": NPI,
    "visit_type": "office-visit-established",
}
ENCOUNTER = {
    "place_of_service": "11",
    "documentation": {
        "note": "Follow-up for diabetes.",
        "diagnoses": [{"description": "Type 2 diabetes", "icd10_hint": "E11.9"}],
        "procedures": [{"description": "Office visit, established", "code_hint": "99213"}],
    },
}


def service_for(infra: Infra, topics: Topics, database: Any) -> Service:
    return build(settings_for(Settings, infra, topics.prefix, database.name))  # type: ignore[arg-type]


async def values(infra: Infra, topic: str, count: int) -> list[dict[str, Any]]:
    return [json.loads(record.value) for record in await read_topic(infra.kafka, topic, count)]


async def all_published(service: Service, database: Any, expected: int) -> None:
    """Waits for an empty outbox, then checks how many events went out in all (the relay
    counts a round's events when the round ends, hence `>=` while waiting)."""

    async def drained() -> bool:
        pending = await database["episodes"].count_documents({"outbox.0": {"$exists": True}})
        return pending == 0 and service.relay.published >= expected

    await eventually(drained)
    assert service.relay.published == expected


async def test_an_episode_from_appointment_to_encounter(
    infra: Infra, topics: Topics, database: Any
) -> None:
    service = service_for(infra, topics, database)
    async with running(service) as client:
        created = await client.post("/appointments", json=APPOINTMENT)
        assert created.status_code == 201, created.text
        ids = created.json()
        episode = ids["episode_id"]
        assert episode.startswith("E")
        assert len(episode) == 13
        url = f"/episodes/{episode}"

        registration = {"patient": PATIENT, "coverages": [SECONDARY, PRIMARY]}
        first = await client.post(f"{url}/registration", json=registration)
        assert first.status_code == 200, first.text
        state = first.json()
        assert state["status"] == "registered"
        assert state["guarantor_id"].startswith("G")
        assert [c["rank"] for c in state["coverages"]] == ["primary", "secondary"]
        assert all(c["coverage_id"].startswith("V") for c in state["coverages"])
        again = await client.post(f"{url}/registration", json=registration)
        assert again.json() == state  # same ids, no new events

        assert (await client.post(f"{url}/encounter", json=ENCOUNTER)).status_code == 409
        checked_in = await client.post(f"{url}/check-in")
        assert checked_in.json()["status"] == "checked-in"
        assert (await client.post(f"{url}/check-in")).json() == checked_in.json()

        encounter = await client.post(f"{url}/encounter", json=ENCOUNTER)
        assert encounter.status_code == 200, encounter.text
        assert (await client.post(f"{url}/encounter", json=ENCOUNTER)).status_code == 200
        cancel = await client.post(f"{url}/cancel", json={"reason": "too late"})
        assert cancel.status_code == 409
        assert "encounter is completed" in cancel.json()["detail"]

        dropped = await client.put(f"{url}/coverages", json={"coverages": [PRIMARY]})
        assert [c["coverage_id"] for c in dropped.json()["coverages"]] == [
            state["coverages"][0]["coverage_id"]
        ]
        view = (await client.get(url)).json()
        assert view["status"] == "completed"
        assert view["encounter"]["date_of_service"] == "2026-03-02"
        await all_published(service, database, expected=6)

    (scheduled,) = await values(infra, topics.of(AppointmentScheduled), 1)
    assert scheduled == {
        "episode_id": episode,
        "appointment_id": ids["appointment_id"],
        "patient_id": ids["patient_id"],
        "scheduled_start": "2026-03-02T14:30:00Z",
        "rendering_provider_npi": NPI,
        "visit_type": "office-visit-established",
    }
    (registered,) = await values(infra, topics.of(PatientRegistered), 1)
    assert registered["patient"]["last_name"] == "Lee"
    assert registered["guarantor_id"] == state["guarantor_id"]
    first_coverages, second_coverages = await values(infra, topics.of(CoverageUpdated), 2)
    assert first_coverages["coverages"] == state["coverages"]
    assert second_coverages["coverages"] == state["coverages"][:1]
    (checked,) = await values(infra, topics.of(PatientCheckedIn), 1)
    assert checked["appointment_id"] == ids["appointment_id"]
    (completed,) = await values(infra, topics.of(EncounterCompleted), 1)
    assert completed["rendering_provider_npi"] == NPI
    assert completed["place_of_service"] == "11"
    assert completed["documentation"]["procedures"][0]["code_hint"] == "99213"


async def test_bad_input_is_refused_with_the_field_and_rule(
    infra: Infra, topics: Topics, database: Any
) -> None:
    async def refused(response: httpx.Response, field: str, rule: str) -> None:
        assert response.status_code == 422, response.text
        problems = response.json()["detail"]
        assert any(field in ".".join(map(str, p["loc"])) and rule in p["msg"] for p in problems), (
            problems
        )

    service = service_for(infra, topics, database)
    async with running(service) as client:
        bad_npi = {**APPOINTMENT, "rendering_provider_npi": "1234567890"}
        await refused(
            await client.post("/appointments", json=bad_npi), "rendering_provider_npi", "Luhn"
        )
        naive = {**APPOINTMENT, "scheduled_start": "2026-03-02T09:30:00"}
        await refused(await client.post("/appointments", json=naive), "scheduled_start", "zone")
        # FerretDB (PostgreSQL) cannot store U+0000: refused here, not a 500 at the owner.
        nul = {**APPOINTMENT, "visit_type": "office\x00visit"}
        await refused(await client.post("/appointments", json=nul), "body", "NUL")
        assert await database["episodes"].count_documents({}) == 0

        episode = (await client.post("/appointments", json=APPOINTMENT)).json()["episode_id"]
        url = f"/episodes/{episode}/registration"
        two_primaries = {
            "patient": PATIENT,
            "coverages": [PRIMARY, {**PRIMARY, "member_id": "AC000000001"}],
        }
        await refused(
            await client.post(url, json=two_primaries), "coverages", "at most one primary"
        )
        accented = {"patient": {**PATIENT, "first_name": "José"}, "coverages": []}
        await refused(await client.post(url, json=accented), "patient", "first_name: must be")
        no_subscriber = {"patient": PATIENT, "coverages": [{**SECONDARY, "subscriber": None}]}
        await refused(
            await client.post(url, json=no_subscriber), "coverages", "subscriber: required"
        )
        state = (await client.get(f"/episodes/{episode}")).json()
        assert state["status"] == "scheduled"
        assert state["patient"] is None

        assert (await client.get("/episodes/E000000000000")).status_code == 404
        assert (await client.get("/episodes/E%00")).status_code == 404
        assert (await client.post("/episodes/E000000000000/check-in")).status_code == 404
        await all_published(service, database, expected=1)


async def test_resubmitting_and_cancelling_emit_once(
    infra: Infra, topics: Topics, database: Any
) -> None:
    service = service_for(infra, topics, database)
    async with running(service) as client:
        headers = {"Idempotency-Key": "front-desk-42"}
        first = await client.post("/appointments", json=APPOINTMENT, headers=headers)
        second = await client.post("/appointments", json=APPOINTMENT, headers=headers)
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.json() == second.json()
        other = {**APPOINTMENT, "visit_type": "new-patient"}
        assert (await client.post("/appointments", json=other, headers=headers)).status_code == 409

        episode = first.json()["episode_id"]
        url = f"/episodes/{episode}"
        assert (await client.put(f"{url}/coverages", json={"coverages": []})).status_code == 409
        cancelled = await client.post(f"{url}/cancel", json={"reason": "patient called"})
        assert cancelled.json()["status"] == "cancelled"
        again = await client.post(f"{url}/cancel", json={"reason": "patient called"})
        assert again.json() == cancelled.json()
        assert (await client.post(f"{url}/check-in")).status_code == 409
        await all_published(service, database, expected=2)

    (event,) = await values(infra, topics.of(AppointmentCancelled), 1)
    assert event == {
        "episode_id": episode,
        "appointment_id": first.json()["appointment_id"],
        "reason": "patient called",
    }
