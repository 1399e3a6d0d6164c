"""Issue 11, bug 2 in the run: the generator decides which visits have their prior
authorization and when; on CO-197 the biller bot looks where the front desk records
authorizations and corrects the claim with the number, or accepts the denial."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import date
from typing import Any

import httpx
from rcm_ops.bots import Biller, Http, Ledger, authorization_on_file
from rcm_ops.synthetic import SCENARIOS_BY_NAME, EpisodeGenerator
from rcm_payer_simulator.rules import PAYER_RULES

EPISODE = "E0123456789ab"
DENIAL = {
    "claim_id": f"{EPISODE}-1",
    "episode_id": EPISODE,
    "payer_id": "SUMMIT",
    "kind": "denial",
    "category": "other",
    "reasons": [{"group_code": "CO", "reason_code": "197", "amount_cents": 24500}],
}


def run_biller(registration_episode: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    posted: list[tuple[str, dict[str, Any]]] = []

    def claims(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            kind = request.url.params.get("kind")
            return httpx.Response(200, json={"items": [DENIAL] if kind == "denial" else []})
        posted.append((request.url.path, json.loads(request.content)))
        return httpx.Response(202, json={})

    def registration(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/episodes/{EPISODE}"
        return httpx.Response(200, json=registration_episode)

    stop = asyncio.Event()
    biller = Biller(
        Http("http://claims", stop, transport=httpx.MockTransport(claims)),
        Ledger(),
        "biller-1",
        Http("http://registration", stop, transport=httpx.MockTransport(registration)),
    )
    asyncio.run(biller.step())
    return posted


def test_a_co197_denial_with_an_authorization_found_later_is_corrected_with_it() -> None:
    found = {
        "coverages": [{"payer_id": "SUMMIT", "coverage_id": "V0000000000a1"}],
        "authorizations": [{"payer_id": "SUMMIT", "number": "PA000000017"}],
    }
    ((path, body),) = run_biller(found)
    assert path == f"/claims/{EPISODE}-1/corrections"
    assert body["changes"] == {"prior_authorization": "PA000000017"}


def test_a_co197_denial_without_an_authorization_on_file_is_accepted() -> None:
    other_payer = {"authorizations": [{"payer_id": "ACME01", "number": "PA1"}]}
    ((path, body),) = run_biller(other_payer)
    assert path == f"/claims/{EPISODE}-1/accept-denial"
    assert "changes" not in body


def test_the_number_on_the_coverage_counts_too() -> None:
    episode = {"coverages": [{"payer_id": "SUMMIT", "prior_authorization": "PA9"}]}
    assert authorization_on_file(episode, "SUMMIT") == "PA9"
    assert authorization_on_file(episode, "MERIDN") is None


def test_the_generator_gives_some_visits_needing_one_their_number_at_registration_or_later() -> (
    None
):
    outcomes: Counter[str] = Counter()
    for episode in EpisodeGenerator(7, date(2026, 11, 30)).episodes(600):
        authorized = [c for c in episode.coverages if c.prior_authorization]
        needs = bool(
            episode.coverages
            and PAYER_RULES[episode.coverages[0].payer_id].prior_authorization
            & {p.code for p in SCENARIOS_BY_NAME[episode.scenario].procedures}
        )
        if authorized:
            outcomes["at registration"] += 1
            assert needs
        elif episode.late_authorization is not None:
            outcomes["later"] += 1
            assert episode.late_authorization[0] == episode.coverages[0].coverage_id
        elif needs:
            outcomes["never"] += 1
    assert outcomes["at registration"] > outcomes["later"] > 0
    assert outcomes["never"] > 0
    again = EpisodeGenerator(7, date(2026, 11, 30)).episodes(600)
    assert [e.late_authorization for e in again] == [
        e.late_authorization for e in EpisodeGenerator(7, date(2026, 11, 30)).episodes(600)
    ]
