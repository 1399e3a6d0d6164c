"""The billers' worklists on real Kafka and FerretDB: claims and payments with the payer
simulator in process as the clearinghouse and the payer. One denied claim is followed
through the A/R follow-up list, a follow-up note, its history of X12 documents (texts
from claims' and payments' archives) and the bulk actions, with their audit record."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from rcm_contracts.audit import AccessRecorded
from rcm_contracts.claims import ClaimDenied, FollowUpRequested
from rcm_shared.auth import Role

from tests.conftest import Infra

from .billing_platform import Platform
from .billing_platform import platform as billing_platform
from .helpers import eventually, read_topic
from .services import signed_in
from .test_claims import emitted, episode_inputs, publish, topic_size

pytestmark = pytest.mark.integration

TRANSACTION_SET = {"837P": "837", "999": "999", "277CA": "277", "835": "835"}
NOTE = "Called ACME01: rep Zed said resubmit with the op note"


@pytest.fixture(scope="module")
async def platform(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    archive = tmp_path_factory.mktemp("x12")
    async with billing_platform(infra, archive, 20261202, remit_delay_s=3.0) as running:
        yield running


async def denied_claim(platform: Platform) -> tuple[str, str]:
    episode = "E" + uuid.uuid4().hex[:12]
    claim_id = f"{episode}-1"
    await publish(platform.publisher, *episode_inputs(episode, secondary=False))

    async def deny() -> bool:
        return platform.simulator.deny(claim_id, "16")

    await eventually(deny, timeout_s=60)
    await emitted(platform.infra, platform.topics, ClaimDenied, episode, 1)
    return episode, claim_id


async def ar_row(platform: Platform, claim_id: str, **params: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def listed() -> bool:
        response = await platform.claims.get("/ar-followup", params=params)
        assert response.status_code == 200, response.text
        rows = [r for r in response.json()["rows"] if r["claim_id"] == claim_id]
        found.update(rows[0] if rows else {})
        return bool(rows)

    await eventually(listed)
    return found


async def test_a_denied_claim_is_followed_up_its_documents_read_and_worked_in_bulk(
    platform: Platform,
) -> None:
    episode, claim_id = await denied_claim(platform)
    view = (await platform.claims.get(f"/claims/{claim_id}")).json()

    # A/R follow-up: the open denial owes its whole charge, with its appeal deadline.
    row = await ar_row(platform, claim_id, payer_id="ACME01", min_outstanding_cents=1)
    assert row["outstanding_cents"] == view["total_charge_cents"] > 0
    assert (row["status"], row["bucket"], row["age_days"]) == ("denied", "0-30", 0)
    assert row["next_deadline"]["kind"] == "appeal"
    elsewhere = await platform.claims.get("/ar-followup", params={"payer_id": "SUMMIT"})
    assert claim_id not in [r["claim_id"] for r in elsewhere.json()["rows"]]

    # A follow-up note: shown on the row, kept in the claims store, in no event.
    key = {"Idempotency-Key": f"fu-{episode}"}
    body = {"note": NOTE, "next_action_on": "2031-01-15"}
    answer = await platform.claims.post(f"/claims/{claim_id}/follow-ups", json=body, headers=key)
    assert answer.status_code == 201, answer.text
    again = await platform.claims.post(f"/claims/{claim_id}/follow-ups", json=body, headers=key)
    assert again.json() == answer.json()
    row = await ar_row(platform, claim_id)
    assert row["follow_up"]["note"] == NOTE
    assert row["follow_up"]["next_action_on"] == "2031-01-15"
    assert row["last_action"] == "follow-up noted"
    (request,) = await emitted(platform.infra, platform.topics, FollowUpRequested, episode, 1)
    assert NOTE not in json.dumps(request)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(platform.infra.mongodb_url)
    try:
        kept = await mongo[platform.claims_db]["follow_up_notes"].find_one(
            {"_id": answer.json()["note_id"]}
        )
    finally:
        await mongo.close()
    assert kept is not None
    assert kept["text"] == NOTE

    # The claim's history: the 837P, its 999 and 277CA, the 835; each text from its archive.
    seen = (await platform.claims.get(f"/claims/{claim_id}/history")).json()
    kinds = [d["kind"] for d in seen["documents"]]
    assert sorted(kinds) == sorted(["837P", "999", "277CA", "835"])  # the 835 may overtake
    assert kinds[0] == "837P"
    times = [d["at"] for d in seen["documents"]]
    assert times == sorted(times)
    for document in seen["documents"]:
        owner = platform.payments if document["archived_by"] == "payments" else platform.claims
        text = await owner.get(document["href"])
        assert text.status_code == 200, (document, text.text)
        assert text.text.startswith("ISA")
        assert f"ST*{TRANSACTION_SET[document['kind']]}*" in text.text
    sent = await platform.claims.get(seen["documents"][0]["href"])
    assert f"CLM*{claim_id}*" in sent.text
    (posted,) = [d for d in seen["documents"] if d["kind"] == "835"]
    remittance = await platform.payments.get(posted["href"])
    assert f"CLP*{claim_id}*" in remittance.text
    other = await platform.claims.get(f"/claims/{claim_id}/documents/837P.000000999")
    assert other.status_code == 404  # not one of this claim's documents
    coder = signed_in("cody", Role.CODER)
    refused = await platform.claims.get(seen["documents"][0]["href"], headers=coder)
    assert refused.status_code == 403

    # Bulk reassign: each item its own request; a retry applies each once.
    unknown = f"{'E' + uuid.uuid4().hex[:12]}-1"
    bulk = {"claim_ids": [claim_id, unknown], "assigned_to": "biller-7"}
    bulk_key = {"Idempotency-Key": f"bulk-{episode}"}
    first = await platform.claims.post("/bulk/reassign", json=bulk, headers=bulk_key)
    assert first.status_code == 200, first.text
    outcomes = {i["id"]: (i["outcome"], i["status"]) for i in first.json()["items"]}
    assert outcomes == {claim_id: ("done", 200), unknown: ("refused", 404)}
    retried = await platform.claims.post("/bulk/reassign", json=bulk, headers=bulk_key)
    assert {i["id"]: i["outcome"] for i in retried.json()["items"]} == {
        claim_id: "done",
        unknown: "refused",
    }
    claim = (await platform.claims.get(f"/claims/{claim_id}")).json()
    actions = [entry["action"] for entry in claim["audit"]]
    assert actions.count("work assigned to biller-7") == 1  # the retry applied nothing more
    queue = await platform.claims.get("/work-queue", params={"assigned_to": "biller-7"})
    assert [i["claim_id"] for i in queue.json()["items"]] == [claim_id]
    # Each call's record is published before it is answered.
    audit_topic = platform.topics.of(AccessRecorded)
    records = await read_topic(
        platform.infra.kafka, audit_topic, await topic_size(platform.infra, audit_topic)
    )
    bulk_records = [
        record
        for record in (json.loads(r.value) for r in records)
        if record["action"] == "POST /bulk/reassign"
    ]
    assert [r["resources"] for r in bulk_records] == [[claim_id, unknown]] * 2

    # Bulk resubmit: the denial is replaced by a corrected claim that keeps its age.
    resubmit = {"claim_ids": [claim_id], "note": "op note attached"}
    done = await platform.claims.post(
        "/bulk/resubmit", json=resubmit, headers={"Idempotency-Key": f"rs-{episode}"}
    )
    ((item),) = done.json()["items"]
    assert (item["outcome"], item["answer"]["replaces_claim_id"]) == ("done", claim_id)
    replacement = await ar_row(platform, item["answer"]["claim_id"])
    assert replacement["first_submitted_at"] == row["first_submitted_at"]
