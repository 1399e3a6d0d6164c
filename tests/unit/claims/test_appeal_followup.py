"""Appeals the payer does not answer (overdue, resent) and appeals of one line."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rcm_claims import domain
from rcm_claims.appeal_client import AppealFiling, AppealSender, PayerAnswer
from rcm_claims.documents import DocumentArchive
from rcm_claims.domain import appeals, deadlines
from rcm_claims.domain.appeal_state import Appeal
from rcm_claims.domain.deadlines import DeadlineTable, PayerDeadlines
from rcm_contracts.claims import (
    AppealOutcome,
    AppealOverdue,
    AppealOverdueRequested,
    AppealResendRequested,
    AppealResent,
)
from rcm_contracts.payments import PaymentPosted
from rcm_shared.errors import Conflict, Invalid

from .builders import CONFIG, EPISODE, NOW, Memory, adjustment, billed, paid_posting, submit
from .test_appeals import FIRST, asking, decision, denial, denied, request
from .test_handlers import Setup, envelope

TABLE = DeadlineTable(
    {"ACME01": PayerDeadlines(timely_filing_days=90, appeal_days=30, appeal_answer_days=20)}
)
FILED_AT = NOW + timedelta(days=5)
DUE = FILED_AT.date() + timedelta(days=20)  # the payer's answer is due by then
LATE = datetime.combine(DUE + timedelta(days=1), FILED_AT.timetz())


def appealed(carc: str = "16") -> Memory:
    memory = denied(carc)
    memory.apply(appeals.file_appeal, request(), TABLE, FILED_AT)
    return memory


def overdue_request(appeal_id: str = "AP-1") -> AppealOverdueRequested:
    return AppealOverdueRequested(
        episode_id=EPISODE, requested_by="deadline-watch", claim_id=FIRST, appeal_id=appeal_id
    )


def resend_request(appeal_id: str = "AP-1") -> AppealResendRequested:
    return AppealResendRequested(
        episode_id=EPISODE, requested_by="bill", claim_id=FIRST, appeal_id=appeal_id
    )


def test_an_unanswered_appeal_is_overdue_the_day_after_the_payers_answer_deadline() -> None:
    memory = appealed()
    assert memory.claim(FIRST).work is None  # with the payer
    on_the_day = datetime.combine(DUE, FILED_AT.timetz())
    assert deadlines.overdue_appeals(memory.episode, TABLE, DUE) == []
    with pytest.raises(Conflict, match=f"answer is due by {DUE}"):
        memory.apply(appeals.mark_overdue, overdue_request(), TABLE, on_the_day)

    (found,) = deadlines.overdue_appeals(memory.episode, TABLE, LATE.date())
    assert (found[0], found[1].appeal_id) == (FIRST, "AP-1")
    view = memory.result(appeals.mark_overdue, overdue_request(), TABLE, LATE)
    assert (view["overdue"], view["status"]) == (True, "sent")
    assert [step["action"] for step in view["history"]] == ["filed", "overdue"]
    work = memory.claim(FIRST).work
    assert work is not None
    assert (work.kind, work.stage, work.status_codes) == ("denial", "appeal-overdue", ["CO-16"])
    assert "AP-1" in work.message
    assert str(DUE) in work.message
    (event,) = memory.of(AppealOverdue)
    assert isinstance(event, AppealOverdue)
    assert (event.appeal_id, event.answer_deadline, event.sent_at) == ("AP-1", DUE, FILED_AT)
    assert [i["claim_id"] for i in domain.work_items(memory.episode, "denial")] == [FIRST]

    # Flagged once: the watch finds nothing more, and a repeated request changes nothing.
    assert deadlines.overdue_appeals(memory.episode, TABLE, LATE.date()) == []
    assert memory.apply(appeals.mark_overdue, overdue_request(), TABLE, LATE) is None
    assert len(memory.of(AppealOverdue)) == 1


def test_a_resent_appeal_leaves_the_queue_and_its_answer_clock_starts_again() -> None:
    memory = appealed()
    memory.apply(appeals.mark_overdue, overdue_request(), TABLE, LATE)
    view = memory.result(appeals.resend, resend_request(), TABLE, LATE)
    assert (view["sends"], view["overdue"], view["status"]) == (2, False, "sent")
    assert [(s["action"], s["by"]) for s in view["history"]][-1] == ("resent", "bill")
    assert memory.claim(FIRST).work is None
    (resent,) = memory.of(AppealResent)
    assert isinstance(resent, AppealResent)
    assert (resent.sends, resent.answer_deadline) == (2, LATE.date() + timedelta(days=20))
    assert resent.documents == memory.claim(FIRST).appeals[0].documents

    still_due = LATE.date() + timedelta(days=20)
    assert deadlines.overdue_appeals(memory.episode, TABLE, still_due) == []
    again = still_due + timedelta(days=1)
    assert len(deadlines.overdue_appeals(memory.episode, TABLE, again)) == 1


def test_an_answered_appeal_is_not_resent_nor_overdue() -> None:
    memory = appealed()
    memory.apply(appeals.record_decision, decision(AppealOutcome.UPHELD), LATE)
    with pytest.raises(Conflict, match="upheld: nothing to resend"):
        memory.apply(appeals.resend, resend_request(), TABLE, LATE)
    with pytest.raises(Conflict, match="upheld already"):
        memory.apply(appeals.mark_overdue, overdue_request(), TABLE, LATE)
    assert deadlines.overdue_appeals(memory.episode, TABLE, LATE.date()) == []


def test_an_answer_after_the_deadline_replaces_the_overdue_item() -> None:
    memory = appealed()
    memory.apply(appeals.mark_overdue, overdue_request(), TABLE, LATE)
    memory.apply(appeals.record_decision, decision(AppealOutcome.OVERTURNED), LATE)
    assert memory.claim(FIRST).work is None  # its 835 follows
    (appeal,) = memory.claim(FIRST).appeals
    assert (appeal.overdue, appeal.history[-1].action) == (False, "overturned")


# --- appeals of one line ---------------------------------------------------------------

LINE_2 = f"{EPISODE}-L2"


def line_denied(carc: str) -> Memory:
    """Paid, line 2 (25.00) denied for `carc`: the claim closes as paid."""
    memory = billed(secondary=False)
    submit(memory)
    posting = paid_posting(FIRST, patient_share=False)
    adjustments = [a for a in posting.adjustments if a.line_id != LINE_2]
    adjustments.append(adjustment("CO", carc, 2500, LINE_2))
    paid = posting.charge_cents - sum(a.amount_cents for a in adjustments)
    posting = posting.model_copy(update={"adjustments": adjustments, "paid_cents": paid})
    memory.apply(domain.payment_posted, PaymentPosted.model_validate(posting), CONFIG, NOW)
    return memory


def test_a_line_denied_on_a_paid_claim_is_appealed_with_its_own_codes_and_deadline() -> None:
    memory = line_denied("50")
    claim = memory.claim(FIRST)
    assert (claim.closed, claim.outcome) == (True, "paid")
    posted = NOW + timedelta(days=14)  # paid_posting's posted_at
    assert deadlines.line_appeal_deadline(claim, LINE_2, TABLE) == posted.date() + timedelta(30)
    view = memory.result(appeals.file_appeal, request(line_id=LINE_2), TABLE, posted)
    assert (view["line_id"], view["denial_codes"], view["status"]) == (LINE_2, ["CO-50"], "sent")

    late = posted + timedelta(days=31)
    with pytest.raises(Conflict, match="an appeal is with the payer already"):
        memory.apply(appeals.file_appeal, request("AP-2", line_id=LINE_2), TABLE, late)
    with pytest.raises(Conflict, match=f"line {EPISODE}-L1 was not denied"):
        memory.apply(appeals.file_appeal, request("AP-3", line_id=f"{EPISODE}-L1"), TABLE, late)


def test_a_line_past_its_appeal_deadline_or_denied_for_coding_is_refused() -> None:
    memory = line_denied("50")
    late = NOW + timedelta(days=14 + 31)
    with pytest.raises(Invalid, match=r"deadline .* passed 1 days ago"):
        memory.apply(appeals.file_appeal, request(line_id=LINE_2), TABLE, late)
    coding = line_denied("97")
    with pytest.raises(Conflict, match="denied for coding"):
        coding.apply(appeals.file_appeal, request(line_id=LINE_2), TABLE, NOW)


# --- the resend command: the same appeal to the payer, recorded once per key ----------


class SilentThenAnswering(AppealSender):
    """Receives without deciding until told to answer; records what it was sent."""

    def __init__(self, archive: DocumentArchive) -> None:
        super().__init__("http://payer.invalid", archive)
        self.sent: list[tuple[str, list[str]]] = []
        self.answering = False

    async def send(
        self, claim_id: str, payer_id: str, pccn: str | None, appeal: Appeal
    ) -> PayerAnswer | None:
        self.sent.append((appeal.appeal_id, [d.document_id for d in appeal.documents]))
        if not self.answering:
            return None
        return PayerAnswer(AppealOutcome.OVERTURNED, "CO-16: the documents support the claim")


async def test_a_resend_sends_the_same_appeal_once_per_key_and_records_the_answer(
    tmp_path: Path,
) -> None:
    setup = Setup()
    await setup.bill()
    await setup.submit()
    await setup.handlers.payment_posted(envelope(denial("16")))
    payer = SilentThenAnswering(DocumentArchive(tmp_path))
    filing = AppealFiling(asking(setup), setup.episodes.get, payer)
    filed = await filing.file(request("AP-R"), [], "key-file")
    assert filed["status"] == "sent"  # received, not decided

    first = await filing.resend(resend_request("AP-R"), "key-resend-1")
    assert (first["sends"], first["status"]) == (2, "sent")
    payer.answering = True
    retried = await filing.resend(resend_request("AP-R"), "key-resend-1")  # the same request
    assert (retried["sends"], retried["status"]) == (2, "overturned")
    assert [appeal_id for appeal_id, _ in payer.sent] == ["AP-R", "AP-R", "AP-R"]
    assert len(setup.of(AppealResent)) == 1
    (appeal,) = setup.episode().claim(FIRST).appeals
    assert [step.action for step in appeal.history] == ["filed", "resent", "overturned"]

    with pytest.raises(Conflict):
        await filing.resend(resend_request("AP-R"), "key-resend-2")
    assert len(payer.sent) == 3


def test_an_appeal_of_a_claim_closed_since_is_neither_overdue_nor_resent() -> None:
    memory = appealed()
    memory.apply(domain.accept_denial, FIRST, "bill", "not worth it", LATE)
    assert deadlines.overdue_appeals(memory.episode, TABLE, LATE.date()) == []
    assert memory.episode.has_pending_appeal is False
    with pytest.raises(Conflict, match="no answer awaited"):
        memory.apply(appeals.mark_overdue, overdue_request(), TABLE, LATE)
    with pytest.raises(Conflict, match="nothing to resend"):
        memory.apply(appeals.resend, resend_request(), TABLE, LATE)


def test_a_line_appeal_on_a_paid_claim_is_followed_up_in_the_queue() -> None:
    memory = line_denied("50")
    posted = NOW + timedelta(days=14)
    memory.apply(appeals.file_appeal, request(line_id=LINE_2), TABLE, posted)
    assert memory.episode.has_pending_appeal is True
    late = posted + timedelta(days=21)
    memory.apply(appeals.mark_overdue, overdue_request(), TABLE, late)
    (item,) = domain.work_items(memory.episode, "denial")
    assert (item["stage"], item["status_codes"]) == ("appeal-overdue", ["CO-50"])
    memory.apply(appeals.resend, resend_request(), TABLE, late)
    assert domain.work_items(memory.episode) == []
