"""Payment posting rules: 835 claims to postings, unpostables, patient payments. No I/O.

A remittance (one 835 transaction) is one aggregate: its postings, its unpostables and the
events they emit are decided together, so it is posted whole or not at all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from rcm_contracts.claims import ClaimSubmitted
from rcm_contracts.payments import (
    Adjustment,
    AdjustmentGroup,
    PatientPaymentReceived,
    PatientResponsibility,
    PaymentMethod,
    PaymentPosted,
    PostedClaimStatus,
    RemittanceProcessed,
)
from rcm_contracts.registration import CoverageRank
from rcm_shared.envelope import describe
from rcm_shared.errors import PermanentError
from rcm_shared.store import Change, Decide, Document
from rcm_x12 import (
    Remittance,
    RemittanceClaim,
    check_835_balance,
    parse_835,
)

_NOT_ID = re.compile(r"[^A-Za-z0-9._:-]")
# Room for "-<CLP index>" after a remittance id, so that posting ids stay valid Ids (<= 64).
MAX_REMITTANCE_ID = 58
PROCESSED_STATUSES = ("1", "2", "3", "19", "20", "21")
PR_BUCKETS = {"1": "deductible_cents", "2": "coinsurance_cents", "3": "copay_cents"}


class UnpostableKind(StrEnum):
    UNMATCHED = "unmatched-claim"  # no claim-submitted for CLP01 (yet)
    CLAIM_RULE = "claim-rule"  # matched, but breaks a posting rule
    UNBALANCED = "unbalanced-transaction"  # the whole 835 transaction
    UNREADABLE = "unreadable-document"  # the mailbox document is not a valid 835


class UnpostableStatus(StrEnum):
    OPEN = "open"
    POSTED = "posted"


class NotPostable(Exception):
    """A claim that cannot be posted as it is; the message says why (no PHI)."""


class NotFound(Exception):
    pass


class Conflict(Exception):
    """The request contradicts what is stored; the message says why."""


# --- identifiers ---------------------------------------------------------------------------


def sanitise_id(raw: str, max_length: int = 64) -> str:
    """Text made into an Id: other characters become '-', and a long one keeps its tail
    unique through a short hash instead of being cut (two ids must never merge)."""
    clean = _NOT_ID.sub("-", raw) or "-"
    if len(clean) <= max_length:
        return clean
    digest = hashlib.sha256(raw.encode()).hexdigest()[:10]
    return f"{clean[: max_length - 11]}.{digest}"


def remittance_id_of(interchange_control_number: int, trace_number: str) -> str:
    return sanitise_id(f"R{interchange_control_number:09d}-{trace_number}", MAX_REMITTANCE_ID)


def posting_id_of(remittance_id: str, index: int) -> str:
    """`index` is the CLP's 1-based position in its 835 transaction."""
    return f"{remittance_id}-{index}"


# --- what the service keeps of an 835: money and ids, never the patient's name -------------


