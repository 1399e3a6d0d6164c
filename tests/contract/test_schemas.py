"""v1 contracts: committed schemas match the code, and no change breaks a consumer."""

from __future__ import annotations

import copy
import json
import subprocess
from typing import Any

import pytest
import yaml
from rcm_contracts import CATALOG, Request
from rcm_contracts.schemas import (
    SCHEMA_DIR,
    breaking_changes,
    compare_with_committed,
    path_of,
    schema_of,
)
from rcm_ops.contracts import ASYNCAPI_PATH, asyncapi_yaml, subscriptions

from tests.conftest import REPO


def test_committed_schemas_match_the_code_and_break_nothing() -> None:
    breaking, stale = compare_with_committed()
    assert breaking == [], "breaking changes to v1 contracts: publish a .v2 event instead"
    assert stale == [], "committed schemas are out of date: run `make schemas`"


def _history(path: str) -> list[str]:
    """Every committed version of a file, oldest first ([] outside a git checkout)."""
    log = subprocess.run(
        ["git", "log", "--format=%H", "--reverse", "--", path],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    versions = []
    for commit in log.stdout.split():
        shown = subprocess.run(
            ["git", "show", f"{commit}:{path}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode == 0:
            versions.append(shown.stdout)
    return versions


@pytest.mark.parametrize("event_type", sorted(CATALOG))
def test_every_earlier_version_of_a_v1_schema_stays_compatible(event_type: str) -> None:
    # `make schemas` refuses breaking changes; this catches a schema file edited by hand
    # or committed past it: the code must still read (and be read by) every version.
    relative = str(path_of(event_type).relative_to(REPO))
    current = schema_of(event_type)
    for version, text in enumerate(_history(relative)):
        problems = breaking_changes(json.loads(text), current)
        assert problems == [], f"version {version} of {relative}: {problems}"


BASE: dict[str, Any] = schema_of("rcm.claims.claim-submitted.v1")


def _changed(edit: Any) -> list[str]:
    new = copy.deepcopy(BASE)
    edit(new)
    return breaking_changes(BASE, new)


def test_compatible_changes_are_allowed() -> None:
    def add_optional(schema: dict[str, Any]) -> None:
        schema["properties"]["note"] = {"type": "string", "default": ""}

    def reword(schema: dict[str, Any]) -> None:
        schema["properties"]["claim_id"]["description"] = "Reworded."

    assert _changed(add_optional) == []
    assert _changed(reword) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda s: s["properties"].pop("payer_id"), "$.payer_id: property removed"),
        (
            lambda s: (
                s["properties"].update(note={"type": "string"}),
                s["required"].append("note"),
            ),
            "$.note: required property added",
        ),
        (lambda s: s["required"].remove("payer_id"), "$.payer_id: no longer required"),
        (
            lambda s: s["properties"]["total_charge_cents"].update(type="number"),
            "$.total_charge_cents: type 'integer' -> 'number'",
        ),
        (
            lambda s: s["$defs"]["ClaimFrequency"]["enum"].append("9"),
            "$.frequency: enum values added ['9'], removed []",
        ),
        (
            lambda s: s["$defs"]["SubmittedLine"]["properties"]["units"].update(minimum=2),
            "$.lines.items.units: minimum 1 -> 2",
        ),
    ],
)
def test_breaking_changes_are_named(edit: Any, expected: str) -> None:
    assert expected in _changed(edit)


def test_schemas_directory_holds_exactly_the_catalog() -> None:
    assert {path.stem for path in SCHEMA_DIR.glob("*.json")} == set(CATALOG)


def test_asyncapi_document_is_committed_and_lists_every_event() -> None:
    assert ASYNCAPI_PATH.read_text() == asyncapi_yaml(), "run `make asyncapi`"
    document = yaml.safe_load(asyncapi_yaml())
    assert document["asyncapi"] == "3.0.0"
    published = {name for name in document["channels"] if ":" not in name}
    assert published == set(CATALOG)
    received = {name for name in document["channels"] if ":" in name}
    assert received == {
        f"{event.event_type}:{service}"
        for service, consumed in subscriptions().items()
        for event in consumed
    }
    payloads = document["components"]["schemas"]
    assert "PaymentPosted" in payloads
    assert payloads["PaymentPosted"]["properties"]["paid_cents"]["type"] == "integer"


def test_each_request_is_consumed_by_its_own_service_alone() -> None:
    tables = subscriptions()
    for event_type, model in CATALOG.items():
        if issubclass(model, Request):
            consumers = {s for s, consumed in tables.items() if model in consumed}
            assert consumers == {event_type.split(".")[1]}, event_type
