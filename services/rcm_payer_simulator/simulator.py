"""The clearinghouse and its payers at work: what comes in, what is due, what goes out.

Everything lives in memory (members' deductibles, claims, pending acknowledgments and
remittances, mailboxes); a restart forgets it, but for the answers to appeals, which are
kept in a file (appeals.AnswerBook) so that a resent appeal is answered the same. Work
happens in plain methods without awaits, so requests and the background tick never
interleave half-way.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from rcm_shared.clearinghouse import Direction, Kind, X12Archive
from rcm_shared.redact import describe
from rcm_x12 import (
    AcknowledgmentDocument,
    ClaimAcknowledgment,
    ClaimAcknowledgmentDocument,
    ClaimAcknowledgmentEntry,
    ClaimBatch,
    Coverage,
    EligibilityInquiry,
    EligibilityResponse,
    EligibilityResponseDocument,
    Envelope,
    ImplementationAcknowledgment,
    ProfessionalClaim,
    Rejection,
    RemittanceClaim,
    RemittanceDocument,
    RemittancePayee,
    StatusCode,
    TransactionSetResponse,
    build_271,
    build_277ca,
    build_835,
    build_999,
    check_835_balance,
    parse_270,
    parse_837p,
)

from . import adjudication as rules
from .appeals import AnswerBook, AppealDecision, AppealRequest, Received
from .appeals import decide as decide_appeal
from .mailbox import Document, Mailbox
from .payers import PAYERS, PayerInfo
from .rules import MODIFIER_MISSING_REMARK

log = logging.getLogger(__name__)

ACCEPTED = StatusCode(category="A2", code="20", entity="PR")
CONTROL_LIMIT = 999_999_999
_RemitGroup = tuple[str, str, Literal["T", "P"], str]  # partner, our id, usage, payer
EligibilityOutcome = Literal["active", "inactive", "not-found", "unknown-payer"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _control_base() -> int:
    """Interchange numbers (and document ids) stay distinct across restarts."""
    return int(time.time() * 1000) % 900_000_000 + 1


@dataclass
class _Claim:
    """An accepted claim, from its 277CA to its adjudication (and maybe its reversal)."""

    claim: ProfessionalClaim
    payer: PayerInfo
    pccn: str
    partner: str
    our_id: str
    usage: Literal["T", "P"]
    due: float
    replaces: _Claim | None = None
    replaced: bool = False
    remitted: RemittanceClaim | None = None
    reversed: bool = False
    overturned: bool = False  # an appeal won: reprocessed without the denial
    overturned_lines: set[str] = field(default_factory=set)  # lines' appeals won
    reprocess: bool = False  # an appeal won since its last 835: reverse and pay again
    line_denials: dict[int, rules.Denial] | None = None  # what it was adjudicated with
    deductible_applied_cents: int = 0
    out_of_pocket_applied_cents: int = 0

    @property
    def member(self) -> str:
        return rules.member_key(self.payer.payer_id, self.claim.subscriber.member_id)


@dataclass
class _Batch:
    batch_id: str
    batch: ClaimBatch
    received: date
    due: float


@dataclass
class Stats:
    eligibility: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    claims_received: int = 0
    duplicates: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # by STC category:code
    adjudicated: int = 0
    paid: int = 0
    denied: Counter[str] = field(default_factory=Counter)  # by CARC
    denied_lines: Counter[str] = field(default_factory=Counter)  # on paid claims, by CARC
    reversed: int = 0
    paid_cents: int = 0
    reversed_cents: int = 0
    patient_responsibility_cents: int = 0
    remittances: int = 0
    payments_cents: int = 0  # the sum of the 835s' BPR02
    unbalanced: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "eligibility": dict(self.eligibility),
            "batches": self.batches,
            "claims_received": self.claims_received,
            "duplicates": self.duplicates,
            "accepted": self.accepted,
            "rejected": sum(self.rejected.values()),
            "rejected_by_status": dict(self.rejected),
            "adjudicated": self.adjudicated,
            "paid": self.paid,
            "denied": sum(self.denied.values()),
            "denied_by_carc": dict(self.denied),
            "denied_lines_by_carc": dict(self.denied_lines),
            "reversed": self.reversed,
            "paid_cents": self.paid_cents,
            "reversed_cents": self.reversed_cents,
            "patient_responsibility_cents": self.patient_responsibility_cents,
            "remittances": self.remittances,
            "payments_cents": self.payments_cents,
            "unbalanced_remittances_not_sent": self.unbalanced,
        }


def _naming_the_patient(remitted: RemittanceClaim, claim: ProfessionalClaim) -> RemittanceClaim:
    """A dependent's 835 names them as the patient (NM1*QC) and the subscriber as the
    insured (NM1*IL), both under the subscriber's member id."""
    patient = claim.patient
    if patient is None:
        return remitted
    insured = remitted.patient
    return remitted.model_copy(
        update={
            "patient": insured.model_copy(
                update={
                    "last_name": patient.last_name,
                    "first_name": patient.first_name,
                    "middle_name": patient.middle_name,
                }
            ),
            "insured": insured,
        }
    )


