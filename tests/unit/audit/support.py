"""An AccessRecorded as services publish it, with any field changed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rcm_contracts.audit import AccessRecorded

T0 = datetime(2025, 3, 3, 15, 0, 0, 123456, tzinfo=UTC)


def access(**changes: Any) -> AccessRecorded:
    fields: dict[str, Any] = {
        "record_id": "a1b2c3",
        "actor": "alice",
        "roles": ["biller", "collector"],
        "service": "collections",
        "action": "GET /accounts/{episode_id}",
        "resource": "episode_id=E1",
        "status": 200,
        "request_id": "req-1",
        "recorded_at": T0,
    }
    return AccessRecorded(**{**fields, **changes})
