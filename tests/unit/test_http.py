"""The HTTP guards every service shares (rcm_shared.http), on a bare FastAPI app."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import Field
from rcm_shared.errors import NotFound
from rcm_shared.http import (
    KEY_MISSING_STATUS,
    MAX_AMOUNT_CENTS,
    AmountCents,
    Body,
    RequiredIdempotencyKey,
    path_id,
)


class Payment(Body):
    amount_cents: AmountCents
    notes: list[dict[str, str]] = Field(default_factory=list)


def app() -> FastAPI:
    api = FastAPI()

    @api.post("/payments")
    async def pay(body: Payment, key: RequiredIdempotencyKey) -> dict[str, Any]:
        return {"key": key, "amount_cents": body.amount_cents}

    return api


async def post(body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post("/payments", json=body, headers=headers)


KEY = {"Idempotency-Key": "k-1"}


async def test_a_money_command_needs_an_idempotency_key() -> None:
    missing = await post({"amount_cents": 1})
    assert missing.status_code == KEY_MISSING_STATUS == 400
    assert "Idempotency-Key" in missing.json()["detail"]
    assert (await post({"amount_cents": 1}, {"Idempotency-Key": ""})).status_code == 422
    assert (await post({"amount_cents": 1}, {"Idempotency-Key": "k" * 201})).status_code == 422
    taken = await post({"amount_cents": 1}, KEY)
    assert (taken.status_code, taken.json()) == (200, {"key": "k-1", "amount_cents": 1})


@pytest.mark.parametrize(
    ("amount", "status"),
    [
        (1, 200),
        (MAX_AMOUNT_CENTS, 200),
        (0, 422),
        (-5, 422),
        (MAX_AMOUNT_CENTS + 1, 422),
        (2**63 - 1, 422),
        (2**63, 422),
        (10**30, 422),
        (12.5, 422),
        ("100", 422),
    ],
)
async def test_amounts_are_whole_cents_up_to_ten_million_dollars(
    amount: object, status: int
) -> None:
    assert (await post({"amount_cents": amount}, KEY)).status_code == status


async def test_no_nul_anywhere_in_a_body_nor_an_unknown_field() -> None:
    for body in (
        {"amount_cents": 1, "notes": [{"text": "a\x00b"}]},
        {"amount_cents": 1, "notes": [{"te\x00xt": "ab"}]},
    ):
        refused = await post(body, KEY)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["type"] == "nul_character"
    assert (await post({"amount_cents": 1, "notes": [{"text": "ok"}]}, KEY)).status_code == 200
    assert (await post({"amount_cents": 1, "extra": True}, KEY)).status_code == 422


def test_a_path_id_that_cannot_be_an_id_names_nothing() -> None:
    assert path_id("E0123456789ab", "account") == "E0123456789ab"
    for hostile in ("E\x00", "", "a b", "é", "x" * 65, "../etc"):
        with pytest.raises(NotFound) as refused:
            path_id(hostile, "account")
        assert refused.value.message == "no account with a malformed id"  # not echoed
