"""`rcm remittance check FILE`: read an 835 as payments would, without posting it.

It parses and balances every transaction, then shows how each claim would post under
payments' own rules (`rcm_payments.domain`): status, paid, adjustments by group and
reason, patient responsibility by kind, crossover payer, remark codes, recoded lines;
and each PLB entry with its kind. Whether a claim matches a submitted claim (and so its
payer and rank) is known only to the running service, so it is not judged here.
A refused file (unreadable, or a transaction that does not balance) exits 1 and says
where; ids and money only, never a patient's name or member id.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rcm_contracts.payments import RemittanceTransaction, RemittedClaim
from rcm_contracts.registration import CoverageRank
from rcm_payments import domain
from rcm_shared.clock import utc_now
from rcm_shared.redact import problems
from rcm_x12 import X12Error
from rich.console import Console

app = typer.Typer(no_args_is_help=True, help="Check 835 remittance files before posting.")

UNPOSTABLE = "unpostable-by-rule"
STAND_IN_EPISODE = "E000000000000"


def _stand_in(claim: RemittedClaim, transaction: RemittanceTransaction) -> domain.SubmittedClaim:
    """A submitted claim that agrees with the 835: the rules of the remittance alone."""
    claim_id = domain.sanitise_id(claim.claim_id)
    return domain.SubmittedClaim(
        claim_id=claim_id,
        episode_id=domain.episode_of(claim_id) or STAND_IN_EPISODE,
        payer_id=transaction.payer_id,
        rank=CoverageRank.SECONDARY
        if claim.status_code in domain.SECONDARY_STATUSES
        else CoverageRank.PRIMARY,
    )


def claim_preview(claim: RemittedClaim, transaction: RemittanceTransaction) -> dict[str, Any]:
    by_reason: dict[str, int] = defaultdict(int)
    for adjustment in claim.adjustments:
        by_reason[f"{adjustment.group}-{adjustment.reason_code}"] += adjustment.amount_cents
    owed = domain.patient_responsibility(claim.adjustments)
    preview: dict[str, Any] = {
        "index": claim.index,
        "claim_id": claim.claim_id,
        "clp02": claim.status_code,
        "charge_cents": claim.charge_cents,
        "paid_cents": claim.paid_cents,
        "adjustments": dict(sorted(by_reason.items())),
        "patient_responsibility": {
            "deductible_cents": owed.deductible_cents,
            "coinsurance_cents": owed.coinsurance_cents,
            "copay_cents": owed.copay_cents,
            "other_cents": owed.other_cents,
        },
        "crossover_payer_id": claim.crossover_payer_id,
        "remark_codes": sorted(
            {*claim.remark_codes, *(code for line in claim.lines for code in line.remark_codes)}
        ),
        "recoded_lines": [
            {
                "line_id": line.line_id,
                "billed": line.billed_procedure_code,
                "paid_as": line.procedure_code,
            }
            for line in claim.lines
            if line.billed_procedure_code is not None
        ],
        "reason": None,
    }
    try:
        posted = domain.posting_of(
            claim, _stand_in(claim, transaction), transaction.remittance_id,
            transaction.trace_number, utc_now(),
        )  # fmt: skip
    except domain.NotPostable as error:
        preview["status"], preview["reason"] = UNPOSTABLE, str(error)
    else:
        preview["status"] = posted.status.value
    return preview


def transaction_preview(transaction: RemittanceTransaction) -> dict[str, Any]:
    plb = domain.provider_adjustments(
        transaction.remittance_id, transaction.provider_adjustments, {}
    )
    return {
        "remittance_id": transaction.remittance_id,
        "transaction_control_number": transaction.transaction_control_number,
        "payer_id": transaction.payer_id,
        "payer_company_id": transaction.payer_company_id,
        "payment_trace_number": transaction.trace_number,
        "payment_cents": transaction.payment_cents,
        "balanced": not transaction.imbalances,
        "imbalances": transaction.imbalances,
        "claims": [claim_preview(c, transaction) for c in transaction.claims],
        "provider_adjustments": [
            {
                "adjustment_id": p.adjustment_id,
                "provider_id": p.provider_id,
                "fiscal_period_date": p.fiscal_period_date.isoformat(),
                "reason_code": p.reason_code,
                "reference": p.reference,
                "amount_cents": p.amount_cents,
                "kind": p.kind.value,
            }
            for p in plb
        ],
    }


def check_text(text: str, document_id: str) -> dict[str, Any]:
    """The verdict on one 835's text: postable, and how each transaction would post."""
    try:
        transactions = domain.read_835(text, document_id)
    except X12Error as error:
        return {"file": document_id, "postable": False, "refusal": error.located()}
    except ValidationError as error:
        return {"file": document_id, "postable": False, "refusal": problems(error)}
    previews = [transaction_preview(t) for t in transactions]
    unbalanced = [p for p in previews if not p["balanced"]]
    return {
        "file": document_id,
        "postable": not unbalanced,
        "refusal": "; ".join(i for p in unbalanced for i in p["imbalances"]) or None,
        "transactions": previews,
    }


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) / 100:,.2f}"


