"""The coders' worklist pages against a stand-in coding service: what they ask it, what
they show, and who may open them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from rcm_console import app as console_app
from rcm_console.app import Settings, build
from rcm_console.upstream import Upstream
from rcm_shared.auth import DevIssuer, Role

from .test_sign_in import ORIGIN, csrf_of, sign_in

CASE = {
    "case_id": "K0123456789ab",
    "episode_id": "E0123456789ab",
    "status": "in-progress",
    "coder_id": "alice",
    "date_of_service": "2025-03-04",
    "specialty": "radiology",
    "priority": "1|2025-03-04|00000000000000",
    "code_set_release": "FY2026",
    "code_set_stand_in": True,
    "queries": [],
    "addenda": [],
    "review": None,
    "audit": [],
}


class Coding:
    """Answers as the coding service would, and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.asked.append((request.method, request.url.path, body))
        path = request.url.path
        if path == "/queries":
            return httpx.Response(
                200,
                json=[
                    {
                        "case_id": "K0123456789ab",
                        "episode_id": "E0123456789ab",
                        "query_id": "Q0123456789ab",
                        "reason": "laterality",
                        "coder_id": "alice",
                        "raised_at": "2025-03-05T10:00:00Z",
                        "age_minutes": 42.5,
                        "question": "Which side?",
                    }
                ],
            )
        if path == "/productivity":
            coder = {"coder_id": "alice", "cases_coded": 3, "lines": 7, "median_minutes": 9.5}
            coder |= {"queries_raised": 1, "reviewed": 2, "agreed": 1, "accuracy": 0.5}
            return httpx.Response(200, json={"day": request.url.params["day"], "coders": [coder]})
        if path == "/cases/K0123456789ab" and request.method == "GET":
            return httpx.Response(200, json=CASE)
        if path.startswith("/coders/") and request.method == "PUT":
            return httpx.Response(200, json={"coder_id": path.rsplit("/", 1)[1]})
        if path == "/cases/K0123456789ab/queries" and body and body["reason"] == "gut-feeling":
            return httpx.Response(422, json={"detail": [{"loc": ["body", "reason"], "msg": "no"}]})
        return httpx.Response(200, json=CASE)


@pytest.fixture
def coding(monkeypatch: pytest.MonkeyPatch) -> Coding:
    fake = Coding()

    def to_the_fake(service_urls: dict[str, str]) -> Upstream:
        answering = Upstream(service_urls)
        answering.client = httpx.AsyncClient(transport=httpx.MockTransport(fake))
        return answering

    monkeypatch.setattr(console_app, "Upstream", to_the_fake)  # this console only
    return fake


def console(issuer: DevIssuer, role: Role, user: str = "alice") -> TestClient:
    settings = Settings(
        auth_jwks_url=issuer.jwks_url,
        auth_issuer=issuer.issuer,
        dev_issuer_dir=issuer.directory,
        console_secret="test-secret",
        service_urls={"coding": "http://coding.test"},
    )
    client = TestClient(build(settings), follow_redirects=False)
    sign_in(client, issuer.token(user, [role]))
    return client


def test_open_queries_show_their_age_and_an_answer_form(tmp_path: Path, coding: Coding) -> None:
    client = console(DevIssuer(tmp_path / "issuer"), Role.CODER)
    page = client.get("/coding/queries")
    assert page.status_code == 200
    assert "Q0123456789ab" in page.text
    assert "42.5" in page.text
    assert "/cases/K0123456789ab/queries/Q0123456789ab/answer" in page.text
    assert coding.asked[-1][:2] == ("GET", "/queries")


def test_a_hold_from_the_case_page_asks_coding_with_the_reason_and_question(
    tmp_path: Path, coding: Coding
) -> None:
    client = console(DevIssuer(tmp_path / "issuer"), Role.CODER)
    case = client.get("/cases/K0123456789ab")
    assert "Hold and send the query" in case.text  # alice holds the case
    assert "stand-in" in case.text
    form = {"csrf": csrf_of(case.text), "reason": "laterality", "question": "Which side?"}
    held = client.post("/cases/K0123456789ab/queries", data=form, headers={"Origin": ORIGIN})
    assert held.status_code == 303
    assert coding.asked[-1] == (
        "POST",
        "/cases/K0123456789ab/queries",
        {"reason": "laterality", "question": "Which side?"},
    )
    form["reason"] = "gut-feeling"
    refused = client.post("/cases/K0123456789ab/queries", data=form, headers={"Origin": ORIGIN})
    assert refused.status_code == 422


def test_lead_pages_are_the_lead_s(tmp_path: Path, coding: Coding) -> None:
    issuer = DevIssuer(tmp_path / "issuer")
    coder = console(issuer, Role.CODER)
    for path in ("/coding/reviews", "/coding/productivity", "/coding/coders"):
        assert coder.get(path).status_code == 403, path
    case = coder.get("/cases/K0123456789ab")
    assert "Reassign" not in case.text
    lead = console(issuer, Role.CODING_LEAD, "lead")
    figures = lead.get("/coding/productivity", params={"day": "2025-03-05"})
    assert figures.status_code == 200
    assert "50%" in figures.text
    assert coding.asked[-1][1] == "/productivity"
    assert lead.get("/coding/productivity", params={"day": "yesterday"}).status_code == 422
    assert "Reassign" in lead.get("/cases/K0123456789ab").text


def test_a_lead_sets_a_coder_s_specialties(tmp_path: Path, coding: Coding) -> None:
    lead = console(DevIssuer(tmp_path / "issuer"), Role.CODING_LEAD, "lead")
    page = lead.get("/coding/coders")
    form = {
        "csrf": csrf_of(page.text),
        "coder_id": "coder-7",
        "specialties": ["radiology", "surgery"],
    }
    saved = lead.post("/coding/coders", data=form, headers={"Origin": ORIGIN})
    assert saved.status_code == 303
    assert coding.asked[-1] == ("PUT", "/coders/coder-7", {"specialties": ["radiology", "surgery"]})
