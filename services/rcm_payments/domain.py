"""Payment posting rules: 835 claims to postings, unpostables, patient payments. No I/O.

Three aggregates, each changed only by messages keyed by its id (decisions §17):
  - an `Episode` holds the claims submitted for it (claim ids are `<episode_id>-<n>`)
    and which remittances wait for one of them, and whether registration opened it;
  - a `Remittance` (one 835 transaction) holds its postings and unpostables, decided
    together with the events they emit, so it is posted whole or not at all;
  - a `PatientPayment`, by payment_id.
An 835 claim whose claim-submitted is not known yet is joined by choreography: the
remittance emits claim-awaited (keyed by the episode), the episode answers with
awaited-claim-submitted (keyed by the remittance) once the claim is there.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NoReturn

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, model_validator
from rcm_contracts.base import Id
from rcm_contracts.claims import ClaimFrequency, ClaimSubmitted, SubmittedLine
from rcm_contracts.payments import (
    Adjustment,
    AdjustmentGroup,
    AwaitedClaimSubmitted,
    ClaimAwaited,
    PatientPaymentReceived,
    PatientPaymentRequested,
    PatientResponsibility,
    PaymentMethod,
    PaymentPosted,
    PostedClaimStatus,
    PostedLine,
    ProviderAdjustmentKind,
    ProviderAdjustmentPosted,
    RemittanceProcessed,
    RemittanceTransaction,
    RemittedAdjustment,
    RemittedClaim,
    RemittedLine,
    RemittedProviderAdjustment,
)
from rcm_contracts.registration import AppointmentScheduled, CoverageRank
from rcm_shared.aggregates import Decision
from rcm_shared.errors import Conflict, Invalid, NotFound
from rcm_shared.redact import problems
from rcm_x12 import Adjustment as X12Adjustment
from rcm_x12 import Envelope as X12Envelope
from rcm_x12 import Remittance as X12Remittance
from rcm_x12 import RemittanceClaim, RemittanceLine, check_835_balance, parse_835

__all__ = [
    "Conflict",
    "Invalid",
    "NotFound",
    "RemittanceTransaction",
    "RemittedAdjustment",
    "RemittedClaim",
]

_NOT_ID = re.compile(r"[^A-Za-z0-9._:-]")
ID: TypeAdapter[str] = TypeAdapter(Id)
# Room for "-<CLP index>" (5 digits), "-P<PLB entry>" and "-X<n>" (4 digits) after a
# remittance id, so that posting, adjustment and unpostable ids stay valid Ids (<= 64).
MAX_REMITTANCE_ID = 58
PROCESSED_STATUSES = ("1", "2", "3", "19", "20", "21")
# CLP02 of a payer that adjudicated as secondary (20: and forwarded it on).
SECONDARY_STATUSES = ("2", "20")
RECOUPMENT_REASONS = frozenset({"WO", "72"})
BALANCE_FORWARD_REASONS = frozenset({"FB"})
INTEREST_REASONS = frozenset({"L6"})
# PLB reasons whose reference may name the claim they concern.
CLAIM_REFERENCE_REASONS = RECOUPMENT_REASONS | BALANCE_FORWARD_REASONS
# A claim id (`<episode>-<n>`, episodes are `E` + 12 hex) at the end of a PLB reference.
CLAIM_ID_AT_END = re.compile(r"(E[0-9a-f]{12}-[0-9]+)$")
HELD_TAIL = re.compile(r"^[PX]?[0-9]+$")
PRIOR_PAYER_REASON = "23"  # CARC 23: the impact of prior payer(s) adjudication
PR_BUCKETS = {"1": "deductible_cents", "2": "coinsurance_cents", "3": "copay_cents"}


class UnpostableKind(StrEnum):
    UNMATCHED = "unmatched-claim"  # no claim-submitted for CLP01 (yet)
    CLAIM_RULE = "claim-rule"  # matched, but breaks a posting rule
    PAYER_MISMATCH = "payer-mismatch"  # another payer remits it, not as crossover secondary
    TRACE_REUSED = "trace-reused"  # payer + TRN02 posted before, this content differs
    UNLINKED_RECOUPMENT = "unlinked-recoupment"  # a PLB recoupment of no known claim
    UNBALANCED = "unbalanced-transaction"  # the whole 835 transaction
    UNREADABLE = "unreadable-document"  # the mailbox document is not a valid 835


class UnpostableStatus(StrEnum):
    OPEN = "open"
    POSTED = "posted"


class NotPostable(Exception):
    """A claim that cannot be posted as it is; the message says why (no PHI)."""


class _State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


def to_millisecond(moment: datetime) -> datetime:
    """What the database keeps of a time: events, answers and reads then agree."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# --- identifiers ---------------------------------------------------------------------------


def sanitise_id(raw: str, max_length: int = 64) -> str:
    """Text made into an Id: other characters become '-', and a long one keeps its tail
    unique through a short hash instead of being cut (two ids must never merge)."""
    clean = _NOT_ID.sub("-", raw) or "-"
    if len(clean) <= max_length:
        return clean
    digest = hashlib.sha256(raw.encode()).hexdigest()[:10]
    return f"{clean[: max_length - 11]}.{digest}"


def remittance_id_of(payer_company_id: str, trace_number: str) -> str:
    """A remittance is the payer's payment: its company id (TRN03) and trace (TRN02).
    Where a copy came from (ISA13, GS06, ST02, the document) is not part of it."""
    return sanitise_id(f"R{payer_company_id}-{trace_number}", MAX_REMITTANCE_ID)


def posting_id_of(remittance_id: str, index: int) -> str:
    """`index` is the CLP's 1-based position in its 835 transaction."""
    return f"{remittance_id}-{index}"


def unreadable_id_of(document_id: str) -> str:
    return sanitise_id(f"D-{document_id}")


def is_unreadable_id(holder_id: str) -> bool:
    """Unreadable documents are `D-...`; remittances `R...`."""
    return holder_id.startswith("D-")


