"""Eligibility handlers: join each input in one write, then verify what is pending.

The X12 exchange happens between two writes, never inside one: the join opens a check,
the 270/271 calls run, and `record_results` closes the check with its events, applied
with the check's id as event id. If the process dies between the calls and that write,
the input is redelivered (its offset was never committed), the join is a duplicate, the
check is still pending and is asked again; the answers are written once.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TypeVar

from rcm_contracts.registration import (
    AppointmentScheduled,
    Coverage,
    CoverageUpdated,
    PatientRegistered,
)
from rcm_shared.clearinghouse import ClearinghouseClient
from rcm_shared.envelope import Envelope
from rcm_shared.errors import PermanentError
from rcm_shared.store import AggregateStore, Change, ControlNumbers, Document
from rcm_x12 import EligibilityResponse, X12Error, build_270

from . import domain
from .domain import Requester, Verification

Input = TypeVar("Input", AppointmentScheduled, PatientRegistered, CoverageUpdated)
Join = Callable[[Document | None, Input, Requester, datetime], Change | None]


class Eligibility:
    def __init__(
        self,
        verifications: AggregateStore,
        control_numbers: ControlNumbers,
        clearinghouse: ClearinghouseClient,
        requester: Requester,
    ) -> None:
        self.verifications = verifications
        self.control_numbers = control_numbers
        self.clearinghouse = clearinghouse
        self.requester = requester
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @contextlib.asynccontextmanager
    async def _episode(self, episode_id: str) -> AsyncIterator[None]:
        """One handler at a time per episode: the join, the payer call and the recording of
        its answers run as one step, so an episode's three input topics, consumed
        concurrently, never ask the payer twice (the second finds the check done)."""
        lock = self._locks.get(episode_id)
        if lock is None:
            lock = self._locks[episode_id] = asyncio.Lock()
        async with lock:
            yield

    async def get(self, episode_id: str) -> Verification | None:
        return domain.load(await self.verifications.get(episode_id))

    async def appointment_scheduled(self, envelope: Envelope[AppointmentScheduled]) -> None:
        await self._join(envelope, domain.on_appointment)

    async def patient_registered(self, envelope: Envelope[PatientRegistered]) -> None:
        await self._join(envelope, domain.on_patient)

    async def coverage_updated(self, envelope: Envelope[CoverageUpdated]) -> None:
        await self._join(envelope, domain.on_coverages)

    async def _join(self, envelope: Envelope[Input], on_input: Join[Input]) -> None:
        """Record one input (idempotent by event id), then verify what is pending."""
        event = envelope.data
        async with self._episode(event.episode_id):
            now = datetime.now(UTC)
            await self.verifications.apply(
                event.episode_id,
                lambda current: on_input(current, event, self.requester, now),
                event_id=envelope.id,
            )
            await self._verify_pending(event.episode_id)

    async def _verify_pending(self, episode_id: str) -> None:
        """Asks the payers about the pending check, if any, and records their answers.

        Runs after every input, also a duplicate one: that is how a check interrupted by a
        crash or an outage is finished. Clearinghouse trouble is transient (the input is
        retried); an answer that cannot be read is permanent (the input is dead-lettered,
        the check stays pending with its error, and a replay asks again).
        """
        verification = await self.get(episode_id)
        check = verification.pending if verification is not None else None
        if verification is None or check is None:
            return
        now = datetime.now(UTC)
        answers: list[tuple[Coverage, EligibilityResponse]] = []
        try:
            for coverage, inquiry in domain.inquiries(verification, self.requester, now):
                control_number = await self.control_numbers.next()
                document = domain.inquiry_document(inquiry, control_number, self.requester, now)
                try:
                    text = build_270(document)
                except X12Error as error:
                    raise PermanentError(f"270 not built: {error}") from None
                reply = await self.clearinghouse.realtime(text, reference=episode_id)
                answers.append((coverage, domain.read_answer(inquiry, reply)))
        except PermanentError as error:
            message = str(error)
            await self.verifications.apply(
                episode_id, lambda current: domain.record_error(current, check.number, message)
            )
            raise
        answered = datetime.now(UTC)
        await self.verifications.apply(
            episode_id,
            lambda current: domain.record_results(current, check.number, answers, answered),
            event_id=f"check-{check.number}",
        )
