"""The handlers and the mailbox reader on the in-memory port: what is stored under which
key, what goes out, what a request answers, that a redelivered cause changes nothing, and
the unmatched-claim choreography in both orders."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from rcm_contracts import Event, Request
from rcm_contracts.claims import ClaimSubmitted
from rcm_contracts.payments import (
    AwaitedClaimSubmitted,
    ClaimAwaited,
    PatientPaymentReceived,
    PatientPaymentRequested,
    PaymentMethod,
    PaymentPosted,
    RemittancePostingRequested,
    RemittanceProcessed,
    UnpostableRetryRequested,
)
from rcm_contracts.registration import AppointmentScheduled
from rcm_payments.domain import (
    Episode,
    PatientPayment,
    Remittance,
    UnpostableKind,
    UnpostableStatus,
    UnreadableDocument,
)
from rcm_payments.handlers import SUBSCRIPTIONS, Handlers
from rcm_payments.mailbox import Mailbox
from rcm_shared.aggregates import InMemoryAggregates
from rcm_shared.envelope import Envelope
from rcm_shared.errors import Conflict, NotFound, Refusal, TransientError
from rcm_shared.requests import Reply
from rcm_x12 import RemittanceDocument, build_835

from .test_posting import ENVELOPE, EPISODE, claim, claim_event, line, read, remittance

NOW = datetime(2026, 2, 1, 12, 0, 0, 123456, tzinfo=UTC)
STORED_NOW = NOW.replace(microsecond=123000)
CLAIM = f"{EPISODE}-1"
LATE_EPISODE = "E0000000000aa"
LATE = f"{LATE_EPISODE}-1"


@dataclass
class Payments:
    handle: Handlers
    episodes: InMemoryAggregates[Episode]
    remittances: InMemoryAggregates[Remittance]
    payments: InMemoryAggregates[PatientPayment]
    unreadable: InMemoryAggregates[UnreadableDocument]
    delivered: dict[str, int] = field(default_factory=dict)  # how far each outbox went out

    def stores(self) -> dict[str, InMemoryAggregates[Any]]:
        return {
            "episodes": self.episodes,
            "remittances": self.remittances,
            "payments": self.payments,
            "unreadable": self.unreadable,
        }

    def published(self) -> list[Event]:
        return [event for store in self.stores().values() for event in store.emitted]

    async def relay(self) -> list[Envelope[Any]]:
        """Publish what the outboxes hold and deliver what payments consumes, until
        nothing new goes out (the relay and Kafka in one loop); returns what went out."""
        sent: list[Envelope[Any]] = []
        while True:
            batch = []
            for name, store in self.stores().items():
                batch += store.emitted[self.delivered.get(name, 0) :]
                self.delivered[name] = len(store.emitted)
            if not batch:
                return sent
            for event in batch:
                envelope = Envelope(data=event, source="rcm/payments")
                sent.append(envelope)
                await self.deliver(envelope)

    async def deliver(self, envelope: Envelope[Any]) -> object:
        handler = SUBSCRIPTIONS.get(type(envelope.data))
        return None if handler is None else await handler(self.handle, envelope)

    async def ask(self, request: Request, idempotency_key: str | None = None) -> Reply:
        """What Service.ask does, in one process: the owner answers (or refuses)."""
        answer = await self.deliver(Envelope(data=request, source="rcm/payments"))
        return answer if isinstance(answer, Reply) else Reply(200, answer)


def payments() -> Payments:
    episodes = InMemoryAggregates(Episode)
    remittances = InMemoryAggregates(Remittance)
    patient_payments = InMemoryAggregates(PatientPayment)
    unreadable = InMemoryAggregates(UnreadableDocument)
    handle = Handlers(episodes, remittances, patient_payments, unreadable, clock=lambda: NOW)
    return Payments(handle, episodes, remittances, patient_payments, unreadable)


def submitted(claim_id: str) -> Envelope[ClaimSubmitted]:
    episode_id = claim_id.rsplit("-", 1)[0]
    event = claim_event(episode_id).model_copy(update={"claim_id": claim_id})
    return Envelope(data=event, source="rcm/claims")


def posting(*claim_ids: str, trace: str = "CHK0001") -> Envelope[RemittancePostingRequested]:
    claims = [
        claim(claim_id, "1", [line("99213", 100_00, ("CO", "45", 20_00), n=1)])
        for claim_id in claim_ids
    ]
    (transaction,) = read(remittance(claims, trace=trace))
    request = RemittancePostingRequested(requested_by="payments-mailbox", transaction=transaction)
    return Envelope(data=request, source="rcm/payments")


def posted_claims(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.claim_id, e.posting_id) for e in events if isinstance(e, PaymentPosted)]


def test_every_consumed_type_has_its_handler() -> None:
    assert dict(SUBSCRIPTIONS) == {
        AppointmentScheduled: Handlers.appointment_scheduled,
        ClaimSubmitted: Handlers.claim_submitted,
        ClaimAwaited: Handlers.claim_awaited,
        RemittancePostingRequested: Handlers.remittance_posting_requested,
        AwaitedClaimSubmitted: Handlers.awaited_claim_submitted,
        UnpostableRetryRequested: Handlers.unpostable_retry_requested,
        PatientPaymentRequested: Handlers.patient_payment_requested,
    }


def test_every_message_that_changes_an_aggregate_is_keyed_by_it() -> None:
    request = posting(CLAIM).data
    assert request.key == request.transaction.remittance_id
    assert submitted(CLAIM).data.key == EPISODE
    awaited = ClaimAwaited(episode_id=LATE_EPISODE, claim_id=LATE, remittance_id="R1-T")
    assert awaited.key == LATE_EPISODE
    here = AwaitedClaimSubmitted(
        remittance_id="R1-T", claim_id=LATE, episode_id=LATE_EPISODE, payer_id="ACME01",
        rank="primary",
    )  # fmt: skip
    assert here.key == "R1-T"
    retry = UnpostableRetryRequested(requested_by="u", unpostable_id="R1-T-2", holder_id="R1-T")
    assert retry.key == "R1-T"


async def test_claims_are_kept_under_their_episode_once() -> None:
    p = payments()
    sent = submitted(CLAIM)
    await p.handle.claim_submitted(sent)
    await p.handle.claim_submitted(sent)  # redelivered
    await p.handle.claim_submitted(submitted(CLAIM))  # the same claim again, another id
    episode = p.episodes.states[EPISODE]
    assert [c.claim_id for c in episode.claims] == [CLAIM]
    assert p.published() == []
    assert await p.handle.known_claims([CLAIM, LATE, "junk"]) == {CLAIM: episode.claims[0]}


async def test_a_transaction_posts_its_known_claims_once_and_awaits_the_others() -> None:
    p = payments()
    await p.handle.claim_submitted(submitted(CLAIM))
    request = posting(CLAIM, LATE)
    rid = request.data.transaction.remittance_id
    answer = await p.handle.remittance_posting_requested(request)
    assert answer == {
        "remittance_id": rid, "transaction_control_number": "0001", "outcome": "posted",
        "unpostable_id": None, "claims": 2, "claims_posted": 1,
    }  # fmt: skip
    stored = p.remittances.states[rid]  # keyed by the remittance: the key of its request
    assert stored.received_at == STORED_NOW  # the injected clock, as the database keeps it
    assert stored.open_claim_ids == [LATE]
    events = p.published()
    assert posted_claims(events) == [(CLAIM, f"{rid}-1")]
    assert [type(e) for e in events] == [PaymentPosted, RemittanceProcessed, ClaimAwaited]
    assert events[-1] == ClaimAwaited(episode_id=LATE_EPISODE, claim_id=LATE, remittance_id=rid)

    # Redelivered, or asked again by the mailbox after a crash: the same answer, no change.
    again = await p.handle.remittance_posting_requested(request)
    asked_again = Envelope(data=request.data, source="rcm/payments")
    assert await p.handle.remittance_posting_requested(asked_again) == again == answer
    assert p.remittances.states[rid] == stored
    assert len(p.published()) == 3


async def test_an_835_before_its_claim_posts_when_the_claim_is_submitted() -> None:
    p = payments()
    request = posting(CLAIM, LATE)
    rid = request.data.transaction.remittance_id
    await p.handle.claim_submitted(submitted(CLAIM))
    await p.handle.remittance_posting_requested(request)
    await p.relay()  # claim-awaited reaches the late claim's episode, which waits
    assert [(a.claim_id, a.remittance_id) for a in p.episodes.states[LATE_EPISODE].awaiting] == [
        (LATE, rid)
    ]
    assert p.remittances.states[rid].open_claim_ids == [LATE]

    await p.handle.claim_submitted(submitted(LATE))
    sent = await p.relay()
    assert [type(e.data) for e in sent] == [AwaitedClaimSubmitted, PaymentPosted]
    remittance = p.remittances.states[rid]
    assert remittance.open_unpostables == remittance.open_claim_ids == []
    assert [u.status for u in remittance.unpostables] == [UnpostableStatus.POSTED]
    assert posted_claims(p.published()) == [(CLAIM, f"{rid}-1"), (LATE, f"{rid}-2")]
    assert p.episodes.states[LATE_EPISODE].awaiting == []

    # Redeliveries change nothing: each cause is applied once, each posting made once.
    for envelope in sent:
        await p.deliver(envelope)
    await p.handle.claim_submitted(submitted(LATE))
    assert await p.relay() == []
    assert posted_claims(p.published()) == [(CLAIM, f"{rid}-1"), (LATE, f"{rid}-2")]


async def test_a_claim_submitted_while_its_claim_awaited_is_on_the_way_is_posted_at_once() -> None:
    p = payments()
    request = posting(LATE)
    rid = request.data.transaction.remittance_id
    await p.handle.remittance_posting_requested(request)  # decided: LATE is unknown
    await p.handle.claim_submitted(submitted(LATE))  # arrives before claim-awaited
    assert p.episodes.states[LATE_EPISODE].awaiting == []
    sent = await p.relay()
    assert [type(e.data) for e in sent] == [
        RemittanceProcessed, ClaimAwaited, AwaitedClaimSubmitted, PaymentPosted,
    ]  # fmt: skip
    assert posted_claims(p.published()) == [(LATE, f"{rid}-1")]
    assert p.episodes.states[LATE_EPISODE].awaiting == []  # answered, not recorded
    assert p.remittances.states[rid].open_unpostables == []


async def test_two_remittances_awaiting_one_claim_are_both_posted() -> None:
    p = payments()
    first, second = posting(LATE, trace="CHK1"), posting(LATE, trace="CHK2")
    await p.handle.remittance_posting_requested(first)
    await p.handle.remittance_posting_requested(second)
    await p.relay()
    await p.handle.claim_submitted(submitted(LATE))
    await p.relay()
    assert sorted(posted_claims(p.published())) == [
        (LATE, f"{first.data.transaction.remittance_id}-1"),
        (LATE, f"{second.data.transaction.remittance_id}-1"),
    ]


async def test_a_retry_refuses_an_unknown_claim_then_posts_it_once_known() -> None:
    p = payments()
    request = posting(LATE)
    rid = request.data.transaction.remittance_id
    await p.handle.remittance_posting_requested(request)
    retry = Envelope(
        data=UnpostableRetryRequested(requested_by="biller", unpostable_id=f"{rid}-1",
                                      holder_id=rid),
        source="rcm/payments",
    )  # fmt: skip
    with pytest.raises(Conflict, match="still unknown"):
        await p.handle.unpostable_retry_requested(retry)
    with pytest.raises(NotFound):
        await p.handle.unpostable_retry_requested(
            Envelope(data=retry.data.model_copy(update={"unpostable_id": f"{rid}-9"}), source="t")
        )
    # The claim arrives; its episode's answer is still on the way when the biller retries.
    await p.handle.claim_submitted(submitted(LATE))
    answer = await p.handle.unpostable_retry_requested(
        Envelope(data=retry.data, source="rcm/payments")
    )
    assert (answer["status"], answer["posting"]["posting_id"]) == ("posted", f"{rid}-1")
    await p.relay()  # awaited-claim-submitted then finds nothing open
    assert posted_claims(p.published()) == [(LATE, f"{rid}-1")]
    again = await p.handle.unpostable_retry_requested(
        Envelope(data=retry.data, source="rcm/payments")
    )
    assert again == answer


def scheduled(episode_id: str) -> Envelope[AppointmentScheduled]:
    event = AppointmentScheduled(
        episode_id=episode_id, appointment_id="A0123456789ab", patient_id="P0123456789ab",
        scheduled_start=NOW, rendering_provider_npi="1234567893", visit_type="office-visit",
    )  # fmt: skip
    return Envelope(data=event, source="rcm/registration")


async def test_a_patient_payment_is_kept_under_its_id_and_answered_201_then_200() -> None:
    p = payments()
    await p.handle.appointment_scheduled(scheduled(EPISODE))
    body = PatientPaymentRequested(
        requested_by="api", payment_id="pay-1", episode_id=EPISODE, amount_cents=45_00,
        method=PaymentMethod.CARD,
    )  # fmt: skip
    sent = Envelope(data=body, source="rcm/payments")
    first = await p.handle.patient_payment_requested(sent)
    assert first.status == 201
    # The same request again (a retry under its Idempotency-Key): answered as it was.
    assert await p.handle.patient_payment_requested(sent) == first
    assert first.body["received_at"] == STORED_NOW
    redelivered = Envelope(data=body, source="rcm/payments")
    again = await p.handle.patient_payment_requested(redelivered)
    assert (again.status, again.body) == (200, first.body)
    assert await p.handle.patient_payment_requested(redelivered) == Reply(200, first.body)
    assert list(p.payments.states) == ["pay-1"]
    (received,) = p.published()
    assert isinstance(received, PatientPaymentReceived)
    assert received.received_at == STORED_NOW
    other = body.model_copy(update={"amount_cents": 46_00})
    with pytest.raises(Conflict):
        await p.handle.patient_payment_requested(Envelope(data=other, source="rcm/payments"))
    assert p.payments.states["pay-1"].amount_cents == 45_00


# --- the mailbox reader ----------------------------------------------------------------


class Clearinghouse:
    def __init__(self, documents: dict[str, str]) -> None:
        self.documents = documents
        self.acknowledged: list[str] = []

    async def waiting(self, *kinds: str) -> list[tuple[str, str]]:
        return [(document_id, "835") for document_id in self.documents]

    async def fetch(self, document_id: str, kind: str) -> str:
        return self.documents[document_id]

    async def acknowledge(self, document_id: str) -> None:
        del self.documents[document_id]
        self.acknowledged.append(document_id)


def x12(*claim_ids: str) -> str:
    transactions = [
        remittance(
            [claim(claim_id, "1", [line("99213", 100_00, ("CO", "45", 20_00), n=1)])],
            trace=f"CHK{n}",
            control=f"000{n}",
        )
        for n, claim_id in enumerate(claim_ids, start=1)
    ]
    document = RemittanceDocument(envelope=ENVELOPE, transactions=transactions)
    return build_835(document, check_balance=False)


async def test_the_mailbox_asks_each_remittance_owner_and_acknowledges_after_all_answers() -> None:
    p = payments()
    asked: list[tuple[str, str | None]] = []
    failing = {"R1512345678-CHK2"}

    async def ask(request: Request, idempotency_key: str | None = None) -> Reply:
        asked.append((request.key, idempotency_key))
        if request.key in failing:
            raise TransientError("no answer in time")
        return await p.ask(request, idempotency_key)

    box = Clearinghouse({"doc-1": x12(CLAIM, LATE), "doc-junk": "this is not X12"})
    mailbox = Mailbox(box, ask, p.unreadable, clock=lambda: NOW)  # type: ignore[arg-type]
    assert await mailbox.poll_once() == 1
    assert box.acknowledged == ["doc-junk"]  # doc-1 waits: one transaction was not answered
    assert asked == [
        ("R1512345678-CHK1", "doc-1:R1512345678-CHK1:0001"),
        ("R1512345678-CHK2", "doc-1:R1512345678-CHK2:0002"),
    ]
    (unreadable,) = p.unreadable.states.values()
    assert (unreadable.unpostable_id, unreadable.kind) == ("D-doc-junk", UnpostableKind.UNREADABLE)
    assert unreadable.created_at == STORED_NOW

    failing.clear()
    assert await mailbox.poll_once() == 1
    assert box.acknowledged == ["doc-junk", "doc-1"]
    assert sorted(p.remittances.states) == ["R1512345678-CHK1", "R1512345678-CHK2"]
    assert len([e for e in p.published() if isinstance(e, RemittanceProcessed)]) == 2

    retry = UnpostableRetryRequested(
        requested_by="biller", unpostable_id="D-doc-junk", holder_id="D-doc-junk"
    )
    with pytest.raises(Conflict, match="not a readable 835") as refused:
        await p.deliver(Envelope(data=retry, source="rcm/payments"))
    assert isinstance(refused.value, Refusal)
    assert p.unreadable.states["D-doc-junk"] == unreadable


async def test_a_round_stops_between_documents_once_the_mailbox_is_handed_over() -> None:
    p = payments()
    held = [True]

    async def ask(request: Request, idempotency_key: str | None = None) -> Reply:
        held[0] = False  # the hand-over starts while the first document is asked about
        return await p.ask(request, idempotency_key)

    box = Clearinghouse({"doc-1": x12(CLAIM), "doc-2": x12(LATE)})
    mailbox = Mailbox(box, ask, p.unreadable, held=lambda: held[0])  # type: ignore[arg-type]
    assert await mailbox.poll_once() == 1
    assert box.acknowledged == ["doc-1"]  # finished, then the round stopped
    assert list(box.documents) == ["doc-2"]


def test_an_unreadable_document_stored_before_its_id_was_a_field_still_loads() -> None:
    stored = {"document_id": "doc 7", "kind": "unreadable-document", "reason": "bad",
              "status": "open", "created_at": NOW}  # fmt: skip
    assert UnreadableDocument.model_validate(stored).entry().id == "D-doc-7"


async def test_an_unreadable_835_is_kept_and_logged_by_place_not_by_its_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = payments()
    garbled = x12(CLAIM).replace("*20260201~", "*20261341~", 1)  # BPR16, not a date
    assert "20261341" in garbled
    box = Clearinghouse({"doc-9": garbled})
    mailbox = Mailbox(box, p.ask, p.unreadable, clock=lambda: NOW)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO):
        await mailbox.poll_once()
    assert box.acknowledged == ["doc-9"]
    (unreadable,) = p.unreadable.states.values()
    assert unreadable.reason.startswith(
        "mailbox document doc-9 is not a readable 835: X12ValueError in BPR at segment "
    )
    assert "20261341" not in unreadable.reason
    assert "20261341" not in caplog.text


async def test_a_patient_payment_for_an_episode_not_opened_is_not_found_and_keeps_nothing() -> None:
    p = payments()
    body = PatientPaymentRequested(
        requested_by="api", payment_id="pay-1", episode_id=EPISODE, amount_cents=45_00,
        method=PaymentMethod.CARD,
    )  # fmt: skip
    # A remittance waiting for one of its claims does not make the episode known.
    awaited = ClaimAwaited(episode_id=EPISODE, claim_id=CLAIM, remittance_id="R1-T")
    await p.handle.claim_awaited(Envelope(data=awaited, source="rcm/payments"))
    with pytest.raises(NotFound):
        await p.handle.patient_payment_requested(Envelope(data=body, source="rcm/payments"))
    assert (p.payments.states, p.published()) == ({}, [])

    # Registration's appointment-scheduled opens it (keyed by the episode, kept once).
    opened = scheduled(EPISODE)
    assert opened.data.key == EPISODE
    await p.handle.appointment_scheduled(opened)
    await p.handle.appointment_scheduled(opened)
    assert p.episodes.states[EPISODE].opened
    paid = await p.handle.patient_payment_requested(Envelope(data=body, source="rcm/payments"))
    assert paid.status == 201
    (received,) = [e for e in p.published() if isinstance(e, PatientPaymentReceived)]
    assert received.episode_id == EPISODE


async def test_a_patient_payment_for_an_episode_with_a_claim_is_taken() -> None:
    p = payments()
    await p.handle.claim_submitted(submitted(CLAIM))  # registered before this field existed
    body = PatientPaymentRequested(
        requested_by="api", payment_id="pay-2", episode_id=EPISODE, amount_cents=10_00,
        method=PaymentMethod.CASH,
    )  # fmt: skip
    paid = await p.handle.patient_payment_requested(Envelope(data=body, source="rcm/payments"))
    assert paid.status == 201
