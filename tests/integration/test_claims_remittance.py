"""The claims side of issue 10 on real Kafka and FerretDB: split and partial payments,
a biller's closing, reversal and repost, crossovers, voids, corrections with a biller's
changes and line-level coding denials (claims service with the test clearinghouse)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from rcm_contracts.claims import (
    ClaimAccepted,
    ClaimClosed,
    ClaimResubmitted,
    ClaimSubmitted,
    LineDenied,
)
from rcm_contracts.payments import PostedClaimStatus, PostedLine
from rcm_contracts.registration import CoverageRank
from rcm_shared.kafka import Topics
from rcm_x12 import parse_837p, validate_with_pyx12

from tests.conftest import Infra, drop_topics
from tests.unit.claims import builders as b

from .helpers import eventually
from .services import running
from .test_claims import (
    Clearinghouse,
    Running,
    batch_with,
    claims_service,
    clearinghouse,
    episode_inputs,
    pccn,
    publishing,
)

pytestmark = pytest.mark.integration


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
            service = claims_service(infra, topics, database, stub, archive)
            async with running(service) as client:
                yield Running(infra, topics, stub, client, publisher, archive, database)
    finally:
        await mongo.drop_database(database.name)
        await mongo.close()
        await drop_topics(infra.kafka, topics.prefix)


def new_episode() -> str:
    return "E" + uuid.uuid4().hex[:12]


async def sent(claims: Running, episode: str, secondary: bool = False) -> None:
    """The episode's first claim, sent and accepted by the clearinghouse and the payer."""
    await claims.publish(*episode_inputs(episode, secondary=secondary))
    await claims.emitted(ClaimAccepted, episode, 2)


