"""Appeals on real Kafka and FerretDB: claims, payments and collections with the payer
simulator in process as the clearinghouse and the payer.

The test decides which claim (or line) is denied and why (`Simulator.deny`: the
simulator's own denial rules are not what is tested here) and when the payer loses an
appeal (`Simulator.lose_appeals`); the simulator decides the appeal by its rules, and its
835 after an overturn is posted by payments like any other. Claims runs on a calendar the
test moves, so that a payer's answer deadline passes in a moment. The deadline
and document refusals run on claims alone, with a clearinghouse that never remits, so a
denial posted long ago can be given to it as payments would publish it."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from rcm_contracts.claims import (
    AppealDecided,
    AppealOverdue,
    AppealResent,
    ClaimAccepted,
    ClaimAppealed,
    ClaimClosed,
    ClaimDenied,
    ClaimPaid,
)
from rcm_shared.kafka import EventPublisher, Topics

from tests.conftest import Infra, drop_topics
from tests.unit.claims import builders as b

from .billing_platform import Platform as BillingPlatform
from .billing_platform import platform as billing_platform
from .helpers import eventually
from .services import running
from .test_claims import (
    Clearinghouse,
    claims_service,
    clearinghouse,
    emitted,
    episode_inputs,
    publish,
    publishing,
    topic_size,
)

pytestmark = pytest.mark.integration

SEED = 20261201
REMIT_DELAY_S = 3.0  # the window in which the test denies a claim the payer accepted
RECORD = b"%PDF-1.4\n% operative report, signed\n%%EOF\n"


def new_episode() -> str:
    return "E" + uuid.uuid4().hex[:12]


def appeal_body(content: bytes = RECORD, content_type: str = "application/pdf") -> dict[str, Any]:
    return {
        "reason": "the operative report supports the service",
        "documents": [
            {
                "content_type": content_type,
                "content_base64": base64.b64encode(content).decode(),
                "title": "operative report",
            }
        ],
    }


def ledger_holds(account: dict[str, Any]) -> bool:
    totals = account["totals"]
    accounted = sum(
        totals[name]
        for name in (
            "payer_paid_cents",
            "adjustments_cents",
            "patient_paid_cents",
            "written_off_cents",
            "balance_cents",
        )
    )
    return bool(account["invariant_holds"]) and totals["charges_cents"] == accounted


class Platform(BillingPlatform):
    async def denied(self, carc: str) -> tuple[str, str]:
        """A new episode whose claim the payer accepted and denied for `carc`."""
        episode = new_episode()
        claim_id = f"{episode}-1"
        await publish(self.publisher, *episode_inputs(episode, secondary=False))

        async def deny() -> bool:
            return self.simulator.deny(claim_id, carc)

        await eventually(deny, timeout_s=60)
        (denial,) = await self.emitted(ClaimDenied, episode, 1)
        assert [r["reason_code"] for r in denial["reasons"]] == [carc]
        return episode, claim_id

    async def claim(self, claim_id: str) -> dict[str, Any]:
        response = await self.claims.get(f"/claims/{claim_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())


class Calendar:
    """Claims' clock: the time now, moved ahead by the test (then back)."""

    def __init__(self) -> None:
        self.ahead = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


CALENDAR = Calendar()