def episode_of(claim_id: str) -> str | None:
    """The episode a claim id names (`<episode_id>-<n>`), None if it names none."""
    head, dash, tail = claim_id.rpartition("-")
    if not (dash and head and tail.isdigit()):
        return None
    try:
        ID.validate_python(head)
        ID.validate_python(claim_id)
    except ValidationError:
        return None
    return head


def holders_of(unpostable_id: str) -> list[str]:
    """Where an unpostable may live: it is a remittance id (a whole transaction), a
    `<remittance id>-<CLP index>` (one claim), `<remittance id>-P<n>` (a PLB entry),
    `<remittance id>-X<n>` (a transaction that reused its trace) or `D-<document id>`
    (unreadable)."""
    candidates = [unpostable_id]
    head, dash, tail = unpostable_id.rpartition("-")
    if dash and head and HELD_TAIL.match(tail):
        candidates.append(head)
    return candidates


# --- reading an 835: money and ids, never the patient's name -------------------------------


def _adjustments(
    adjustments: Iterable[X12Adjustment], line_id: str | None
) -> list[RemittedAdjustment]:
    return [
        RemittedAdjustment(
            group=a.group, reason_code=a.reason, amount_cents=a.amount_cents, line_id=line_id
        )
        for a in adjustments
    ]


def _whole(units: Decimal | None) -> int | None:
    return int(units) if units is not None and units == int(units) else None


def remitted_line(line: RemittanceLine) -> RemittedLine:
    billed = line.original_procedure
    return RemittedLine(
        line_id=line.line_control_number,
        procedure_code=line.procedure.code,
        modifiers=list(line.procedure.modifiers),
        billed_procedure_code=billed.code if billed is not None else None,
        units_paid=_whole(line.units_paid),
        charge_cents=line.charge_cents,
        paid_cents=line.paid_cents,
        allowed_cents=line.allowed_cents,
        adjustments=_adjustments(line.adjustments, line.line_control_number),
        remark_codes=list(line.remark_codes),
    )


def remitted_claim(index: int, claim: RemittanceClaim) -> RemittedClaim:
    """One CLP loop as posting needs it."""
    adjustments = _adjustments(claim.adjustments, None)
    for line in claim.lines:
        adjustments += _adjustments(line.adjustments, line.line_control_number)
    allowed = [line.allowed_cents for line in claim.lines]
    remarks = [
        *(claim.outpatient.remark_codes if claim.outpatient else []),
        *(claim.inpatient.remark_codes if claim.inpatient else []),
    ]
    carrier = claim.crossover_carrier
    return RemittedClaim(
        index=index,
        claim_id=claim.patient_control_number,
        payer_claim_control_number=claim.payer_claim_control_number,
        status_code=claim.status,
        charge_cents=claim.charge_cents,
        paid_cents=claim.paid_cents,
        # AMT*B6 is situational: a sum over some lines only would understate it.
        allowed_cents=sum(a for a in allowed if a is not None)
        if allowed and None not in allowed
        else None,
        adjustments=adjustments,
        lines=[remitted_line(line) for line in claim.lines],
        remark_codes=remarks,
        crossover_payer_id=carrier.identifier if carrier else None,
        crossover_payer_name=carrier.name if carrier else None,
    )


def content_digest(remittance: X12Remittance) -> str:
    """What the payer sent in one transaction, its control number (ST02) aside: a payer's
    re-sent copy has the same digest, another payment under the same trace has not."""
    content = remittance.model_dump_json(exclude={"control_number"})
    return hashlib.sha256(content.encode()).hexdigest()


def transaction_of(
    remittance: X12Remittance,
    envelope: X12Envelope,
    document_id: str,
    imbalances: Sequence[str] = (),
) -> RemittanceTransaction:
    # TRN03 is required of an 835 (the parser refuses one without); ISA06 stands in.
    company = remittance.payer_trace_id or envelope.sender_id
    return RemittanceTransaction(
        remittance_id=remittance_id_of(company, remittance.trace_number),
        document_id=document_id,
        transaction_control_number=remittance.control_number,
        payer_id=sanitise_id(remittance.payer.identifier or remittance.payer_trace_id),
        trace_number=remittance.trace_number,
        payment_cents=remittance.payment_cents,
        provider_adjustments_cents=sum(p.amount_cents for p in remittance.provider_adjustments),
        claims=[remitted_claim(n, c) for n, c in enumerate(remittance.claims, start=1)],
        imbalances=list(imbalances),
        remitting_payer_id=remittance.payer.identifier,
        payer_company_id=company,
        interchange_control_number=envelope.control_number,
        content_digest=content_digest(remittance),
        provider_adjustments=[
            RemittedProviderAdjustment(
                provider_id=p.provider_id,
                fiscal_period_date=p.fiscal_period_date,
                reason_code=p.reason,
                reference=p.reference,
                amount_cents=p.amount_cents,
            )
            for p in remittance.provider_adjustments
        ],
    )


def read_835(text: str, document_id: str) -> list[RemittanceTransaction]:
    """Every transaction of an 835 interchange, each with its own balance verdict.

    Raises X12Error when the text is not a readable 835 (ValidationError when a value
    does not fit what is carried of it). An unbalanced transaction does not stop the
    balanced ones of the same interchange from being posted.
    """
    document = parse_835(text, check_balance=False)
    return [
        transaction_of(
            remittance,
            document.envelope,
            document_id,
            [imbalance.describe() for imbalance in check_835_balance(remittance)],
        )
        for remittance in document.transactions
    ]


# --- episodes: the claims learned from claim-submitted -------------------------------------


class SubmittedClaim(_State):
    """What posting needs of a submitted claim (and what else claim-submitted said)."""

    claim_id: str
    episode_id: str
    payer_id: str
    rank: CoverageRank
    frequency: ClaimFrequency | None = None
    total_charge_cents: int | None = None
    lines: list[SubmittedLine] = []
    submitted_at: datetime | None = None

    @classmethod
    def of(cls, event: ClaimSubmitted) -> SubmittedClaim:
        return cls(
            claim_id=event.claim_id,
            episode_id=event.episode_id,
            payer_id=event.payer_id,
            rank=event.rank,
            frequency=event.frequency,
            total_charge_cents=event.total_charge_cents,
            lines=list(event.lines),
            submitted_at=event.submitted_at,
        )


