"""Handlers on the in-memory aggregate port: inputs join in any order and ask each payer
once, a redelivered input changes nothing, an unreadable 271 is kept and asked again on
a replay, and each episode's 270s are numbered from its partition's range."""

from __future__ import annotations

from datetime import datetime
from itertools import permutations
from typing import Any, cast

import pytest
from rcm_contracts import Event
from rcm_contracts.eligibility import (
    EligibilityFailed,
    EligibilityFailureReason,
    EligibilityVerified,
)
from rcm_contracts.registration import AppointmentScheduled, CoverageUpdated, PatientRegistered
from rcm_eligibility.domain import Verification
from rcm_eligibility.handlers import SUBSCRIPTIONS, Handlers
from rcm_eligibility.store import MAX_CONTROL_NUMBER
from rcm_shared.aggregates import InMemoryAggregates
from rcm_shared.envelope import Envelope
from rcm_shared.errors import Conflict, PermanentError
from rcm_shared.ownership import partition_of
from rcm_shared.store import ControlNumbers
from rcm_x12 import Coverage as Benefits
from rcm_x12 import EligibilityResponse, EligibilityResponseDocument, build_271, parse_270
from rcm_x12 import Envelope as X12Envelope

from .support import (
    APPOINTMENT,
    EPISODE,
    GOLD,
    INACTIVE,
    NOW,
    PRIMARY,
    REGISTERED,
    REQUESTER,
    SECONDARY,
    coverages,
)

PARTITIONS = 6
SPAN = MAX_CONTROL_NUMBER // PARTITIONS


class Payer:
    """A clearinghouse answering each 270 with a 271 built from it, by member id: the
    benefits, or a text as it is."""

    def __init__(self, answers: dict[str, Benefits | str]) -> None:
        self.answers = answers
        self.received: list[str] = []

    async def realtime(self, inquiry_270: str, reference: str) -> str:
        asked = parse_270(inquiry_270)
        (inquiry,) = asked.transactions
        self.received.append(inquiry_270)
        answer = self.answers[inquiry.subscriber.member_id]
        if isinstance(answer, str):
            return answer
        created = datetime(2026, 3, 2, 15, 0)  # noqa: DTZ001 - X12 times carry no zone
        response = EligibilityResponse(
            **inquiry.model_dump(
                exclude={"service_date", "service_types", "trace_originator", "created"}
            ),
            created=created,
            trace_originator="9SIMULATOR",
            coverage=answer,
        )
        envelope = X12Envelope(
            sender_id=asked.envelope.receiver_id,
            receiver_id=asked.envelope.sender_id,
            control_number=asked.envelope.control_number,
            group_control_number=asked.envelope.control_number,
            created=created,
        )
        return build_271(EligibilityResponseDocument(envelope=envelope, transactions=[response]))

    def control_numbers(self) -> list[int]:
        return [parse_270(text).envelope.control_number for text in self.received]


