"""The biller bot follows up, once each, the claims its payer has been silent about."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
from rcm_ops.bots import STUCK_AFTER_S, Biller, Http, Ledger

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
QUIET = (NOW - timedelta(seconds=STUCK_AFTER_S + 1)).isoformat()
RECENT = (NOW - timedelta(seconds=STUCK_AFTER_S - 1)).isoformat()


def row(
    claim_id: str, status: str, last_action_at: str, follow_up: object = None
) -> dict[str, object]:
    return {
        "claim_id": claim_id,
        "status": status,
        "last_action_at": last_action_at,
        "follow_up": follow_up,
    }


ROWS = [
    row("E1-1", "submitted", QUIET),  # stuck: followed up
    row("E2-1", "accepted", RECENT),  # heard from lately
    row("E3-1", "denied", QUIET),  # the denial queue's, not the payer's silence
    row("E4-1", "accepted", QUIET, {"note_id": "FU-1"}),  # someone followed it up
    row("E5-1", "accepted", QUIET),  # closed meanwhile: 409
]


async def test_stuck_claims_are_followed_up_once_each() -> None:
    posted: list[tuple[str, str, dict[str, object]]] = []

    def services(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            assert request.url.path == "/ar-followup"
            return httpx.Response(200, json={"count": len(ROWS), "rows": ROWS})
        body = json.loads(request.content)
        posted.append((request.url.path, request.headers["idempotency-key"], body))
        if request.url.path.startswith("/claims/E5-1/"):
            return httpx.Response(409, json={"detail": "claim E5-1 is closed"})
        return httpx.Response(201, json={"claim_id": "E1-1", "note_id": "FU-2"})

    http = Http("http://claims", asyncio.Event(), transport=httpx.MockTransport(services))
    ledger = Ledger()
    biller = Biller(http, ledger, "biller-1")
    await biller.follow_up_stuck(NOW)
    await biller.follow_up_stuck(NOW)  # the next look: nothing again
    await http.close()
    assert [(path, key) for path, key, _ in posted] == [
        ("/claims/E1-1/follow-ups", "bot-follow-up-E1-1"),
        ("/claims/E5-1/follow-ups", "bot-follow-up-E5-1"),
    ]
    assert ledger.counts["ar-follow-up"] == 1
