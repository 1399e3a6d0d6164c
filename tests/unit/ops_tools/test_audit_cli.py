"""`rcm audit` without a service: times, the query it sends, how answers and failures read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import typer
from rcm_ops.audit import AuditError, fetch, parse_time, query_params, records_table
from rich.console import Console

NOW = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
RECORD = {
    "record_id": "r1",
    "recorded_at": "2025-03-03T14:59:58.123000Z",
    "actor": "alice",
    "roles": ["biller", "collector"],
    "service": "collections",
    "action": "GET /accounts/{episode_id}",
    "resource": "episode_id=E1",
    "status": 403,
    "request_id": "req-7",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW - timedelta(hours=2)),
        ("90m", NOW - timedelta(minutes=90)),
        ("7d", NOW - timedelta(days=7)),
        ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),
        ("2025-03-01T08:00:00", datetime(2025, 3, 1, 8, tzinfo=UTC)),
        ("2025-03-01T08:00:00Z", datetime(2025, 3, 1, 8, tzinfo=UTC)),
        ("2025-03-01T03:00:00-05:00", datetime(2025, 3, 1, 8, tzinfo=UTC)),
    ],
)
def test_times_are_iso_utc_unless_offset_or_a_span_ago(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW) == expected


def test_anything_else_is_not_a_time() -> None:
    with pytest.raises(typer.BadParameter, match="yesterday"):
        parse_time("yesterday", NOW)


def test_the_query_holds_only_the_filters_given() -> None:
    since = datetime(2025, 3, 1, 8, tzinfo=timezone(timedelta(hours=-5)))
    assert query_params(actor="alice", status=403, since=since, limit=5) == {
        "actor": "alice",
        "status": "403",
        "since": "2025-03-01T08:00:00-05:00",
        "limit": "5",
    }
    assert query_params() == {"limit": "100"}


def client(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(base_url="http://audit", transport=httpx.MockTransport(answer))


def test_a_page_is_what_get_records_answers() -> None:
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, json={"records": [RECORD], "more": False})

    page = fetch(client(answer), {"actor": "alice", "limit": "5"})

    assert page == {"records": [RECORD], "more": False}
    assert asked[0].url.path == "/records"
    assert dict(asked[0].url.params) == {"actor": "alice", "limit": "5"}


def refuse(status: int, body: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (refuse(401, {"detail": "invalid token: expired"}), "not signed in .*RCM_DEV_ISSUER_DIR"),
        (refuse(403, {"detail": "this call is for auditor"}), "refused: this call is for auditor"),
        (
            refuse(
                422,
                {
                    "detail": [
                        {"loc": ["query", "status"], "msg": "too small", "type": "x"},
                        {"loc": ["query"], "msg": "since must be before until", "type": "y"},
                    ]
                },
            ),
            "status: too small; query: since must be before until",
        ),
        (lambda request: httpx.Response(502, text="bad gateway"), "answered 502: bad gateway"),
    ],
)
def test_refusals_say_why(answer: Callable[[httpx.Request], httpx.Response], message: str) -> None:
    with pytest.raises(AuditError, match=message):
        fetch(client(answer), {})


def test_an_unreachable_service_is_named_with_its_url() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(AuditError, match=r"http://audit.* is not reachable \(ConnectError\)"):
        fetch(client(unreachable), {})


def test_the_table_shows_who_did_what_where_how_and_when() -> None:
    console = Console(record=True, width=200)
    console.print(records_table({"records": [RECORD], "more": True}))
    text = console.export_text()

    for shown in (
        "2025-03-03 14:59:58.123",
        "alice",
        "biller, collector",
        "collections",
        "GET /accounts/{episode_id}",
        "episode_id=E1",
        "403",
        "req-7",
        "1 record; older ones match too",
    ):
        assert shown in text