class Awaiting(_State):
    claim_id: str
    remittance_id: str


class Episode(_State):
    """An episode's submitted claims, and the remittances waiting for one not yet here."""

    episode_id: str
    opened: bool = False  # registration scheduled it (appointment-scheduled)
    claims: list[SubmittedClaim] = []
    awaiting: list[Awaiting] = []

    def claim(self, claim_id: str) -> SubmittedClaim | None:
        return next((c for c in self.claims if c.claim_id == claim_id), None)

    @property
    def known(self) -> bool:
        """An episode a patient may pay for: registration opened it, or it has a claim
        (claims are made for registered episodes only; one submitted before this field
        existed counts). A remittance awaiting a claim does not make it known: an 835
        may name any claim id."""
        return self.opened or bool(self.claims)


def open_episode(episode: Episode | None, event: AppointmentScheduled) -> Decision[Episode, None]:
    """Registration opened the episode: from now on patient payments for it are taken."""
    episode = episode or Episode(episode_id=event.episode_id)
    if episode.opened:
        return Decision()
    return Decision(state=episode.model_copy(update={"opened": True}))


def _claim_is_here(remittance_id: str, claim: SubmittedClaim) -> AwaitedClaimSubmitted:
    return AwaitedClaimSubmitted(
        remittance_id=remittance_id,
        claim_id=claim.claim_id,
        episode_id=claim.episode_id,
        payer_id=claim.payer_id,
        rank=claim.rank,
        total_charge_cents=claim.total_charge_cents,
    )


def record_claim(episode: Episode | None, event: ClaimSubmitted) -> Decision[Episode, None]:
    """A claim id is submitted once (the same again changes nothing); the remittances
    waiting for it are told, once."""
    if episode_of(event.claim_id) != event.episode_id:
        raise Invalid(f"claim {event.claim_id} does not name episode {event.episode_id}")
    episode = episode or Episode(episode_id=event.episode_id)
    if episode.claim(event.claim_id) is not None:
        return Decision()
    claim = SubmittedClaim.of(event)
    waiting = [a for a in episode.awaiting if a.claim_id == event.claim_id]
    state = episode.model_copy(
        update={
            "claims": [*episode.claims, claim],
            "awaiting": [a for a in episode.awaiting if a.claim_id != event.claim_id],
        }
    )
    return Decision(state=state, events=[_claim_is_here(a.remittance_id, claim) for a in waiting])


def await_claim(episode: Episode | None, event: ClaimAwaited) -> Decision[Episode, None]:
    """A remittance waits for a claim: told at once if it is here, else when it comes."""
    episode = episode or Episode(episode_id=event.episode_id)
    claim = episode.claim(event.claim_id)
    if claim is not None:
        return Decision(events=[_claim_is_here(event.remittance_id, claim)])
    wanted = Awaiting(claim_id=event.claim_id, remittance_id=event.remittance_id)
    if wanted in episode.awaiting:
        return Decision()
    return Decision(state=episode.model_copy(update={"awaiting": [*episode.awaiting, wanted]}))


# --- posting -------------------------------------------------------------------------------


class PayerMismatch(NotPostable):
    """The remitting payer is not the claim's, and the 835 does not say it paid as a
    crossover secondary."""


def posting_status(claim: RemittedClaim) -> PostedClaimStatus:
    """CLP02 and the money decide: paid, denied or reversed; anything else needs a biller."""
    if claim.status_code == "22":
        return PostedClaimStatus.REVERSED
    if claim.status_code == "4":
        return PostedClaimStatus.DENIED
    if claim.status_code not in PROCESSED_STATUSES:
        raise NotPostable(f"CLP02 status {claim.status_code} is not posted automatically")
    if claim.paid_cents < 0:
        raise NotPostable(f"negative payment {claim.paid_cents} on a processed claim")
    patient_owes = sum(a.amount_cents for a in claim.adjustments if a.group == "PR")
    if claim.paid_cents > 0 or patient_owes > 0:
        return PostedClaimStatus.PAID  # paid 0 but PR: e.g. all of it went to the deductible
    if claim.adjustments and all(
        (a.group, a.reason_code) == ("OA", PRIOR_PAYER_REASON) for a in claim.adjustments
    ):
        return PostedClaimStatus.PAID  # a secondary the primary left nothing to pay
    return PostedClaimStatus.DENIED  # nothing paid and nothing owed: adjusted away


def adjudicating_payer(
    claim: RemittedClaim, submitted: SubmittedClaim, remitting_payer_id: str | None
) -> tuple[str, CoverageRank]:
    """Whose adjudication this is. The claim's own payer, unless another payer remits it:
    then it is a crossover secondary's own 835 (CLP02 2 or 20 on our primary claim),
    posted as that payer's, or a payer mismatch a biller must look at."""
    if remitting_payer_id is None or remitting_payer_id == submitted.payer_id:
        return submitted.payer_id, submitted.rank
    if claim.status_code in SECONDARY_STATUSES and submitted.rank is CoverageRank.PRIMARY:
        return sanitise_id(remitting_payer_id), CoverageRank.SECONDARY
    raise PayerMismatch(
        f"claim {claim.claim_id} was submitted to payer {submitted.payer_id} "
        f"({submitted.rank.value}) but payer {remitting_payer_id} remits it with CLP02 "
        f"{claim.status_code}, not as a crossover secondary (2 or 20)"
    )


def patient_responsibility(adjustments: Iterable[RemittedAdjustment]) -> PatientResponsibility:
    buckets = dict.fromkeys(("deductible_cents", "coinsurance_cents", "copay_cents"), 0)
    other = 0
    for adjustment in adjustments:
        if adjustment.group != "PR":
            continue
        bucket = PR_BUCKETS.get(adjustment.reason_code)
        if bucket is None:
            other += adjustment.amount_cents
        else:
            buckets[bucket] += adjustment.amount_cents
    return PatientResponsibility(**buckets, other_cents=other)