class Simulator:
    def __init__(
        self,
        seed: int,
        ack_delay_s: float,
        remit_delay_s: float,
        archive: X12Archive | None = None,
        clock: Callable[[], datetime] = utc_now,
        first_control_number: int | None = None,
        answers: AnswerBook | None = None,
    ) -> None:
        self.seed = seed
        self.ack_delay_s = ack_delay_s
        self.remit_delay_s = remit_delay_s
        self.archive = archive
        self.clock = clock
        self.mailbox = Mailbox()
        self.stats = Stats()
        self._control = first_control_number or _control_base()
        self._members: dict[str, rules.Accumulators] = {}
        self._batches: list[_Batch] = []
        self._submissions: dict[tuple[str, str, str, str, int], _Claim] = {}
        self._by_pccn: dict[str, _Claim] = {}
        self._to_remit: list[_Claim] = []
        self.answers = answers
        self._appeals: dict[str, AppealDecision] = answers.load() if answers else {}
        self._lost_appeals: set[str] = set()  # claim ids whose appeals go unanswered
        self._adjudicated_contents: set[str] = set()  # originals, for CO-18

    # --- eligibility ---------------------------------------------------------------------

    def answer_270(self, text: str) -> str:
        """The 271 for a 270 (one response per inquiry); X12Error if the 270 is broken."""
        self._keep("received", "270", "realtime", text)
        inquiry = parse_270(text)
        envelope = inquiry.envelope
        responses = [self._eligibility(t) for t in inquiry.transactions]
        answer = build_271(
            EligibilityResponseDocument(
                envelope=self._envelope(envelope.receiver_id, envelope.sender_id, envelope.usage),
                transactions=responses,
            )
        )
        self._keep("sent", "271", inquiry.transactions[0].trace_number, answer)
        return answer

    def _eligibility(self, inquiry: EligibilityInquiry) -> EligibilityResponse:
        payer = PAYERS.get(inquiry.payer_id)
        coverage: Coverage | None = None
        rejection: Rejection | None = None
        outcome: EligibilityOutcome
        if payer is None:
            outcome, rejection = "unknown-payer", Rejection(level="payer", reason="79")
        else:
            member_id = inquiry.subscriber.member_id
            outcome = rules.member_status(self.seed, payer.payer_id, member_id)
            if outcome == "not-found":
                rejection = Rejection(level="subscriber", reason="75")
            elif outcome == "inactive":
                coverage = Coverage(active=False)
            else:
                coverage = self._active_coverage(payer, member_id)
        self.stats.eligibility[outcome] += 1
        return EligibilityResponse(
            control_number=inquiry.control_number,
            reference_id=inquiry.reference_id,
            created=self._stamp(),
            payer_name=payer.x12_name if payer else inquiry.payer_name,
            payer_id=inquiry.payer_id,
            provider=inquiry.provider,
            subscriber=inquiry.subscriber,
            dependent=inquiry.dependent,  # so the answer is the dependent's (loop 2000D)
            trace_number=inquiry.trace_number,
            trace_originator=inquiry.trace_originator,
            coverage=coverage,
            rejection=rejection,
        )

    def _active_coverage(self, payer: PayerInfo, member_id: str) -> Coverage:
        benefits = rules.member_benefits(self.seed, payer, member_id)
        left = self._accumulators(payer, member_id)
        return Coverage(
            active=True,
            plan_name=benefits.plan_name,
            copay_cents=benefits.copay_cents,
            deductible_cents=benefits.deductible_cents,
            deductible_remaining_cents=max(left.deductible_remaining_cents, 0),
            coinsurance_percent=Decimal(benefits.coinsurance_percent),
            out_of_pocket_cents=benefits.out_of_pocket_cents,
            out_of_pocket_remaining_cents=max(left.out_of_pocket_remaining_cents, 0),
        )

    def _accumulators(self, payer: PayerInfo, member_id: str) -> rules.Accumulators:
        key = rules.member_key(payer.payer_id, member_id)
        if key not in self._members:
            benefits = rules.member_benefits(self.seed, payer, member_id)
            self._members[key] = benefits.starting_accumulators()
        return self._members[key]

    # --- claims: receipt and 999 ---------------------------------------------------------

    def receive_837(self, text: str, now: float) -> str:
        """Takes a batch, answers its 999 at once; X12Error if the 837P is broken."""
        batch_id = f"B{self._next_control():09d}"
        self._keep("received", "837P", batch_id, text)
        batch = parse_837p(text)
        envelope = batch.envelope
        partner = envelope.sender_id
        claims = sum(len(t.claims) for t in batch.transactions)
        self.stats.batches += 1
        self.stats.claims_received += claims
        ack = ImplementationAcknowledgment(
            control_number="0001",
            functional_id="HC",
            group_control_number=envelope.group_control_number,
            version="005010X222A1",
            responses=[
                TransactionSetResponse(
                    transaction_id="837",
                    control_number=t.control_number,
                    implementation_reference="005010X222A1",
                    status="A",
                )
                for t in batch.transactions
            ],
            status="A",
            included_count=len(batch.transactions),
            received_count=len(batch.transactions),
            accepted_count=len(batch.transactions),
        )
        reply = self._envelope(envelope.receiver_id, partner, envelope.usage)
        text_999 = build_999(AcknowledgmentDocument(envelope=reply, transactions=[ack]))
        self._send(partner, "999", reply.control_number, text_999)
        self._batches.append(_Batch(batch_id, batch, self.clock().date(), now + self.ack_delay_s))
        log.info("batch %s from %s: %d claims, 999 accepted", batch_id, partner, claims)
        return batch_id

    # --- the clock -----------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Sends the 277CAs and 835s that are due at `now` (a time.monotonic() value)."""
        due = [b for b in self._batches if b.due <= now]
        self._batches = [b for b in self._batches if b.due > now]
        for batch in due:
            try:
                self._acknowledge(batch, now)
            except Exception as error:  # a bug must not stop the clock for everything else
                # Said without its message or traceback: they may quote the claims' data.
                log.error("277CA for batch %s failed: %s", batch.batch_id, describe(error))
        claims = [c for c in self._to_remit if c.due <= now]
        self._to_remit = [c for c in self._to_remit if c.due > now]
        if claims:
            try:
                self._remit(claims)
            except Exception as error:
                log.error("remittance of %d claims failed: %s", len(claims), describe(error))

    async def run(self) -> None:
        interval = max(0.01, min(0.1, self.ack_delay_s / 2, self.remit_delay_s / 2))
        while True:
            self.tick(time.monotonic())
            await asyncio.sleep(interval)

    # --- claims: 277CA -------------------------------------------------------------------

    def _acknowledge(self, batch: _Batch, now: float) -> None:
        envelope = batch.batch.envelope
        partner = envelope.sender_id
        today = self.clock().date()
        acks: list[ClaimAcknowledgment] = []
        for submission in batch.batch.transactions:
            by_payer: dict[str, list[ProfessionalClaim]] = {}
            for claim in submission.claims:
                by_payer.setdefault(claim.payer.payer_id, []).append(claim)
            for payer_id, claims in by_payer.items():
                entries = [self._claim_verdict(claim, envelope, today, now) for claim in claims]
                number = len(acks) + 1
                payer = PAYERS.get(payer_id)
                acks.append(
                    ClaimAcknowledgment(
                        control_number=f"{number:04d}",
                        reference_id=f"{batch.batch_id}-{number}",
                        created=self._stamp(),
                        payer_name=payer.x12_name if payer else claims[0].payer.name,
                        payer_id=payer_id,
                        receiver_name=submission.submitter.name,
                        receiver_id=submission.submitter.identifier,
                        source_trace=batch.batch_id,
                        receipt_date=batch.received,
                        process_date=today,
                        batch_trace=submission.batch_id,
                        claims=entries,
                    )
                )
        reply = self._envelope(envelope.receiver_id, partner, envelope.usage)
        text = build_277ca(ClaimAcknowledgmentDocument(envelope=reply, transactions=acks))
        self._send(partner, "277CA", reply.control_number, text)

    def _claim_verdict(
        self,
        claim: ProfessionalClaim,
        envelope: Envelope,
        today: date,
        now: float,
    ) -> ClaimAcknowledgmentEntry:
        pccn: str | None = None
        rejection: rules.ClaimRejection | None = None
        key = (
            claim.payer.payer_id,
            claim.patient_control_number,
            claim.frequency_code,
            claim.payer_claim_control_number or "",
            claim.total_charge_cents,
        )
        known = self._submissions.get(key)
        payer = PAYERS.get(claim.payer.payer_id)
        if known is not None:  # sent again (e.g. after a crash): same answer, paid once
            self.stats.duplicates += 1
            pccn = known.pccn
        elif payer is None:
            rejection = rules.WRONG_PAYER
        elif (
            rules.member_status(self.seed, payer.payer_id, claim.subscriber.member_id)
            == "not-found"
        ):
            rejection = rules.INVALID_MEMBER
        else:
            original = None
            if claim.frequency_code == "1":
                rejection = rules.claim_rejection(claim, today)
            else:
                original = self._by_pccn.get(claim.payer_claim_control_number or "")
                if (
                    original is None
                    or original.payer.payer_id != payer.payer_id
                    or original.replaced
                ):
                    rejection = rules.UNKNOWN_ORIGINAL
            if rejection is None:
                pccn = self._accept(claim, payer, envelope, original, now)
                self._submissions[key] = self._by_pccn[pccn]
        if rejection is not None:
            self.stats.rejected[f"{rejection.category}:{rejection.code}"] += 1
            status = StatusCode(
                category=rejection.category, code=rejection.code, entity=rejection.entity
            )
        else:
            status = ACCEPTED
        start = min(line.service_date for line in claim.lines)
        end = max(line.service_date_end or line.service_date for line in claim.lines)
        patient = claim.patient or claim.subscriber
        return ClaimAcknowledgmentEntry(
            patient_control_number=claim.patient_control_number,
            patient_last_name=patient.last_name,
            patient_first_name=patient.first_name,
            patient_member_id=claim.subscriber.member_id,  # a dependent is known by it
            billing_provider_name=claim.billing_provider.name,
            billing_provider_npi=claim.billing_provider.npi,
            status=status,
            effective_date=today,
            total_charge_cents=claim.total_charge_cents,
            payer_claim_control_number=pccn,
            service_date=start,
            service_date_end=end if end != start else None,
            message=None if rejection is None else rejection.message,
        )

    def _accept(
        self,
        claim: ProfessionalClaim,
        payer: PayerInfo,
        envelope: Envelope,
        original: _Claim | None,
        now: float,
    ) -> str:
        pccn = rules.payer_claim_control_number(self.seed, payer, claim)
        suffix = itertools.count(1)
        while pccn in self._by_pccn:  # astronomically rare; stays deterministic by order
            pccn = f"{pccn[:14]}{next(suffix)}"
        accepted = _Claim(
            claim=claim,
            payer=payer,
            pccn=pccn,
            partner=envelope.sender_id,
            our_id=envelope.receiver_id,
            usage=envelope.usage,
            due=now + self.remit_delay_s,
            replaces=original,
        )
        if original is not None:
            original.replaced = True
        self._by_pccn[pccn] = accepted
        self._to_remit.append(accepted)
        self.stats.accepted += 1
        return pccn

    # --- claims: adjudication and 835 ----------------------------------------------------

    def _remit(
        self,
        claims: list[_Claim],
        adjudicated: Callable[[_Claim], list[RemittanceClaim]] | None = None,
    ) -> None:
        """One 835 interchange per partner and payer, one transaction per payee."""
        groups: dict[_RemitGroup, dict[str, tuple[RemittancePayee, list[RemittanceClaim]]]] = {}
        for accepted in claims:
            group = groups.setdefault(
                (accepted.partner, accepted.our_id, accepted.usage, accepted.payer.payer_id), {}
            )
            payee = rules.payee_of(accepted.claim)
            _, out = group.setdefault(payee.npi, (payee, []))
            out.extend((adjudicated or self._adjudicate)(accepted))
        today = self.clock().date()
        for (partner, our_id, usage, payer_id), payees in groups.items():
            payer = PAYERS[payer_id]
            transactions = [
                rules.remittance(payer, payee, out, f"{n:04d}", today, self.seed)
                for n, (payee, out) in enumerate(payees.values(), start=1)
                if out
            ]
            if not transactions:
                continue
            reply = self._envelope(our_id, partner, usage)
            document = RemittanceDocument(envelope=reply, transactions=transactions)
            imbalances = check_835_balance(document)
            if imbalances:
                self.stats.unbalanced += 1
                log.error(
                    "835 for %s from %s not sent, it does not balance: %s",
                    partner,
                    payer_id,
                    "; ".join(i.describe() for i in imbalances),
                )
                continue
            self._send(partner, "835", reply.control_number, build_835(document))
            self._count(document)

    def _adjudicate(self, accepted: _Claim) -> list[RemittanceClaim]:
        """The claims of the 835 for this one: the reversal of the one it replaces, then
        its own adjudication (none for a void)."""
        out: list[RemittanceClaim] = []
        original = accepted.replaces
        if original is not None and original.remitted is not None and not original.reversed:
            out.append(rules.reverse(original.remitted))
            original.reversed = True
            self._give_back(original)
        claim, payer, pccn = accepted.claim, accepted.payer, accepted.pccn
        member_id = claim.subscriber.member_id
        if claim.frequency_code == "8":
            return out
        denial = None
        if accepted.reprocess and accepted.remitted is not None:
            # An appeal won: what it said before is taken back and it is paid again
            # without the denial overturned (the rules' other findings stand).
            out.append(rules.reverse(accepted.remitted))
            self._give_back(accepted)
            accepted.reprocess = False
        else:
            content = rules.claim_content(claim)
            duplicate = content in self._adjudicated_contents
            if claim.frequency_code == "1":
                self._adjudicated_contents.add(content)
            denial = rules.claim_denial(self.seed, claim, payer, self.clock().date(), duplicate)
        if denial is not None:
            accepted.remitted = rules.deny(claim, payer, pccn, denial.reason, denial.remark)
        elif claim.subscriber.payer_responsibility != "P":
            accepted.remitted = rules.adjudicate_secondary(claim, payer, pccn)
        else:
            benefits = rules.member_benefits(self.seed, payer, member_id)
            if accepted.line_denials is None:
                accepted.line_denials = rules.line_denials(claim, payer)
            standing = {
                index: line_denial
                for index, line_denial in accepted.line_denials.items()
                if claim.lines[index].line_control_number not in accepted.overturned_lines
            }
            result = rules.adjudicate(
                claim, payer, pccn, benefits, self._accumulators(payer, member_id), standing
            )
            self._members[accepted.member] = result.accumulators
            accepted.deductible_applied_cents = result.deductible_applied_cents
            accepted.out_of_pocket_applied_cents = result.out_of_pocket_applied_cents
            accepted.remitted = result.claim
        accepted.remitted = _naming_the_patient(accepted.remitted, claim)
        out.append(accepted.remitted)
        return out

    def _give_back(self, accepted: _Claim) -> None:
        """A reversed adjudication's deductible and out-of-pocket return to the member."""
        if accepted.deductible_applied_cents or accepted.out_of_pocket_applied_cents:
            self._members[accepted.member] = self._members[accepted.member].spend(
                -accepted.deductible_applied_cents, -accepted.out_of_pocket_applied_cents
            )
        accepted.deductible_applied_cents = accepted.out_of_pocket_applied_cents = 0

    def _count(self, document: RemittanceDocument) -> None:
        for remittance in document.transactions:
            self.stats.remittances += 1
            self.stats.payments_cents += remittance.payment_cents
            for claim in remittance.claims:
                if claim.status == "22":
                    self.stats.reversed += 1
                    self.stats.reversed_cents += -claim.paid_cents
                    continue
                self.stats.adjudicated += 1
                if claim.status == "4":
                    self.stats.denied[claim.adjustments[0].reason] += 1
                else:
                    self.stats.paid += 1
                    for line in claim.lines:
                        if line.paid_cents == 0 and line.remark_codes:
                            self.stats.denied_lines[line.adjustments[0].reason] += 1
                    self.stats.paid_cents += claim.paid_cents
                    self.stats.patient_responsibility_cents += (
                        claim.patient_responsibility_cents or 0
                    )

    # --- appeals -------------------------------------------------------------------------

    def appeal(self, request: AppealRequest, now: float) -> AppealDecision | Received | None:
        """The payer's decision (appeals.py) on a denied claim, or on a denied line of a
        claim it paid (`line_id`); None: no such denial of that payer by that number.
        Overturned, the claim is reprocessed and remitted after the usual delay. An
        appeal answered before (a restart included) gets the same answer."""
        known = self._appeals.get(request.appeal_id)
        if known is not None:
            return known
        accepted = self._by_pccn.get(request.payer_claim_control_number or "")
        if accepted is None or accepted.payer.payer_id != request.payer_id or accepted.replaced:
            return None
        reason = self._appealed_denial(accepted, request.line_id)
        if reason is None:
            return None
        if accepted.claim.patient_control_number in self._lost_appeals:
            log.info("appeal %s received and lost", request.appeal_id)
            return Received(request.appeal_id)
        decision = decide_appeal(reason, request)
        if self.answers is not None:
            self.answers.keep(decision)  # on disk before the answer is given
        self._appeals[request.appeal_id] = decision
        if decision.outcome == "overturned":
            if request.line_id is None:
                accepted.overturned = True
            else:
                accepted.overturned_lines.add(request.line_id)
            accepted.reprocess = True
            accepted.due = now + self.remit_delay_s
            if accepted not in self._to_remit:
                self._to_remit.append(accepted)
        log.info("appeal %s: %s", request.appeal_id, decision.outcome)
        return decision

    @staticmethod
    def _appealed_denial(accepted: _Claim, line_id: str | None) -> str | None:
        """The CARC the appeal is about: the claim's denial, or the line's (a CO or PI
        adjustment of a line paid nothing, other than the fee schedule's CO-45)."""
        remitted = accepted.remitted
        if remitted is None or accepted.reprocess:
            return None
        if line_id is None:
            if remitted.status != "4" or accepted.overturned:
                return None
            return remitted.adjustments[0].reason
        if remitted.status != "1" or line_id in accepted.overturned_lines:
            return None
        for line in remitted.lines:
            if line.line_control_number != line_id or line.paid_cents != 0:
                continue
            for adjustment in line.adjustments:
                if adjustment.group in ("CO", "PI") and adjustment.reason != "45":
                    return adjustment.reason
        return None

    def lose_appeals(self, claim_id: str, lost: bool = True) -> None:
        """Appeals of this claim are received (202) and never decided while `lost`: for
        tests and scripted scenarios of a payer that does not answer."""
        if lost:
            self._lost_appeals.add(claim_id)
        else:
            self._lost_appeals.discard(claim_id)

    def deny(self, claim_id: str, reason: str, line_id: str | None = None) -> bool:
        """Denies an accepted original claim not remitted yet for `reason` (a CARC),
        whatever the rules would say, in an 835 sent now: for tests and scripted scenarios
        of what follows a denial (an appeal). With `line_id` (the line's REF*6R) only that
        line is denied and the rest of the claim is paid by the rules (a line-level CO-97
        on a paid claim). False: no such claim (or line) waits for its 835."""
        waiting = [c for c in self._to_remit if c.claim.patient_control_number == claim_id]
        if not waiting or waiting[0].claim.frequency_code != "1":
            return False
        lines = [line.line_control_number for line in waiting[0].claim.lines]
        primary = waiting[0].claim.subscriber.payer_responsibility == "P"
        if line_id is not None and (line_id not in lines or not primary):
            return False
        self._to_remit.remove(waiting[0])

        def denied(accepted: _Claim) -> list[RemittanceClaim]:
            claim = accepted.claim
            remitted = rules.deny(claim, accepted.payer, accepted.pccn, reason)
            accepted.remitted = _naming_the_patient(remitted, claim)
            return [accepted.remitted]

        def line_denied(accepted: _Claim) -> list[RemittanceClaim]:
            claim, payer = accepted.claim, accepted.payer
            member_id = claim.subscriber.member_id
            forced = rules.line_denials(claim, payer)
            forced[lines.index(line_id)] = rules.Denial(reason, MODIFIER_MISSING_REMARK)
            accepted.line_denials = forced  # a reprocessing after an appeal starts from it
            result = rules.adjudicate(
                claim,
                payer,
                accepted.pccn,
                rules.member_benefits(self.seed, payer, member_id),
                self._accumulators(payer, member_id),
                forced,
            )
            self._members[accepted.member] = result.accumulators
            accepted.deductible_applied_cents = result.deductible_applied_cents
            accepted.out_of_pocket_applied_cents = result.out_of_pocket_applied_cents
            accepted.remitted = _naming_the_patient(result.claim, claim)
            return [accepted.remitted]

        self._remit(waiting[:1], denied if line_id is None else line_denied)
        return True

    # --- plumbing ------------------------------------------------------------------------

    def _next_control(self) -> int:
        number = self._control
        self._control = 1 if number >= CONTROL_LIMIT else number + 1
        return number

    def _stamp(self) -> datetime:
        """X12 stamps are naive; ours are UTC."""
        return self.clock().astimezone(UTC).replace(tzinfo=None)

    def _envelope(self, sender: str, receiver: str, usage: Literal["T", "P"]) -> Envelope:
        number = self._next_control()
        return Envelope(
            sender_id=sender,
            receiver_id=receiver,
            control_number=number,
            group_control_number=number,
            created=self._stamp(),
            usage=usage,
        )

    def _send(self, partner: str, kind: Kind, control_number: int, text: str) -> None:
        document = Document(id=f"{kind}-{control_number:09d}", kind=kind, text=text)
        self._keep("sent", kind, document.id, text)
        self.mailbox.put(partner, document)

    def _keep(self, direction: Direction, kind: Kind, reference: str, text: str) -> None:
        if self.archive is not None:
            self.archive.keep(direction, kind, reference, text)
