"""What ops may see of an episode: how it flowed, not whom it is about.

A service's full view of an episode holds patient values (names, birth dates, member ids,
addresses, diagnoses, free text people typed). Ops follow events through the services and
need only ids, times and the words a state machine uses (status, outcome, stage, action):
`flow_view` keeps those and drops everything else, at any depth. What it keeps is chosen
by allowlist, so a field a service adds later stays hidden until it is named here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

# Ids that name the patient's insurance membership rather than one of our records.
MEMBERSHIP_IDS = frozenset({"member_id", "subscriber_id", "group_number"})
# Whole parts about a person or their visit: even their `state` is an address's.
PERSONAL = frozenset({"patient", "subscriber", "guarantor", "address", "documentation"})
# States and steps: values from closed vocabularies of the services, never free text.
STATE_WORDS = frozenset(
    {"status", "state", "outcome", "kind", "stage", "action", "rank", "billing", "frequency"}
)
# Staff subjects (the token's `sub`): who did a step, which ops need to follow it.
ACTORS = frozenset({"who", "by", "coder_id", "filed_by", "requested_by"})
MAX_WORD = 64  # a state word is short; anything longer is not one


def flow_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """The ids, times and state words of a service's answer, at every depth; lists and
    objects left empty are dropped."""
    kept: dict[str, Any] = {}
    for key, value in document.items():
        if key in PERSONAL:
            continue
        if isinstance(value, Mapping | list):
            inner = _inner(value)
            if inner:
                kept[key] = inner
        elif _kept(key, value):
            kept[key] = value.isoformat() if isinstance(value, datetime) else value
    return kept


def _inner(value: Mapping[str, Any] | list[Any]) -> dict[str, Any] | list[Any]:
    if isinstance(value, Mapping):
        return flow_view(value)
    kept = [_inner(item) for item in value if isinstance(item, Mapping | list)]
    return [item for item in kept if item]


def _kept(key: str, value: Any) -> bool:
    if key in MEMBERSHIP_IDS:
        return False
    if key == "at" or key.endswith("_at"):
        return isinstance(value, str | datetime)
    if key.endswith("_id") or key in ACTORS:
        return isinstance(value, str) and len(value) <= 200
    if key in STATE_WORDS:
        return (isinstance(value, str) and len(value) <= MAX_WORD) or isinstance(value, bool)
    return False
