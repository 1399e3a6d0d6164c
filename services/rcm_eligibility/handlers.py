"""Eligibility handlers: join each input in one write, then verify what is pending.

The X12 exchange happens between two writes, never inside one: the join opens a check,
the 270/271 calls run, and `record_results` closes the check with its events, applied
with the check's id as cause. If the process dies between the calls and that write, the
input is redelivered (its offset was never committed), the join is a duplicate, the check
is still pending and is asked again; the answers are written once.

An episode's inputs are keyed by the episode, so they are handled one at a time in this
process (rcm_shared.kafka): a second input finds the check done and asks no payer twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from rcm_contracts.registration import (
    AppointmentScheduled,
    Coverage,
    CoverageUpdated,
    PatientRegistered,
)
from rcm_shared.aggregates import Aggregates, Decision
from rcm_shared.clearinghouse import ClearinghouseClient, X12Problem
from rcm_shared.clock import Clock, utc_now
from rcm_shared.envelope import Envelope
from rcm_shared.errors import PermanentError
from rcm_shared.ownership import partition_of
from rcm_shared.redact import describe
from rcm_shared.service import Subscriptions
from rcm_shared.store import ControlNumbers
from rcm_x12 import EligibilityResponse, X12Error, build_270

from . import domain
from .domain import Requester, Verification

Input = TypeVar("Input", AppointmentScheduled, PatientRegistered, CoverageUpdated)
Join = Callable[[Verification | None, Input, Requester, datetime], Decision[Verification, None]]


class Handlers:
    def __init__(
        self,
        verifications: Aggregates[Verification],
        control_numbers: ControlNumbers,
        clearinghouse: ClearinghouseClient,
        requester: Requester,
        clock: Clock = utc_now,
    ) -> None:
        self.verifications = verifications
        self.control_numbers = control_numbers
        self.clearinghouse = clearinghouse
        self.requester = requester
        self.clock = clock

    async def appointment_scheduled(self, envelope: Envelope[AppointmentScheduled]) -> None:
        await self._join(envelope, domain.on_appointment)

    async def patient_registered(self, envelope: Envelope[PatientRegistered]) -> None:
        await self._join(envelope, domain.on_patient)

    async def coverage_updated(self, envelope: Envelope[CoverageUpdated]) -> None:
        await self._join(envelope, domain.on_coverages)

    async def _join(self, envelope: Envelope[Input], on_input: Join[Input]) -> None:
        """Record one input (once per event id), then verify what is pending."""
        event = envelope.data
        now = self.clock()
        joined = await self.verifications.apply(
            event.episode_id,
            lambda state: on_input(state, event, self.requester, now),
            cause=envelope.id,
        )
        await self._verify_pending(joined.state)

    async def _verify_pending(self, verification: Verification | None) -> None:
        """Asks the payers about the pending check, if any, and records their answers.

        Runs after every input, also a duplicate one: that is how a check interrupted by a
        crash or an outage is finished. Clearinghouse trouble is transient (the input is
        retried); an answer that cannot be read is permanent (the input is dead-lettered,
        the check stays pending with its error, and a replay asks again).
        """
        check = verification.pending if verification is not None else None
        if verification is None or check is None:
            return
        episode_id = verification.episode_id
        # Only the owner of the episode's partition draws from its range: no ISA13 twice.
        partition = partition_of(episode_id, self.control_numbers.partitions)
        now = self.clock()
        answers: list[tuple[Coverage, EligibilityResponse]] = []
        try:
            for coverage, inquiry in domain.inquiries(verification, self.requester, now):
                control_number = await self.control_numbers.next(partition)
                document = domain.inquiry_document(inquiry, control_number, self.requester, now)
                try:
                    text = build_270(document)
                except X12Error as error:
                    raise X12Problem(f"270 not built: {error.located()}") from None
                reply = await self.clearinghouse.realtime(text, reference=episode_id)
                answers.append((coverage, domain.read_answer(inquiry, reply)))
        except PermanentError as error:
            message = describe(error)
            await self.verifications.apply(
                episode_id, lambda state: domain.record_error(state, check.number, message)
            )
            raise
        answered = self.clock()
        await self.verifications.apply(
            episode_id,
            lambda state: domain.record_results(state, check.number, answers, answered),
            cause=f"check-{check.number}",
        )


SUBSCRIPTIONS: Subscriptions[Handlers] = {
    AppointmentScheduled: Handlers.appointment_scheduled,
    PatientRegistered: Handlers.patient_registered,
    CoverageUpdated: Handlers.coverage_updated,
}
