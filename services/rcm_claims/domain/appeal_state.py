"""What a claim keeps of its appeals and deadline alerts (stored in the episode)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field
from rcm_codes import Category, carc
from rcm_contracts.claims import AppealDocument, AppealOutcome
from rcm_contracts.payments import Adjustment, AdjustmentGroup

# What a payer reduces or leaves to others on a line it pays is not a denial to appeal.
NOT_DENIALS = frozenset(
    {Category.CONTRACTUAL, Category.PATIENT_RESPONSIBILITY, Category.COORDINATION_OF_BENEFITS}
)


def line_denial_codes(adjustments: Iterable[Adjustment], line_id: str) -> list[str]:
    """The line's denial codes in a posting (e.g. CO-50): the payer's own adjustments of
    that line (groups CO and PI), less reductions such as the fee schedule's CO-45."""
    listed = carc()
    return [
        f"{a.group.value}-{a.reason_code}"
        for a in adjustments
        if a.line_id == line_id
        and a.group in (AdjustmentGroup.CONTRACTUAL, AdjustmentGroup.PAYER_INITIATED)
        and a.amount_cents > 0
        and listed.category(a.reason_code) not in NOT_DENIALS
    ]


class AppealStep(BaseModel):
    """One entry of an appeal's history: filed, resent, overdue, overturned, upheld."""

    model_config = ConfigDict(extra="ignore")

    at: datetime
    action: Literal["filed", "resent", "overdue", "overturned", "upheld"]
    by: str | None = None
    note: str | None = None


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
    sends: int = 1  # the filing, then each resending
    sent_at: datetime | None = None  # the last resending (None: only the filing)
    overdue_at: datetime | None = None  # flagged past the answer deadline since last sent
    history: list[AppealStep] = Field(default_factory=list)

    @property
    def outcome(self) -> AppealOutcome | None:
        return None if self.status == "sent" else AppealOutcome(self.status)

    @property
    def last_sent_at(self) -> datetime:
        return self.sent_at or self.filed_at

    @computed_field  # type: ignore[prop-decorator]
    @property
    def overdue(self) -> bool:
        """Unanswered past the payer's answer deadline (flagged by the deadline watch)."""
        return self.status == "sent" and self.overdue_at is not None
