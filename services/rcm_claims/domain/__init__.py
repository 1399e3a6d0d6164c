"""The rules of an episode's claims, from the first 837P to the last closing. No I/O.

One aggregate per episode (collection "episodes") holds what the claims service hears
about it, its claims (`<episode_id>-<n>`), every payment posting applied to them and a
counter of closings. Each decision takes the episode (or None), the input and the time and
returns a `rcm_shared.aggregates.Decision` (the new episode, the events to emit, written
together, and a result); one that says no raises rcm_shared.errors' NotFound, Conflict or
Invalid.

The modules follow a claim's road; the handlers, jobs and API use the names exported
here.
"""

from .acknowledgments import acknowledge, acknowledge_each
from .biller import (
    CommandResult,
    accept_denial,
    close_claim,
    closed_by_biller,
    correct,
    corrected,
    void,
    voided,
    work_items,
)
from .building import billing
from .joining import (
    coding_completed,
    coding_corrected,
    coverage_updated,
    eligibility_failed,
    eligibility_verified,
    patient_registered,
)
from .model import (
    Claim,
    ClaimStatus,
    ClaimStillSending,
    Episode,
    WorkKind,
)
from .remittance import CODING_CARCS, denial_category, payment_posted
from .sending import Marked, mark_sending, mark_submitted, refuse
from .views import count, episode_view

__all__ = [
    "CODING_CARCS",
    "Claim",
    "ClaimStatus",
    "ClaimStillSending",
    "CommandResult",
    "Episode",
    "Marked",
    "WorkKind",
    "accept_denial",
    "acknowledge",
    "acknowledge_each",
    "billing",
    "close_claim",
    "closed_by_biller",
    "coding_completed",
    "coding_corrected",
    "correct",
    "corrected",
    "count",
    "coverage_updated",
    "denial_category",
    "eligibility_failed",
    "eligibility_verified",
    "episode_view",
    "mark_sending",
    "mark_submitted",
    "patient_registered",
    "payment_posted",
    "refuse",
    "void",
    "voided",
    "work_items",
]
