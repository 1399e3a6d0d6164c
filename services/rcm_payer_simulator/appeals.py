"""The payers' answers to appeals, by the denial's reason and what came with the appeal.

- CO-16 (information missing) and CO-50 (medical necessity): overturned with a document.
- CO-197 (no prior authorization): overturned with an authorization number.
- CO-29 (timely filing): overturned only with a document proving timely filing.
- CO-27 (coverage ended), CO-18 (duplicate), CO-97 (bundled: correct the coding instead)
  and anything else: upheld.

A line's appeal (`line_id`, its REF*6R) is decided by the same rules on the line's
denial. Overturned, the payer reprocesses the claim: the next 835 reverses the earlier
adjudication and pays it (the line too). An appeal id already answered gets the same
answer and nothing is reprocessed twice; the answers are kept in a file (AnswerBook), so
a restarted payer answers a resent appeal as it did before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
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


@dataclass(frozen=True)
class Received:
    """Taken and never decided: a payer that lost the appeal (Simulator.lose_appeals)."""

    appeal_id: str


class AnswerBook:
    """The payer's answers by appeal id, one JSON line each, appended and flushed to disk
    before the answer is given (0600 in a 0700 folder, like the X12 archive). Letters
    name codes, never the patient. A line that did not finish (a crash mid-write) is
    skipped: that appeal was not answered, so it is decided again."""

    FILE = "answers.jsonl"

    def __init__(self, folder: Path) -> None:
        self.path = folder / self.FILE
        self.folder = folder

    def load(self) -> dict[str, AppealDecision]:
        if not self.path.is_file():
            return {}
        found: dict[str, AppealDecision] = {}
        for line in self.path.read_text("utf-8").splitlines():
            try:
                entry = json.loads(line)
                decision = AppealDecision(entry["appeal_id"], entry["outcome"], entry["reason"])
            except (ValueError, KeyError, TypeError):
                continue
            if decision.outcome in ("overturned", "upheld"):
                found[decision.appeal_id] = decision
        return found

    def _torn(self) -> bool:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return False
        with self.path.open("rb") as file:
            file.seek(-1, os.SEEK_END)
            return file.read(1) != b"\n"

    def keep(self, decision: AppealDecision) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)  # mkdir's mode is masked by the umask
        torn = self._torn()
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "a", encoding="utf-8") as file:
            # After a torn last line, start a new one so that this answer reads back.
            file.write(("\n" if torn else "") + json.dumps(decision.as_dict()) + "\n")
            file.flush()
            os.fsync(file.fileno())


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
