"""The audit page's paging and filters, and which view of each service a timeline asks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient
from rcm_console.app import Settings, build
from rcm_console.audit import AuditQuery
from rcm_console.session import TOKEN_COOKIE, Viewer
from rcm_console.upstream import Upstream
from rcm_console.worklists import PAGES, TIMELINE_READERS, TIMELINE_SOURCES
from rcm_shared.auth import DevIssuer, Role

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def trail(count: int) -> list[dict[str, Any]]:
    """Records in bursts: many share a millisecond, as under load."""
    return [
        {
            "record_id": f"r{n:04d}",
            "recorded_at": (START + timedelta(milliseconds=n // 7)).isoformat(),
            "actor": "alice" if n % 3 else "bob",
        }
        for n in range(count)
    ]


def audit_service(records: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """GET /records as the audit service answers it: newest first (ties by id), `until`
    exclusive, `actor` exact, at most `limit`, and whether more match."""
    until = datetime.fromisoformat(params["until"]) if "until" in params else None
    matching = [
        r
        for r in records
        if (until is None or datetime.fromisoformat(r["recorded_at"]) < until)
        and r["actor"] == params.get("actor", r["actor"])
    ]
    matching.sort(key=lambda r: (r["recorded_at"], r["record_id"]), reverse=True)
    limit = int(params["limit"])
    return {"records": matching[:limit], "more": len(matching) > limit}


def walk(records: list[dict[str, Any]], first: dict[str, str]) -> list[list[str]]:
    pages: list[list[str]] = []
    params: dict[str, str] | None = first
    while params is not None:
        query = AuditQuery.of(params)
        answer = audit_service(records, query.upstream_params())
        pages.append([r["record_id"] for r in query.shown(answer["records"])])
        older = query.older(answer["records"]) if answer["more"] else None
        params = dict(parse_qsl(urlsplit(older).query)) if older else None
        assert len(pages) < 100, "paging does not end"
    return pages


def test_pages_show_every_record_once_even_within_one_millisecond() -> None:
    records = trail(230)
    pages = walk(records, {"page_size": "25"})
    seen = [record_id for page in pages for record_id in page]
    assert sorted(seen) == sorted(r["record_id"] for r in records)
    assert len(seen) == len(set(seen))
    assert all(len(page) == 25 for page in pages[:-1])


def test_filters_are_kept_from_page_to_page() -> None:
    records = trail(120)
    pages = walk(records, {"actor": "bob", "page_size": "25"})
    seen = {record_id for page in pages for record_id in page}
    assert seen == {r["record_id"] for r in records if r["actor"] == "bob"}


def test_a_time_without_a_zone_is_utc_and_unknown_parameters_are_not_sent() -> None:
    query = AuditQuery.of(
        {"since": "2026-03-02T15:00", "status": " 403 ", "page_size": "7", "owner": "x"}
    )
    assert query.upstream_params() == {
        "since": "2026-03-02T15:00:00+00:00",
        "status": "403",
        "limit": 50,  # 7 is not a page size offered: the default
    }


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (
            {Role.OPS},
            {
                "registration": "/episodes/E1/flow",
                "eligibility": "/verifications/E1/flow",
                "claims": "/episodes/E1/claims/flow",
                "collections": "/accounts/E1/flow",
            },
        ),
        (
            {Role.FRONT_DESK},
            {
                "registration": "/episodes/E1",
                "eligibility": "/verifications/E1",
                "claims": None,
                "collections": None,
            },
        ),
        (
            {Role.BILLER, Role.OPS},  # the full view where the role has one
            {
                "registration": "/episodes/E1",
                "eligibility": "/verifications/E1",
                "claims": "/episodes/E1/claims",
                "collections": "/accounts/E1",
            },
        ),
        ({Role.AUDITOR}, dict.fromkeys(("registration", "eligibility", "claims", "collections"))),
    ],
)
def test_a_timeline_asks_the_full_view_or_ops_flow_view(
    roles: set[Role], expected: dict[str, str | None]
) -> None:
    asked = {s.service: s.path_for(frozenset(roles), "E1") for s in TIMELINE_SOURCES}
    assert asked == expected


def test_the_timeline_is_for_ops_and_the_audit_page_for_auditors_only() -> None:
    assert Role.OPS in TIMELINE_READERS
    assert Role.AUDITOR not in TIMELINE_READERS
    (audit,) = [page for page in PAGES if page.path == "/audit"]
    assert audit.roles == frozenset({Role.AUDITOR})


def test_the_audit_page_passes_every_filter_to_the_audit_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str, dict[str, Any]]] = []
    record = {
        "record_id": "r1",
        "recorded_at": "2026-12-01T13:26:05.573000",
        "actor": "bill",
        "roles": ["biller"],
        "service": "claims",
        "action": "GET /claims/{claim_id}",
        "resource": "claim_id=E1-1",
        "status": 200,
        "request_id": "request-1",
    }

    async def audit_service(
        self: Upstream, viewer: Viewer, method: str, service: str, path: str, **options: Any
    ) -> Any:
        asked.append((service, path, options["params"]))
        return {"records": [record], "more": True}

    monkeypatch.setattr(Upstream, "_call", audit_service)
    issuer = DevIssuer(tmp_path / "issuer")
    settings = Settings(
        auth_jwks_url=issuer.jwks_url, auth_issuer=issuer.issuer, console_secret="test"
    )
    client = TestClient(build(settings), follow_redirects=False)
    client.cookies.set(TOKEN_COOKIE, issuer.token("audrey", [Role.AUDITOR]))
    page = client.get(
        "/audit?actor=bill&service=claims&action=GET+%2Fclaims%2F%7Bclaim_id%7D"
        "&resource=E1-1&status=200&since=2026-12-01T13:00&until=&page_size=25"
    )
    assert page.status_code == 200
    assert asked == [
        (
            "audit",
            "/records",
            {
                "actor": "bill",
                "service": "claims",
                "action": "GET /claims/{claim_id}",
                "resource": "E1-1",
                "status": "200",
                "since": "2026-12-01T13:00:00+00:00",
                "limit": 25,
            },
        )
    ]
    assert "request-1" in page.text
    assert "Older records" in page.text  # the service said more match

    client.cookies.set(TOKEN_COOKIE, issuer.token("otto", [Role.OPS]))
    assert client.get("/audit").status_code == 403
    assert len(asked) == 1  # refused before the audit service is asked