def _adjustment(a: RemittedAdjustment) -> Adjustment:
    return Adjustment(
        group=AdjustmentGroup(a.group),
        reason_code=a.reason_code,
        amount_cents=a.amount_cents,
        line_id=a.line_id,
    )


def posted_line(line: RemittedLine) -> PostedLine:
    return PostedLine(
        line_id=line.line_id,
        procedure_code=line.procedure_code,
        modifiers=line.modifiers,
        billed_procedure_code=line.billed_procedure_code,
        # A reversal's units are negative: the contract carries paid units only.
        units_paid=line.units_paid
        if line.units_paid is not None and line.units_paid >= 0
        else None,
        charge_cents=line.charge_cents,
        paid_cents=line.paid_cents,
        allowed_cents=line.allowed_cents,
        adjustments=[_adjustment(a) for a in line.adjustments],
        remark_codes=line.remark_codes,
    )


def posting_of(
    claim: RemittedClaim,
    submitted: SubmittedClaim,
    remittance_id: str,
    trace_number: str,
    now: datetime,
    remitting_payer_id: str | None = None,
) -> PaymentPosted:
    """The payment-posted event of a matched claim; NotPostable when a rule is broken."""
    status = posting_status(claim)
    payer_id, rank = adjudicating_payer(claim, submitted, remitting_payer_id)
    try:
        event = PaymentPosted(
            episode_id=submitted.episode_id,
            posting_id=posting_id_of(remittance_id, claim.index),
            claim_id=submitted.claim_id,
            payer_id=payer_id,
            rank=rank,
            remittance_id=remittance_id,
            payment_trace_number=trace_number,
            payer_claim_control_number=claim.payer_claim_control_number,
            status=status,
            charge_cents=claim.charge_cents,
            paid_cents=claim.paid_cents,
            allowed_cents=claim.allowed_cents,
            adjustments=[_adjustment(a) for a in claim.adjustments],
            patient_responsibility=patient_responsibility(claim.adjustments),
            posted_at=now,
            lines=[posted_line(line) for line in claim.lines],
            remark_codes=claim.remark_codes,
            crossover_payer_id=None
            if claim.crossover_payer_id is None
            else sanitise_id(claim.crossover_payer_id),
            crossover_payer_name=claim.crossover_payer_name,
            submitted_charge_cents=submitted.total_charge_cents,
        )
    except ValidationError as error:
        raise NotPostable(f"claim {claim.claim_id}: {problems(error)}") from None
    except ValueError:  # a CAS group that is none of CO, PR, OA, PI
        groups = sorted({a.group for a in claim.adjustments})
        raise NotPostable(f"claim {claim.claim_id}: adjustment groups {groups}") from None
    adjusted = sum(a.amount_cents for a in event.adjustments)
    if event.charge_cents != event.paid_cents + adjusted:
        raise NotPostable(
            f"claim {claim.claim_id}: charge {event.charge_cents} != paid {event.paid_cents} "
            f"+ adjustments {adjusted}"
        )
    return event


# --- PLB: provider-level adjustments, each kept and emitted ---------------------------------


def adjustment_kind(reason_code: str) -> ProviderAdjustmentKind:
    """The kind a PLB reason has on its own (`provider_adjustments` makes a recoupment of
    a claim the same 835 reverses `other`)."""
    if reason_code in RECOUPMENT_REASONS:
        return ProviderAdjustmentKind.RECOUPMENT
    if reason_code in INTEREST_REASONS:
        return ProviderAdjustmentKind.INTEREST
    return ProviderAdjustmentKind.OTHER


def claim_ids_in(reference: str | None) -> list[str]:
    """The claim ids a PLB03-2 reference may name, most specific first: the reference
    itself (`E1234567890ab-1`), or a claim id at its end after a prefix the payer put in
    front (`PCN` or `CLM-`, e.g. `CLM-E1234567890ab-1`). A payer claim control number
    (CLP07) is looked up apart."""
    if not reference:
        return []
    found = [reference] if episode_of(reference) is not None else []
    tail = CLAIM_ID_AT_END.search(reference)
    if tail is not None and tail.group(1) not in found:
        found.append(tail.group(1))
    return found


class ProviderAdjustmentEntry(_State):
    """One PLB adjustment as kept on its remittance; linked to a claim when it recovers
    one payments knows."""

    adjustment_id: str
    provider_id: str
    fiscal_period_date: date
    reason_code: str
    reference: str | None = None
    amount_cents: int
    kind: ProviderAdjustmentKind
    claim_id: str | None = None
    episode_id: str | None = None

    @property
    def needs_a_claim(self) -> bool:
        """Money taken back for no claim we can name: a biller must find it. A negative
        FB (a balance the payer carries forward, e.g. after reversals only) takes nothing
        yet."""
        unlinked = self.kind is ProviderAdjustmentKind.RECOUPMENT and self.claim_id is None
        return unlinked and self.amount_cents > 0


def provider_adjustments(
    remittance_id: str,
    entries: Sequence[RemittedProviderAdjustment],
    links: Mapping[str, SubmittedClaim],
    reversed_claim_ids: Collection[str] = (),
) -> list[ProviderAdjustmentEntry]:
    """`links` maps a PLB reference to the claim it names (by claim id or CLP07). A
    recoupment of a claim the same 835 reverses collects that reversal's cash: the
    reversal already took the payment back, so it moves no money again (`other`)."""
    kept = []
    for n, entry in enumerate(entries, start=1):
        kind = adjustment_kind(entry.reason_code)
        claim = (
            links.get(entry.reference or "")
            if entry.reason_code in CLAIM_REFERENCE_REASONS
            else None
        )
        if (
            kind is ProviderAdjustmentKind.RECOUPMENT
            and claim is not None
            and claim.claim_id in reversed_claim_ids
        ):
            kind = ProviderAdjustmentKind.OTHER
        kept.append(
            ProviderAdjustmentEntry(
                adjustment_id=f"{remittance_id}-P{n}",
                provider_id=entry.provider_id,
                fiscal_period_date=entry.fiscal_period_date,
                reason_code=entry.reason_code,
                reference=entry.reference,
                amount_cents=entry.amount_cents,
                kind=kind,
                claim_id=claim.claim_id if claim else None,
                episode_id=claim.episode_id if claim else None,
            )
        )
    return kept