def _show(verdict: dict[str, Any], console: Console) -> None:
    if "transactions" not in verdict:
        console.print(f"[red]refused[/red] {verdict['file']}: {verdict['refusal']}")
        return
    for t in verdict["transactions"]:
        state = "balanced" if t["balanced"] else "[red]does not balance[/red]"
        console.print(
            f"[bold]{t['remittance_id']}[/bold] ST {t['transaction_control_number']}, payer "
            f"{t['payer_id']}, trace {t['payment_trace_number']}, "
            f"{_money(t['payment_cents'])}: {state}"
        )
        for imbalance in t["imbalances"]:
            console.print(f"  [red]{imbalance}[/red]")
        for c in t["claims"]:
            status = c["status"] if c["reason"] is None else f"[red]{c['status']}[/red]"
            console.print(
                f"  claim {c['index']} {c['claim_id']} CLP02 {c['clp02']} → {status}: charge "
                f"{_money(c['charge_cents'])}, paid {_money(c['paid_cents'])}"
            )
            details = {
                "why": c["reason"],
                "adjustments": ", ".join(f"{k} {_money(v)}" for k, v in c["adjustments"].items()),
                "patient owes": ", ".join(
                    f"{kind.removesuffix('_cents')} {_money(v)}"
                    for kind, v in c["patient_responsibility"].items()
                    if v
                ),
                "crossover payer": c["crossover_payer_id"],
                "remarks": " ".join(c["remark_codes"]),
                "recoded": ", ".join(
                    f"{r['line_id'] or '?'} billed {r['billed']} paid as {r['paid_as']}"
                    for r in c["recoded_lines"]
                ),
            }
            for label, text in details.items():
                if text:
                    console.print(f"    {label}: {text}")
        for p in t["provider_adjustments"]:
            console.print(
                f"  PLB {p['adjustment_id']} {p['reason_code']} ({p['kind']}) "
                f"{_money(p['amount_cents'])}, reference {p['reference'] or 'none'}, provider "
                f"{p['provider_id']}, fiscal date {p['fiscal_period_date']}"
            )
    if verdict["postable"]:
        console.print("[green]postable[/green]")
    else:
        console.print(f"[red]refused[/red]: {verdict['refusal']}")


@app.command("check")
def check(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
) -> None:
    """Parse and balance FILE and print how each claim would post. Exit 0 when postable,
    1 when refused (unreadable, or a transaction does not balance)."""
    try:
        with file.open(newline="") as handle:  # CRLF files stay as they are
            text = handle.read()
    except UnicodeDecodeError:
        verdict: dict[str, Any] = {"file": file.name, "postable": False,
                                   "refusal": "not UTF-8 text"}  # fmt: skip
    else:
        verdict = check_text(text, file.name)
    if as_json:
        typer.echo(json.dumps(verdict, indent=2))
    else:
        _show(verdict, Console())
    raise typer.Exit(0 if verdict["postable"] else 1)