@pytest.fixture(scope="module")
async def platform(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    archive = tmp_path_factory.mktemp("x12")
    async with billing_platform(
        infra,
        archive,
        SEED,
        REMIT_DELAY_S,
        kind=Platform,
        claims_clock=CALENDAR,
        deadline_watch_interval_s=0.5,
    ) as running:
        yield running


async def test_an_overturned_documentation_denial_is_paid_by_the_payers_next_835(
    platform: Platform,
) -> None:
    episode, claim_id = await platform.denied("16")
    queue = (await platform.claims.get("/work-queue", params={"kind": "denial"})).json()
    assert claim_id in [item["claim_id"] for item in queue["items"]]

    key = {"Idempotency-Key": f"appeal-{episode}"}
    url = f"/claims/{claim_id}/appeals"
    response = await platform.claims.post(url, json=appeal_body(), headers=key)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert (answer["status"], answer["denial_codes"]) == ("overturned", ["CO-16"])
    assert answer["decision"].startswith("CO-16")
    (document,) = answer["documents"]
    kept = platform.archive / "claims-documents" / f"{document['document_id']}.bin"
    assert kept.read_bytes() == RECORD

    (appealed,) = await platform.emitted(ClaimAppealed, episode, 1)
    assert appealed["appeal_id"] == answer["appeal_id"]
    assert [d["sha256"] for d in appealed["documents"]] == [document["sha256"]]
    assert "content_base64" not in str(appealed)  # the record stays in the archive
    (decided,) = await platform.emitted(AppealDecided, episode, 1)
    assert (decided["outcome"], decided["appeal_id"]) == ("overturned", answer["appeal_id"])

    # The payer's next 835: the denial reversed and the claim paid, posted by payments.
    (paid,) = await platform.emitted(ClaimPaid, episode, 1)
    assert paid["claim_id"] == claim_id
    assert paid["paid_cents"] > 0
    view = await platform.claim(claim_id)
    assert view["status"] == "paid"
    assert [a["status"] for a in view["adjudications"]] == ["denied", "reversed", "paid"]
    assert view["paid_cents"] == paid["paid_cents"]
    (closed,) = await platform.emitted(ClaimClosed, episode, 1)
    assert (closed["outcome"], closed["open_claims"]) == ("paid", 0)
    assert len(closed["posting_ids"]) == 3
    queue = (await platform.claims.get("/work-queue", params={"kind": "denial"})).json()
    assert claim_id not in [item["claim_id"] for item in queue["items"]]

    account: dict[str, Any] = {}

    async def posted() -> bool:
        response = await platform.collections.get(f"/accounts/{episode}")
        account.update(response.json() if response.status_code == 200 else {})
        return len(account.get("postings", [])) == 3 and account.get("billing_over") is True

    await eventually(posted, timeout_s=60)
    assert ledger_holds(account), account["invariant_problems"]
    assert account["totals"]["payer_paid_cents"] == paid["paid_cents"]
    assert account["insurance_balance_cents"] == 0  # the denial's adjustment was taken back

    again = await platform.claims.post(url, json=appeal_body(), headers=key)
    assert (again.status_code, again.json()["status"]) == (201, "overturned")
    assert len(await platform.emitted(AppealDecided, episode, 1)) == 1


async def test_an_upheld_appeal_goes_back_to_the_billers_queue_with_the_payers_decision(
    platform: Platform,
) -> None:
    episode, claim_id = await platform.denied("27")
    key = {"Idempotency-Key": f"appeal-{episode}"}
    response = await platform.claims.post(
        f"/claims/{claim_id}/appeals", json=appeal_body(), headers=key
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["status"] == "upheld"
    assert "CO-27" in answer["decision"]
    (decided,) = await platform.emitted(AppealDecided, episode, 1)
    assert (decided["outcome"], decided["reason"]) == ("upheld", answer["decision"])

    queue = (await platform.claims.get("/work-queue", params={"kind": "denial"})).json()
    (item,) = [item for item in queue["items"] if item["claim_id"] == claim_id]
    assert item["stage"] == "appeal"
    assert answer["decision"] in item["message"]
    assert item["status_codes"] == ["CO-27"]

    await asyncio.sleep(REMIT_DELAY_S + 2)  # an overturn's 835 would have come by now
    view = await platform.claim(claim_id)
    assert view["status"] == "denied"
    assert [a["status"] for a in view["adjudications"]] == ["denied"]
    appeals = (await platform.claims.get(f"/claims/{claim_id}/appeals")).json()
    assert [a["status"] for a in appeals["items"]] == ["upheld"]


async def test_an_appeal_the_payer_never_answers_is_overdue_and_the_biller_resends_it(
    platform: Platform,
) -> None:
    episode, claim_id = await platform.denied("16")
    platform.simulator.lose_appeals(claim_id)
    url = f"/claims/{claim_id}/appeals"
    key = {"Idempotency-Key": f"appeal-{episode}"}
    response = await platform.claims.post(url, json=appeal_body(), headers=key)
    assert response.status_code == 201, response.text
    filed = response.json()
    appeal_id = filed["appeal_id"]
    assert (filed["status"], filed["overdue"]) == ("sent", False)  # received, not decided
    (appealed,) = await platform.emitted(ClaimAppealed, episode, 1)

    CALENDAR.ahead = timedelta(days=61)  # ACME01 answers an appeal within 60 days
    try:
        found: dict[str, Any] = {}

        async def in_the_queue() -> bool:
            queue = (await platform.claims.get("/work-queue", params={"kind": "denial"})).json()
            mine = [i for i in queue["items"] if i["claim_id"] == claim_id]
            found.update(mine[0] if mine else {})
            return found.get("stage") == "appeal-overdue"

        await eventually(in_the_queue, timeout_s=60)
        assert appeal_id in found["message"]
        assert found["status_codes"] == ["CO-16"]
        (overdue,) = await platform.emitted(AppealOverdue, episode, 1)
        filed_on = datetime.fromisoformat(filed["filed_at"]).date()
        assert overdue["appeal_id"] == appeal_id
        assert overdue["answer_deadline"] == (filed_on + timedelta(days=60)).isoformat()
        (listed,) = (await platform.claims.get(url)).json()["items"]
        assert (listed["overdue"], [s["action"] for s in listed["history"]]) == (
            True,
            ["filed", "overdue"],
        )

        platform.simulator.lose_appeals(claim_id, lost=False)
        resend_url = f"{url}/{appeal_id}/resend"
        resend_key = {"Idempotency-Key": f"resend-{episode}"}
        response = await platform.claims.post(resend_url, headers=resend_key)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert (answer["status"], answer["sends"], answer["overdue"]) == ("overturned", 2, False)
        actions = [s["action"] for s in answer["history"]]
        assert actions == ["filed", "overdue", "resent", "overturned"]
        (resent,) = await platform.emitted(AppealResent, episode, 1)
        assert (resent["appeal_id"], resent["sends"]) == (appeal_id, 2)
        assert resent["documents"] == appealed["documents"]  # the same documents
        (decided,) = await platform.emitted(AppealDecided, episode, 1)
        assert (decided["appeal_id"], decided["outcome"]) == (appeal_id, "overturned")

        # A retry of the same resending records nothing more; an answered one is not resent.
        again = await platform.claims.post(resend_url, headers=resend_key)
        assert (again.status_code, again.json()["sends"]) == (200, 2)
        other = await platform.claims.post(resend_url, headers={"Idempotency-Key": "other"})
        assert other.status_code == 409, other.text
        missing = await platform.claims.post(
            f"{url}/AP-nope/resend", headers={"Idempotency-Key": f"missing-{episode}"}
        )
        assert missing.status_code == 404
        unkeyed = await platform.claims.post(resend_url)
        assert unkeyed.status_code == 400

        (paid,) = await platform.emitted(ClaimPaid, episode, 1)  # the payer's 835 followed
        assert paid["paid_cents"] > 0
        queue = (await platform.claims.get("/work-queue", params={"kind": "denial"})).json()
        assert claim_id not in [item["claim_id"] for item in queue["items"]]
        account: dict[str, Any] = {}

        async def posted() -> bool:
            account.update(await platform.account(episode))
            return len(account.get("postings", [])) == 3 and account.get("billing_over") is True

        await eventually(posted, timeout_s=60)
        assert ledger_holds(account), account["invariant_problems"]
    finally:
        CALENDAR.ahead = timedelta()


async def test_a_denied_line_of_a_paid_claim_is_appealed_and_the_payer_pays_it(
    platform: Platform,
) -> None:
    episode = new_episode()
    claim_id, line_id = f"{episode}-1", f"{episode}-L2"
    await publish(platform.publisher, *episode_inputs(episode, secondary=False))

    async def deny_the_line() -> bool:
        return platform.simulator.deny(claim_id, "50", line_id=line_id)

    await eventually(deny_the_line, timeout_s=60)
    (first,) = await platform.emitted(ClaimPaid, episode, 1)  # the rest of the claim
    view = await platform.claim(claim_id)
    assert (view["status"], view["closed"]) == ("paid", True)

    body = {**appeal_body(), "line_id": line_id}
    key = {"Idempotency-Key": f"line-appeal-{episode}"}
    response = await platform.claims.post(f"/claims/{claim_id}/appeals", json=body, headers=key)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert (answer["line_id"], answer["denial_codes"]) == (line_id, ["CO-50"])
    assert answer["status"] == "overturned"
    assert answer["decision"].startswith("CO-50")
    (appealed,) = await platform.emitted(ClaimAppealed, episode, 1)
    assert appealed["line_id"] == line_id

    # The payer's reprocessing: its first adjudication reversed, the claim paid again.
    _, repaid = await platform.emitted(ClaimPaid, episode, 2)
    view = await platform.claim(claim_id)
    assert [a["status"] for a in view["adjudications"]] == ["paid", "reversed", "paid"]
    assert view["status"] == "paid"
    line_codes = [
        f"{a['group']}-{a['reason_code']}"
        for a in view["adjudications"][-1]["adjustments"]
        if a["line_id"] == line_id
    ]
    assert "CO-50" not in line_codes
    assert repaid["paid_cents"] + repaid["patient_responsibility_cents"] > (
        first["paid_cents"] + first["patient_responsibility_cents"]
    )
    account: dict[str, Any] = {}

    async def posted() -> bool:
        account.update(await platform.account(episode))
        return len(account.get("postings", [])) == 3 and account.get("billing_over") is True

    await eventually(posted, timeout_s=60)
    assert ledger_holds(account), account["invariant_problems"]


# --- refusals: claims alone, with a clearinghouse that never remits ----------------------


@dataclass
class ClaimsAlone:
    infra: Infra
    topics: Topics
    client: httpx.AsyncClient
    publisher: EventPublisher
    archive: Path


@pytest.fixture
async def claims_alone(infra: Infra, tmp_path: Path) -> AsyncIterator[ClaimsAlone]:
    topics = Topics(prefix=f"t{uuid.uuid4().hex[:10]}.")
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url, tz_aware=True)
    database = mongo[f"test_{uuid.uuid4().hex[:12]}"]
    try:
        async with (
            clearinghouse(Clearinghouse()) as stub,
            publishing(infra, topics) as publisher,
        ):
            service = claims_service(infra, topics, database, stub, tmp_path)
            async with running(service) as client:
                yield ClaimsAlone(infra, topics, client, publisher, tmp_path)
    finally:
        await mongo.drop_database(database.name)
        await mongo.close()
        await drop_topics(infra.kafka, topics.prefix)


async def denied_on(claims: ClaimsAlone, days_ago: int) -> str:
    """A claim denied for CO-16 by a remittance payments posted `days_ago`."""
    episode = new_episode()
    claim_id = f"{episode}-1"
    await publish(claims.publisher, *episode_inputs(episode, secondary=False))
    await emitted(claims.infra, claims.topics, ClaimAccepted, episode, 2)
    posted_at = datetime.now(UTC) - timedelta(days=days_ago)
    denial = b.denial_posting(claim_id, "16", posting_id=f"R{episode}-1", episode=episode)
    await publish(claims.publisher, denial.model_copy(update={"posted_at": posted_at}))
    await emitted(claims.infra, claims.topics, ClaimDenied, episode, 1)
    return claim_id


async def test_an_appeal_past_its_deadline_or_with_a_bad_document_is_refused_keeping_nothing(
    claims_alone: ClaimsAlone,
) -> None:
    claims = claims_alone
    late = await denied_on(claims, days_ago=200)  # ACME01 takes appeals for 180 days
    view = (await claims.client.get(f"/claims/{late}")).json()
    assert view["deadlines"]["appeal"]["days_left"] == -20
    response = await claims.client.post(
        f"/claims/{late}/appeals", json=appeal_body(), headers={"Idempotency-Key": "late-1"}
    )
    assert response.status_code == 422, response.text
    assert "deadline" in response.text

    recent = await denied_on(claims, days_ago=3)
    too_large = b"%PDF-" + b"0" * (512 * 1024)
    bad_bodies = [
        appeal_body(b"\x89PNG\r\n\x1a\n", "image/png"),  # a type not taken
        appeal_body(b"plain words, not a PDF"),  # not what it says it is
        appeal_body(too_large),  # over 512 KiB
        appeal_body(b"x" * 600_000, "text/plain"),  # its base64 is over the body's bound
    ]
    for n, body in enumerate(bad_bodies):
        refused = await claims.client.post(
            f"/claims/{recent}/appeals", json=body, headers={"Idempotency-Key": f"bad-{n}"}
        )
        assert refused.status_code == 422, (n, refused.text)

    for claim_id in (late, recent):
        appeals = (await claims.client.get(f"/claims/{claim_id}/appeals")).json()
        assert appeals["count"] == 0
        assert (await claims.client.get(f"/claims/{claim_id}")).json()["status"] == "denied"
    assert not (claims.archive / "claims-documents").exists()
    assert await topic_size(claims.infra, claims.topics.of(ClaimAppealed)) == 0
