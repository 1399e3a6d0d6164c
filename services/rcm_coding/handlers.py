"""One method per consumed event and per coder request: load, decide, save."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from rcm_contracts.claims import ClaimDenied, DenialCategory, LineDenied
from rcm_contracts.coding import (
    CaseAssignmentRequested,
    CaseReassignmentRequested,
    CoderProfileRequested,
    CodesSubmissionRequested,
    CodingQueryAnswerRequested,
    CodingQueryRequested,
    CodingReviewRequested,
)
from rcm_contracts.registration import EncounterCompleted
from rcm_edits import Library, errors
from rcm_shared.aggregates import Aggregates, Outcome
from rcm_shared.clock import Clock, utc_now
from rcm_shared.envelope import Envelope
from rcm_shared.errors import NotFound
from rcm_shared.requests import Reply
from rcm_shared.service import Subscriptions

from . import codesets, domain
from .codesets import Chargemaster, OutsideWindow
from .domain import Case, CaseDecision, CoderProfile, Coding, Status

log = logging.getLogger(__name__)


class CaseIds(Protocol):
    """Which episode a case id names (people know cases by id, the store by episode)."""

    async def remember(self, case_id: str, episode_id: str) -> None: ...


class WorkLog(Protocol):
    """The productivity read model: the work facts of a case's audit trail."""

    async def record(self, facts: list[dict[str, Any]]) -> None: ...


class NoWorkLog:
    async def record(self, facts: list[dict[str, Any]]) -> None:
        return None