def provider_adjustment_posted(
    entry: ProviderAdjustmentEntry, remittance_id: str, payer_id: str, now: datetime
) -> ProviderAdjustmentPosted:
    return ProviderAdjustmentPosted(
        adjustment_id=entry.adjustment_id,
        remittance_id=remittance_id,
        payer_id=payer_id,
        provider_id=entry.provider_id,
        fiscal_period_date=entry.fiscal_period_date,
        reason_code=entry.reason_code,
        reference=entry.reference,
        amount_cents=entry.amount_cents,
        kind=entry.kind,
        episode_id=entry.episode_id,
        claim_id=entry.claim_id,
        posted_at=now,
    )


class PayerClaimNumber(_State):
    """A read model: the claim a payer's claim control number (CLP07) was posted for, so
    a PLB recoupment that names only that number finds its claim by id."""

    key: str
    claim_id: str
    episode_id: str


def payer_claim_number_key(payer_id: str, payer_claim_control_number: str) -> str:
    return sanitise_id(f"{payer_id}:{payer_claim_control_number}")


def remember_claim_number(
    current: PayerClaimNumber | None, key: str, claim_id: str, episode_id: str
) -> Decision[PayerClaimNumber, None]:
    """The first posting of a number decides (a reversal and repost keep the claim)."""
    if current is not None:
        return Decision()
    return Decision(state=PayerClaimNumber(key=key, claim_id=claim_id, episode_id=episode_id))


# --- remittances -----------------------------------------------------------------------------


class Posting(_State):
    """A posted claim as people see it: ids and money."""

    posting_id: str
    claim_id: str
    episode_id: str
    status: PostedClaimStatus
    charge_cents: int
    paid_cents: int
    allowed_cents: int | None
    adjustments_cents: int
    patient_responsibility_cents: int
    posted_at: datetime
    payer_id: str | None = None
    rank: CoverageRank | None = None
    payer_claim_control_number: str | None = None
    crossover_payer_id: str | None = None
    submitted_charge_cents: int | None = None
    remark_codes: list[str] = []
    recoded_lines: list[str] = []  # line ids (or procedure codes) the payer recoded

    @classmethod
    def of(cls, event: PaymentPosted) -> Posting:
        owed = event.patient_responsibility
        return cls(
            posting_id=event.posting_id,
            claim_id=event.claim_id,
            episode_id=event.episode_id,
            status=event.status,
            charge_cents=event.charge_cents,
            paid_cents=event.paid_cents,
            allowed_cents=event.allowed_cents,
            adjustments_cents=sum(a.amount_cents for a in event.adjustments),
            patient_responsibility_cents=owed.deductible_cents
            + owed.coinsurance_cents
            + owed.copay_cents
            + owed.other_cents,
            posted_at=event.posted_at,
            payer_id=event.payer_id,
            rank=event.rank,
            payer_claim_control_number=event.payer_claim_control_number,
            crossover_payer_id=event.crossover_payer_id,
            submitted_charge_cents=event.submitted_charge_cents,
            remark_codes=sorted(
                {*event.remark_codes, *(code for line in event.lines for code in line.remark_codes)}
            ),
            recoded_lines=[
                line.line_id or line.procedure_code
                for line in event.lines
                if line.billed_procedure_code is not None
            ],
        )


class Unpostable(_State):
    id: str
    kind: UnpostableKind
    claim_id: str | None = None
    claim: RemittedClaim | None = None
    # A transaction that reused a trace number with other content, kept whole.
    transaction: RemittanceTransaction | None = None
    reason: str
    status: UnpostableStatus = UnpostableStatus.OPEN
    created_at: datetime
    resolved_at: datetime | None = None

    @property
    def open_unmatched(self) -> bool:
        return self.status is UnpostableStatus.OPEN and self.kind is UnpostableKind.UNMATCHED


class RemittanceCopy(_State):
    """Where a payer's re-sent copy of a remittance came from; never posted again."""

    document_id: str
    interchange_control_number: int | None = None
    transaction_control_number: str
    received_at: datetime


class Remittance(_State):
    """One payer's payment (835 transaction): its postings, unpostables, PLB entries and
    the copies of it received later. `open_unpostables`, `open_claim_ids` and
    `copy_count` are derived, for people's list views."""

    remittance_id: str
    document_id: str
    transaction_control_number: str
    payer_id: str
    trace_number: str
    payment_cents: int
    provider_adjustments_cents: int
    claim_count: int
    balanced: bool
    postings: list[Posting]
    unpostables: list[Unpostable]
    received_at: datetime
    open_unpostables: list[str] = []
    open_claim_ids: list[str] = []
    interchange_control_number: int | None = None
    payer_company_id: str | None = None
    remitting_payer_id: str | None = None
    content_digest: str | None = None
    provider_adjustments: list[ProviderAdjustmentEntry] = []
    copies: list[RemittanceCopy] = []
    copy_count: int = 0

    def with_open_fields(self) -> Remittance:
        open_ones = [u for u in self.unpostables if u.status is UnpostableStatus.OPEN]
        return self.model_copy(
            update={
                "open_unpostables": [u.id for u in open_ones],
                "open_claim_ids": sorted(
                    {u.claim_id for u in open_ones if u.open_unmatched and u.claim_id}
                ),
                "copy_count": len(self.copies),
            }
        )

    def unpostable(self, unpostable_id: str) -> Unpostable | None:
        return next((u for u in self.unpostables if u.id == unpostable_id), None)

    def posting(self, posting_id: str) -> Posting | None:
        return next((p for p in self.postings if p.posting_id == posting_id), None)

    def reused_by(self, transaction: RemittanceTransaction) -> Unpostable | None:
        """The trace-reused unpostable holding this transaction (by source or content)."""
        for entry in self.unpostables:
            held = entry.transaction
            if entry.kind is not UnpostableKind.TRACE_REUSED or held is None:
                continue
            if _same_source(held, transaction) or held.content_digest == transaction.content_digest:
                return entry
        return None


