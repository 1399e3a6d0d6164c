"""The billers' console pages against stand-in services: what they ask, with whose token,
and what they show."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from rcm_console import upstream
from rcm_console.app import Settings, build
from rcm_shared.auth import DevIssuer, Role

ORIGIN = "http://testserver"
CLAIM = "E0123456789ab-1"
ROW = {
    "claim_id": CLAIM,
    "episode_id": "E0123456789ab",
    "payer_id": "ACME01",
    "age_days": 45,
    "bucket": "31-60",
    "outstanding_cents": 17500,
    "status": "denied",
    "last_action": "denied",
    "last_action_at": "2026-03-16T15:00:00+00:00",
    "next_deadline": {"kind": "appeal", "deadline": "2026-09-12", "days_left": 150},
    "follow_up": {"note_id": "FU-1", "next_action_on": "2026-04-01", "note": "call <payer>"},
    "assigned_to": None,
}
HISTORY = {
    "claim_id": CLAIM,
    "episode_id": "E0123456789ab",
    "claims": [CLAIM],
    "count": 2,
    "documents": [
        {
            "kind": "837P",
            "document_id": "837P.000000042",
            "claim_id": CLAIM,
            "at": "2026-03-02T15:05:00+00:00",
            "control_numbers": {"interchange": "000000042", "transaction_set": "0001"},
            "outcome": "submitted",
            "archived_by": "claims",
        },
        {
            "kind": "835",
            "document_id": "R000000001-T1",
            "claim_id": CLAIM,
            "at": "2026-03-16T15:00:00+00:00",
            "control_numbers": {"posting_id": "R000000001-T1-1"},
            "outcome": "denied",
            "archived_by": "payments",
        },
    ],
}


class Services:
    """claims and payments as the console sees them; every request is kept."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        path = request.url.path
        if path == "/ar-followup":
            return httpx.Response(200, json={"count": 1, "rows": [ROW]})
        if path == "/bulk/reassign":
            ids = json.loads(request.content)["claim_ids"]
            items = [{"id": i, "outcome": "done", "status": 200} for i in ids]
            return httpx.Response(
                200,
                json={
                    "count": len(ids),
                    "done": len(ids),
                    "refused": 0,
                    "unanswered": 0,
                    "items": items,
                },
            )
        if path == f"/claims/{CLAIM}/history":
            return httpx.Response(200, json=HISTORY)
        if path == f"/claims/{CLAIM}":
            return httpx.Response(
                200,
                json={
                    "claim_id": CLAIM,
                    "payer_id": "ACME01",
                    "status": "denied",
                    "total_charge_cents": 17500,
                },
            )
        if path == f"/claims/{CLAIM}/follow-ups":
            if not json.loads(request.content)["note"]:
                return httpx.Response(
                    422, json={"detail": [{"loc": ["body", "note"], "msg": "too short"}]}
                )
            return httpx.Response(201, json={"claim_id": CLAIM, "note_id": "FU-2"})
        if path.startswith(f"/claims/{CLAIM}/documents/"):
            return httpx.Response(200, text="ISA*00*<b>~ST*835*0001~")
        return httpx.Response(404, json={"detail": "not here"})

    def asked(self, host_port: str) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.seen if r.url.netloc.decode() == host_port]


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> Services:
    stand_in = Services()
    real = httpx.AsyncClient

    def client(**options: Any) -> httpx.AsyncClient:
        return real(transport=httpx.MockTransport(stand_in), **options)

    monkeypatch.setattr(upstream.httpx, "AsyncClient", client)
    return stand_in


def console(tmp_path: Path, user: str, *roles: Role) -> TestClient:
    issuer = DevIssuer(tmp_path / "issuer")
    settings = Settings(
        auth_jwks_url=issuer.jwks_url,
        auth_issuer=issuer.issuer,
        console_secret="test-secret",
        service_urls={"claims": "http://claims:8004", "payments": "http://payments:8005"},
    )
    client = TestClient(build(settings), follow_redirects=False)
    page = client.get("/sign-in")
    signed = client.post(
        "/sign-in",
        data={"token": issuer.token(user, list(roles)), "csrf": csrf_of(page.text)},
        headers={"Origin": ORIGIN},
    )
    assert signed.status_code == 303
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF field on the page"
    return found[1]


