"""One function per consumed event and per coder command: load, decide, save."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from rcm_contracts.claims import ClaimDenied, DenialCategory
from rcm_contracts.registration import EncounterCompleted
from rcm_shared.envelope import Envelope
from rcm_shared.store import Document, Outcome

from . import codesets, domain
from .codesets import Chargemaster
from .store import CaseStore

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


# Open cases tried per pull: enough that coders pulling together each find one.
NEXT_CANDIDATES = 10


class CodingHandlers:
    def __init__(
        self,
        cases: CaseStore,
        chargemaster: Chargemaster,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.cases = cases
        self.chargemaster = chargemaster
        self.now = now

    async def encounter_completed(self, envelope: Envelope[EncounterCompleted]) -> None:
        event = envelope.data
        # Suggestions depend on the event alone; the first ones load ICD-10-CM (seconds),
        # so they are worked out in a thread, outside the store's decide.
        suggestions = await asyncio.to_thread(
            domain.suggest, event.documentation, self.chargemaster
        )
        now = self.now()
        case_id = domain.case_id_for(event.episode_id)
        outcome = await self.cases.aggregates.apply(
            case_id,
            lambda case: domain.open_case(case, event, suggestions, envelope.source, now),
            event_id=envelope.id,
        )
        log.info("encounter %s: case %s %s", event.encounter_id, case_id, outcome.value)

    async def claim_denied(self, envelope: Envelope[ClaimDenied]) -> None:
        event = envelope.data
        if event.category is not DenialCategory.CODING:
            return  # billers work the other denials
        now = self.now()
        case_id = domain.case_id_for(event.episode_id)
        outcome = await self.cases.aggregates.apply(
            case_id,
            lambda case: domain.reopen_for_recode(case, event, envelope.source, now),
            event_id=envelope.id,
        )
        log.info("coding denial of %s: case %s %s", event.claim_id, case_id, outcome.value)

    async def assign(self, case_id: str, coder_id: str) -> Document:
        now = self.now()
        await self.cases.aggregates.apply(
            case_id, lambda case: domain.assign(case, case_id, coder_id, now)
        )
        return await self._reload(case_id)

    async def take_next(self, coder_id: str) -> Document | None:
        """The coder's case in progress, else the oldest open case, now theirs; None when
        the queue is empty. Coders pulling at once get different cases: assigning is one
        guarded write, and a case taken a moment ago is skipped."""
        for case in await self.cases.workable(coder_id, NEXT_CANDIDATES):
            if case["status"] == domain.Status.IN_PROGRESS:
                return await self._reload(case["case_id"])
            try:
                return await self.assign(case["case_id"], coder_id)
            except domain.CaseConflict:
                continue  # another coder took it a moment ago
        return None

    async def submit_codes(
        self, case_id: str, coder_id: str, submission: domain.Coding
    ) -> Document:
        """The priced coding; refusals (404, 409, 422) are raised before anything is stored."""
        domain.check_may_submit(await self.cases.get(case_id), case_id, coder_id)
        await asyncio.to_thread(codesets.warm_up)  # a no-op once ICD-10-CM is loaded
        coding = domain.validate(submission, self.chargemaster)
        now = self.now()
        outcome = await self.cases.aggregates.apply(
            case_id,
            lambda case: domain.submit(case, case_id, coder_id, coding, self.chargemaster, now),
        )
        case = await self._reload(case_id)
        log.info("case %s coded by %s: %s", case_id, coder_id, outcome.value)
        return {
            "case_id": case_id,
            "episode_id": case["episode_id"],
            **case["coding"],
            "repeated": outcome is Outcome.UNCHANGED,  # the same codes again: no new event
        }

    async def _reload(self, case_id: str) -> Document:
        case = await self.cases.get(case_id)
        if case is None:  # cases are never deleted
            raise domain.CaseNotFound(f"no coding case {case_id}")
        return case
