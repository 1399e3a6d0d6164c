"""HTTP for patient financial services: accounts, open statements, plans, write-offs.

Plans and write-offs move money: each needs an Idempotency-Key (rcm_shared.http), so that
a retried one is applied once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import Field
from rcm_contracts.base import Id
from rcm_contracts.collections import (
    AgencyPlacementRequested,
    AgencyRecallRequested,
    AgencyReturnRequested,
    CollectionHoldRequested,
    EstimatedProcedure,
    EstimateRequested,
    PaymentPlanRequested,
    RefundRequested,
    WriteOffReason,
    WriteOffRequested,
)
from rcm_contracts.payments import RefundRecipient
from rcm_shared.auth import Actor, Role, allow
from rcm_shared.bulk import MAX_BULK_ITEMS, name_resources, run_bulk, unique
from rcm_shared.errors import NotFound
from rcm_shared.flow import flow_view
from rcm_shared.http import (
    KEY_REQUIRED_RESPONSES,
    AmountCents,
    Body,
    RequiredIdempotencyKey,
    path_id,
)
from rcm_shared.requests import Reply
from rcm_shared.service import Service

from . import domain
from .store import Accounts

COLLECTORS = allow(Role.COLLECTOR)
# The summary reads two small fields per account: more of them than a list view does.
SUMMARY_LIMIT = 100_000
MAX_SUMMARY_LIMIT = 1_000_000
Collector = Annotated[Actor, Depends(COLLECTORS)]
CollectorOrBiller = Annotated[Actor, Depends(allow(Role.COLLECTOR, Role.BILLER))]
DeskOrCollector = Annotated[Actor, Depends(allow(Role.FRONT_DESK, Role.COLLECTOR))]
IdempotencyKey = Annotated[
    str | None,
    Header(min_length=1, max_length=200, description="A retried command is applied once."),
]


class EstimateRequest(Body):
    procedures: list[EstimatedProcedure] = Field(
        min_length=1, max_length=30, description="The scheduled services: code and units."
    )


class AgencyPlacementRequest(Body):
    agency_id: Id = Field(description="The collection agency the balance is placed with.")


class CollectionHoldRequest(Body):
    hold: bool = Field(description="True holds automatic agency placement; false releases.")
    reason: str = Field(default="", max_length=200)


class RecallRequest(Body):
    reason: str = Field(default="", max_length=200)


class AgencyReturnRequest(Body):
    """The agency's answer: it could not collect."""


class PaymentPlanRequest(Body):
    installments: int = Field(strict=True, ge=2, le=60, description="Number of installments.")


class WriteOffRequest(Body):
    amount_cents: AmountCents = Field(description="1 up to the balance, in cents.")
    reason: WriteOffReason
    write_off_id: Id | None = Field(
        default=None, description="Idempotency key: the same write-off sent twice counts once."
    )


class AccountWriteOff(Body):
    episode_id: Id
    amount_cents: AmountCents = Field(description="What is written off: its balance, usually.")


class BulkWriteOffs(Body):
    items: list[AccountWriteOff] = Field(min_length=1, max_length=MAX_BULK_ITEMS)
    reason: WriteOffReason = Field(
        default=WriteOffReason.SMALL_BALANCE,
        description="The owner's rules hold per account (small-balance: at most the "
        "configured small balance).",
    )


class RefundRequest(Body):
    amount_cents: AmountCents = Field(description="1 up to the credit, in cents.")
    recipient: RefundRecipient
    reason: str = Field(min_length=1, max_length=200)