def _same_source(a: RemittanceTransaction, b: RemittanceTransaction) -> bool:
    return (a.document_id, a.transaction_control_number) == (
        b.document_id,
        b.transaction_control_number,
    )


def _try_post(
    claim: RemittedClaim,
    submitted: SubmittedClaim | None,
    remittance_id: str,
    trace_number: str,
    now: datetime,
    remitting_payer_id: str | None = None,
) -> PaymentPosted | tuple[UnpostableKind, str]:
    if submitted is None:
        return UnpostableKind.UNMATCHED, (
            f"claim {claim.claim_id} is unknown: no claim-submitted for it has arrived"
        )
    try:
        return posting_of(claim, submitted, remittance_id, trace_number, now, remitting_payer_id)
    except PayerMismatch as error:
        return UnpostableKind.PAYER_MISMATCH, str(error)
    except NotPostable as error:
        return UnpostableKind.CLAIM_RULE, str(error)


def _awaited(remittance_id: str, claim_ids: Iterable[str]) -> list[ClaimAwaited]:
    """One claim-awaited per unmatched claim that names an episode (one that names none
    can never be submitted: a biller sees it in the unpostables)."""
    events = []
    for claim_id in sorted(set(claim_ids)):
        episode_id = episode_of(claim_id)
        if episode_id is not None:
            events.append(
                ClaimAwaited(episode_id=episode_id, claim_id=claim_id, remittance_id=remittance_id)
            )
    return events


def post_remittance(
    current: Remittance | None,
    transaction: RemittanceTransaction,
    known: Mapping[str, SubmittedClaim],
    now: datetime,
    links: Mapping[str, SubmittedClaim] | None = None,
) -> Decision[Remittance, Remittance]:
    """Post a new remittance whole. One that exists (the same payer and trace) is posted
    already: this transaction is that one again (nothing to do), a copy the payer re-sent
    (recorded, never posted), or other content under a used trace (an unpostable that
    keeps it whole). `transaction_answer` of the result says which."""
    if current is not None:
        return _seen_again(current, transaction, now)
    rid = transaction.remittance_id
    postings: list[Posting] = []
    unpostables: list[Unpostable] = []
    events: list[PaymentPosted | ProviderAdjustmentPosted | RemittanceProcessed | ClaimAwaited] = []
    reversed_claim_ids = {c.claim_id for c in transaction.claims if c.status_code == "22"}
    plb = provider_adjustments(
        rid, transaction.provider_adjustments, links or {}, reversed_claim_ids
    )
    if transaction.imbalances:
        reason = "835 transaction does not balance: " + "; ".join(transaction.imbalances)
        unpostables.append(
            Unpostable(id=rid, kind=UnpostableKind.UNBALANCED, reason=reason, created_at=now)
        )
    else:
        for claim in transaction.claims:
            outcome = _try_post(
                claim,
                known.get(claim.claim_id),
                rid,
                transaction.trace_number,
                now,
                transaction.remitting_payer_id,
            )
            if isinstance(outcome, PaymentPosted):
                events.append(outcome)
                postings.append(Posting.of(outcome))
            else:
                kind, reason = outcome
                unpostables.append(
                    Unpostable(
                        id=posting_id_of(rid, claim.index),
                        kind=kind,
                        claim_id=claim.claim_id,
                        claim=claim,
                        reason=reason,
                        created_at=now,
                    )
                )
        for entry in plb:
            events.append(provider_adjustment_posted(entry, rid, transaction.payer_id, now))
            if entry.needs_a_claim:
                unpostables.append(
                    Unpostable(
                        id=entry.adjustment_id,
                        kind=UnpostableKind.UNLINKED_RECOUPMENT,
                        reason=(
                            f"PLB {entry.reason_code} recoupment of {entry.amount_cents} cents "
                            f"(reference {entry.reference or 'none'}) names no claim payments "
                            "knows: find the claim it recovers"
                        ),
                        created_at=now,
                    )
                )
    events.append(
        RemittanceProcessed(
            remittance_id=rid,
            payer_id=transaction.payer_id,
            payment_trace_number=transaction.trace_number,
            payment_cents=transaction.payment_cents,
            claims_posted=len(postings),
            claims_unpostable=len(transaction.claims) - len(postings),
            provider_adjustments_cents=transaction.provider_adjustments_cents,
            processed_at=now,
        )
    )
    state = Remittance(
        remittance_id=rid,
        document_id=transaction.document_id,
        transaction_control_number=transaction.transaction_control_number,
        payer_id=transaction.payer_id,
        trace_number=transaction.trace_number,
        payment_cents=transaction.payment_cents,
        provider_adjustments_cents=transaction.provider_adjustments_cents,
        claim_count=len(transaction.claims),
        balanced=not transaction.imbalances,
        postings=postings,
        unpostables=unpostables,
        received_at=now,
        interchange_control_number=transaction.interchange_control_number,
        payer_company_id=transaction.payer_company_id,
        remitting_payer_id=transaction.remitting_payer_id,
        content_digest=transaction.content_digest,
        provider_adjustments=plb,
    ).with_open_fields()
    events += _awaited(rid, state.open_claim_ids)
    return Decision(state=state, events=events, result=state)


