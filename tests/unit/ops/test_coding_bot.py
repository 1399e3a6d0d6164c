"""The coder bot's physician query: a film whose order names no side is held with a
laterality query, the physician answers from the note, and the coder codes the side."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from rcm_ops.bots import (
    Coder,
    Http,
    Ledger,
    physician_answer,
    sides_unsaid,
    submission_from_case,
)

NOTE = "Fell on the outstretched hand. Film of the left wrist: no fracture."


def case(**extra: Any) -> dict[str, Any]:
    return {
        "case_id": "K0123456789ab",
        "status": "in-progress",
        "documentation": {
            "note": NOTE,
            "diagnoses": [{"description": "Sprain of left wrist", "icd10_hint": "S63.502A"}],
            "procedures": [
                {"description": "Office visit, established", "code_hint": "99213"},
                {"description": "X-ray wrist, 3 views", "code_hint": "73110"},
            ],
        },
        "suggestions": {"diagnoses": [], "lines": []},
        **extra,
    }


def test_a_film_without_a_side_is_what_a_coder_queries() -> None:
    assert sides_unsaid(case()) == ["X-ray wrist, 3 views"]
    sided = case()
    sided["documentation"]["procedures"][1]["description"] = "X-ray right wrist, 3 views"
    assert sides_unsaid(sided) == []
    answered = case(addenda=[{"text": "Addendum: left side imaged."}])
    assert sides_unsaid(answered) == []


def test_the_physician_answers_from_the_note_and_the_coder_codes_the_side() -> None:
    assert physician_answer(case()) == "Addendum: left side imaged."
    silent = case()
    silent["documentation"]["note"] = "Film of the wrist: no fracture."
    assert "not recorded" in physician_answer(silent)
    answered = case(addenda=[{"text": physician_answer(case())}])
    lines = submission_from_case(answered).lines
    assert [(line.procedure_code, line.modifiers) for line in lines] == [
        ("99213", ()),
        ("73110", ("LT",)),
    ]
    assert submission_from_case(case()).lines[1].modifiers == ()


async def test_the_coder_holds_then_the_physician_answers_then_the_coder_codes() -> None:
    asked: list[tuple[str, str]] = []
    state: dict[str, Any] = {"case": case(), "answer": None}

    def coding(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        asked.append((request.method, path))
        body = json.loads(request.content) if request.content else None
        if path == "/queue/next":
            current = state["case"]
            return httpx.Response(200, json=current) if current else httpx.Response(204)
        if path.endswith("/queries"):
            state["case"] = None  # on hold: off the queue
            return httpx.Response(200, json={"query_id": "Q1", **case(status="on-hold")})
        if path.endswith("/answer"):
            state["answer"] = body["answer"]
            state["case"] = case(queries=[{"query_id": "Q1"}], addenda=[{"text": body["answer"]}])
            return httpx.Response(200, json=state["case"])
        if request.method == "GET":
            return httpx.Response(200, json=case(queries=[{"query_id": "Q1"}]))
        if path.endswith("/codes"):
            state["codes"] = body
            state["case"] = None
            return httpx.Response(200, json={})
        return httpx.Response(404)

    stop = asyncio.Event()
    http = Http("http://coding", stop, transport=httpx.MockTransport(coding))
    ledger = Ledger()
    coder = Coder(http, ledger, "coder-1")
    await coder.step()  # pulls, holds with a query
    assert ("POST", "/cases/K0123456789ab/queries") in asked
    assert ledger.counts["physician-queries"] == 1
    assert "codes" not in state
    await coder.step()  # the physician answers; the case is back and coded
    assert state["answer"] == "Addendum: left side imaged."
    assert state["codes"]["lines"][1]["modifiers"] == ["LT"]
    assert ledger.counts["coded"] == 1
    await http.close()