class StatementFilter(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class AccountFilter(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


def _episode_id(episode_id: str) -> str:
    """A path id no event could have used names no account (404, as any unknown one)."""
    return path_id(episode_id, "account")


def router(service: Service, accounts: Accounts) -> APIRouter:
    api = APIRouter(tags=["collections"])

    @api.get("/accounts/{episode_id}", dependencies=[Depends(allow(Role.COLLECTOR, Role.BILLER))])
    async def get_account(episode_id: str) -> dict[str, Any]:
        account = await accounts.aggregates.get(_episode_id(episode_id))
        if account is None:
            raise NotFound(f"no account for episode {episode_id}")
        return domain.account_view(account)

    @api.get("/accounts/{episode_id}/flow", dependencies=[Depends(allow(Role.OPS))])
    async def account_flow(episode_id: str) -> dict[str, Any]:
        """Ops' view of the account: ids, times and states, no money or diagnoses."""
        account = await accounts.aggregates.get(_episode_id(episode_id))
        if account is None:
            raise NotFound(f"no account for episode {episode_id}")
        return flow_view(domain.account_view(account))

    @api.get("/accounts", dependencies=[Depends(allow(Role.COLLECTOR, Role.OPS))])
    async def summarize(
        state: AccountFilter | None = None,
        limit: int = Query(SUMMARY_LIMIT, ge=1, le=MAX_SUMMARY_LIMIT, description="Most read."),
    ) -> dict[str, Any]:
        """Counts and summed totals of the accounts in a state (all when no state), of at
        most `limit` accounts; `complete` is false when there are more."""
        summary = await accounts.summary(state.value if state else None, limit)
        totals = summary["totals"]
        accounted = sum(totals[name] for name in totals if name != "charges_cents")
        return {
            "state": state.value if state else None,
            **summary,
            "invariant_holds": accounted == totals["charges_cents"]
            and summary["accounts_breaking_invariant"] == 0,
        }

    @api.get("/statements", dependencies=[Depends(COLLECTORS)])
    async def statements(
        status_: StatementFilter = Query(StatementFilter.OPEN, alias="status"),
        limit: int = Query(1000, ge=1, le=10_000),
    ) -> dict[str, Any]:
        if status_ is StatementFilter.OPEN:
            listed = await accounts.with_open_statement(limit)
        else:
            listed = await accounts.with_statements(limit)
        wanted = domain.StatementStatus(status_.value)
        found = [view for account in listed for view in domain.statement_views(account, wanted)]
        return {"status": status_.value, "count": len(found), "statements": found}

    @api.post("/accounts/{episode_id}/payment-plan", responses=KEY_REQUIRED_RESPONSES)
    async def create_payment_plan(
        episode_id: str,
        body: PaymentPlanRequest,
        collector: Collector,
        idempotency_key: RequiredIdempotencyKey,
    ) -> Any:
        """201 with the plan this request made; 200 with the same plan asked for again."""
        request = PaymentPlanRequested(
            episode_id=_episode_id(episode_id),
            requested_by=collector.subject,
            installments=body.installments,
        )
        reply = await service.ask(request, idempotency_key)
        return reply.response()

    @api.post("/accounts/{episode_id}/write-offs", responses=KEY_REQUIRED_RESPONSES)
    async def write_off(
        episode_id: str,
        body: WriteOffRequest,
        collector: Collector,
        idempotency_key: RequiredIdempotencyKey,
    ) -> Any:
        """201 with the write-off this request made; 200 with the same one sent again."""
        request = WriteOffRequested(
            episode_id=_episode_id(episode_id),
            requested_by=collector.subject,
            amount_cents=body.amount_cents,
            reason=body.reason,
            write_off_id=body.write_off_id,
        )
        reply = await service.ask(request, idempotency_key)
        return reply.response()

    @api.post("/bulk/write-offs", responses=KEY_REQUIRED_RESPONSES)
    async def bulk_write_offs(
        http: Request,
        body: BulkWriteOffs,
        collector: Collector,
        idempotency_key: RequiredIdempotencyKey,
    ) -> dict[str, Any]:
        """Writes off each account's (small) balance through the account's own write-off,
        one request per account: the answer says how each ended (done, or refused with
        why, e.g. more than a small balance); a retry with the same key applies each once."""
        amounts = {item.episode_id: item.amount_cents for item in body.items}
        ids = unique([item.episode_id for item in body.items])
        name_resources(http, ids)

        async def one(episode_id: str, key: str) -> Reply:
            request = WriteOffRequested(
                episode_id=episode_id,
                requested_by=collector.subject,
                amount_cents=amounts[episode_id],
                reason=body.reason,
                write_off_id=key,
            )
            return await service.ask(request, key)

        return await run_bulk(ids, idempotency_key, one)

    @api.get("/credit-balances", dependencies=[Depends(allow(Role.COLLECTOR, Role.BILLER))])
    async def credit_balances(
        limit: int = Query(1000, ge=1, le=10_000, description="Most accounts listed."),
    ) -> dict[str, Any]:
        """Accounts owing money back (balance below zero), with what each side may be
        refunded and the pending refund."""
        listed = await accounts.with_credit_balance(limit)
        found = [domain.credit_balance_view(account) for account in listed]
        return {"count": len(found), "accounts": found}

    @api.post("/accounts/{episode_id}/refunds", responses=KEY_REQUIRED_RESPONSES)
    async def approve_refund(
        episode_id: str,
        body: RefundRequest,
        approver: CollectorOrBiller,
        idempotency_key: RequiredIdempotencyKey,
    ) -> Any:
        """201 with the refund approved (pending until payments issues it); the same
        request again answers it again. 409 while one is pending, before billing is over
        or without a credit; 422 above the credit."""
        request = RefundRequested(
            episode_id=_episode_id(episode_id),
            requested_by=approver.subject,
            amount_cents=body.amount_cents,
            recipient=body.recipient,
            reason=body.reason,
        )
        reply = await service.ask(request, idempotency_key)
        return reply.response()

    @api.post("/accounts/{episode_id}/estimates")
    async def estimate(
        episode_id: str,
        body: EstimateRequest,
        asker: DeskOrCollector,
        idempotency_key: IdempotencyKey = None,
    ) -> Any:
        """201 with what the patient is estimated to owe for these services (breakdown and
        assumptions), kept on the account for point-of-service collection. 409 before
        eligibility is known; 422 for a code not on the chargemaster."""
        request = EstimateRequested(
            episode_id=_episode_id(episode_id),
            requested_by=asker.subject,
            procedures=body.procedures,
        )
        reply = await service.ask(request, idempotency_key)
        return reply.response()

    @api.get(
        "/accounts/{episode_id}/estimate",
        dependencies=[Depends(allow(Role.FRONT_DESK, Role.COLLECTOR))],
    )
    async def latest_estimate(episode_id: str) -> dict[str, Any]:
        account = await accounts.aggregates.get(_episode_id(episode_id))
        if account is None or not account.estimates:
            raise NotFound(f"no estimate for episode {episode_id}")
        return {"episode_id": account.episode_id, **account.estimates[-1].model_dump(mode="json")}

    @api.post("/accounts/{episode_id}/agency-placement")
    async def place_with_agency(
        episode_id: str,
        body: AgencyPlacementRequest,
        collector: Collector,
        idempotency_key: IdempotencyKey = None,
    ) -> Any:
        """201 placed (moves no money); 200 when already placed with that agency; 409
        without an open statement, with a plan, or placed elsewhere."""
        request = AgencyPlacementRequested(
            episode_id=_episode_id(episode_id),
            requested_by=collector.subject,
            agency_id=body.agency_id,
        )
        reply = await service.ask(request, idempotency_key)
        return reply.response()

    @api.post("/accounts/{episode_id}/collection-hold")
    async def hold(
        episode_id: str,
        body: CollectionHoldRequest,
        collector: Collector,
        idempotency_key: IdempotencyKey = None,
    ) -> Any:
        """Hold or release automatic agency placement."""
        request = CollectionHoldRequested(
            episode_id=_episode_id(episode_id),
            requested_by=collector.subject,
            hold=body.hold,
            reason=body.reason,
        )
        reply = await service.ask(request, idempotency_key)
        return reply.response()

    @api.post("/accounts/{episode_id}/agency-recall")
    async def recall(
        episode_id: str,
        body: RecallRequest,
        collector: Collector,
        idempotency_key: IdempotencyKey = None,
    ) -> Any:
        """Take the account back from the agency (held in house afterwards); 409 when
        it is not placed."""
        request = AgencyRecallRequested(
            episode_id=_episode_id(episode_id),
            requested_by=collector.subject,
            reason=body.reason,
        )
        reply = await service.ask(request, idempotency_key)
        return reply.response()

    @api.post("/accounts/{episode_id}/agency-return", responses=KEY_REQUIRED_RESPONSES)
    async def agency_return(
        episode_id: str,
        body: AgencyReturnRequest,
        collector: Collector,
        idempotency_key: RequiredIdempotencyKey,
    ) -> Any:
        """The agency returned it uncollectable: the patient balance is written off to bad
        debt (moves money: an Idempotency-Key is required); 409 when it is not placed."""
        request = AgencyReturnRequested(
            episode_id=_episode_id(episode_id), requested_by=collector.subject
        )
        reply = await service.ask(request, idempotency_key)
        return reply.response()

    return api
