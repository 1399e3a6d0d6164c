"""Payment-to-deposit reconciliation: each 835 payment (BPR/TRN) meets the bank deposit
that carries its trace number.

One aggregate per trace number (`rcm_contracts.payments.trace_key`), so matching is by
key, never a scan. Two messages change it, both keyed by the trace: a deposit
(deposit-record-requested, from `POST /deposits` or a line of a bank file) and an 835
payment (remittance-deposit-expected). The latter is remittance-processed re-keyed: that
event is keyed by its remittance, so a small aggregate per remittance (its owner the only
writer) emits it once through its outbox.

A trace is matched when the deposits add up to the payments to the cent (several 835
transactions may share a TRN02); a difference, or a deposit from another payer, is an
exception with its reason; a payment of zero expects no deposit. Unmatched deposits,
exceptions and payments without a deposit after `deposit_wait_days` make up the
reconciliation queue (`GET /reconciliation`).

Bank file (`POST /deposit-files`, `{name, content}`): CSV, UTF-8, a header line then one
deposit per line, columns `deposit_id,deposit_date,trace_number,amount,payer_id`:
an Id, YYYY-MM-DD, the trace as the bank reports it, dollars with two decimals
(`1234.56`), and the payer or originator id (may be empty). A file with any bad line is
refused whole, each bad line named; a file sent again records nothing twice (each
deposit is idempotent on its deposit_id).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, TypeAdapter, computed_field
from pymongo import ASCENDING, IndexModel
from rcm_contracts.base import Id
from rcm_contracts.payments import (
    DepositRecordRequested,
    RemittanceDepositExpected,
    RemittanceProcessed,
    trace_key,
)
from rcm_shared.aggregates import Aggregates, Decision, Outcome
from rcm_shared.auth import Actor, Role, allow
from rcm_shared.clock import Clock, utc_now
from rcm_shared.envelope import Envelope
from rcm_shared.errors import Conflict, Invalid, NotFound
from rcm_shared.http import (
    KEY_REQUIRED_RESPONSES,
    MAX_AMOUNT_CENTS,
    AmountCents,
    Body,
    RequiredIdempotencyKey,
)
from rcm_shared.requests import Reply
from rcm_shared.service import Service, Subscriptions
from rcm_shared.store import HIDDEN, MongoAggregates

log = logging.getLogger(__name__)

# BSON has no date type: a deposit date is stored as an ISO string.
IsoDate = Annotated[date, PlainSerializer(lambda value: value.isoformat(), return_type=str)]
STATE_ONLY = {**HIDDEN, "applied": 0}
FILE_COLUMNS = ["deposit_id", "deposit_date", "trace_number", "amount", "payer_id"]
MAX_FILE_LINES = 500
MAX_FILE_CHARS = 100_000
DOLLARS = re.compile(r"^\d{1,9}\.\d{2}$")
ID: TypeAdapter[str] = TypeAdapter(Id)


class _State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ReconciliationStatus(StrEnum):
    MATCHED = "matched"
    AWAITING_DEPOSIT = "awaiting-deposit"
    AWAITING_REMITTANCE = "awaiting-remittance"
    EXCEPTION = "exception"


class ExpectedPayment(_State):
    remittance_id: str
    payer_id: str
    payment_cents: int
    processed_at: datetime


class Deposit(_State):
    deposit_id: str
    amount_cents: int
    deposit_date: IsoDate
    payer_id: str | None
    source: str
    recorded_by: str
    recorded_at: datetime

    def same_as(self, request: DepositRecordRequested) -> bool:
        return (self.amount_cents, self.deposit_date, self.payer_id) == (
            request.amount_cents,
            request.deposit_date,
            request.payer_id,
        )


class Reconciliation(_State):
    """One trace number: the 835 payments that carry it and the deposits that do."""

    key: str
    trace_number: str
    payments: list[ExpectedPayment] = Field(default_factory=list)
    deposits: list[Deposit] = Field(default_factory=list)
    since: datetime = Field(description="When the first of them came; ages the queue.")

    @property
    def remitted_cents(self) -> int:
        return sum(p.payment_cents for p in self.payments)

    @property
    def deposited_cents(self) -> int:
        return sum(d.amount_cents for d in self.deposits)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reasons(self) -> list[str]:
        """Why the deposits do not match the payments; empty when they do (or wait)."""
        if not self.payments or not self.deposits:
            return []
        found = []
        if self.deposited_cents != self.remitted_cents:
            found.append(
                f"amount: deposited {self.deposited_cents} != remitted {self.remitted_cents}"
                f" (difference {self.deposited_cents - self.remitted_cents})"
            )
        payers = {p.payer_id for p in self.payments}
        others = sorted({d.payer_id for d in self.deposits if d.payer_id} - payers)
        if others:
            found.append(f"payer: deposit from {others}, remitted by {sorted(payers)}")
        return found

    # Stored and indexed: the queue reads by status.
    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> ReconciliationStatus:
        if not self.payments:
            return ReconciliationStatus.AWAITING_REMITTANCE
        if not self.deposits:
            # A payment of zero (all denials, or PLB taking it all) moves no money.
            if self.remitted_cents == 0:
                return ReconciliationStatus.MATCHED
            return ReconciliationStatus.AWAITING_DEPOSIT
        return ReconciliationStatus.EXCEPTION if self.reasons else ReconciliationStatus.MATCHED


class RemittanceNotice(_State):
    """That a remittance's payment was handed to its reconciliation (once)."""

    remittance_id: str
    key: str


