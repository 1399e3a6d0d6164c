"""JSON Schemas of the event catalog, and whether a change breaks existing consumers.

Each event type has its schema committed in `contracts/schemas/<type>.json`. Within one
major version a schema may only change compatibly, in both directions: consumers built
on the old schema must read new events, and new consumers must read old events still in
the topics. That leaves two kinds of change:
  - adding an optional property (not required; old events lack it, old readers ignore it);
  - changing annotations (title, description, examples, default).
Anything else (a property removed, made required, retyped, an enum value added or
removed, a constraint changed) needs a new major version: a `.v2` event type and topic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .base import CATALOG

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
ANNOTATIONS = frozenset({"title", "description", "examples", "default", "$comment"})

Schema = dict[str, Any]


def schema_of(event_type: str) -> Schema:
    model = CATALOG[event_type]
    schema = model.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": event_type, **schema}


def path_of(event_type: str, directory: Path = SCHEMA_DIR) -> Path:
    return directory / f"{event_type}.json"


def render(schema: Schema) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def compare_with_committed(directory: Path = SCHEMA_DIR) -> tuple[list[str], list[str]]:
    """(breaking changes, event types whose committed schema is missing or out of date)."""
    breaking: list[str] = []
    stale: list[str] = []
    committed = {path.stem for path in directory.glob("*.json")}
    for event_type in sorted(committed - CATALOG.keys()):
        breaking.append(f"{event_type}: event type removed (consumers may still read it)")
    for event_type in sorted(CATALOG):
        path = path_of(event_type, directory)
        new = schema_of(event_type)
        if not path.exists():
            stale.append(event_type)
            continue
        old = json.loads(path.read_text())
        breaking += [f"{event_type} {problem}" for problem in breaking_changes(old, new)]
        if render(old) != render(new):
            stale.append(event_type)
    return breaking, stale


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Every change from `old` to `new` that breaks a consumer, as 'path: what'."""
    problems: list[str] = []
    _compare(old, new, old.get("$defs", {}), new.get("$defs", {}), "$", problems)
    return problems


def _resolve(node: Schema, defs: dict[str, Schema]) -> Schema:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _compare(
    old: Schema,
    new: Schema,
    old_defs: dict[str, Schema],
    new_defs: dict[str, Schema],
    path: str,
    problems: list[str],
) -> None:
    old, new = _resolve(old, old_defs), _resolve(new, new_defs)
    structural = (set(old) | set(new)) - ANNOTATIONS - {"properties", "required", "$defs"}
    for keyword in sorted(
        structural - {"items", "anyOf", "oneOf", "allOf", "additionalProperties"}
    ):
        if old.get(keyword) != new.get(keyword):
            if keyword == "enum":
                added = sorted(set(new.get("enum", [])) - set(old.get("enum", [])), key=str)
                removed = sorted(set(old.get("enum", [])) - set(new.get("enum", [])), key=str)
                problems.append(f"{path}: enum values added {added}, removed {removed}")
            else:
                problems.append(f"{path}: {keyword} {old.get(keyword)!r} -> {new.get(keyword)!r}")
    for keyword in ("items", "additionalProperties"):
        if isinstance(old.get(keyword), dict) and isinstance(new.get(keyword), dict):
            _compare(old[keyword], new[keyword], old_defs, new_defs, f"{path}.{keyword}", problems)
        elif old.get(keyword) != new.get(keyword):
            problems.append(f"{path}: {keyword} changed")
    for keyword in ("anyOf", "oneOf", "allOf"):
        old_options, new_options = old.get(keyword, []), new.get(keyword, [])
        if len(old_options) != len(new_options):
            problems.append(
                f"{path}: {keyword} has {len(old_options)} -> {len(new_options)} options"
            )
            continue
        for index, (before, after) in enumerate(zip(old_options, new_options, strict=True)):
            _compare(before, after, old_defs, new_defs, f"{path}.{keyword}[{index}]", problems)
    _compare_properties(old, new, old_defs, new_defs, path, problems)


def _compare_properties(
    old: Schema,
    new: Schema,
    old_defs: dict[str, Schema],
    new_defs: dict[str, Schema],
    path: str,
    problems: list[str],
) -> None:
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    for name in sorted(old_props.keys() - new_props.keys()):
        problems.append(f"{path}.{name}: property removed")
    for name in sorted(new_props.keys() - old_props.keys()):
        if name in new_required:
            problems.append(f"{path}.{name}: required property added")
    for name in sorted(old_props.keys() & new_props.keys()):
        if (name in old_required) != (name in new_required):
            change = "now required" if name in new_required else "no longer required"
            problems.append(f"{path}.{name}: {change}")
        _compare(old_props[name], new_props[name], old_defs, new_defs, f"{path}.{name}", problems)
