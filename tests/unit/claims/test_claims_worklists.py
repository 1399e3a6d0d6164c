"""The billers' worklists in claims: A/R follow-up rows, follow-ups, assignment, history."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from rcm_claims import domain
from rcm_claims.domain import followup, history
from rcm_claims.domain.deadlines import DeadlineTable
from rcm_claims.handlers import SUBSCRIPTIONS, Handlers
from rcm_contracts import Event
from rcm_contracts.claims import (
    AcknowledgmentRequested,
    AckStage,
    ClaimCorrectionRequested,
    ClaimVerdict,
    FollowUpRequested,
    WorkAssignmentRequested,
)
from rcm_shared.aggregates import InMemoryAggregates
from rcm_shared.envelope import Envelope
from rcm_shared.errors import Conflict
from rcm_shared.requests import Reply

from . import builders as b

EPISODE = b.EPISODE
FIRST, SECOND = f"{EPISODE}-1", f"{EPISODE}-2"
SENT = b.NOW + timedelta(minutes=5)
TABLE = DeadlineTable()


def envelope(data: Event, envelope_id: str | None = None) -> Envelope[Any]:
    if envelope_id is None:
        return Envelope(data=data, source="rcm/test")
    return Envelope(data=data, source="rcm/test", id=envelope_id)


class Setup:
    def __init__(self) -> None:
        self.episodes: InMemoryAggregates[domain.Episode] = InMemoryAggregates(domain.Episode)
        self.now = SENT
        self.handlers = Handlers(self.episodes, b.CONFIG, clock=lambda: self.now)

    async def submitted(self, icn: int = 42) -> None:
        for event in (b.coded(), b.verified(b.PRIMARY_COVERAGE)):
            await SUBSCRIPTIONS[type(event)](self.handlers, envelope(event))
        for event in (b.coverages(b.PRIMARY_COVERAGE), b.registered()):
            await SUBSCRIPTIONS[type(event)](self.handlers, envelope(event))
        await self.send(FIRST, icn)

    async def send(self, claim_id: str, icn: int) -> None:
        mark = partial(
            domain.mark_sending,
            numbers={claim_id: "0001"},
            interchange_control_number=icn,
            now=self.now,
        )
        await self.episodes.apply(EPISODE, mark)
        record = partial(
            domain.mark_submitted, interchange_control_number=icn, batch_id="B1", now=self.now
        )
        await self.episodes.apply(EPISODE, record)

    @property
    def episode(self) -> domain.Episode:
        return self.episodes.states[EPISODE]

    def row(self, claim_id: str) -> dict[str, Any]:
        (found,) = [r for r in self.episode.ar_rows if r["claim_id"] == claim_id]
        return found

    async def post(self, event: Event) -> None:
        await self.handlers.payment_posted(envelope(event))

    async def follow_up(self, note_id: str, on: date | None = None, claim_id: str = FIRST) -> Reply:
        request = FollowUpRequested(
            episode_id=EPISODE,
            requested_by="biller-1",
            claim_id=claim_id,
            note_id=note_id,
            next_action_on=on,
        )
        return await self.handlers.follow_up_requested(envelope(request))

    async def assign(self, to: str | None, claim_id: str = FIRST) -> dict[str, Any]:
        request = WorkAssignmentRequested(
            episode_id=EPISODE, requested_by="lead-1", claim_id=claim_id, assigned_to=to
        )
        return await self.handlers.work_assignment_requested(envelope(request))

    async def acknowledge(self, document_id: str, accepted: bool = True) -> None:
        request = AcknowledgmentRequested(
            episode_id=EPISODE,
            requested_by="claims-mailbox",
            document_id=document_id,
            stage=AckStage.PAYER,
            verdicts=[
                ClaimVerdict(
                    claim_id=FIRST,
                    accepted=accepted,
                    status_codes=[] if accepted else ["A7:21"],
                    payer_claim_control_number="PCN1",
                )
            ],
        )
        await self.handlers.acknowledgment_requested(envelope(request))


# --- A/R rows ---------------------------------------------------------------------------


async def test_a_claim_is_on_the_ar_list_once_sent_and_owes_its_charge() -> None:
    setup = Setup()
    for event in (b.coded(), b.verified(b.PRIMARY_COVERAGE), b.coverages(b.PRIMARY_COVERAGE)):
        await SUBSCRIPTIONS[type(event)](setup.handlers, envelope(event))
    await setup.handlers.patient_registered(envelope(b.registered()))
    assert setup.episode.claims
    assert not setup.episode.has_open_ar  # queued: not A/R yet
    await setup.send(FIRST, 42)
    row = setup.row(FIRST)
    assert setup.episode.has_open_ar
    assert row["first_submitted_at"] == SENT.isoformat()
    assert row["payer_id"] == "ACME01"
    assert row["outstanding_cents"] == setup.episode.claim(FIRST).total_charge_cents == 17500
    assert (row["status"], row["last_action"]) == ("submitted", "submitted")


async def test_outstanding_is_the_charge_less_what_the_payer_paid_and_adjusted() -> None:
    setup = Setup()
    await setup.submitted()
    await setup.post(b.split_posting(FIRST, "R1-T1-1", 10000, 6000))  # CO-45 4000
    row = setup.row(FIRST)
    assert (row["paid_cents"], row["adjusted_cents"]) == (6000, 4000)
    assert row["outstanding_cents"] == 17500 - 10000
    assert row["status"] == "partially-paid"


async def test_a_paid_claim_leaves_the_list() -> None:
    setup = Setup()
    await setup.submitted()
    await setup.post(b.paid_posting(FIRST))
    assert setup.episode.claim(FIRST).closed
    assert not setup.episode.has_open_ar


async def test_an_open_denial_still_owes_its_charge_and_shows_its_appeal_deadline() -> None:
    setup = Setup()
    await setup.submitted()
    await setup.post(b.denial_posting(FIRST, "16"))
    (listed,) = followup.followup_list(setup.episode.ar_rows, TABLE, b.NOW.date())
    assert listed["outstanding_cents"] == 17500
    denied = (b.NOW + timedelta(days=14)).date()
    assert listed["next_deadline"] == {
        "kind": "appeal",
        "deadline": (denied + timedelta(days=180)).isoformat(),  # ACME01's appeal days
        "days_left": 14 + 180,
    }


async def test_a_corrected_claim_keeps_the_age_of_the_claim_it_replaces() -> None:
    setup = Setup()
    await setup.submitted()
    await setup.post(b.denial_posting(FIRST, "16"))
    setup.now = SENT + timedelta(days=20)
    request = ClaimCorrectionRequested(
        episode_id=EPISODE, requested_by="biller-1", claim_id=FIRST, note="fixed"
    )
    await setup.handlers.claim_correction_requested(envelope(request))
    rows = setup.episode.ar_rows
    assert [r["claim_id"] for r in rows] == [SECOND]  # the replaced claim is closed
    assert rows[0]["first_submitted_at"] == SENT.isoformat()
    assert rows[0]["last_action"] == "queued"


def row(claim_id: str, payer: str, first: datetime, outstanding: int) -> dict[str, Any]:
    return {
        "claim_id": claim_id,
        "episode_id": EPISODE,
        "payer_id": payer,
        "first_submitted_at": first.isoformat(),
        "outstanding_cents": outstanding,
        "assigned_to": None,
        "service_date": None,
        "filing_pending": False,
        "denied_on": None,
        "appealable": False,
        "follow_up": None,
    }


@pytest.mark.parametrize(
    ("age", "bucket"),
    [(0, "0-30"), (30, "0-30"), (31, "31-60"), (90, "61-90"), (120, "91-120"), (121, "120+")],
)
def test_ages_fall_in_the_hfma_buckets(age: int, bucket: str) -> None:
    assert followup.bucket_of(age) == bucket


def test_the_list_filters_by_payer_age_and_dollars_and_sorts_either_way() -> None:
    today = date(2026, 6, 1)
    at = datetime(2026, 6, 1, 12, tzinfo=b.NOW.tzinfo)
    rows = [
        row("A-1", "ACME01", at - timedelta(days=10), 50000),
        row("B-1", "ACME01", at - timedelta(days=100), 2000),
        row("C-1", "SUMMIT", at - timedelta(days=45), 90000),
    ]
    by_dollars = followup.followup_list(rows, TABLE, today)
    assert [r["claim_id"] for r in by_dollars] == ["C-1", "A-1", "B-1"]
    assert [r["bucket"] for r in by_dollars] == ["31-60", "0-30", "91-120"]
    by_age = followup.followup_list(rows, TABLE, today, sort="age", limit=2)
    assert [r["claim_id"] for r in by_age] == ["B-1", "C-1"]
    acme = followup.followup_list(rows, TABLE, today, payer_id="ACME01", min_outstanding_cents=3000)
    assert [r["claim_id"] for r in acme] == ["A-1"]
    old = followup.followup_list(rows, TABLE, today, min_age_days=45)
    assert {r["claim_id"] for r in old} == {"B-1", "C-1"}
    assert "filing_pending" not in old[0]  # the deadline inputs stay inside


# --- follow-ups and assignment ------------------------------------------------------------


async def test_a_follow_up_shows_on_the_row_and_the_same_note_again_changes_nothing() -> None:
    setup = Setup()
    await setup.submitted()
    emitted = len(setup.episodes.emitted)
    reply = await setup.follow_up("FU-1", date(2026, 4, 1))
    assert reply == Reply(
        201, {"claim_id": FIRST, "note_id": "FU-1", "next_action_on": "2026-04-01"}
    )
    assert len(setup.episodes.emitted) == emitted  # nothing to tell other services
    follow_up = setup.row(FIRST)["follow_up"]
    assert (follow_up["note_id"], follow_up["next_action_on"]) == ("FU-1", "2026-04-01")
    assert setup.row(FIRST)["last_action"] == "follow-up noted"
    before = setup.episode
    await setup.follow_up("FU-1", date(2026, 4, 1))
    assert setup.episode == before


async def test_a_closed_claim_takes_no_follow_up() -> None:
    setup = Setup()
    await setup.submitted()
    await setup.post(b.paid_posting(FIRST))
    with pytest.raises(Conflict):
        await setup.follow_up("FU-2")


async def test_a_work_item_is_assigned_shown_in_the_queue_and_unassigned() -> None:
    setup = Setup()
    await setup.submitted()
    with pytest.raises(Conflict, match="no open work item"):
        await setup.assign("biller-2")
    await setup.post(b.denial_posting(FIRST, "16"))
    answer = await setup.assign("biller-2")
    assert answer == {"claim_id": FIRST, "kind": "denial", "assigned_to": "biller-2"}
    (item,) = domain.work_items(setup.episode)
    assert item["assigned_to"] == "biller-2"
    assert setup.row(FIRST)["assigned_to"] == "biller-2"
    await setup.assign(None)
    (item,) = domain.work_items(setup.episode)
    assert item["assigned_to"] is None
    actions = [entry.action for entry in setup.episode.claim(FIRST).audit]
    assert actions[-2:] == ["work assigned to biller-2", "work unassigned"]


# --- history ------------------------------------------------------------------------------


async def test_the_history_lists_the_837p_its_answers_and_the_835_in_time_order() -> None:
    setup = Setup()
    await setup.submitted(icn=42)
    setup.now = SENT + timedelta(hours=1)
    await setup.acknowledge("MB-277-1")
    await setup.acknowledge("MB-277-1")  # the same document handed over again
    await setup.post(b.paid_posting(FIRST))  # posted_at: NOW + 14 days
    seen = history.claim_history(setup.episode, FIRST)
    kinds = [(d["kind"], d["document_id"], d["outcome"]) for d in seen["documents"]]
    assert kinds == [
        ("837P", "837P.000000042", "submitted"),
        ("277CA", "277CA.MB-277-1", "accepted"),
        ("835", "R000000001-T1", "paid"),
    ]
    first = seen["documents"][0]
    assert first["control_numbers"] == {
        "interchange": "000000042",
        "transaction_set": "0001",
        "batch_id": "B1",
    }
    assert first["href"] == f"/claims/{FIRST}/documents/837P.000000042"
    assert seen["documents"][1]["control_numbers"]["payer_claim_control_number"] == "PCN1"
    assert seen["documents"][2]["archived_by"] == "payments"


async def test_the_history_follows_the_claim_line_through_a_correction() -> None:
    setup = Setup()
    await setup.submitted(icn=42)
    await setup.post(b.denial_posting(FIRST, "16"))
    setup.now = SENT + timedelta(days=20)
    request = ClaimCorrectionRequested(
        episode_id=EPISODE, requested_by="biller-1", claim_id=FIRST, note="fixed"
    )
    await setup.handlers.claim_correction_requested(envelope(request))
    await setup.send(SECOND, 43)
    for claim_id in (FIRST, SECOND):  # either claim's history is the whole line
        seen = history.claim_history(setup.episode, claim_id)
        assert seen["claims"] == [FIRST, SECOND]
        sent = [(d["claim_id"], d["document_id"]) for d in seen["documents"] if d["kind"] == "837P"]
        assert sent == [(FIRST, "837P.000000042"), (SECOND, "837P.000000043")]


async def test_an_answer_is_recorded_on_the_claim_even_when_it_changes_nothing_else() -> None:
    setup = Setup()
    await setup.submitted()
    await setup.post(b.paid_posting(FIRST))  # the 835 overtook the 277CA
    await setup.acknowledge("MB-277-2", accepted=True)
    (answer,) = setup.episode.claim(FIRST).x12_documents
    assert (answer.kind, answer.document_id, answer.accepted) == ("277CA", "MB-277-2", True)


def test_only_claims_archived_kinds_are_read_from_claims_archive() -> None:
    assert history.archived_reference("837P.000000042") == ("837P", "000000042")
    assert history.archived_reference("999.MB-1") == ("999", "MB-1")
    assert history.archived_reference("R000000001-T1") is None
    assert history.remittance_of("R000000001-T1-3") == "R000000001-T1"