class _Stored(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class RemittedAdjustment(_Stored):
    group: str
    reason_code: str
    amount_cents: int
    line_id: str | None = None  # REF*6R of the line; None at claim level


class RemittedClaim(_Stored):
    """One CLP loop as posting needs it."""

    index: int
    claim_id: str
    payer_claim_control_number: str | None = None
    status_code: str
    charge_cents: int
    paid_cents: int
    allowed_cents: int | None
    adjustments: list[RemittedAdjustment]

    @classmethod
    def of(cls, index: int, claim: RemittanceClaim) -> RemittedClaim:
        adjustments = [
            RemittedAdjustment(group=a.group, reason_code=a.reason, amount_cents=a.amount_cents)
            for a in claim.adjustments
        ]
        for line in claim.lines:
            adjustments += [
                RemittedAdjustment(
                    group=a.group,
                    reason_code=a.reason,
                    amount_cents=a.amount_cents,
                    line_id=line.line_control_number,
                )
                for a in line.adjustments
            ]
        allowed = [line.allowed_cents for line in claim.lines]
        return cls(
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
        )


class RemittanceTransaction(_Stored):
    """One 835 transaction set (ST/SE), read and balance-checked."""

    remittance_id: str
    document_id: str
    transaction_control_number: str
    payer_id: str
    trace_number: str
    payment_cents: int
    provider_adjustments_cents: int
    claims: list[RemittedClaim]
    imbalances: list[str]

    @classmethod
    def of(
        cls,
        remittance: Remittance,
        interchange_control_number: int,
        document_id: str,
        imbalances: Sequence[str] = (),
    ) -> RemittanceTransaction:
        return cls(
            remittance_id=remittance_id_of(interchange_control_number, remittance.trace_number),
            document_id=document_id,
            transaction_control_number=remittance.control_number,
            payer_id=sanitise_id(remittance.payer.identifier or remittance.payer_trace_id),
            trace_number=remittance.trace_number,
            payment_cents=remittance.payment_cents,
            provider_adjustments_cents=sum(p.amount_cents for p in remittance.provider_adjustments),
            claims=[RemittedClaim.of(n, c) for n, c in enumerate(remittance.claims, start=1)],
            imbalances=list(imbalances),
        )


def read_835(text: str, document_id: str) -> list[RemittanceTransaction]:
    """Every transaction of an 835 interchange, each with its own balance verdict.

    Raises X12Error when the text is not a readable 835. An unbalanced transaction does
    not stop the balanced ones of the same interchange from being posted.
    """
    document = parse_835(text, check_balance=False)
    number = document.envelope.control_number
    return [
        RemittanceTransaction.of(
            remittance,
            number,
            document_id,
            [imbalance.describe() for imbalance in check_835_balance(remittance)],
        )
        for remittance in document.transactions
    ]


# --- claims learned from claim-submitted ---------------------------------------------------


class SubmittedClaim(_Stored):
    claim_id: str
    episode_id: str
    payer_id: str
    rank: CoverageRank

    @classmethod
    def of(cls, document: Document) -> SubmittedClaim:
        return cls.model_validate({**document, "claim_id": document["_id"]})


def claim_submitted(event: ClaimSubmitted) -> Decide:
    """A claim id is submitted once; the same event again (any id) changes nothing."""

    def decide(current: Document | None) -> Change | None:
        if current is not None:
            if current["episode_id"] != event.episode_id:
                raise PermanentError(
                    f"claim {event.claim_id} was submitted for episode {current['episode_id']}, "
                    f"not {event.episode_id}"
                )
            return None
        return Change(
            set={
                "episode_id": event.episode_id,
                "payer_id": event.payer_id,
                "rank": event.rank.value,
                "frequency": event.frequency.value,
                "total_charge_cents": event.total_charge_cents,
                "lines": [line.model_dump(mode="json") for line in event.lines],
                "submitted_at": event.submitted_at,
            }
        )

    return decide


# --- posting -------------------------------------------------------------------------------


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
    return PostedClaimStatus.DENIED  # nothing paid and nothing owed: adjusted away


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


def posting_of(
    claim: RemittedClaim,
    submitted: SubmittedClaim,
    remittance_id: str,
    trace_number: str,
    now: datetime,
) -> PaymentPosted:
    """The payment-posted event of a matched claim; NotPostable when a rule is broken."""
    status = posting_status(claim)
    try:
        event = PaymentPosted(
            episode_id=submitted.episode_id,
            posting_id=posting_id_of(remittance_id, claim.index),
            claim_id=submitted.claim_id,
            payer_id=submitted.payer_id,
            rank=submitted.rank,
            remittance_id=remittance_id,
            payment_trace_number=trace_number,
            payer_claim_control_number=claim.payer_claim_control_number,
            status=status,
            charge_cents=claim.charge_cents,
            paid_cents=claim.paid_cents,
            allowed_cents=claim.allowed_cents,
            adjustments=[
                Adjustment(
                    group=AdjustmentGroup(a.group),
                    reason_code=a.reason_code,
                    amount_cents=a.amount_cents,
                    line_id=a.line_id,
                )
                for a in claim.adjustments
            ],
            patient_responsibility=patient_responsibility(claim.adjustments),
            posted_at=now,
        )
    except ValidationError as error:
        raise NotPostable(f"claim {claim.claim_id}: {describe(error)}") from None
    adjusted = sum(a.amount_cents for a in event.adjustments)
    if event.charge_cents != event.paid_cents + adjusted:
        raise NotPostable(
            f"claim {claim.claim_id}: charge {event.charge_cents} != paid {event.paid_cents} "
            f"+ adjustments {adjusted}"
        )
    return event


def posting_summary(event: PaymentPosted) -> Document:
    owed = event.patient_responsibility
    return {
        "posting_id": event.posting_id,
        "claim_id": event.claim_id,
        "episode_id": event.episode_id,
        "status": event.status.value,
        "charge_cents": event.charge_cents,
        "paid_cents": event.paid_cents,
        "allowed_cents": event.allowed_cents,
        "adjustments_cents": sum(a.amount_cents for a in event.adjustments),
        "patient_responsibility_cents": owed.deductible_cents
        + owed.coinsurance_cents
        + owed.copay_cents
        + owed.other_cents,
        "posted_at": event.posted_at,
    }


def _unpostable(
    unpostable_id: str,
    kind: UnpostableKind,
    reason: str,
    now: datetime,
    claim: RemittedClaim | None = None,
) -> Document:
    return {
        "id": unpostable_id,
        "kind": kind.value,
        "claim_id": claim.claim_id if claim else None,
        "claim": claim.model_dump(mode="json") if claim else None,
        "reason": reason,
        "status": UnpostableStatus.OPEN.value,
        "created_at": now,
        "resolved_at": None,
    }


def _open_fields(unpostables: Sequence[Document]) -> Document:
    """Denormalised lists that the queries use (FerretDB: no $elemMatch on subdocuments)."""
    open_ones = [u for u in unpostables if u["status"] == UnpostableStatus.OPEN]
    return {
        "open_unpostables": [u["id"] for u in open_ones],
        "open_claim_ids": sorted(
            {u["claim_id"] for u in open_ones if u["kind"] == UnpostableKind.UNMATCHED}
        ),
    }


def _try_post(
    claim: RemittedClaim,
    submitted: SubmittedClaim | None,
    remittance_id: str,
    trace_number: str,
    now: datetime,
) -> PaymentPosted | tuple[UnpostableKind, str]:
    if submitted is None:
        return UnpostableKind.UNMATCHED, (
            f"claim {claim.claim_id} is unknown: no claim-submitted for it has arrived"
        )
    try:
        return posting_of(claim, submitted, remittance_id, trace_number, now)
    except NotPostable as error:
        return UnpostableKind.CLAIM_RULE, str(error)


def process_remittance(
    transaction: RemittanceTransaction, known: Mapping[str, SubmittedClaim], now: datetime
) -> Decide:
    """Post a new remittance whole; one that exists was processed already: nothing to do."""

    def decide(current: Document | None) -> Change | None:
        if current is not None:
            return None
        return remittance_change(transaction, known, now)

    return decide


def remittance_change(
    transaction: RemittanceTransaction, known: Mapping[str, SubmittedClaim], now: datetime
) -> Change:
    rid = transaction.remittance_id
    postings: list[Document] = []
    unpostables: list[Document] = []
    events: list[PaymentPosted | RemittanceProcessed] = []
    if transaction.imbalances:
        reason = "835 transaction does not balance: " + "; ".join(transaction.imbalances)
        unpostables.append(_unpostable(rid, UnpostableKind.UNBALANCED, reason, now))
    else:
        for claim in transaction.claims:
            outcome = _try_post(
                claim, known.get(claim.claim_id), rid, transaction.trace_number, now
            )
            if isinstance(outcome, PaymentPosted):
                events.append(outcome)
                postings.append(posting_summary(outcome))
            else:
                kind, reason = outcome
                unpostable_id = posting_id_of(rid, claim.index)
                unpostables.append(_unpostable(unpostable_id, kind, reason, now, claim))
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
    state = {
        "remittance_id": rid,
        "document_id": transaction.document_id,
        "transaction_control_number": transaction.transaction_control_number,
        "payer_id": transaction.payer_id,
        "trace_number": transaction.trace_number,
        "payment_cents": transaction.payment_cents,
        "provider_adjustments_cents": transaction.provider_adjustments_cents,
        "claim_count": len(transaction.claims),
        "balanced": not transaction.imbalances,
        "postings": postings,
        "unpostables": unpostables,
        "received_at": now,
        **_open_fields(unpostables),
    }
    return Change(set=state, events=events)


def post_unmatched(
    known: Mapping[str, SubmittedClaim], now: datetime, only: str | None = None
) -> Decide:
    """Post the remittance's unmatched claims whose claim-submitted is known by now."""

    def decide(current: Document | None) -> Change | None:
        if current is None:
            return None
        unpostables = [dict(u) for u in current["unpostables"]]
        postings = list(current["postings"])
        events: list[PaymentPosted] = []
        changed = False
        for entry in unpostables:
            open_unmatched = (
                entry["status"] == UnpostableStatus.OPEN
                and entry["kind"] == UnpostableKind.UNMATCHED
            )
            if not open_unmatched or (only is not None and entry["id"] != only):
                continue
            submitted = known.get(entry["claim_id"])
            if submitted is None:
                continue
            claim = RemittedClaim.model_validate(entry["claim"])
            outcome = _try_post(
                claim, submitted, current["remittance_id"], current["trace_number"], now
            )
            changed = True
            if isinstance(outcome, PaymentPosted):
                events.append(outcome)
                postings.append(posting_summary(outcome))
                entry["status"] = UnpostableStatus.POSTED.value
                entry["resolved_at"] = now
            else:
                entry["kind"], entry["reason"] = outcome[0].value, outcome[1]
        if not changed:
            return None
        state = {"unpostables": unpostables, "postings": postings, **_open_fields(unpostables)}
        return Change(set=state, events=events)

    return decide


def unreadable_document(document_id: str, reason: str, now: datetime) -> Decide:
    def decide(current: Document | None) -> Change | None:
        if current is not None:
            return None
        return Change(
            set={
                "document_id": document_id,
                "kind": UnpostableKind.UNREADABLE.value,
                "reason": f"mailbox document {document_id} is not a readable 835: {reason}",
                "status": UnpostableStatus.OPEN.value,
                "created_at": now,
            }
        )

    return decide


def unreadable_id_of(document_id: str) -> str:
    return sanitise_id(f"D-{document_id}")


# --- views (what people see: ids and money, no PHI) ----------------------------------------


def unpostable_view(entry: Document, remittance_id: str | None) -> dict[str, Any]:
    return {
        "unpostable_id": entry["id"],
        "kind": entry["kind"],
        "remittance_id": remittance_id,
        "claim_id": entry.get("claim_id"),
        "reason": entry["reason"],
        "status": entry["status"],
        "created_at": entry["created_at"],
    }


def remittance_view(document: Document) -> dict[str, Any]:
    return {
        "remittance_id": document["remittance_id"],
        "payer_id": document["payer_id"],
        "payment_trace_number": document["trace_number"],
        "payment_cents": document["payment_cents"],
        "provider_adjustments_cents": document["provider_adjustments_cents"],
        "balanced": document["balanced"],
        "claims": document["claim_count"],
        "claims_posted": len(document["postings"]),
        "received_at": document["received_at"],
        "postings": document["postings"],
        "unpostables": [
            unpostable_view(u, document["remittance_id"]) for u in document["unpostables"]
        ],
    }


def retry_refusal(entry: Document) -> str | None:
    """Why retrying this unpostable cannot post it, or None when it may."""
    if entry["status"] != UnpostableStatus.OPEN:
        return None
    if entry["kind"] == UnpostableKind.UNMATCHED:
        return None
    return str(entry["reason"])


# --- patient payments ----------------------------------------------------------------------

PAYMENT_FIELDS = ("episode_id", "amount_cents", "method")


def patient_payment(
    payment_id: str, episode_id: str, amount_cents: int, method: PaymentMethod, now: datetime
) -> Decide:
    """Idempotent on payment_id: the same request is a no-op, a different one a conflict."""
    wanted = {"episode_id": episode_id, "amount_cents": amount_cents, "method": method.value}

    def decide(current: Document | None) -> Change | None:
        if current is not None:
            stored = {name: current[name] for name in PAYMENT_FIELDS}
            if stored != wanted:
                raise Conflict(
                    f"payment {payment_id} was already received with other values; "
                    "use a new payment_id for a new payment"
                )
            return None
        event = PatientPaymentReceived(
            episode_id=episode_id,
            payment_id=payment_id,
            amount_cents=amount_cents,
            method=method,
            received_at=now,
        )
        return Change(set={"payment_id": payment_id, **wanted, "received_at": now}, events=[event])

    return decide


def payment_view(document: Document) -> dict[str, Any]:
    return {
        "payment_id": document["payment_id"],
        "episode_id": document["episode_id"],
        "amount_cents": document["amount_cents"],
        "method": document["method"],
        "received_at": document["received_at"],
    }
