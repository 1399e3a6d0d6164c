"""What a claim keeps of its appeals and deadline alerts (stored in the episode)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from rcm_contracts.claims import AppealDocument, AppealOutcome


class Appeal(BaseModel):
    model_config = ConfigDict(extra="ignore")

    appeal_id: str
    line_id: str | None = None
    reason: str
    documents: list[AppealDocument] = Field(default_factory=list)
    authorization_number: str | None = None
    timely_filing_proof: bool = False
    denial_codes: list[str] = Field(default_factory=list)  # e.g. CO-16, what was appealed
    filed_by: str
    filed_at: datetime
    status: Literal["sent", "overturned", "upheld"] = "sent"
    decision: str | None = None
    decided_at: datetime | None = None

    @property
    def outcome(self) -> AppealOutcome | None:
        return None if self.status == "sent" else AppealOutcome(self.status)
