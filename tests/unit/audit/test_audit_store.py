"""The trail's MongoDB filters, and that nothing in the audit service can change or
remove a kept record."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
import rcm_audit
from rcm_audit import api
from rcm_audit.domain import RecordQuery
from rcm_audit.store import MongoRecords, mongo_filter


def test_no_filters_match_every_record() -> None:
    assert mongo_filter(RecordQuery()) == {}


def test_filters_are_equalities_and_a_time_range() -> None:
    since = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
    until = datetime(2025, 3, 3, 16, 0, tzinfo=UTC)
    query = RecordQuery(
        actor="alice",
        service="collections",
        action="GET /accounts/{episode_id}",
        status=403,
        since=since,
        until=until,
    )
    assert mongo_filter(query) == {
        "actor": "alice",
        "service": "collections",
        "action": "GET /accounts/{episode_id}",
        "status": 403,
        "recorded_at": {"$gte": since, "$lt": until},
    }


def resource_matches(wanted: str, resource: str) -> bool:
    pattern = mongo_filter(RecordQuery(resource=wanted))["resource"]["$regex"]
    return re.search(pattern, resource) is not None


@pytest.mark.parametrize(
    ("wanted", "resource", "matches"),
    [
        ("E1", "episode_id=E1", True),
        ("E1", "case_id=K1,episode_id=E1", True),
        ("E1", "episode_id=E1,line=2", True),
        ("E1", "episode_id=E12", False),
        ("E1", "episode_id=XE1", False),
        ("E1", "E1_id=E2", False),  # a name is not a value
        ("episode_id=E1", "episode_id=E1,line=2", True),
        ("episode_id=E1", "claim_id=E1", False),
        ("E-1.2", "episode_id=E-1.2", True),
        ("E-1.2", "episode_id=E-1x2", False),  # the dot is a dot
    ],
)
def test_a_resource_filter_matches_a_whole_part(wanted: str, resource: str, matches: bool) -> None:
    assert resource_matches(wanted, resource) is matches


# pymongo's collection methods that change or remove documents.
WRITES = re.compile(r"^(update_|replace_one|delete_|remove|drop|find_one_and_|bulk_write|rename)")


def calls_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }


def test_the_service_never_changes_or_removes_a_record() -> None:
    package = Path(rcm_audit.__file__).parent
    found = {
        f"{path.name}: {name}"
        for path in sorted(package.glob("*.py"))
        for name in calls_in(path)
        if WRITES.match(name)
    }
    assert not found, f"append-only, yet: {sorted(found)}"
    assert "insert_many" in calls_in(package / "store.py")  # the check sees pymongo calls


def test_the_api_only_reads() -> None:
    router = api.router(cast(MongoRecords, object()))
    methods: set[Any] = set().union(*(route.methods for route in router.routes))  # type: ignore[attr-defined]
    assert methods == {"GET"}
