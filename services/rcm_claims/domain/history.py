"""A claim's history in one view: every X12 document about it, in time order.

- 837P: each interchange a claim of its line went out in (the original, its corrections
  and its void), from the claim's own record ("sending in interchange N"); the text is
  in claims' X12 archive under the interchange's control number.
- 999 and 277CA: recorded on each claim they answer when the owner applies them
  (`X12Answer`), even an answer to an earlier attempt; the text is in claims' archive
  under the mailbox document id.
- 835: each posting applied to the claim (the payer's and a crossover payer's); the
  remittance is payments', which serves the text (`GET /claims/{claim_id}/documents/
  {remittance_id}` there), since payments archives the 835s.

Document ids are `837P.<interchange control number>`, `999.<mailbox id>`,
`277CA.<mailbox id>` and, for an 835, the remittance id (posting id without its index).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rcm_contracts.claims import AcknowledgmentRequested, AckStage
from rcm_shared.aggregates import Decision

from .model import Claim, Episode, X12Answer

SENT_IN = re.compile(r"^sending in interchange (\d+)$")
ARCHIVED_KINDS = ("837P", "999", "277CA")
ACK_KIND = {AckStage.CLEARINGHOUSE: "999", AckStage.PAYER: "277CA"}


def with_answers(
    current: Episode | None,
    decision: Decision[Episode, Any],
    request: AcknowledgmentRequested,
    now: datetime,
) -> Decision[Episode, Any]:
    """The acknowledgment's decision, with the document recorded on every claim it names
    (once per document and claim)."""
    base = decision.state if decision.state is not None else current
    if base is None:
        return decision
    episode = base if decision.state is not None else Episode.begin(base, base.episode_id)
    kind = ACK_KIND[request.stage]
    recorded = False
    for verdict in request.verdicts:
        claim = episode.find(verdict.claim_id)
        if claim is None or any(
            d.document_id == request.document_id and d.kind == kind for d in claim.x12_documents
        ):
            continue
        claim.x12_documents.append(
            X12Answer(
                kind=kind,
                document_id=request.document_id,
                received_at=now,
                accepted=verdict.accepted,
                status_codes=list(verdict.status_codes),
                interchange_control_number=verdict.interchange_control_number,
                payer_claim_control_number=verdict.payer_claim_control_number,
            )
        )
        recorded = True
    if not recorded:
        return decision
    return Decision(state=episode, events=decision.events, result=decision.result)


def claim_line(episode: Episode, claim_id: str) -> list[Claim]:
    """The claim and every claim that replaced, was replaced by or voided it."""
    found: dict[str, Claim] = {}
    todo = [claim_id]
    while todo:
        claim = episode.find(todo.pop())
        if claim is None or claim.claim_id in found:
            continue
        found[claim.claim_id] = claim
        todo += [
            c
            for c in (claim.replaces_claim_id, claim.replaced_by, claim.voided_by)
            if c is not None
        ]
    return sorted(found.values(), key=lambda c: c.queued_at)


def _sent(claim: Claim) -> list[dict[str, Any]]:
    entries = []
    attempts = [
        (entry.at, int(match.group(1)))
        for entry in claim.audit
        if (match := SENT_IN.match(entry.action))
    ]
    for at, icn in attempts:
        last = icn == claim.interchange_control_number
        submitted_at = claim.submitted_at if last else None
        entries.append(
            {
                "kind": "837P",
                "document_id": f"837P.{icn:09d}",
                "claim_id": claim.claim_id,
                "frequency": claim.frequency.value,
                "at": (submitted_at or at).isoformat(),
                "control_numbers": {
                    "interchange": f"{icn:09d}",
                    "transaction_set": claim.transaction_control_number if last else None,
                    "batch_id": claim.batch_id if last else None,
                },
                "outcome": "submitted" if submitted_at else "sending" if last else "sent again",
                "archived_by": "claims",
            }
        )
    return entries


def _answers(claim: Claim) -> list[dict[str, Any]]:
    return [
        {
            "kind": answer.kind,
            "document_id": f"{answer.kind}.{answer.document_id}",
            "claim_id": claim.claim_id,
            "at": answer.received_at.isoformat(),
            "control_numbers": {
                "interchange": f"{answer.interchange_control_number:09d}"
                if answer.interchange_control_number
                else None,
                "payer_claim_control_number": answer.payer_claim_control_number,
            },
            "outcome": "accepted" if answer.accepted else "rejected",
            "status_codes": answer.status_codes,
            "archived_by": "claims",
        }
        for answer in claim.x12_documents
    ]


def remittance_of(posting_id: str) -> str:
    """Payments names a posting `<remittance id>-<CLP index>`."""
    return posting_id.rpartition("-")[0] or posting_id


def _postings(claim: Claim) -> list[dict[str, Any]]:
    return [
        {
            "kind": "835",
            "document_id": remittance_of(adjudication.posting_id),
            "claim_id": claim.claim_id,
            "at": adjudication.posted_at.isoformat(),
            "control_numbers": {
                "posting_id": adjudication.posting_id,
                "payer_claim_control_number": adjudication.payer_claim_control_number,
            },
            "outcome": adjudication.status,
            "payer_id": adjudication.payer_id,
            "paid_cents": adjudication.paid_cents,
            "archived_by": "payments",
        }
        for adjudication in claim.adjudications
    ]


def claim_history(episode: Episode, claim_id: str) -> dict[str, Any]:
    """Every X12 document about the claim's line, oldest first, each with the path that
    fetches its text (on claims, or on payments for an 835)."""
    episode.claim(claim_id)  # NotFound for an unknown claim
    line = claim_line(episode, claim_id)
    documents: list[dict[str, Any]] = []
    for claim in line:
        documents += _sent(claim) + _answers(claim) + _postings(claim)
    for document in documents:
        document["href"] = f"/claims/{claim_id}/documents/{document['document_id']}"
    documents.sort(key=lambda d: (d["at"], d["kind"]))
    return {
        "claim_id": claim_id,
        "episode_id": episode.episode_id,
        "claims": [c.claim_id for c in line],
        "count": len(documents),
        "documents": documents,
    }


def archived_reference(document_id: str) -> tuple[str, str] | None:
    """(kind, archive reference) of a claims-archived document id, else None."""
    kind, _, reference = document_id.partition(".")
    if kind not in ARCHIVED_KINDS or not reference:
        return None
    return kind, reference


def names_document(history: dict[str, Any], document_id: str) -> dict[str, Any] | None:
    return next((d for d in history["documents"] if d["document_id"] == document_id), None)


def history_times(history: dict[str, Any], document_id: str) -> Sequence[datetime]:
    return [
        datetime.fromisoformat(d["at"])
        for d in history["documents"]
        if d["document_id"] == document_id
    ]