# --- decisions ----------------------------------------------------------------------------


def expect_deposit(
    current: RemittanceNotice | None, processed: RemittanceProcessed
) -> Decision[RemittanceNotice, None]:
    if current is not None or not processed.payment_trace_number.strip():
        return Decision()  # handed over before, or no trace to match a deposit by
    expected = RemittanceDepositExpected(
        remittance_id=processed.remittance_id,
        payer_id=processed.payer_id,
        trace_number=processed.payment_trace_number.strip()[:50],
        payment_cents=processed.payment_cents,
        processed_at=processed.processed_at,
    )
    notice = RemittanceNotice(remittance_id=processed.remittance_id, key=expected.key)
    return Decision(state=notice, events=[expected])


def record_payment(
    current: Reconciliation | None, expected: RemittanceDepositExpected
) -> Decision[Reconciliation, None]:
    base = current or Reconciliation(
        key=expected.key, trace_number=expected.trace_number, since=expected.processed_at
    )
    if any(p.remittance_id == expected.remittance_id for p in base.payments):
        return Decision()
    payment = ExpectedPayment(
        remittance_id=expected.remittance_id,
        payer_id=expected.payer_id,
        payment_cents=expected.payment_cents,
        processed_at=expected.processed_at,
    )
    # Ages from the first payment: a deposit seen first waits on the 835, not the bank.
    since = expected.processed_at if not base.payments else base.since
    return Decision(
        state=base.model_copy(update={"payments": [*base.payments, payment], "since": since})
    )


def record_deposit(
    current: Reconciliation | None, request: DepositRecordRequested, now: datetime
) -> Decision[Reconciliation, Deposit]:
    """A deposit once per deposit_id: the same one again is the result, another under
    its id is refused."""
    known = (
        None
        if current is None
        else next((d for d in current.deposits if d.deposit_id == request.deposit_id), None)
    )
    if known is not None:
        if known.same_as(request):
            return Decision(result=known)
        raise Conflict(f"deposit {request.deposit_id} exists with other values")
    base = current or Reconciliation(key=request.key, trace_number=request.trace_number, since=now)
    deposit = Deposit(
        deposit_id=request.deposit_id,
        amount_cents=request.amount_cents,
        deposit_date=request.deposit_date,
        payer_id=request.payer_id,
        source=request.source,
        recorded_by=request.requested_by,
        recorded_at=now,
    )
    return Decision(
        state=base.model_copy(update={"deposits": [*base.deposits, deposit]}), result=deposit
    )


def reconciliation_view(reconciliation: Reconciliation) -> dict[str, Any]:
    return {
        "key": reconciliation.key,
        "trace_number": reconciliation.trace_number,
        "status": reconciliation.status.value,
        "reasons": reconciliation.reasons,
        "remitted_cents": reconciliation.remitted_cents,
        "deposited_cents": reconciliation.deposited_cents,
        "since": reconciliation.since.isoformat(),
        "payments": [p.model_dump(mode="json") for p in reconciliation.payments],
        "deposits": [d.model_dump(mode="json") for d in reconciliation.deposits],
    }


# --- bank file ----------------------------------------------------------------------------


class DepositLine(BaseModel):
    deposit_id: str
    deposit_date: date
    trace_number: str
    amount_cents: int
    payer_id: str | None


def parse_deposit_file(content: str) -> list[DepositLine]:
    """The deposits of a bank file, or Invalid naming every bad line (no values echoed:
    a bank file is not patient data, but a mistyped one may be anything)."""
    rows = list(csv.reader(io.StringIO(content)))
    if not rows or [c.strip().lower() for c in rows[0]] != FILE_COLUMNS:
        raise Invalid(f"content: the first line must be the header {','.join(FILE_COLUMNS)}")
    problems: list[str] = []
    lines: list[DepositLine] = []
    seen: set[str] = set()
    body = [(number, row) for number, row in enumerate(rows[1:], start=2) if any(row)]
    if not body:
        raise Invalid("content: no deposits after the header")
    if len(body) > MAX_FILE_LINES:
        raise Invalid(f"content: at most {MAX_FILE_LINES} deposits per file")
    for number, row in body:
        line = _parse_line(number, row, problems)
        if line is None:
            continue
        if line.deposit_id in seen:
            problems.append(f"line {number}: deposit_id appears twice in the file")
            continue
        seen.add(line.deposit_id)
        lines.append(line)
    if problems:
        raise Invalid("content: bad lines, nothing recorded", reasons=problems)
    return lines


