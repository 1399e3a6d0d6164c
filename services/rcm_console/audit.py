"""The audit page: the audit service's `GET /records` with its filters, a page at a time.

The trail is read newest first. An older page asks again with `until` just after the
oldest record shown and skips the records of that same millisecond already shown, so
records recorded in one millisecond are neither lost nor shown twice across pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

FILTERS = ("actor", "service", "action", "resource", "status", "since", "until")
PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE = 50
MOST = 1000  # the audit service's limit


@dataclass(frozen=True)
class AuditQuery:
    filters: dict[str, str]  # as typed, for the form
    page_size: int
    skip: int

    @classmethod
    def of(cls, params: Mapping[str, str]) -> AuditQuery:
        filters = {name: params[name].strip() for name in FILTERS if params.get(name, "").strip()}
        size = _number(params.get("page_size"), DEFAULT_PAGE)
        size = size if size in PAGE_SIZES else DEFAULT_PAGE
        skip = min(max(_number(params.get("skip"), 0), 0), MOST - size)
        return cls(filters, size, skip)

    def upstream_params(self) -> dict[str, Any]:
        """What the audit service is asked: times as UTC when typed without a zone (the
        browser's datetime-local), and enough records to skip those already shown."""
        params: dict[str, Any] = {
            name: _aware(value) if name in ("since", "until") else value
            for name, value in self.filters.items()
        }
        params["limit"] = self.page_size + self.skip
        return params

    def shown(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return records[self.skip :]

    def older(self, records: list[dict[str, Any]]) -> str | None:
        """The link to the next older page, or None when the oldest shown is unreadable."""
        if not records:
            return None
        oldest = _instant(records[-1].get("recorded_at"))
        if oldest is None:
            return None
        same_moment = sum(1 for r in records if _instant(r.get("recorded_at")) == oldest)
        until = (oldest + timedelta(milliseconds=1)).isoformat()
        params = {**self.filters, "until": until, "page_size": str(self.page_size)}
        params["skip"] = str(same_moment)
        return "/audit?" + urlencode(params)


def _number(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() and len(text) < 6 else default


def _aware(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text  # the audit service says what is wrong with it
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
