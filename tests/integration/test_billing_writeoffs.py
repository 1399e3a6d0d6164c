"""Bulk write-off of small balances on real Kafka and FerretDB: one write-off request
per account through collections' own write-off, each applied once across retries."""

from __future__ import annotations

import httpx
import pytest
from rcm_contracts.collections import BalanceWrittenOff
from rcm_shared.kafka import Topics
from rcm_shared.service import Service

from tests.conftest import Infra

from .test_collections import Episode, account_when, collections, events_of

pytestmark = pytest.mark.integration

__all__ = ["collections"]  # the fixture this module uses


async def test_small_balances_are_written_off_in_bulk_once_each(
    infra: Infra, topics: Topics, collections: tuple[Service, httpx.AsyncClient]
) -> None:
    service, client = collections
    small = [Episode(service, topics, f"E00000000b00{n}") for n in (1, 2)]
    for episode, cents in zip(small, (1200, 2500), strict=True):
        await episode.self_pay()
        await episode.registered()
        await episode.coded(cents)
        await account_when(client, episode.id, lambda a: a["statements"])
    items = [
        {"episode_id": small[0].id, "amount_cents": 1200},
        {"episode_id": small[1].id, "amount_cents": 2500},
        {"episode_id": "E00000000bfff", "amount_cents": 500},  # no such account
    ]
    # Small-balance by default: the owner's rule (at most 500 cents) refuses each item.
    answer = await client.post(
        "/bulk/write-offs", json={"items": items}, headers={"Idempotency-Key": "bulk-wo-1"}
    )
    assert answer.status_code == 200, answer.text
    reasons = {item["id"]: (item["status"], item.get("reason")) for item in answer.json()["items"]}
    assert reasons == {
        small[0].id: (422, "reason: small-balance is for at most 500 cents, not 1200"),
        small[1].id: (422, "reason: small-balance is for at most 500 cents, not 2500"),
        "E00000000bfff": (404, "no account for episode E00000000bfff"),
    }
    body = {"items": items, "reason": "administrative"}
    key = {"Idempotency-Key": "bulk-wo-2"}
    done = await client.post("/bulk/write-offs", json=body, headers=key)
    assert [i["outcome"] for i in done.json()["items"]] == ["done", "done", "refused"]
    assert done.json()["done"] == 2
    retried = await client.post("/bulk/write-offs", json=body, headers=key)
    assert [i["outcome"] for i in retried.json()["items"]] == ["done", "done", "refused"]
    for episode, cents in zip(small, (1200, 2500), strict=True):
        account = await account_when(
            client, episode.id, lambda a: a["totals"]["balance_cents"] == 0
        )
        assert account["totals"]["written_off_cents"] == cents  # once, retry or not
    written = await events_of(infra, topics, BalanceWrittenOff, 2)
    assert sorted((w["episode_id"], w["amount_cents"]) for w in written) == [
        (small[0].id, 1200),
        (small[1].id, 2500),
    ]
    unsigned = await client.post("/bulk/write-offs", json=body)
    assert unsigned.status_code == 400  # no Idempotency-Key
    too_many = {"items": [items[0]] * 201}
    refused = await client.post("/bulk/write-offs", json=too_many, headers={"Idempotency-Key": "k"})
    assert refused.status_code == 422