def _parse_line(number: int, row: list[str], problems: list[str]) -> DepositLine | None:
    if len(row) != len(FILE_COLUMNS):
        problems.append(f"line {number}: {len(row)} columns, not {len(FILE_COLUMNS)}")
        return None
    deposit_id, deposit_date, trace, amount, payer = (cell.strip() for cell in row)
    before = len(problems)
    if not _is_id(deposit_id):
        problems.append(f"line {number}: deposit_id is not an id")
    try:
        when = date.fromisoformat(deposit_date)
    except ValueError:
        problems.append(f"line {number}: deposit_date is not YYYY-MM-DD")
        when = date.min
    if not trace or len(trace) > 50:
        problems.append(f"line {number}: trace_number must be 1 to 50 characters")
    cents = int(amount.replace(".", "")) if DOLLARS.match(amount) else 0
    if not 0 < cents <= MAX_AMOUNT_CENTS:
        problems.append(f"line {number}: amount must be dollars with 2 decimals, above 0.00")
    if payer and not _is_id(payer):
        problems.append(f"line {number}: payer_id is not an id")
    if len(problems) > before:
        return None
    return DepositLine(
        deposit_id=deposit_id,
        deposit_date=when,
        trace_number=trace,
        amount_cents=cents,
        payer_id=payer or None,
    )


def _is_id(value: str) -> bool:
    try:
        ID.validate_python(value)
    except ValueError:
        return False
    return True


# --- handlers ------------------------------------------------------------------------------


