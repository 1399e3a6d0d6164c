"""Sending an appeal to the payer, through the clearinghouse's appeal endpoint.

  POST /appeals   JSON: the appeal, the claim's payer claim control number, the line
                  (`line_id`, its REF*6R) for a line's appeal and the documents (base64);
                  200 {appeal_id, outcome, reason}: the payer's decision letter, or 202:
                  received, no decision (the appeal stays sent until the payer's answer
                  deadline, then it is the biller's to resend). Overturned: the payer's
                  835 reprocessing the claim follows in the mailbox, like any 835.

The payer answers an appeal id it has seen with the same decision, so sending again
(a retried request) is safe. Nothing of the answer is logged: letters quote the claim.

AppealFiling is the whole command: the owner records the appeal, the documents are kept,
the payer is asked, the owner records its answer. Every step may be done again, so a
retry with the same Idempotency-Key finishes what a process that died between two of
them began (the appeal id comes from the key). A resending is the same: the owner records
it once per key, then the same appeal goes to the payer and its answer is recorded.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from rcm_contracts import Request
from rcm_contracts.claims import (
    AppealDecisionRequested,
    AppealDocument,
    AppealOutcome,
    AppealRequested,
    AppealResendRequested,
)
from rcm_shared.errors import Conflict, NotFound, TransientError
from rcm_shared.requests import Reply

from .documents import DocumentArchive
from .domain.appeal_state import Appeal
from .domain.model import Episode

Ask = Callable[[Request, str | None], Awaitable[Reply]]


@dataclass(frozen=True)
class PayerAnswer:
    outcome: AppealOutcome
    reason: str


class AppealSender:
    def __init__(self, base_url: str, archive: DocumentArchive, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.archive = archive
        self.timeout_s = timeout_s

    async def send(
        self, claim_id: str, payer_id: str, pccn: str | None, appeal: Appeal
    ) -> PayerAnswer | None:
        """The payer's decision; None: received, not decided."""
        body = {
            "appeal_id": appeal.appeal_id,
            "claim_id": claim_id,
            "payer_id": payer_id,
            "payer_claim_control_number": pccn,
            "line_id": appeal.line_id,
            "reason": appeal.reason,
            "authorization_number": appeal.authorization_number,
            "timely_filing_proof": appeal.timely_filing_proof,
            "documents": [
                {
                    "document_id": d.document_id,
                    "sha256": d.sha256,
                    "content_type": d.content_type,
                    "content_base64": base64.b64encode(self.archive.content(d)).decode(),
                }
                for d in appeal.documents
            ],
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(f"{self.base_url}/appeals", json=body)
        except httpx.HTTPError as error:
            raise TransientError(f"appeal {appeal.appeal_id}: the payer did not answer") from error
        if response.status_code >= 500:
            raise TransientError(
                f"appeal {appeal.appeal_id}: payer answered {response.status_code}"
            )
        if response.status_code == 202:
            return None
        if response.status_code != 200:
            # The payer's words may quote the claim: the status says enough.
            raise Conflict(
                f"appeal {appeal.appeal_id}: the payer refused it ({response.status_code})"
            )
        answer = response.json()
        return PayerAnswer(AppealOutcome(answer["outcome"]), str(answer["reason"])[:300])


@dataclass(frozen=True)
class Upload:
    """A document sent with the appeal, checked (documents.describe) but not kept yet."""

    content: bytes
    document: AppealDocument


class AppealFiling:
    def __init__(
        self,
        ask: Ask,
        episode: Callable[[str], Awaitable[Episode | None]],
        sender: AppealSender,
    ) -> None:
        self.ask = ask
        self.episode = episode
        self.sender = sender

    async def file(
        self, request: AppealRequested, uploads: list[Upload], idempotency_key: str
    ) -> dict[str, Any]:
        """The appeal as the owner has it once the payer's answer is recorded."""
        filed = dict((await self.ask(request, idempotency_key)).body)
        appeal = Appeal.model_validate(filed)
        if appeal.status != "sent":  # a retry of an appeal the payer has answered
            return dict(filed)
        # Kept only once the owner took the appeal: a refused one leaves nothing behind.
        for upload in uploads:
            document = upload.document
            self.sender.archive.keep(upload.content, document.content_type, document.title)
        return await self._send(request.episode_id, request, appeal, idempotency_key, filed)

    async def resend(self, request: AppealResendRequested, idempotency_key: str) -> dict[str, Any]:
        """The same appeal (id, documents) sent again, recorded once per key; the appeal
        as the owner has it once the payer's answer, if any, is recorded."""
        recorded = (await self.ask(request, idempotency_key)).body
        appeal = Appeal.model_validate(recorded)
        if appeal.status != "sent":  # answered since (a retry of a resending that finished)
            return dict(recorded)
        return await self._send(request.episode_id, request, appeal, idempotency_key, recorded)

    async def _send(
        self,
        episode_id: str,
        request: AppealRequested | AppealResendRequested,
        appeal: Appeal,
        idempotency_key: str,
        recorded: dict[str, Any],
    ) -> dict[str, Any]:
        episode = await self.episode(episode_id)
        if episode is None:
            raise NotFound(f"claim {request.claim_id} not found")
        claim = episode.claim(request.claim_id)
        answer = await self.sender.send(
            claim.claim_id, claim.payer_id, claim.payer_claim_control_number, appeal
        )
        if answer is None:  # with the payer: the deadline watch follows it up
            return dict(recorded)
        decision = AppealDecisionRequested(
            episode_id=episode_id,
            requested_by=request.requested_by,
            claim_id=request.claim_id,
            appeal_id=appeal.appeal_id,
            outcome=answer.outcome,
            reason=answer.reason,
        )
        return dict((await self.ask(decision, f"{idempotency_key}:decision")).body)
