"""Handlers on the in-memory aggregate port: redeliveries, requests and their answers."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from rcm_claims import domain
from rcm_claims.handlers import SUBSCRIPTIONS, Handlers
from rcm_contracts import CATALOG, Event, Request
from rcm_contracts.claims import (
    AcknowledgmentRequested,
    AckStage,
    AppealDecisionRequested,
    AppealOverdueRequested,
    AppealRequested,
    AppealResendRequested,
    ClaimAccepted,
    ClaimCloseRequested,
    ClaimCorrectionRequested,
    ClaimRejected,
    ClaimSubmitted,
    ClaimVerdict,
    ClaimVoidRequested,
    DeadlineAlertRequested,
    DenialAcceptanceRequested,
    FollowUpRequested,
    WorkAssignmentRequested,
)
from rcm_shared.aggregates import InMemoryAggregates
from rcm_shared.envelope import Envelope
from rcm_shared.errors import Conflict, NotFound
from rcm_shared.requests import Reply

from . import builders as b

EPISODE = b.EPISODE
FIRST, SECOND = f"{EPISODE}-1", f"{EPISODE}-2"
LATER = b.NOW + timedelta(minutes=5)


def envelope(data: Event, envelope_id: str | None = None) -> Envelope[Any]:
    if envelope_id is None:
        return Envelope(data=data, source="rcm/test")
    return Envelope(data=data, source="rcm/test", id=envelope_id)


class Setup:
    def __init__(self) -> None:
        self.episodes: InMemoryAggregates[domain.Episode] = InMemoryAggregates(domain.Episode)
        self.queued: list[str] = []
        self.handlers = Handlers(
            self.episodes, b.CONFIG, clock=lambda: LATER, queued=self.queued.append
        )

    async def bill(self) -> None:
        """The episode's inputs, in no particular order: a primary claim queued."""
        inputs: list[Event] = [
            b.coded(),
            b.verified(b.PRIMARY_COVERAGE),
            b.coverages(b.PRIMARY_COVERAGE),
            b.registered(),
        ]
        for event in inputs:
            handle = SUBSCRIPTIONS[type(event)]
            await handle(self.handlers, envelope(event))

    async def submit(self, icn: int = 42) -> None:
        """What the sender does (it owns the episode: it applies directly)."""
        mark = partial(
            domain.mark_sending, numbers={FIRST: "0001"}, interchange_control_number=icn, now=LATER
        )
        await self.episodes.apply(EPISODE, mark)
        record = partial(
            domain.mark_submitted, interchange_control_number=icn, batch_id="B1", now=LATER
        )
        await self.episodes.apply(EPISODE, record)

    def episode(self) -> domain.Episode:
        episode = self.episodes.states[EPISODE]
        return episode

    def of(self, kind: type[Event]) -> list[Event]:
        return [event for event in self.episodes.emitted if isinstance(event, kind)]

    async def acknowledge(
        self, stage: AckStage, *verdicts: ClaimVerdict, request_id: str | None = None
    ) -> Any:
        request = AcknowledgmentRequested(
            episode_id=EPISODE,
            requested_by="claims-mailbox",
            document_id="277CA-1",
            stage=stage,
            verdicts=list(verdicts),
        )
        return await self.handlers.acknowledgment_requested(envelope(request, request_id))

    async def correct(self, claim_id: str, request_id: str | None = None) -> Any:
        request = ClaimCorrectionRequested(
            episode_id=EPISODE, requested_by="biller-1", claim_id=claim_id, note="fixed"
        )
        return await self.handlers.claim_correction_requested(envelope(request, request_id))


async def test_a_claim_is_queued_once_its_inputs_are_in_and_the_sender_is_told() -> None:
    setup = Setup()
    await setup.bill()
    (claim,) = setup.episode().claims
    assert (claim.claim_id, claim.status) == (FIRST, domain.ClaimStatus.QUEUED)
    assert claim.queued_at == LATER  # the injected clock
    assert setup.queued == [EPISODE]  # only the change that queued it tells the sender
    assert setup.episode().unsent == [FIRST]


async def test_a_redelivered_event_changes_nothing() -> None:
    setup = Setup()
    coded = envelope(b.coded())
    await setup.handlers.coding_completed(coded)
    before = setup.episode()
    later = b.coded(at=b.NOW + timedelta(hours=1), lines=[("99214", [], 1, 18000)])
    await setup.handlers.coding_completed(envelope(later, coded.id))  # same id: a duplicate
    assert setup.episode() == before


async def test_an_acknowledgment_for_a_claim_still_sending_is_answered_not_applied() -> None:
    setup = Setup()
    await setup.bill()
    mark = partial(
        domain.mark_sending, numbers={FIRST: "0001"}, interchange_control_number=7, now=LATER
    )
    await setup.episodes.apply(EPISODE, mark)
    before = setup.episode()
    verdict = ClaimVerdict(claim_id=FIRST, accepted=True, interchange_control_number=7)
    answer = await setup.acknowledge(AckStage.CLEARINGHOUSE, verdict, request_id="doc:ep")
    assert answer == {"episode_id": EPISODE, "applied": False, "sending": FIRST}
    assert setup.episode() == before

    record = partial(domain.mark_submitted, interchange_control_number=7, batch_id="B", now=LATER)
    await setup.episodes.apply(EPISODE, record)
    # The same request once the submission is recorded (the document read again): applied.
    answer = await setup.acknowledge(AckStage.CLEARINGHOUSE, verdict, request_id="doc:ep")
    assert answer == {"episode_id": EPISODE, "applied": True, "sending": None}
    (accepted,) = setup.of(ClaimAccepted)
    assert isinstance(accepted, ClaimAccepted)
    assert accepted.stage is AckStage.CLEARINGHOUSE
    # And again (a redelivery): nothing more is announced.
    await setup.acknowledge(AckStage.CLEARINGHOUSE, verdict, request_id="doc:ep")
    assert len(setup.of(ClaimAccepted)) == 1