async def claim_view(claims: Running, claim_id: str) -> dict[str, Any]:
    response = await claims.client.get(f"/claims/{claim_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def until(claims: Running, claim_id: str, **expected: Any) -> dict[str, Any]:
    """The claim's view once it shows `expected`."""
    seen: dict[str, Any] = {}

    async def shows() -> bool:
        seen.update(await claim_view(claims, claim_id))
        return all(seen.get(name) == value for name, value in expected.items())

    await eventually(shows)
    return seen


async def test_a_split_payment_closes_the_claim_once_the_charge_is_covered(
    claims: Running,
) -> None:
    episode = new_episode()
    first = f"{episode}-1"
    await sent(claims, episode)
    await claims.publish(b.split_posting(first, "Rs1-T1-1", 10000, 6000, episode=episode))
    view = await until(claims, first, status="partially-paid")
    assert view["closed"] is False
    assert view["paid_cents"] == 6000

    await claims.publish(b.split_posting(first, "Rs2-T1-1", 7500, 5000, episode=episode))
    (closed,) = await claims.emitted(ClaimClosed, episode, 1)
    assert (closed["outcome"], closed["open_claims"]) == ("paid", 0)
    assert closed["posting_ids"] == ["Rs1-T1-1", "Rs2-T1-1"]
    episode_view = (await claims.client.get(f"/episodes/{episode}/claims")).json()
    assert episode_view["closings"] == 1  # not closed after the first part
    assert episode_view["claims"][0]["paid_cents"] == 11000


async def test_a_biller_closes_a_partially_paid_claim_and_the_secondary_is_billed(
    claims: Running,
) -> None:
    episode = new_episode()
    first, second = f"{episode}-1", f"{episode}-2"
    await sent(claims, episode, secondary=True)
    partial = b.split_posting(first, "Rp1-T1-1", 10000, 6000, coinsurance=1000, episode=episode)
    await claims.publish(partial)
    await until(claims, first, status="partially-paid")

    url = f"/claims/{first}/close"
    assert (await claims.client.post(url, json={})).status_code == 422
    key = {"Idempotency-Key": f"close-{episode}"}
    response = await claims.client.post(url, json={"note": "payer pays no more"}, headers=key)
    assert response.status_code == 200, response.text
    answer = {"claim_id": first, "payer_id": "ACME01", "outcome": "paid"}
    assert response.json() == answer
    again = await claims.client.post(url, json={"note": "payer pays no more"}, headers=key)
    assert (again.status_code, again.json()) == (200, answer)  # a retry: the same answer
    (closed,) = await claims.emitted(ClaimClosed, episode, 1)
    assert (closed["claim_id"], closed["outcome"], closed["open_claims"]) == (first, "paid", 1)

    _, secondary = await claims.emitted(ClaimSubmitted, episode, 2)
    assert (secondary["claim_id"], secondary["rank"]) == (second, "secondary")
    assert batch_with(claims.stub, second).prior_payers[0].paid_cents == 6000
    refused = await claims.client.post(f"/claims/{second}/close", json={"note": "n"})
    assert refused.status_code == 409  # the secondary payer has not answered


async def test_after_a_reversal_and_a_repost_the_claim_has_the_reposts_amounts(
    claims: Running,
) -> None:
    episode = new_episode()
    first = f"{episode}-1"
    await sent(claims, episode)
    original = b.split_posting(
        first, "Rr1-T1-1", 17500, 9000, coinsurance=3000, pccn="OLD", episode=episode
    )
    reversal = b.split_posting(
        first, "Rr2-T1-1", -17500, -9000, coinsurance=-3000, pccn="OLD", episode=episode,
        status=PostedClaimStatus.REVERSED,
    )  # fmt: skip
    repost = b.split_posting(
        first, "Rr2-T1-2", 17500, 11000, coinsurance=1500, pccn="NEW", episode=episode
    )
    await claims.publish(original, reversal, repost)
    view = await until(claims, first, postings=["Rr1-T1-1", "Rr2-T1-1", "Rr2-T1-2"])
    assert view["status"] == "paid"
    assert (view["paid_cents"], view["patient_responsibility_cents"]) == (11000, 1500)
    assert view["payer_claim_control_number"] == "NEW"
    assert [a["status"] for a in view["adjudications"]] == ["paid", "reversed", "paid"]
    (closed,) = await claims.emitted(ClaimClosed, episode, 1)
    assert closed["posting_ids"] == ["Rr1-T1-1"]


async def test_a_crossover_is_not_billed_again_and_keeps_billing_open_until_its_835(
    claims: Running,
) -> None:
    episode = new_episode()
    first = f"{episode}-1"
    await sent(claims, episode, secondary=True)
    primary = b.paid_posting(first, "Rx1-T1-1", episode=episode, crossover_payer_id="SUMMIT")
    await claims.publish(primary)
    (closed,) = await claims.emitted(ClaimClosed, episode, 1)
    assert (closed["claim_id"], closed["payer_id"], closed["open_claims"]) == (
        first,
        "ACME01",
        1,
    )
    view = await claim_view(claims, first)
    assert view["crossover"]["payer_id"] == "SUMMIT"
    assert view["crossover"]["coverage_id"] == b.SECONDARY
    assert view["crossover"]["closed"] is False

    secondary_835 = b.split_posting(
        first, "Rx7-T1-1", 17500, 4400, payer="SUMMIT", rank=CoverageRank.SECONDARY,
        episode=episode,
    )  # fmt: skip
    await claims.publish(secondary_835)
    _, last = await claims.emitted(ClaimClosed, episode, 2)
    assert (last["claim_id"], last["payer_id"], last["outcome"]) == (first, "SUMMIT", "paid")
    assert last["open_claims"] == 0
    assert last["posting_ids"] == ["Rx1-T1-1", "Rx7-T1-1"]
    claims_of_episode = (await claims.client.get(f"/episodes/{episode}/claims")).json()
    assert [c["claim_id"] for c in claims_of_episode["claims"]] == [first]  # no 837P to SUMMIT
    sent_ids = [c for n in range(len(claims.stub.batches)) for c in claims.stub.claim_ids(n)]
    assert f"{episode}-2" not in sent_ids


async def test_a_void_sends_a_frequency_8_and_closes_when_the_payer_reverses(
    claims: Running,
) -> None:
    episode = new_episode()
    first, void = f"{episode}-1", f"{episode}-2"
    await sent(claims, episode)
    await claims.publish(b.paid_posting(first, "Rv1-T1-1", episode=episode))
    await claims.emitted(ClaimClosed, episode, 1)

    url = f"/claims/{first}/void"
    body = {"reason": "billed to the wrong payer"}
    assert (await claims.client.post(url, json=body)).status_code == 400  # no Idempotency-Key
    key = {"Idempotency-Key": f"void-{episode}"}
    response = await claims.client.post(url, json=body, headers=key)
    assert response.status_code == 202, response.text
    answer = {"claim_id": void, "voids_claim_id": first, "frequency": "8"}
    assert response.json() == answer
    assert (await claims.client.post(url, json=body, headers=key)).json() == answer
    other = {"Idempotency-Key": f"void-again-{episode}"}
    assert (await claims.client.post(url, json=body, headers=other)).status_code == 409

    (resubmitted,) = await claims.emitted(ClaimResubmitted, episode, 1)
    assert (resubmitted["claim_id"], resubmitted["frequency"]) == (void, "8")
    original = batch_with(claims.stub, first)
    assert resubmitted["payer_claim_control_number"] == pccn("ACME01", original)
    await claims.emitted(ClaimSubmitted, episode, 2)
    sent_void = batch_with(claims.stub, void)
    assert (sent_void.frequency_code, sent_void.payer_claim_control_number) == (
        "8",
        pccn("ACME01", original),
    )
    (text,) = [t for t in claims.stub.batches if void in t]
    ok, errors = validate_with_pyx12(text)
    assert ok, errors
    _, voided = await claims.emitted(ClaimClosed, episode, 2)
    assert (voided["claim_id"], voided["outcome"], voided["open_claims"]) == (first, "voided", 1)

    reversal = b.paid_posting(first, "Rv2-T1-1", episode=episode)
    reversal = reversal.model_copy(
        update={
            "status": PostedClaimStatus.REVERSED,
            "charge_cents": -reversal.charge_cents,
            "paid_cents": -reversal.paid_cents,
        }
    )
    await claims.publish(reversal)
    *_, last = await claims.emitted(ClaimClosed, episode, 3)
    assert (last["claim_id"], last["outcome"], last["open_claims"]) == (void, "voided", 0)
    assert last["posting_ids"] == ["Rv1-T1-1", "Rv2-T1-1"]


async def test_a_correction_bills_the_billers_changes(claims: Running) -> None:
    episode = new_episode()
    first, second = f"{episode}-1", f"{episode}-2"
    await sent(claims, episode)
    await claims.publish(b.denial_posting(first, "16", "Rc1-T1-1", episode=episode))
    await until(claims, first, status="denied")
    url = f"/claims/{first}/corrections"
    line_2 = f"{episode}-L2"
    bad_modifier = {"note": "n", "changes": {"lines": [{"line_id": line_2, "modifiers": ["x"]}]}}
    assert (await claims.client.post(url, json=bad_modifier)).status_code == 422
    unknown = {"note": "n", "changes": {"lines": [{"line_id": f"{episode}-L9", "units": 2}]}}
    refused = await claims.client.post(url, json=unknown)
    assert refused.status_code == 422
    assert f"{episode}-L9" not in refused.text  # the reason names the place, not the value

    body = {
        "note": "two units; authorization on file",
        "changes": {
            "lines": [{"line_id": line_2, "units": 2, "charge_cents": 5000}],
            "prior_authorization": "PA-777",
        },
    }
    response = await claims.client.post(url, json=body)
    assert response.status_code == 202, response.text
    changed = [f"lines[{line_2}].units", f"lines[{line_2}].charge_cents", "prior_authorization"]
    assert response.json()["changed"] == changed
    (resubmitted,) = await claims.emitted(ClaimResubmitted, episode, 1)
    assert (resubmitted["frequency"], resubmitted["changed"]) == ("7", changed)
    assert resubmitted["total_charge_cents"] == 20000
    await claims.emitted(ClaimSubmitted, episode, 2)
    corrected = batch_with(claims.stub, second)
    assert corrected.prior_authorization == "PA-777"
    assert [(line.units, line.charge_cents) for line in corrected.lines] == [
        (1, 15000),
        (2, 5000),
    ]
    (text,) = [t for t in claims.stub.batches if second in t]
    assert parse_837p(text).transactions[0].claims[0].frequency_code == "7"
    ok, errors = validate_with_pyx12(text)
    assert ok, errors


async def test_a_line_denied_for_coding_on_a_paid_claim_goes_to_coding(claims: Running) -> None:
    episode = new_episode()
    first = f"{episode}-1"
    await sent(claims, episode)
    line_2 = f"{episode}-L2"
    lines = [
        PostedLine(
            line_id=line_2,
            procedure_code="36415",
            charge_cents=2500,
            paid_cents=0,
            adjustments=[b.adjustment("CO", "97", 2500, line_2)],
        )
    ]
    posting = b.paid_posting(first, "Rl1-T1-1", episode=episode)
    await claims.publish(posting.model_copy(update={"lines": lines}))
    (denied,) = await claims.emitted(LineDenied, episode, 1)
    assert (denied["claim_id"], denied["line_id"], denied["procedure_code"]) == (
        first,
        line_2,
        "36415",
    )
    assert denied["category"] == "coding"
    assert denied["posting_id"] == "Rl1-T1-1"
    (closed,) = await claims.emitted(ClaimClosed, episode, 1)
    assert closed["outcome"] == "paid"
