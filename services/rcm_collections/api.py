"""HTTP for patient financial services: accounts, open statements, plans, write-offs."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from rcm_contracts.base import Id
from rcm_contracts.collections import WriteOffReason
from rcm_shared.store import Document

from . import domain
from .handlers import Handlers
from .store import Accounts

REFUSALS = (domain.UnknownAccount, domain.Conflict, domain.InvalidRequest, domain.LedgerError)


class PaymentPlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    installments: int = Field(strict=True, ge=2, le=60, description="Number of installments.")


class WriteOffRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: int = Field(strict=True, ge=1, description="1 up to the balance, in cents.")
    reason: WriteOffReason
    user_id: Id
    write_off_id: Id | None = Field(
        default=None, description="Idempotency key: the same write-off sent twice counts once."
    )


class StatementFilter(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class AccountFilter(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


def account_view(document: Document) -> dict[str, Any]:
    account = domain.Account.load(document, str(document["_id"]))
    ledger = account.ledger
    balance = ledger.balance_cents
    problems = ledger.problems()
    return {
        "episode_id": account.episode_id,
        "state": account.state.value,
        "coverage": account.coverage.value,
        "billing_over": account.billing_over,
        "cancelled": account.cancelled,
        "guarantor_id": account.guarantor_id,
        "totals": ledger.totals().model_dump(),
        "insurance_balance_cents": ledger.insurance_balance_cents,
        "patient_balance_cents": ledger.patient_balance_cents,
        "patient_share_cents": ledger.patient_share_cents,
        "credit_balance_cents": max(-balance, 0),
        "invariant_holds": not problems,
        "invariant_problems": problems,
        "coding": account.coding.model_dump(mode="json") if account.coding else None,
        "claims": account.claims.model_dump(mode="json") if account.claims else None,
        "postings": [p.model_dump(mode="json") for p in account.postings],
        "entries": [e.model_dump(mode="json") for e in ledger.entries],
        "statements": [s.model_dump(mode="json") for s in account.statements],
        "plan": account.plan.model_dump(mode="json") if account.plan else None,
        "write_offs": [w.model_dump(mode="json") for w in account.write_offs],
        "closed_at": account.closed_at.isoformat() if account.closed_at else None,
    }


def statement_views(document: Document, wanted: StatementFilter) -> list[dict[str, Any]]:
    account = domain.Account.load(document, str(document["_id"]))
    balance = account.ledger.balance_cents
    return [
        {
            "episode_id": account.episode_id,
            "statement_id": statement.statement_id,
            "sequence": statement.sequence,
            "guarantor_id": statement.guarantor_id,
            "status": statement.status.value,
            # what is due is what is owed now, not what the statement said at issue
            "amount_due_cents": max(balance, 0)
            if statement.status is domain.StatementStatus.OPEN
            else 0,
            "credit_balance_cents": max(-balance, 0),
            "issued_amount_cents": statement.amount_due_cents,
            "due_date": statement.due_date.isoformat(),
            "issued_at": statement.issued_at.isoformat(),
            "plan_id": account.plan.plan_id if account.plan else None,
        }
        for statement in account.statements
        if statement.status.value == wanted.value
    ]


def router(handlers: Handlers, accounts: Accounts) -> APIRouter:
    api = APIRouter(tags=["collections"])

    def refused(error: Exception) -> HTTPException:
        if isinstance(error, domain.UnknownAccount):
            return HTTPException(status.HTTP_404_NOT_FOUND, str(error))
        if isinstance(error, domain.InvalidRequest):
            return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error))
        return HTTPException(status.HTTP_409_CONFLICT, str(error))

    @api.get("/accounts/{episode_id}")
    async def get_account(episode_id: str) -> dict[str, Any]:
        document = await accounts.get(episode_id)
        if document is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no account for episode {episode_id}")
        return account_view(document)

    @api.get("/accounts")
    async def summarize(state: AccountFilter | None = None) -> dict[str, Any]:
        """Counts and summed totals of the accounts in a state (all when no state)."""
        summary = await accounts.summary(state.value if state else None)
        totals = summary["totals"]
        accounted = sum(totals[name] for name in totals if name != "charges_cents")
        return {
            "state": state.value if state else None,
            **summary,
            "invariant_holds": accounted == totals["charges_cents"]
            and summary["accounts_breaking_invariant"] == 0,
        }

    @api.get("/statements")
    async def statements(
        status_: StatementFilter = Query(StatementFilter.OPEN, alias="status"),
        limit: int = Query(1000, ge=1, le=10_000),
    ) -> dict[str, Any]:
        if status_ is StatementFilter.OPEN:
            documents = await accounts.with_open_statement(limit)
        else:
            documents = await accounts.with_statements(limit)
        found = [view for document in documents for view in statement_views(document, status_)]
        return {"status": status_.value, "count": len(found), "statements": found}

    @api.post("/accounts/{episode_id}/payment-plan")
    async def create_payment_plan(
        episode_id: str, request: PaymentPlanRequest, response: Response
    ) -> dict[str, Any]:
        try:
            plan, created = await handlers.create_payment_plan(episode_id, request.installments)
        except REFUSALS as error:
            raise refused(error) from None
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return {"episode_id": episode_id, **plan.model_dump(mode="json")}

    @api.post("/accounts/{episode_id}/write-offs")
    async def write_off(
        episode_id: str, request: WriteOffRequest, response: Response
    ) -> dict[str, Any]:
        try:
            record, created = await handlers.write_off(
                episode_id,
                request.amount_cents,
                request.reason,
                request.user_id,
                request.write_off_id,
            )
        except REFUSALS as error:
            raise refused(error) from None
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        document = await accounts.get(episode_id)
        assert document is not None
        return {
            "write_off": record.model_dump(mode="json"),
            "account": account_view(document),
        }

    return api
