"""Appeals, deadlines and alerts on the claims side (pure decisions, an injected time)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from rcm_claims import domain
from rcm_claims.appeal_client import AppealFiling, AppealSender, Ask, PayerAnswer, Upload
from rcm_claims.documents import DocumentArchive, describe
from rcm_claims.domain import appeals, deadlines
from rcm_claims.domain.appeal_state import Appeal
from rcm_claims.domain.deadlines import DeadlineTable, PayerDeadlines
from rcm_claims.handlers import SUBSCRIPTIONS
from rcm_contracts import Request
from rcm_contracts.claims import (
    AppealDecided,
    AppealDecisionRequested,
    AppealOutcome,
    AppealRequested,
    ClaimAppealed,
    ClaimDenied,
    DeadlineApproaching,
    DeadlineKind,
    ReasonCategory,
)
from rcm_contracts.payments import PaymentPosted, PostedClaimStatus
from rcm_shared.errors import Conflict, Invalid
from rcm_shared.requests import Reply, request_id

from .builders import CONFIG, EPISODE, NOW, Memory, billed, denial_posting, submit
from .test_handlers import Setup, envelope

FIRST = f"{EPISODE}-1"

TABLE = DeadlineTable({"ACME01": PayerDeadlines(timely_filing_days=90, appeal_days=30)})
DENIED_AT = NOW + timedelta(days=1)  # when payments posted the denying remittance
READ_AT = DENIED_AT + timedelta(days=3)  # when claims applied it (a backlog)


def denial(carc: str) -> PaymentPosted:
    return denial_posting(FIRST, carc).model_copy(update={"posted_at": DENIED_AT})


def denied(carc: str) -> Memory:
    memory = billed(secondary=False)
    submit(memory)
    memory.apply(domain.payment_posted, denial(carc), CONFIG, READ_AT)
    return memory


def request(appeal_id: str = "AP-1", **fields: object) -> AppealRequested:
    values: dict[str, object] = {
        "episode_id": EPISODE,
        "requested_by": "bill",
        "claim_id": FIRST,
        "appeal_id": appeal_id,
        "reason": "records attached",
    }
    values.update(fields)
    return AppealRequested.model_validate(values)


def decision(outcome: AppealOutcome, appeal_id: str = "AP-1") -> AppealDecisionRequested:
    return AppealDecisionRequested(
        episode_id=EPISODE,
        requested_by="bill",
        claim_id=FIRST,
        appeal_id=appeal_id,
        outcome=outcome,
        reason="decision letter",
    )


def test_a_denial_is_routed_by_the_code_list_with_descriptions_and_remarks() -> None:
    memory = denied("29")
    (event,) = memory.of(ClaimDenied)
    assert isinstance(event, ClaimDenied)
    assert event.reason_category is ReasonCategory.TIMELY_FILING
    assert event.category.value == "other"  # v1 keeps its values
    assert event.reasons[0].description == "The time limit for filing has expired."
    (item,) = domain.work_items(memory.episode, "denial")
    assert item["reason_category"] == "timely-filing"


def test_a_contractual_code_beside_the_denial_does_not_decide_its_category() -> None:
    adjustments = [
        domain.remittance.Adjustment(group="CO", reason_code="45", amount_cents=1),
        domain.remittance.Adjustment(group="CO", reason_code="27", amount_cents=1),
    ]
    assert domain.remittance.reason_category(adjustments) is ReasonCategory.ELIGIBILITY


def test_an_appeal_leaves_the_queue_and_an_upheld_one_comes_back() -> None:
    memory = denied("16")
    filed = memory.result(appeals.file_appeal, request(), TABLE, DENIED_AT + timedelta(days=2))
    assert filed["status"] == "sent"
    assert filed["denial_codes"] == ["CO-16"]
    (appealed,) = memory.of(ClaimAppealed)
    assert isinstance(appealed, ClaimAppealed)
    assert appealed.deadline == DENIED_AT.date() + timedelta(days=30)
    assert domain.work_items(memory.episode) == []
    # The same appeal again changes nothing; another while it is with the payer is refused.
    assert memory.apply(appeals.file_appeal, request(), TABLE, DENIED_AT) is None
    with pytest.raises(Conflict):
        memory.apply(appeals.file_appeal, request("AP-2"), TABLE, DENIED_AT)

    memory.apply(appeals.record_decision, decision(AppealOutcome.UPHELD), DENIED_AT)
    (decided,) = memory.of(AppealDecided)
    assert isinstance(decided, AppealDecided)
    assert decided.outcome is AppealOutcome.UPHELD
    (item,) = domain.work_items(memory.episode, "denial")
    assert item["stage"] == "appeal"
    assert "upheld" in item["message"]
    assert item["reason_category"] == "documentation"
    # Recorded once; a contradicting answer is refused.
    assert memory.apply(appeals.record_decision, decision(AppealOutcome.UPHELD), NOW) is None
    with pytest.raises(Conflict):
        memory.apply(appeals.record_decision, decision(AppealOutcome.OVERTURNED), NOW)


def test_an_overturned_appeal_waits_for_the_payers_835() -> None:
    memory = denied("197")
    memory.apply(appeals.file_appeal, request(authorization_number="AUTH-1"), TABLE, DENIED_AT)
    memory.apply(appeals.record_decision, decision(AppealOutcome.OVERTURNED), DENIED_AT)
    assert domain.work_items(memory.episode) == []
    assert memory.claim(FIRST).status is domain.ClaimStatus.DENIED
    assert deadlines.open_deadlines(memory.episode, memory.claim(FIRST), TABLE) == {}


def test_an_appeal_past_its_deadline_is_refused_with_the_reason() -> None:
    memory = denied("16")
    late = DENIED_AT + timedelta(days=31)
    with pytest.raises(Invalid, match=r"deadline .* passed 1 days ago") as refused:
        memory.apply(appeals.file_appeal, request(), TABLE, late)
    assert "30 days" in refused.value.message
    memory.apply(appeals.file_appeal, request(), TABLE, late - timedelta(days=1))  # the last day


@pytest.mark.parametrize("carc", ["97"])
def test_a_coding_denial_is_not_appealed_but_recoded(carc: str) -> None:
    memory = denied(carc)
    with pytest.raises(Conflict, match="recoding"):
        memory.apply(appeals.file_appeal, request(), TABLE, DENIED_AT)


def test_a_claim_not_denied_cannot_be_appealed() -> None:
    memory = billed(secondary=False)
    submit(memory)
    with pytest.raises(Conflict):
        memory.apply(appeals.file_appeal, request(), TABLE, NOW)
    with pytest.raises(Conflict, match="line L9 was not denied"):
        memory.apply(appeals.file_appeal, request(line_id="L9"), TABLE, NOW)


def test_timely_filing_matters_until_the_payer_has_the_claim() -> None:
    memory = billed(secondary=False)
    claim = memory.claim(FIRST)
    served = deadlines.service_date(memory.episode)
    assert served is not None
    filing = deadlines.open_deadlines(memory.episode, claim, TABLE)
    assert filing == {DeadlineKind.TIMELY_FILING: served + timedelta(days=90)}
    view = deadlines.deadlines_view(memory.episode, claim, TABLE, served)
    assert view["timely-filing"] == {
        "deadline": (served + timedelta(days=90)).isoformat(),
        "days_left": 90,
        "open": True,
    }
    submit(memory)
    # Submitted, not yet accepted: still open; a denial is the payer's answer.
    memory.apply(domain.payment_posted, denial("16"), CONFIG, READ_AT)
    kinds = deadlines.open_deadlines(memory.episode, memory.claim(FIRST), TABLE)
    assert set(kinds) == {DeadlineKind.APPEAL}


def test_an_alert_is_raised_once_within_the_warning_days() -> None:
    memory = denied("16")
    deadline = DENIED_AT.date() + timedelta(days=30)
    table = DeadlineTable(TABLE.terms, warning_days=7)
    early = DENIED_AT + timedelta(days=22)  # 8 days left
    assert deadlines.due_alerts(memory.episode, table, early.date()) == []
    with pytest.raises(Conflict, match="8 days away"):
        memory.apply(deadlines.raise_alert, FIRST, DeadlineKind.APPEAL, table, early)
    near = early + timedelta(days=1)
    due = deadlines.due_alerts(memory.episode, table, near.date())
    assert due == [(FIRST, DeadlineKind.APPEAL)]
    raised = memory.result(deadlines.raise_alert, FIRST, DeadlineKind.APPEAL, table, near)
    assert raised["raised"] is True
    (alert,) = memory.of(DeadlineApproaching)
    assert isinstance(alert, DeadlineApproaching)
    assert (alert.deadline, alert.days_left) == (deadline, 7)
    assert deadlines.due_alerts(memory.episode, table, near.date()) == []
    assert memory.apply(deadlines.raise_alert, FIRST, DeadlineKind.APPEAL, table, near) is None


def test_no_appeal_deadline_once_the_claim_is_closed() -> None:
    memory = denied("27")
    memory.apply(domain.accept_denial, FIRST, "bill", "no coverage", NOW)
    claim = memory.claim(FIRST)
    assert deadlines.open_deadlines(memory.episode, claim, TABLE) == {}
    assert deadlines.appeal_deadline(claim, TABLE) == date(2026, 3, 3) + timedelta(days=30)


def test_a_reversal_posting_keeps_its_category() -> None:
    memory = denied("16")
    reversal = denial_posting(FIRST, "16", "R3-T3-1", PostedClaimStatus.REVERSED)
    memory.apply(domain.payment_posted, reversal, CONFIG, NOW)
    assert memory.claim(FIRST).status is domain.ClaimStatus.DENIED


# --- the command across a crash: filed, sent to the payer, answer not recorded ----------


class Died(Exception):
    """The API process stopped here."""


class Payer(AppealSender):
    """Answers each appeal id the same every time, like a payer; reads what it is sent."""

    def __init__(self, archive: DocumentArchive) -> None:
        super().__init__("http://payer.invalid", archive)
        self.asked: list[str] = []
        self.received: list[bytes] = []

    async def send(
        self, claim_id: str, payer_id: str, pccn: str | None, appeal: Appeal
    ) -> PayerAnswer:
        self.asked.append(appeal.appeal_id)
        self.received += [self.archive.content(d) for d in appeal.documents]
        return PayerAnswer(AppealOutcome.OVERTURNED, "CO-16: the documents support the claim")


def asking(setup: Setup, dies_on: type[Request] | None = None) -> Ask:
    """The owner's answers as Service.ask gives them (the request id from the key)."""

    async def ask(request: Request, key: str | None) -> Reply:
        if isinstance(request, dies_on or ()):
            raise Died
        handled = SUBSCRIPTIONS[type(request)]
        answer = await handled(
            setup.handlers, envelope(request, request_id(request.event_type, key))
        )
        return answer if isinstance(answer, Reply) else Reply(200, answer)

    return ask