def test_the_ar_list_shows_rows_and_buckets_and_passes_the_filters(
    services: Services, tmp_path: Path
) -> None:
    client = console(tmp_path, "bill", Role.BILLER)
    page = client.get("/billing/ar-followup", params={"payer_id": "ACME01", "min_dollars": "250.5"})
    assert page.status_code == 200, page.text
    (asked,) = [r for r in services.seen if r.url.path == "/ar-followup"]
    assert asked.url.params["payer_id"] == "ACME01"
    assert asked.url.params["min_outstanding_cents"] == "25050"
    assert asked.headers["authorization"].startswith("Bearer ")
    assert f'value="{CLAIM}"' in page.text  # a checkbox per row
    assert "$175.00" in page.text
    assert "appeal 2026-09-12" in page.text
    assert "call &lt;payer&gt;" in page.text  # the note, escaped
    assert "A/R follow-up" in page.text


def test_the_ar_list_is_the_billers(services: Services, tmp_path: Path) -> None:
    client = console(tmp_path, "cody", Role.CODER)
    assert client.get("/billing/ar-followup").status_code == 403
    assert client.get(f"/billing/claims/{CLAIM}/history").status_code == 403
    assert services.seen == []


def test_ticked_claims_are_reassigned_in_bulk_under_the_forms_key(
    services: Services, tmp_path: Path
) -> None:
    client = console(tmp_path, "bill", Role.BILLER)
    page = client.get("/billing/ar-followup")
    key = re.search(r'name="idempotency_key" value="([0-9a-f-]+)"', page.text)
    assert key
    form = {
        "csrf": csrf_of(page.text),
        "idempotency_key": key[1],
        "action": "reassign",
        "assigned_to": "biller-7",
        "claim_id": [CLAIM, "E0123456789ab-2"],
    }
    done = client.post("/billing/bulk", data=form, headers={"Origin": ORIGIN})
    assert done.status_code == 200, done.text
    (asked,) = [r for r in services.seen if r.url.path == "/bulk/reassign"]
    assert json.loads(asked.content) == {
        "claim_ids": [CLAIM, "E0123456789ab-2"],
        "assigned_to": "biller-7",
    }
    assert asked.headers["idempotency-key"] == key[1]
    assert "2 done, 0 refused" in done.text
    forged = client.post(
        "/billing/bulk", data={**form, "csrf": "0" * 64}, headers={"Origin": ORIGIN}
    )
    assert forged.status_code == 403


def test_the_history_lists_documents_and_opens_each_from_its_archive(
    services: Services, tmp_path: Path
) -> None:
    client = console(tmp_path, "bill", Role.BILLER)
    page = client.get(f"/billing/claims/{CLAIM}/history")
    assert page.status_code == 200, page.text
    assert f"/billing/claims/{CLAIM}/documents/837P.000000042" in page.text
    assert "interchange 000000042" in page.text
    sent = client.get(f"/billing/claims/{CLAIM}/documents/837P.000000042")
    remitted = client.get(f"/billing/claims/{CLAIM}/documents/R000000001-T1")
    assert (sent.status_code, remitted.status_code) == (200, 200)
    assert "ISA*00*&lt;b&gt;~" in remitted.text  # the text is shown, never as markup
    assert services.asked("claims:8004")[-1] == f"GET /claims/{CLAIM}/documents/837P.000000042"
    assert services.asked("payments:8005") == [f"GET /claims/{CLAIM}/documents/R000000001-T1"]


def test_a_follow_up_is_recorded_and_a_refusal_shown_on_the_page(
    services: Services, tmp_path: Path
) -> None:
    client = console(tmp_path, "bill", Role.BILLER)
    page = client.get(f"/billing/claims/{CLAIM}/history")
    form = {"csrf": csrf_of(page.text), "note": "called", "next_action_on": "2026-04-01"}
    url = f"/billing/claims/{CLAIM}/follow-ups"
    done = client.post(url, data=form, headers={"Origin": ORIGIN})
    assert done.status_code == 303
    assert done.headers["location"].startswith(f"/billing/claims/{CLAIM}/history?notice=")
    (asked,) = [r for r in services.seen if r.url.path == url.removeprefix("/billing")]
    assert json.loads(asked.content) == {"note": "called", "next_action_on": "2026-04-01"}
    refused = client.post(url, data={**form, "note": ""}, headers={"Origin": ORIGIN})
    assert refused.status_code == 422
    assert "body.note: too short" in refused.text
