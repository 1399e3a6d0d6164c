"""The audit handler: every AccessRecorded of every service becomes one kept record.

At least once, like every consumer: the offset is committed after the record is stored,
so a crash in between redelivers it, and the insert under its record id (store.py) makes
the second delivery change nothing. A database that does not answer is transient and
retried; a record id that comes back with other content is refused (dead-lettered)
and the record kept first stays as it is.
"""

from __future__ import annotations

from rcm_contracts.audit import AccessRecorded
from rcm_shared.envelope import Envelope
from rcm_shared.service import Subscriptions

from . import domain
from .store import Trail


class Handlers:
    def __init__(self, trail: Trail) -> None:
        self.trail = trail

    async def access_recorded(self, envelope: Envelope[AccessRecorded]) -> None:
        arriving = domain.record_of(envelope.data)
        kept = await self.trail.append(arriving)
        if kept is not None:
            domain.check_redelivery(kept, arriving)


SUBSCRIPTIONS: Subscriptions[Handlers] = {
    AccessRecorded: Handlers.access_recorded,
}