async def test_a_retry_with_the_same_key_finishes_an_appeal_the_payer_answered_unrecorded(
    tmp_path: Path,
) -> None:
    setup = Setup()
    await setup.bill()
    await setup.submit()
    await SUBSCRIPTIONS[PaymentPosted](setup.handlers, envelope(denial("16")))
    archive = DocumentArchive(tmp_path)
    payer = Payer(archive)
    record = b"Progress note: the visit as documented."
    upload = Upload(record, describe(record, "text/plain", "progress note"))
    filed = request("AP-K1", documents=[upload.document])

    crashing = AppealFiling(
        asking(setup, dies_on=AppealDecisionRequested), setup.episodes.get, payer
    )
    with pytest.raises(Died):
        await crashing.file(filed, [upload], "key-1")
    assert payer.asked == ["AP-K1"]
    assert payer.received == [record]
    (appeal,) = setup.episode().claim(FIRST).appeals
    assert appeal.status == "sent"  # the payer's answer is not recorded

    restarted = AppealFiling(asking(setup), setup.episodes.get, payer)
    answer = await restarted.file(filed, [upload], "key-1")
    assert (answer["appeal_id"], answer["status"]) == ("AP-K1", "overturned")
    assert payer.asked == ["AP-K1", "AP-K1"]  # asked again: the same appeal, the same answer
    (appeal,) = setup.episode().claim(FIRST).appeals
    assert (appeal.status, appeal.decision) == ("overturned", answer["decision"])
    assert len(setup.of(ClaimAppealed)) == 1
    assert len(setup.of(AppealDecided)) == 1

    again = await restarted.file(filed, [upload], "key-1")
    assert again == answer
    assert payer.asked == ["AP-K1", "AP-K1"]  # answered already: the payer is not asked


async def test_a_refused_appeal_keeps_no_document(tmp_path: Path) -> None:
    setup = Setup()
    await setup.bill()
    await setup.submit()  # submitted, not denied: nothing to appeal
    archive = DocumentArchive(tmp_path)
    record = b"%PDF-1.4 a letter"
    upload = Upload(record, describe(record, "application/pdf"))
    filing = AppealFiling(asking(setup), setup.episodes.get, Payer(archive))
    with pytest.raises(Conflict):
        await filing.file(request("AP-K2", documents=[upload.document]), [upload], "key-2")
    assert archive.find(upload.document.document_id) is None
    assert not archive.folder.exists()