class DepositHandlers:
    def __init__(
        self,
        notices: Aggregates[RemittanceNotice],
        reconciliations: Aggregates[Reconciliation],
        clock: Clock = utc_now,
    ) -> None:
        self.notices = notices
        self.reconciliations = reconciliations
        self.clock = clock

    def now(self) -> datetime:
        now = self.clock()
        return now.replace(microsecond=now.microsecond // 1000 * 1000)

    async def remittance_processed(self, envelope: Envelope[RemittanceProcessed]) -> None:
        processed = envelope.data
        applied = await self.notices.apply(
            processed.remittance_id,
            lambda current: expect_deposit(current, processed),
            cause=envelope.id,
        )
        log.info("deposit expected for %s: %s", processed.remittance_id, applied.outcome.value)

    async def remittance_deposit_expected(
        self, envelope: Envelope[RemittanceDepositExpected]
    ) -> None:
        expected = envelope.data
        applied = await self.reconciliations.apply(
            expected.key, lambda current: record_payment(current, expected), cause=envelope.id
        )
        log.info("payment %s to reconcile: %s", expected.remittance_id, applied.outcome.value)

    async def deposit_record_requested(self, envelope: Envelope[DepositRecordRequested]) -> Reply:
        """201 with the reconciliation this deposit joined; 200 when it was there before."""
        request = envelope.data
        now = self.now()
        applied = await self.reconciliations.apply(
            request.key, lambda current: record_deposit(current, request, now), cause=envelope.id
        )
        log.info("deposit %s: %s", request.deposit_id, applied.outcome.value)
        assert applied.state is not None  # every outcome but a refusal has it
        status = 200 if applied.outcome is Outcome.UNCHANGED else 201
        return Reply(status, reconciliation_view(applied.state))


SUBSCRIPTIONS: Subscriptions[DepositHandlers] = {
    RemittanceProcessed: DepositHandlers.remittance_processed,
    RemittanceDepositExpected: DepositHandlers.remittance_deposit_expected,
    DepositRecordRequested: DepositHandlers.deposit_record_requested,
}


# --- store and HTTP -------------------------------------------------------------------------


class DepositsStore:
    def __init__(self, service: Service) -> None:
        self.notices: MongoAggregates[RemittanceNotice] = service.aggregates(
            "remittance_notices", RemittanceNotice
        )
        self.reconciliations: MongoAggregates[Reconciliation] = service.aggregates(
            "reconciliations",
            Reconciliation,
            [IndexModel([("status", ASCENDING), ("since", ASCENDING)])],
        )

    async def in_status(
        self, status: ReconciliationStatus, limit: int, before: datetime | None = None
    ) -> list[Reconciliation]:
        """A people's list view, oldest first: bounded, and on no event's path."""
        query: dict[str, Any] = {"status": status.value}
        if before is not None:
            query["since"] = {"$lte": before}
        cursor = (
            self.reconciliations.collection.find(query, STATE_ONLY)
            .sort([("since", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        return [Reconciliation.model_validate(document) async for document in cursor]


BILLERS = allow(Role.BILLER)
Biller = Annotated[Actor, Depends(BILLERS)]


class DepositRequest(Body):
    deposit_id: Id = Field(description="The bank's id of the deposit; idempotency key.")
    amount_cents: AmountCents
    trace_number: str = Field(min_length=1, max_length=50, description="TRN02 as deposited.")
    deposit_date: date
    payer_id: Id | None = Field(default=None, description="Payer or originator, when known.")


class DepositFile(Body):
    name: str = Field(min_length=1, max_length=200, description="The bank file's name.")
    content: str = Field(min_length=1, max_length=MAX_FILE_CHARS, description="CSV text.")


def router(service: Service, store: DepositsStore, wait_days: int, clock: Clock) -> APIRouter:
    api = APIRouter(tags=["deposits"])

    @api.post("/deposits", responses=KEY_REQUIRED_RESPONSES)
    async def record_deposit(
        body: DepositRequest, biller: Biller, idempotency_key: RequiredIdempotencyKey
    ) -> Any:
        """201 with the trace's reconciliation; 200 when the same deposit was recorded
        before; 409 for another deposit under a used deposit_id (of the same trace)."""
        request = DepositRecordRequested(
            requested_by=biller.subject,
            deposit_id=body.deposit_id,
            trace_number=body.trace_number.strip(),
            amount_cents=body.amount_cents,
            deposit_date=body.deposit_date,
            payer_id=body.payer_id,
            source="api",
        )
        reply = await service.ask(request, idempotency_key)
        return reply.response()

    @api.post("/deposit-files", responses=KEY_REQUIRED_RESPONSES)
    async def import_deposit_file(
        body: DepositFile, biller: Biller, idempotency_key: RequiredIdempotencyKey
    ) -> dict[str, Any]:
        """Every deposit of a bank file (format in this module's docstring), each recorded
        once: 200 with how many were new and each trace's status; 422 naming every bad
        line, nothing recorded."""
        lines = parse_deposit_file(body.content)
        recorded = []
        for line in lines:
            request = DepositRecordRequested(
                requested_by=biller.subject,
                deposit_id=line.deposit_id,
                trace_number=line.trace_number,
                amount_cents=line.amount_cents,
                deposit_date=line.deposit_date,
                payer_id=line.payer_id,
                source=f"file {body.name}",
            )
            reply = await service.ask(request, f"{idempotency_key}:{line.deposit_id}")
            view = reply.body
            recorded.append(
                {
                    "deposit_id": line.deposit_id,
                    "new": reply.status == 201,
                    "trace_number": line.trace_number,
                    "status": view["status"] if isinstance(view, dict) else None,
                }
            )
        new = sum(1 for r in recorded if r["new"])
        return {"name": body.name, "deposits": len(lines), "new": new, "recorded": recorded}

    @api.get("/reconciliation", dependencies=[Depends(BILLERS)])
    async def reconciliation_queue(
        limit: int = Query(1000, ge=1, le=10_000, description="Most listed of each kind."),
    ) -> dict[str, Any]:
        """What does not reconcile: exceptions (amount or payer), deposits no 835 carries,
        and 835 payments without a deposit after `deposit_wait_days`."""
        cutoff = clock() - timedelta(days=wait_days)
        exceptions = await store.in_status(ReconciliationStatus.EXCEPTION, limit)
        deposits = await store.in_status(ReconciliationStatus.AWAITING_REMITTANCE, limit)
        remittances = await store.in_status(ReconciliationStatus.AWAITING_DEPOSIT, limit, cutoff)
        return {
            "deposit_wait_days": wait_days,
            "exceptions": [reconciliation_view(r) for r in exceptions],
            "unmatched_deposits": [reconciliation_view(r) for r in deposits],
            "unmatched_remittances": [reconciliation_view(r) for r in remittances],
        }

    @api.get("/reconciliation/{trace_number}", dependencies=[Depends(BILLERS)])
    async def reconciliation_of(trace_number: str) -> dict[str, Any]:
        """One trace number's payments and deposits, whatever its status."""
        if not trace_number.strip() or len(trace_number) > 50:
            raise NotFound("no reconciliation for that trace number")
        found = await store.reconciliations.get(trace_key(trace_number))
        if found is None:
            raise NotFound("no reconciliation for that trace number")
        return reconciliation_view(found)

    return api


def wire(service: Service, wait_days: int, clock: Clock = utc_now) -> DepositsStore:
    """The reconciliation aggregates, subscriptions and routes, on the payments service."""
    store = DepositsStore(service)
    service.subscribe(DepositHandlers(store.notices, store.reconciliations, clock), SUBSCRIPTIONS)
    service.api.include_router(router(service, store, wait_days, clock))
    return store
