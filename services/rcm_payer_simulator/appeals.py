"""The payers' answers to appeals, by the denial's reason and what came with the appeal.

- CO-16 (information missing) and CO-50 (medical necessity): overturned with a document.
- CO-197 (no prior authorization): overturned with an authorization number.
- CO-29 (timely filing): overturned only with a document proving timely filing.
- CO-27 (coverage ended), CO-18 (duplicate), CO-97 (bundled: correct the coding instead)
  and anything else: upheld.

Overturned, the payer reprocesses the claim: the next 835 reverses the denial and pays
it. An appeal id already answered gets the same answer and nothing is reprocessed twice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["overturned", "upheld"]


class SentDocument(BaseModel):
    model_config = ConfigDict(extra="ignore")

    document_id: str = Field(max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_type: str = Field(max_length=100)
    content_base64: str = Field(max_length=1_000_000)

    def intact(self) -> bool:
        """The payer takes a document whose bytes match the digest it was sent with."""
        try:
            content = base64.b64decode(self.content_base64, validate=True)
        except (binascii.Error, ValueError):
            return False
        return bool(content) and hashlib.sha256(content).hexdigest() == self.sha256


class AppealRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    appeal_id: str = Field(min_length=1, max_length=64)
    claim_id: str = Field(min_length=1, max_length=64)
    payer_id: str = Field(min_length=1, max_length=80)
    payer_claim_control_number: str | None = Field(default=None, max_length=50)
    line_id: str | None = Field(default=None, max_length=64)
    reason: str = Field(min_length=1, max_length=300)
    authorization_number: str | None = Field(default=None, max_length=50)
    timely_filing_proof: bool = False
    documents: list[SentDocument] = Field(default_factory=list, max_length=10)


@dataclass(frozen=True)
class AppealDecision:
    appeal_id: str
    outcome: Outcome
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"appeal_id": self.appeal_id, "outcome": self.outcome, "reason": self.reason}


def decide(denial_reason: str, request: AppealRequest) -> AppealDecision:
    documents = sum(d.intact() for d in request.documents)

    def answer(outcome: Outcome, reason: str) -> AppealDecision:
        return AppealDecision(request.appeal_id, outcome, reason)

    if denial_reason in ("16", "50"):
        if documents:
            return answer("overturned", f"CO-{denial_reason}: the documents support the claim")
        return answer("upheld", f"CO-{denial_reason}: no supporting document was received")
    if denial_reason == "197":
        if request.authorization_number:
            return answer("overturned", "CO-197: the authorization on file covers the service")
        return answer("upheld", "CO-197: no authorization was supplied")
    if denial_reason == "29":
        if request.timely_filing_proof and documents:
            return answer("overturned", "CO-29: proof of timely filing received")
        return answer("upheld", "CO-29: no proof of timely filing")
    if denial_reason == "27":
        return answer("upheld", "CO-27: coverage had ended before the date of service")
    if denial_reason == "18":
        return answer("upheld", "CO-18: the claim duplicates one already adjudicated")
    if denial_reason == "97":
        return answer("upheld", "CO-97: bundled service; submit a corrected claim instead")
    return answer("upheld", f"CO-{denial_reason}: original decision maintained")
