"""The audit handler on an in-memory trail: each record kept once, a redelivery changes
nothing, other content under a kept id is refused and the first record stays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from rcm_audit.domain import AuditRecord
from rcm_audit.handlers import SUBSCRIPTIONS, Handlers
from rcm_contracts.audit import AccessRecorded
from rcm_shared.envelope import Envelope
from rcm_shared.errors import Conflict

from .support import access


@dataclass
class InMemoryTrail:
    """The store's port in a dict: the first record under an id stays."""

    records: dict[str, AuditRecord] = field(default_factory=dict)

    async def append(self, record: AuditRecord) -> AuditRecord | None:
        kept = self.records.setdefault(record.record_id, record)
        return None if kept is record else kept


def envelope(event: AccessRecorded) -> Envelope[Any]:
    return Envelope(data=event, source="rcm/collections")


async def test_every_access_recorded_is_kept_as_a_record() -> None:
    trail = InMemoryTrail()
    handlers = Handlers(trail)

    await handlers.access_recorded(envelope(access(record_id="r1")))
    await handlers.access_recorded(envelope(access(record_id="r2", status=403)))

    assert sorted(trail.records) == ["r1", "r2"]
    assert trail.records["r2"].status == 403
    assert trail.records["r1"].actor == "alice"


async def test_a_redelivered_record_changes_nothing() -> None:
    trail = InMemoryTrail()
    handlers = Handlers(trail)
    delivered = envelope(access())

    await handlers.access_recorded(delivered)
    await handlers.access_recorded(delivered)
    await handlers.access_recorded(envelope(access()))  # republished: another event id

    assert list(trail.records) == ["a1b2c3"]


async def test_other_content_under_a_kept_id_is_refused_and_the_first_stays() -> None:
    trail = InMemoryTrail()
    handlers = Handlers(trail)
    await handlers.access_recorded(envelope(access(status=200)))

    with pytest.raises(Conflict):
        await handlers.access_recorded(envelope(access(status=500)))

    assert trail.records["a1b2c3"].status == 200


def test_the_audit_service_consumes_the_audit_trail() -> None:
    assert {AccessRecorded: Handlers.access_recorded} == SUBSCRIPTIONS