async def test_a_999_counts_only_for_the_interchange_the_claim_was_last_sent_in() -> None:
    setup = Setup()
    await setup.bill()
    await setup.submit(icn=42)
    earlier = ClaimVerdict(
        claim_id=FIRST, accepted=False, status_codes=["IK502:5"], interchange_control_number=41
    )
    latest = ClaimVerdict(claim_id=FIRST, accepted=True, interchange_control_number=42)
    await setup.acknowledge(AckStage.CLEARINGHOUSE, earlier, latest)
    assert setup.of(ClaimRejected) == []
    assert len(setup.of(ClaimAccepted)) == 1
    assert setup.episode().claim(FIRST).clearinghouse_accepted_at == LATER


async def test_a_correction_is_answered_202_and_a_retry_of_it_the_same() -> None:
    setup = Setup()
    await setup.bill()
    await setup.submit()
    assert len(setup.of(ClaimSubmitted)) == 1
    rejected = ClaimVerdict(
        claim_id=FIRST, accepted=False, status_codes=["A7:164"], message="member not found"
    )
    await setup.acknowledge(AckStage.PAYER, rejected)
    assert setup.episode().work == [FIRST]

    reply = await setup.correct(FIRST, request_id="key-1")
    body = {"claim_id": SECOND, "replaces_claim_id": FIRST, "frequency": "1", "changed": []}
    assert reply == Reply(202, body)
    assert setup.queued[-1] == EPISODE  # the new claim is the sender's
    state = setup.episode()
    assert await setup.correct(FIRST, request_id="key-1") == Reply(202, body)  # a retry
    assert setup.episode() == state
    with pytest.raises(Conflict, match="closed"):
        await setup.correct(FIRST)  # the same command again, not a retry
    with pytest.raises(NotFound):
        await setup.correct(f"{EPISODE}-9")
    assert setup.episode() == state  # a refused request changes nothing


async def test_a_command_on_an_unknown_episode_is_not_found() -> None:
    setup = Setup()
    with pytest.raises(NotFound):
        await setup.correct(FIRST)
    request = DenialAcceptanceRequested(
        episode_id=EPISODE, requested_by="biller-1", claim_id=FIRST, note="n"
    )
    with pytest.raises(NotFound):
        await setup.handlers.denial_acceptance_requested(envelope(request))
    assert setup.episodes.states == {}


async def test_a_denial_is_accepted_once() -> None:
    setup = Setup()
    await setup.bill()
    await setup.submit()
    await setup.handlers.payment_posted(envelope(b.denial_posting(FIRST, "197")))
    request = DenialAcceptanceRequested(
        episode_id=EPISODE, requested_by="biller-1", claim_id=FIRST, note="no auth"
    )
    answer = await setup.handlers.denial_acceptance_requested(envelope(request, "key-2"))
    assert answer == {"claim_id": FIRST, "outcome": "denial-accepted"}
    assert setup.episode().claim(FIRST).outcome == "denial-accepted"
    # A retry with the same key is answered the same; another request is refused.
    assert await setup.handlers.denial_acceptance_requested(envelope(request, "key-2")) == answer
    with pytest.raises(Conflict):
        await setup.handlers.denial_acceptance_requested(envelope(request))


def test_every_claims_request_is_subscribed() -> None:
    own = {
        kind
        for name, kind in CATALOG.items()
        if name.startswith("rcm.claims.") and issubclass(kind, Request)
    }
    assert own == {
        ClaimCorrectionRequested,
        DenialAcceptanceRequested,
        AcknowledgmentRequested,
        ClaimVoidRequested,
        ClaimCloseRequested,
        AppealRequested,
        AppealDecisionRequested,
        DeadlineAlertRequested,
        FollowUpRequested,
        WorkAssignmentRequested,
        AppealResendRequested,
        AppealOverdueRequested,
    }
    assert own <= set(SUBSCRIPTIONS)


async def test_a_void_and_a_closing_are_answered_and_a_retry_the_same() -> None:
    setup = Setup()
    await setup.bill()
    await setup.submit()
    await setup.handlers.payment_posted(envelope(b.split_posting(FIRST, "R1-T1-1", 10000, 6000)))
    close = ClaimCloseRequested(
        episode_id=EPISODE, requested_by="biller-1", claim_id=FIRST, note="no more"
    )
    answer = Reply(200, {"claim_id": FIRST, "payer_id": "ACME01", "outcome": "paid"})
    assert await setup.handlers.claim_close_requested(envelope(close, "key-c")) == answer
    assert await setup.handlers.claim_close_requested(envelope(close, "key-c")) == answer
    with pytest.raises(Conflict):
        await setup.handlers.claim_close_requested(envelope(close))

    void = ClaimVoidRequested(
        episode_id=EPISODE, requested_by="biller-1", claim_id=FIRST, reason="wrong payer"
    )
    voided = Reply(202, {"claim_id": SECOND, "voids_claim_id": FIRST, "frequency": "8"})
    assert await setup.handlers.claim_void_requested(envelope(void, "key-v")) == voided
    state = setup.episode()
    assert await setup.handlers.claim_void_requested(envelope(void, "key-v")) == voided
    assert setup.episode() == state
    assert setup.queued[-1] == EPISODE  # the void is the sender's
    with pytest.raises(Conflict):
        await setup.handlers.claim_void_requested(envelope(void))
