"""Each payer's own rules (reference data, no state): the procedure pairs it pays only
with a modifier, the procedures it pays only with a prior authorization, and how long
after the date of service it still takes a claim.

These, with the member's coverage on the date of service and the claims it has already
adjudicated, are what the simulator denies by (adjudication.py). Nothing here is drawn
from a hash: a claim that follows the rules is paid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

ESTABLISHED_VISITS = ("99211", "99212", "99213", "99214", "99215")
NEW_PATIENT_VISITS = ("99202", "99203", "99204", "99205")
OFFICE_VISITS = NEW_PATIENT_VISITS + ESTABLISHED_VISITS

# Remarks on a CO-97 line: the modifier that would let both be paid is missing (N20), or
# the payer never pays the pair on one day (M80).
MODIFIER_MISSING_REMARK = "N20"
NEVER_TOGETHER_REMARK = "M80"


@dataclass(frozen=True)
class PairEdit:
    """Two procedures on one date of service: the column-2 one is denied (CO-97) unless
    it carries one of `modifiers`; with no modifiers, the pair is never paid together."""

    column1: str
    column2: str
    modifiers: frozenset[str]

    @property
    def remark(self) -> str:
        return MODIFIER_MISSING_REMARK if self.modifiers else NEVER_TOGETHER_REMARK


@dataclass(frozen=True)
class PayerRules:
    pair_edits: tuple[PairEdit, ...]
    prior_authorization: frozenset[str]  # procedure codes paid only with REF*G1
    timely_filing_days: int  # from the date of service to the payer's receipt


def _with_visits(column1: str, visits: tuple[str, ...], modifier: str) -> tuple[PairEdit, ...]:
    """A procedure that includes the visit unless the visit was separately identifiable."""
    return tuple(PairEdit(column1, visit, frozenset({modifier})) for visit in visits)


# A minor procedure (strapping, an injection) includes the visit that decided on it: the
# visit is paid too only with 25 (a significant, separately identifiable evaluation).
STRAPPING_INCLUDES_VISIT = _with_visits("29540", OFFICE_VISITS, "25")
INJECTION_INCLUDES_VISIT = _with_visits("96372", OFFICE_VISITS, "25")
# Some plans pay one administration per day: a vaccine's and a therapeutic injection's.
ONE_ADMINISTRATION_A_DAY = (PairEdit("96372", "G0008", frozenset()),)

PAYER_RULES: Mapping[str, PayerRules] = MappingProxyType(
    {
        "ACME01": PayerRules(
            pair_edits=STRAPPING_INCLUDES_VISIT + INJECTION_INCLUDES_VISIT,
            prior_authorization=frozenset(),
            timely_filing_days=365,
        ),
        "SUMMIT": PayerRules(
            pair_edits=STRAPPING_INCLUDES_VISIT + INJECTION_INCLUDES_VISIT,
            prior_authorization=frozenset({"73610"}),  # an HMO: imaging is authorized first
            timely_filing_days=90,
        ),
        "BLUEPK": PayerRules(
            pair_edits=INJECTION_INCLUDES_VISIT,
            prior_authorization=frozenset(),
            timely_filing_days=180,
        ),
        "MERIDN": PayerRules(
            pair_edits=STRAPPING_INCLUDES_VISIT
            + INJECTION_INCLUDES_VISIT
            + ONE_ADMINISTRATION_A_DAY,
            prior_authorization=frozenset({"73610"}),
            timely_filing_days=120,
        ),
    }
)