class Counters:
    """The one operation of the `counters` collection ControlNumbers uses, in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    async def find_one_and_update(
        self, query: dict[str, Any], update: dict[str, Any], **_: object
    ) -> dict[str, Any]:
        name = query["_id"]
        self.values[name] = self.values.get(name, 0) + update["$inc"]["value"]
        return {"_id": name, "value": self.values[name]}


def setup(
    answers: dict[str, Benefits | str],
) -> tuple[InMemoryAggregates[Verification], Payer, Handlers]:
    verifications = InMemoryAggregates(Verification)
    payer = Payer(answers)
    numbers = ControlNumbers(
        cast(Any, {"counters": Counters()}), "interchange", MAX_CONTROL_NUMBER, PARTITIONS
    )
    handlers = Handlers(verifications, numbers, cast(Any, payer), REQUESTER, clock=lambda: NOW)
    return verifications, payer, handlers


def envelope(data: Event) -> Envelope[Any]:
    return Envelope(data=data, source="rcm/test")


INSURED = {PRIMARY.member_id: GOLD, SECONDARY.member_id: INACTIVE}


async def deliver(handlers: Handlers, *envelopes: Envelope[Any]) -> None:
    for delivered in envelopes:
        await SUBSCRIPTIONS[type(delivered.data)](handlers, delivered)


def inputs(episode_id: str = EPISODE) -> list[Envelope[Any]]:
    def of(event: Event) -> Envelope[Any]:
        return envelope(event.model_copy(update={"episode_id": episode_id}))

    return [of(APPOINTMENT), of(REGISTERED), of(coverages(SECONDARY, PRIMARY))]


def test_eligibility_handles_the_three_inputs_of_an_episode() -> None:
    assert set(SUBSCRIPTIONS) == {AppointmentScheduled, PatientRegistered, CoverageUpdated}


async def test_inputs_in_any_order_ask_each_payer_once_in_rank_order() -> None:
    for order in permutations(inputs()):
        verifications, payer, handlers = setup(INSURED)
        await deliver(handlers, *order)
        asked = [parse_270(text).transactions[0].subscriber.member_id for text in payer.received]
        assert asked == [PRIMARY.member_id, SECONDARY.member_id]
        verified, failed = verifications.emitted
        assert isinstance(verified, EligibilityVerified)
        assert (verified.coverage_id, verified.verified_at) == (PRIMARY.coverage_id, NOW)
        assert isinstance(failed, EligibilityFailed)
        assert (failed.reason, failed.self_pay, failed.checked_at) == (
            EligibilityFailureReason.INACTIVE,
            False,
            NOW,
        )
        state = await verifications.get(EPISODE)
        assert state is not None
        assert state.view().status == "checked"


async def test_a_redelivered_input_changes_nothing() -> None:
    verifications, payer, handlers = setup(INSURED)
    delivered = inputs()
    await deliver(handlers, *delivered)
    before = (await verifications.get(EPISODE), list(verifications.emitted), len(payer.received))
    await deliver(handlers, *delivered)  # the same event ids
    await deliver(handlers, envelope(coverages(PRIMARY, SECONDARY)))  # the same coverages
    after = (await verifications.get(EPISODE), verifications.emitted, len(payer.received))
    assert after == before


async def test_a_refused_input_changes_nothing() -> None:
    verifications, payer, handlers = setup(INSURED)
    await deliver(handlers, *inputs()[:1])
    before = await verifications.get(EPISODE)
    stranger = REGISTERED.model_copy(update={"patient_id": "P999999999999"})
    with pytest.raises(Conflict, match="another patient"):
        await deliver(handlers, envelope(stranger))
    assert await verifications.get(EPISODE) == before
    assert (verifications.emitted, payer.received) == ([], [])


async def test_an_unreadable_271_is_kept_and_a_replay_asks_again() -> None:
    verifications, payer, handlers = setup({PRIMARY.member_id: "not X12"})
    appointment, registered, _ = inputs()
    covered = envelope(coverages(PRIMARY))
    await deliver(handlers, appointment, registered)
    with pytest.raises(PermanentError, match="unreadable 271"):
        await deliver(handlers, covered)
    state = await verifications.get(EPISODE)
    assert state is not None
    assert state.check is not None
    assert state.view().status == "checking"
    unreadable = "X12Problem: unreadable 271: X12SyntaxError in ISA at segment 1"
    assert state.check.last_error == unreadable  # was the parser's message, values and all
    assert verifications.emitted == []

    payer.answers[PRIMARY.member_id] = GOLD
    await deliver(handlers, covered)  # a replay of the dead letter
    (verified,) = verifications.emitted
    assert isinstance(verified, EligibilityVerified)
    assert len(payer.received) == 2
    first, second = payer.control_numbers()
    assert second == first + 1  # a new interchange, not the old number again


async def test_a_271_that_cannot_be_read_is_said_without_its_values() -> None:
    verifications, payer, handlers = setup({PRIMARY.member_id: GOLD})
    real = payer.realtime

    async def garbled(inquiry_270: str, reference: str) -> str:
        # The subscriber's birth date (DMG02), no longer a date: the parser quotes it.
        return (await real(inquiry_270, reference)).replace("*19800501", "*19801301")

    payer.realtime = garbled  # type: ignore[method-assign]
    appointment, registered, _ = inputs()
    await deliver(handlers, appointment, registered)
    with pytest.raises(PermanentError) as raised:
        await deliver(handlers, envelope(coverages(PRIMARY)))
    state = await verifications.get(EPISODE)
    assert state is not None
    assert state.check is not None
    said = [str(raised.value), state.check.last_error or ""]
    assert said[1].startswith("X12Problem: unreadable 271: X12ValueError in DMG at segment ")
    assert not [text for text in said if "1980" in text]


async def test_episodes_of_different_partitions_number_from_their_own_ranges() -> None:
    _, payer, handlers = setup(INSURED)
    other = next(
        episode_id
        for episode_id in (f"E00000000{n:04d}" for n in range(100))
        if partition_of(episode_id, PARTITIONS) != partition_of(EPISODE, PARTITIONS)
    )
    await deliver(handlers, *inputs(EPISODE))
    await deliver(handlers, *inputs(other))
    first, second = payer.control_numbers()[:2], payer.control_numbers()[2:]
    for episode_id, numbers in ((EPISODE, first), (other, second)):
        start = partition_of(episode_id, PARTITIONS) * SPAN
        assert numbers == [start + 1, start + 2]
