"""Sending an appeal to the payer, through the clearinghouse's appeal endpoint.

  POST /appeals   JSON: the appeal, the claim's payer claim control number and the
                  documents (base64); 200 {appeal_id, outcome, reason}: the payer's
                  decision letter. Overturned: the payer's 835 reprocessing the claim
                  follows in the mailbox, like any 835.

The payer answers an appeal id it has seen with the same decision, so sending again
(a retried request) is safe. Nothing of the answer is logged: letters quote the claim.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx
from rcm_contracts.claims import AppealOutcome
from rcm_shared.errors import Conflict, TransientError

from .documents import DocumentArchive
from .domain.appeal_state import Appeal


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
    ) -> PayerAnswer:
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
        if response.status_code != 200:
            # The payer's words may quote the claim: the status says enough.
            raise Conflict(
                f"appeal {appeal.appeal_id}: the payer refused it ({response.status_code})"
            )
        answer = response.json()
        return PayerAnswer(AppealOutcome(answer["outcome"]), str(answer["reason"])[:300])