def _seen_again(
    current: Remittance, transaction: RemittanceTransaction, now: datetime
) -> Decision[Remittance, Remittance]:
    source = (transaction.document_id, transaction.transaction_control_number)
    if (current.document_id, current.transaction_control_number) == source or any(
        (c.document_id, c.transaction_control_number) == source for c in current.copies
    ):
        return Decision(result=current)
    if current.reused_by(transaction) is not None:
        return Decision(result=current)
    if (
        transaction.content_digest in (None, current.content_digest)
        or current.content_digest is None
    ):
        copy = RemittanceCopy(
            document_id=transaction.document_id,
            interchange_control_number=transaction.interchange_control_number,
            transaction_control_number=transaction.transaction_control_number,
            received_at=now,
        )
        state = current.model_copy(update={"copies": [*current.copies, copy]}).with_open_fields()
        return Decision(state=state, result=state)
    number = 1 + sum(1 for u in current.unpostables if u.kind is UnpostableKind.TRACE_REUSED)
    entry = Unpostable(
        id=f"{current.remittance_id}-X{number}",
        kind=UnpostableKind.TRACE_REUSED,
        transaction=transaction,
        reason=(
            f"trace number reused with different content: payer {current.payer_company_id} "
            f"trace {current.trace_number} was posted from document {current.document_id} "
            f"transaction {current.transaction_control_number}; document "
            f"{transaction.document_id} transaction {transaction.transaction_control_number} "
            "carries other content under it and is held whole"
        ),
        created_at=now,
    )
    state = current.model_copy(
        update={"unpostables": [*current.unpostables, entry]}
    ).with_open_fields()
    return Decision(state=state, result=state)


class TransactionOutcome(StrEnum):
    POSTED = "posted"
    UNBALANCED = "unbalanced"
    COPY = "copy"
    TRACE_REUSED = "trace-reused"


def transaction_answer(
    remittance: Remittance, transaction: RemittanceTransaction
) -> dict[str, Any]:
    """What one 835 transaction came to, from the remittance as it is (so asking again
    gets the same answer)."""
    reused = remittance.reused_by(transaction)
    unpostable_id: str | None = None
    if reused is not None:
        outcome, unpostable_id = TransactionOutcome.TRACE_REUSED, reused.id
    elif (remittance.document_id, remittance.transaction_control_number) == (
        transaction.document_id,
        transaction.transaction_control_number,
    ):
        outcome = (
            TransactionOutcome.POSTED if remittance.balanced else TransactionOutcome.UNBALANCED
        )
        unpostable_id = None if remittance.balanced else remittance.remittance_id
    else:
        outcome, unpostable_id = TransactionOutcome.COPY, None
    return {
        "remittance_id": remittance.remittance_id,
        "transaction_control_number": transaction.transaction_control_number,
        "outcome": outcome.value,
        "unpostable_id": unpostable_id,
        "claims": remittance.claim_count,
        "claims_posted": len(remittance.postings),
    }


def _post_open(
    current: Remittance, submitted: SubmittedClaim, now: datetime, only: str | None = None
) -> Decision[Remittance, Remittance]:
    """Post the remittance's open unmatched entries of this (now known) claim."""
    unpostables = list(current.unpostables)
    postings = list(current.postings)
    events: list[PaymentPosted] = []
    changed = False
    for n, entry in enumerate(unpostables):
        if not entry.open_unmatched or entry.claim_id != submitted.claim_id:
            continue
        if (only is not None and entry.id != only) or entry.claim is None:
            continue
        outcome = _try_post(
            entry.claim,
            submitted,
            current.remittance_id,
            current.trace_number,
            now,
            current.remitting_payer_id,
        )
        changed = True
        if isinstance(outcome, PaymentPosted):
            events.append(outcome)
            postings.append(Posting.of(outcome))
            update: dict[str, Any] = {"status": UnpostableStatus.POSTED, "resolved_at": now}
        else:
            update = {"kind": outcome[0], "reason": outcome[1]}
        unpostables[n] = entry.model_copy(update=update)
    if not changed:
        return Decision(result=current)
    state = current.model_copy(
        update={"unpostables": unpostables, "postings": postings}
    ).with_open_fields()
    return Decision(state=state, events=events, result=state)


def post_awaited(
    current: Remittance | None, event: AwaitedClaimSubmitted, now: datetime
) -> Decision[Remittance, Remittance]:
    """The claim this remittance waited for is submitted: post it (if still open)."""
    if current is None:
        raise NotFound(f"no remittance {event.remittance_id}")
    submitted = SubmittedClaim(
        claim_id=event.claim_id,
        episode_id=event.episode_id,
        payer_id=event.payer_id,
        rank=event.rank,
        total_charge_cents=event.total_charge_cents,
    )
    return _post_open(current, submitted, now)


def retry(
    current: Remittance | None,
    unpostable_id: str,
    known: Mapping[str, SubmittedClaim],
    now: datetime,
) -> Decision[Remittance, Remittance]:
    """Post an open unmatched claim now if its claim is known; refuse with why if it
    cannot be. Then `retry_answer` of the result says what it came to."""
    entry = None if current is None else current.unpostable(unpostable_id)
    if current is None or entry is None:
        raise NotFound(f"no unpostable {unpostable_id}")
    if entry.status is UnpostableStatus.POSTED:
        return Decision(result=current)
    refusal = retry_refusal(entry)
    if refusal is not None:
        raise Conflict(refusal)
    submitted = known.get(entry.claim_id or "")
    if submitted is None:
        raise Conflict(
            f"claim {entry.claim_id} is still unknown: no claim-submitted for it has arrived"
        )
    return _post_open(current, submitted, now, only=unpostable_id)


def retry_answer(remittance: Remittance, unpostable_id: str) -> dict[str, Any]:
    """The posting a retried unpostable came to; Conflict (why) when it is not posted."""
    entry = remittance.unpostable(unpostable_id)
    if entry is None:
        raise NotFound(f"no unpostable {unpostable_id}")
    posting = remittance.posting(unpostable_id)
    if entry.status is not UnpostableStatus.POSTED or posting is None:
        raise Conflict(entry.reason)
    return {"unpostable_id": unpostable_id, "status": "posted", "posting": posting.model_dump()}


def retry_refusal(entry: Unpostable) -> str | None:
    """Why retrying this unpostable cannot post it, or None when it may."""
    if entry.status is not UnpostableStatus.OPEN:
        return None
    if entry.kind is UnpostableKind.UNMATCHED:
        return None
    return entry.reason


# --- unreadable mailbox documents (written by the mailbox reader alone) -------------------


