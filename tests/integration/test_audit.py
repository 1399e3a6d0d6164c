"""The audit trail end to end on real Kafka and FerretDB: calls to the collections service,
allowed and refused, are kept by the audit service and found by auditors only, over
HTTP and with `rcm audit`; a redelivered record stays one."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from rcm_audit.app import Settings as AuditSettings
from rcm_audit.app import build as build_audit
from rcm_audit.domain import AuditRecord, record_of
from rcm_audit.store import MongoRecords
from rcm_collections.app import Settings as CollectionsSettings
from rcm_collections.app import build as build_collections
from rcm_contracts.audit import AccessRecorded
from rcm_ops.cli import app as cli
from rcm_shared.auth import Role
from rcm_shared.envelope import Envelope
from rcm_shared.kafka import EventPublisher, Topics
from rcm_shared.service import Service
from typer.testing import CliRunner

from tests.conftest import TEST_ISSUER, Infra

from .helpers import eventually, headers_of, read_topic, serving
from .services import running, settings_for, signed_in

pytestmark = pytest.mark.integration

AUDITOR = signed_in("auditor-1", Role.AUDITOR)


@dataclass
class Trail:
    audit: Service
    topics: Topics
    auditor: httpx.AsyncClient  # the audit service's API
    collections: httpx.AsyncClient  # the collections service's API

    async def records(self, **filters: Any) -> dict[str, Any]:
        response = await self.auditor.get("/records", params=filters, headers=AUDITOR)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page

    async def records_when(self, count: int, **filters: Any) -> list[dict[str, Any]]:
        """The records that match, once there are `count` of them."""
        found: list[dict[str, Any]] = []

        async def kept() -> bool:
            found[:] = (await self.records(**filters))["records"]
            return len(found) >= count

        await eventually(kept)
        assert len(found) == count, found
        return found


@pytest.fixture(scope="module")
async def trail(infra: Infra) -> AsyncIterator[Trail]:
    """The audit and collections services in this process, on topics and databases of
    this module; each test signs in with actors of its own."""
    topics = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.")
    database = f"test_{uuid.uuid4().hex[:12]}"
    audit = build_audit(settings_for(AuditSettings, infra, topics.prefix, f"{database}_audit"))
    collections = build_collections(
        settings_for(CollectionsSettings, infra, topics.prefix, f"{database}_collections")
    )
    try:
        async with running(audit) as auditor, running(collections) as collections_api:
            yield Trail(audit, topics, auditor, collections_api)
    finally:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url)
        for name in (f"{database}_audit", f"{database}_collections"):
            await client.drop_database(name)
        await client.close()


def someone(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def test_allowed_and_refused_calls_are_found_by_an_auditor(trail: Trail) -> None:
    alice = someone("alice")
    episode = f"E{uuid.uuid4().hex[:12]}"
    started = datetime.now(UTC)

    listed = await trail.collections.get(
        "/accounts", headers={**signed_in(alice, Role.COLLECTOR), "X-Request-ID": "req-list-1"}
    )
    missing = await trail.collections.get(
        f"/accounts/{episode}", headers=signed_in(alice, Role.BILLER)
    )
    refused = await trail.collections.get(
        f"/accounts/{episode}", headers=signed_in(alice, Role.FRONT_DESK)
    )
    assert (listed.status_code, missing.status_code, refused.status_code) == (200, 404, 403)

    records = await trail.records_when(3, actor=alice)

    times = [record["recorded_at"] for record in records]
    assert times == sorted(times, reverse=True)  # newest first
    assert {
        (record["action"], record["resource"], record["status"], tuple(record["roles"]))
        for record in records
    } == {
        ("GET /accounts", None, 200, ("collector",)),
        ("GET /accounts/{episode_id}", f"episode_id={episode}", 404, ("biller",)),
        ("GET /accounts/{episode_id}", f"episode_id={episode}", 403, ("front-desk",)),
    }
    assert {record["service"] for record in records} == {"collections"}
    assert {record["actor"] for record in records} == {alice}
    request_ids = {record["request_id"] for record in records}
    assert "req-list-1" in request_ids
    assert refused.headers["X-Request-ID"] in request_ids
    assert all(datetime.fromisoformat(time) >= started.replace(microsecond=0) for time in times)

    (refusal,) = (await trail.records(actor=alice, status=403))["records"]
    assert refusal["request_id"] == refused.headers["X-Request-ID"]
    touched = (await trail.records(resource=episode))["records"]
    assert sorted(record["status"] for record in touched) == [403, 404]
    pair = await trail.records(resource=f"episode_id={episode}", service="collections")
    assert len(pair["records"]) == 2
    assert (await trail.records(resource=episode[:-1]))["records"] == []  # whole ids only
    newest = await trail.records(actor=alice, limit=1)
    assert newest == {"records": [records[0]], "more": True}
    since_second = await trail.records(actor=alice, since=records[1]["recorded_at"])
    assert since_second["records"] == records[:2]
    until_second = await trail.records(actor=alice, until=records[1]["recorded_at"])
    assert until_second["records"] == records[2:]
    action = await trail.records(actor=alice, action="GET /accounts")
    assert [record["status"] for record in action["records"]] == [200]


async def test_only_auditors_read_the_trail_and_reading_it_is_recorded(trail: Trail) -> None:
    bob, carol = someone("bob"), someone("carol")

    everyone_but_auditors = set(Role) - {Role.AUDITOR}
    refused = await trail.auditor.get("/records", headers=signed_in(bob, *everyone_but_auditors))
    assert refused.status_code == 403
    unsigned = await trail.auditor.get("/records", headers={"Authorization": ""})
    assert unsigned.status_code == 401
    read = await trail.auditor.get(
        "/records", params={"actor": bob}, headers=signed_in(carol, Role.AUDITOR)
    )
    assert read.status_code == 200

    (bobs,) = await trail.records_when(1, actor=bob)
    assert (bobs["service"], bobs["action"], bobs["status"]) == ("audit", "GET /records", 403)
    (carols,) = await trail.records_when(1, actor=carol)
    assert (carols["service"], carols["status"], carols["roles"]) == ("audit", 200, ["auditor"])


@pytest.mark.parametrize(
    "filters",
    [
        {"status": "42"},
        {"limit": "5000"},
        {"limit": "0"},
        {"since": "2025-03-03T15:00:00"},  # no offset
        {"since": "2025-03-03T16:00:00Z", "until": "2025-03-03T15:00:00Z"},
        {"resource": "E1.*"},
        {"actr": "alice"},  # misspelt filters are refused, not ignored
    ],
)
async def test_bad_filters_are_answered_422(trail: Trail, filters: dict[str, str]) -> None:
    response = await trail.auditor.get("/records", params=filters, headers=AUDITOR)
    assert response.status_code == 422, response.text
    assert "E1.*" not in response.text  # the input is not echoed
    assert "5000" not in response.text


async def test_a_redelivered_record_stays_one_and_other_content_is_dead_lettered(
    trail: Trail, infra: Infra
) -> None:
    dave = someone("dave")
    publisher = EventPublisher(trail.audit.broker, trail.topics)

    def access(record_id: str, status: int = 200) -> AccessRecorded:
        return AccessRecorded(
            record_id=record_id,
            actor=dave,
            roles=["biller"],
            service="claims",
            action="GET /claims/{claim_id}",
            resource="claim_id=C1",
            status=status,
            request_id=f"req-{record_id}",
            recorded_at=datetime.now(UTC),
        )

    first = Envelope(data=access("r1"), source="rcm/claims")
    await publisher.publish(first)
    await publisher.publish(first)  # redelivered as is
    await publisher.publish(Envelope(data=first.data, source="rcm/claims"))  # republished
    await publisher.publish(Envelope(data=access("r1", status=500), source="rcm/claims"))
    # One actor, one key, one partition: the marker is kept after all of the above.
    await publisher.publish(Envelope(data=access("r2"), source="rcm/claims"))

    records = await trail.records_when(2, actor=dave)

    assert [record["record_id"] for record in records] == ["r2", "r1"]
    assert records[1]["status"] == 200  # the first record stays
    dead = await read_topic(infra.kafka, f"{trail.topics.of(AccessRecorded)}.dlq", 1)
    assert [json.loads(record.value)["status"] for record in dead] == [500]
    assert headers_of(dead[0])["dlq_exception_class"].endswith("Conflict")


async def test_rcm_audit_prints_the_trail(trail: Trail, monkeypatch: pytest.MonkeyPatch) -> None:
    erin = someone("erin")
    monkeypatch.setenv("RCM_DEV_ISSUER_DIR", str(TEST_ISSUER.directory))
    refused = await trail.collections.get("/accounts", headers=signed_in(erin, Role.BILLER))
    assert refused.status_code == 403
    await trail.records_when(1, actor=erin)
    runner = CliRunner()

    async with serving(trail.audit.api) as url:  # already started: HTTP only
        as_json = await asyncio.to_thread(
            runner.invoke, cli, ["audit", "--url", url, "--actor", erin, "--json"]
        )
        as_table = await asyncio.to_thread(
            runner.invoke, cli, ["audit", "--url", url, "--actor", erin, "--user", erin]
        )
        wrong_filter = await asyncio.to_thread(
            runner.invoke, cli, ["audit", "--url", url, "--resource", "a b"]
        )

    assert as_json.exit_code == 0, as_json.output
    (record,) = json.loads(as_json.stdout)["records"]
    assert (record["actor"], record["action"], record["status"]) == (erin, "GET /accounts", 403)
    assert as_table.exit_code == 0, as_table.output
    assert "403" in as_table.stdout
    assert "1 record" in as_table.stdout
    assert wrong_filter.exit_code == 1
    assert "refused the filters: resource:" in wrong_filter.stderr
    # The CLI's own reads are on the trail too, under the user it signed in as.
    (cli_read,) = await trail.records_when(1, actor=erin, service="audit")
    assert (cli_read["action"], cli_read["roles"]) == ("GET /records", ["auditor"])


async def test_records_arriving_together_are_inserted_together_and_a_kept_one_stays(
    infra: Infra,
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url)
    database = f"test_{uuid.uuid4().hex[:12]}"
    store = MongoRecords(client[database]["records"])

    def record(record_id: str, status: int = 200) -> AuditRecord:
        return record_of(
            AccessRecorded(
                record_id=record_id,
                actor="erin",
                roles=["biller"],
                service="claims",
                action="GET /claims/{claim_id}",
                resource="claim_id=C1",
                status=status,
                request_id=f"req-{record_id}",
                recorded_at=datetime.now(UTC).replace(microsecond=0),
            )
        )

    try:
        kept = record("kept")
        assert await store.append(kept) is None
        calls = store.inserts.calls
        arriving = [record(f"new-{n}") for n in range(30)] + [record("kept", status=500)]

        outcomes = await asyncio.gather(*(store.append(each) for each in arriving))

        assert outcomes[:30] == [None] * 30
        again = outcomes[30]  # the record kept first, not the one that came again
        assert again is not None
        assert (again.record_id, again.status) == ("kept", 200)
        assert store.inserts.calls - calls == 2  # 31 records, at most 25 per insert
        assert await client[database]["records"].count_documents({}) == 31
    finally:
        await client.drop_database(database)
        await client.close()