class Handlers:
    def __init__(
        self,
        cases: Aggregates[Case],
        case_ids: CaseIds,
        chargemaster: Chargemaster,
        clock: Clock = utc_now,
        packs: Library | None = None,
        coders: Aggregates[CoderProfile] | None = None,
        work: WorkLog | None = None,
        sample_rate: float = 0.0,
        outside_window: OutsideWindow = "nearest",
    ) -> None:
        self.cases = cases
        self.case_ids = case_ids
        self.chargemaster = chargemaster
        self.clock = clock
        self.packs = packs  # None: no edit packs, no edits
        self.coders = coders
        self.work: WorkLog = work if work is not None else NoWorkLog()
        self.sample_rate = sample_rate
        self.outside_window: OutsideWindow = outside_window

    async def encounter_completed(self, envelope: Envelope[EncounterCompleted]) -> None:
        event = envelope.data
        # Suggestions depend on the event alone; the first ones load ICD-10-CM (seconds),
        # so they are worked out in a thread, outside the decision.
        suggestions = await asyncio.to_thread(
            domain.suggest, event.documentation, self.chargemaster
        )
        now = self.clock()
        case_id = domain.case_id_for(event.episode_id)
        # Before the case: a case people can list is one they can open by its id.
        await self.case_ids.remember(case_id, event.episode_id)
        applied = await self.cases.apply(
            event.episode_id,
            lambda case: domain.open_case(
                case,
                event,
                suggestions,
                envelope.source,
                now,
                domain.expected_charge_cents(suggestions, self.chargemaster),
            ),
            cause=envelope.id,
        )
        log.info("encounter %s: case %s %s", event.encounter_id, case_id, applied.outcome.value)

    async def claim_denied(self, envelope: Envelope[ClaimDenied]) -> None:
        event = envelope.data
        if event.category is not DenialCategory.CODING:
            return  # billers work the other denials
        now = self.clock()
        applied = await self.cases.apply(
            event.episode_id,
            lambda case: domain.reopen_for_recode(case, event, envelope.source, now),
            cause=envelope.id,
        )
        log.info("coding denial of %s: %s", event.claim_id, applied.outcome.value)

    async def line_denied(self, envelope: Envelope[LineDenied]) -> None:
        event = envelope.data
        if event.category is not DenialCategory.CODING:
            return  # billers work the other denials
        now = self.clock()
        applied = await self.cases.apply(
            event.episode_id,
            lambda case: domain.reopen_for_line(case, event, envelope.source, now),
            cause=envelope.id,
        )
        log.info("line denial of %s: %s", event.claim_id, applied.outcome.value)

    async def case_assignment_requested(
        self, envelope: Envelope[CaseAssignmentRequested]
    ) -> dict[str, Any]:
        """The case as it is once the coder holds it."""
        request = envelope.data
        case_id = domain.case_id_for(request.episode_id)
        now = self.clock()
        applied = await self.cases.apply(
            request.episode_id,
            lambda case: domain.assign(case, case_id, request.requested_by, now),
            cause=envelope.id,
        )
        return _view(applied.state, case_id)

    async def codes_submission_requested(
        self, envelope: Envelope[CodesSubmissionRequested]
    ) -> dict[str, Any] | Reply:
        """The priced coding, and whether it repeated the codes the case went out with;
        422 with the hits when the codes break an edit of the pack in force."""
        request = envelope.data
        case_id = domain.case_id_for(request.episode_id)
        coder_id = request.requested_by
        await asyncio.to_thread(codesets.warm_up)  # a no-op once ICD-10-CM is loaded
        submission = Coding.of(request)
        now = self.clock()
        applied = await self.cases.apply(
            request.episode_id,
            lambda case: domain.submit(
                case,
                case_id,
                coder_id,
                submission,
                self.chargemaster,
                now,
                self.packs,
                self.sample_rate,
                self.outside_window,
            ),
            cause=envelope.id,
        )
        case = applied.state
        if case is not None:
            await self.work.record(domain.work_facts(case))
        if case is not None and case.edits_refused is not None and case.status != Status.DONE:
            log.info("case %s: codes of %s refused by edits", case_id, coder_id)
            return Reply(422, domain.refusal_body(errors(case.edit_hits)))
        if case is None or case.coding is None:  # cases are never deleted
            raise NotFound(f"no coding case {case_id}")
        log.info("case %s coded by %s: %s", case_id, coder_id, applied.outcome.value)
        return {
            "case_id": case_id,
            "episode_id": case.episode_id,
            **case.coding.model_dump(),
            # The same codes again (or this request again): no new event.
            "repeated": applied.outcome is not Outcome.APPLIED,
        }

    async def coding_query_requested(
        self, envelope: Envelope[CodingQueryRequested]
    ) -> dict[str, Any]:
        r = envelope.data
        return await self._change(
            envelope,
            lambda case, case_id, now: domain.hold(
                case, case_id, r.requested_by, r.query_id, r.reason, now
            ),
            f"on hold: query {r.query_id}",
        )

    async def coding_query_answer_requested(
        self, envelope: Envelope[CodingQueryAnswerRequested]
    ) -> dict[str, Any]:
        r = envelope.data
        return await self._change(
            envelope,
            lambda case, case_id, now: domain.answer(
                case, case_id, r.requested_by, r.query_id, now
            ),
            f"query {r.query_id} answered",
        )

    async def case_reassignment_requested(
        self, envelope: Envelope[CaseReassignmentRequested]
    ) -> dict[str, Any]:
        r = envelope.data
        return await self._change(
            envelope,
            lambda case, case_id, now: domain.reassign(
                case, case_id, r.requested_by, r.coder_id, now
            ),
            f"reassigned to {r.coder_id}",
        )

    async def coding_review_requested(
        self, envelope: Envelope[CodingReviewRequested]
    ) -> dict[str, Any]:
        r = envelope.data
        corrections = None if r.agreed else Coding.of(r)
        return await self._change(
            envelope,
            lambda case, case_id, now: domain.review(
                case, case_id, r.requested_by, r.agreed, corrections, self.chargemaster, now
            ),
            f"reviewed (agreed: {r.agreed})",
        )

    async def _change(
        self,
        envelope: Envelope[Any],
        decide: Callable[[Case | None, str, datetime], CaseDecision],
        done: str,
    ) -> dict[str, Any]:
        """A person's command on a case: decided by its owner, kept in the coders' work
        figures, answered with the case."""
        episode_id = envelope.data.episode_id
        case_id = domain.case_id_for(episode_id)
        now = self.clock()
        applied = await self.cases.apply(
            episode_id, lambda case: decide(case, case_id, now), cause=envelope.id
        )
        if applied.state is not None:
            await self.work.record(domain.work_facts(applied.state))
        log.info("case %s: %s", case_id, done)
        return _view(applied.state, case_id)

    async def coder_profile_requested(
        self, envelope: Envelope[CoderProfileRequested]
    ) -> dict[str, Any]:
        request = envelope.data
        if self.coders is None:
            raise NotFound("coder profiles are not kept here")
        now = self.clock()
        applied = await self.coders.apply(
            request.coder_id,
            lambda profile: domain.set_profile(
                profile, request.coder_id, request.specialties, request.requested_by, now
            ),
            cause=envelope.id,
        )
        if applied.state is None:
            raise NotFound(f"no coder profile {request.coder_id}")
        return applied.state.model_dump(mode="json")


def _view(case: Case | None, case_id: str) -> dict[str, Any]:
    if case is None:  # cases are never deleted
        raise NotFound(f"no coding case {case_id}")
    return case.model_dump()


SUBSCRIPTIONS: Subscriptions[Handlers] = {
    EncounterCompleted: Handlers.encounter_completed,
    ClaimDenied: Handlers.claim_denied,
    LineDenied: Handlers.line_denied,
    CaseAssignmentRequested: Handlers.case_assignment_requested,
    CodesSubmissionRequested: Handlers.codes_submission_requested,
    CodingQueryRequested: Handlers.coding_query_requested,
    CodingQueryAnswerRequested: Handlers.coding_query_answer_requested,
    CaseReassignmentRequested: Handlers.case_reassignment_requested,
    CodingReviewRequested: Handlers.coding_review_requested,
    CoderProfileRequested: Handlers.coder_profile_requested,
}