class UnreadableDocument(_State):
    unpostable_id: str  # D-<document id>
    document_id: str
    kind: UnpostableKind = UnpostableKind.UNREADABLE
    reason: str
    status: UnpostableStatus = UnpostableStatus.OPEN
    created_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _derive_id(cls, data: Any) -> Any:
        """Documents stored before the id was a field have it as their _id only."""
        if isinstance(data, dict) and "unpostable_id" not in data and "document_id" in data:
            return {**data, "unpostable_id": unreadable_id_of(str(data["document_id"]))}
        return data

    def entry(self) -> Unpostable:
        """Shaped like a remittance's unpostable entry."""
        return Unpostable(
            id=self.unpostable_id,
            kind=self.kind,
            reason=self.reason,
            status=self.status,
            created_at=self.created_at,
        )


def unreadable_document(
    current: UnreadableDocument | None, document_id: str, reason: str, now: datetime
) -> Decision[UnreadableDocument, None]:
    if current is not None:
        return Decision()
    return Decision(
        state=UnreadableDocument(
            unpostable_id=unreadable_id_of(document_id),
            document_id=document_id,
            reason=f"mailbox document {document_id} is not a readable 835: {reason}",
            created_at=now,
        )
    )


def retry_unreadable(current: UnreadableDocument | None, unpostable_id: str) -> NoReturn:
    """An unreadable document cannot be posted by a retry: always a refusal."""
    if current is None or current.unpostable_id != unpostable_id:
        raise NotFound(f"no unpostable {unpostable_id}")
    raise Conflict(current.reason)


# --- views (what people see: ids and money, no PHI) ----------------------------------------


def unpostable_view(entry: Unpostable, remittance_id: str | None) -> dict[str, Any]:
    return {
        "unpostable_id": entry.id,
        "kind": entry.kind.value,
        "remittance_id": remittance_id,
        "claim_id": entry.claim_id,
        "reason": entry.reason,
        "status": entry.status.value,
        "created_at": entry.created_at,
    }


def remittance_view(remittance: Remittance) -> dict[str, Any]:
    return {
        "remittance_id": remittance.remittance_id,
        "payer_id": remittance.payer_id,
        "payer_company_id": remittance.payer_company_id,
        "payment_trace_number": remittance.trace_number,
        "payment_cents": remittance.payment_cents,
        "provider_adjustments_cents": remittance.provider_adjustments_cents,
        "balanced": remittance.balanced,
        "claims": remittance.claim_count,
        "claims_posted": len(remittance.postings),
        "received_at": remittance.received_at,
        "document_id": remittance.document_id,
        "interchange_control_number": remittance.interchange_control_number,
        "transaction_control_number": remittance.transaction_control_number,
        "postings": [posting.model_dump() for posting in remittance.postings],
        "unpostables": [
            unpostable_view(u, remittance.remittance_id) for u in remittance.unpostables
        ],
        "provider_adjustments": [p.model_dump() for p in remittance.provider_adjustments],
        "copies": [c.model_dump() for c in remittance.copies],
    }


def copies_view(remittance: Remittance) -> dict[str, Any]:
    return {
        "remittance_id": remittance.remittance_id,
        "payer_id": remittance.payer_id,
        "payment_trace_number": remittance.trace_number,
        "payment_cents": remittance.payment_cents,
        "posted_from": {
            "document_id": remittance.document_id,
            "interchange_control_number": remittance.interchange_control_number,
            "transaction_control_number": remittance.transaction_control_number,
            "received_at": remittance.received_at,
        },
        "copies": [c.model_dump() for c in remittance.copies],
    }


def open_unpostable_views(
    remittances: Iterable[Remittance], unreadable: Iterable[UnreadableDocument]
) -> list[dict[str, Any]]:
    """The open unpostables, oldest first."""
    found = [
        unpostable_view(entry, remittance.remittance_id)
        for remittance in remittances
        for entry in remittance.unpostables
        if entry.status is UnpostableStatus.OPEN
    ]
    found += [
        unpostable_view(document.entry(), None)
        for document in unreadable
        if document.status is UnpostableStatus.OPEN
    ]
    return sorted(found, key=lambda item: item["created_at"])


# --- patient payments ----------------------------------------------------------------------


class PatientPayment(_State):
    payment_id: str
    episode_id: str
    amount_cents: int
    method: PaymentMethod
    received_at: datetime


def receive_patient_payment(
    current: PatientPayment | None,
    request: PatientPaymentRequested,
    episode: Episode | None,
    now: datetime,
) -> Decision[PatientPayment, PatientPayment]:
    """Idempotent on payment_id: the same payment again changes nothing, another one under
    a used payment_id is a conflict. The result is the payment as stored.

    A new payment must name a known episode (`Episode.known`), else it is not found and
    nothing is kept: money for an episode no one opened would make a ghost account.
    Registration's appointment-scheduled comes long before claims, so a copay at check-in
    is taken; one sent in the moment before that event reaches payments is refused and
    may be sent again."""
    if current is not None:
        stored = (current.episode_id, current.amount_cents, current.method)
        if stored != (request.episode_id, request.amount_cents, request.method):
            raise Conflict(
                f"payment {request.payment_id} was already received with other values; "
                "use a new payment_id for a new payment"
            )
        return Decision(result=current)
    if episode is None or not episode.known:
        raise NotFound(f"no episode {request.episode_id}")
    payment = PatientPayment(
        payment_id=request.payment_id,
        episode_id=request.episode_id,
        amount_cents=request.amount_cents,
        method=request.method,
        received_at=now,
    )
    event = PatientPaymentReceived(
        episode_id=request.episode_id,
        payment_id=request.payment_id,
        amount_cents=request.amount_cents,
        method=request.method,
        received_at=now,
    )
    return Decision(state=payment, events=[event], result=payment)


def payment_view(payment: PatientPayment) -> dict[str, Any]:
    return {
        "payment_id": payment.payment_id,
        "episode_id": payment.episode_id,
        "amount_cents": payment.amount_cents,
        "method": payment.method.value,
        "received_at": payment.received_at,
    }
