"""Revenue-cycle KPIs from the platform's events, with HFMA MAP Keys definitions.

Pure: what one episode's events say (`EpisodeFacts`), what the episode contributes to the
daily rollups, and the KPI figures computed from rollups and open claims. No I/O.

Definitions (days are UTC calendar days: the events carry UTC times and the platform has
no facility time zone):

- **Clean claim rate** = claims accepted by the payer (277CA) on first submission with no
  rejection (999 or 277CA) and no correction / claims submitted for the first time
  (a claim that replaces another, corrected or re-sent, is not a first submission).
  By the payer billed and the day of submission.
- **Denial rate** (initial) = claims whose first adjudication was a denial, not counting
  corrected (frequency 7) claims / claims adjudicated (paid or denied, first time); by
  count and by billed dollars, by denial category (claims' `DenialCategory`), by payer
  and by the day of adjudication.
- **Days in A/R** = gross A/R / average daily gross charges, where gross A/R is the
  billed charge of every open primary claim (submitted, not closed by claims) and daily
  gross charges are the charges of primary claims first billed on each of the last 90
  days, or of the days since the first one when there is less history. It is insurance
  A/R: what a patient owes after the payer is collections' (GET /accounts there).
- **Aged A/R** = open primary claims in buckets 0-30, 31-60, 61-90, 91-120 and 120+
  days from the claim's first submission (a corrected or re-sent claim keeps the age of
  the claim it replaces), per payer, at gross charges.
- **Point-of-service collections** = patient payments received on or before the day of
  service / all patient payments, in dollars. The day of service is the encounter's
  date of service, or the appointment's day until the encounter is known; a payment's
  day is the day it was received (payments carry no "taken at the front desk" flag, so
  the day is the approximation).
- **Insurance verification rate** = episodes whose coverage was verified (271 active)
  before the day of service / episodes scheduled and not cancelled, by the day of
  service. The platform books same-day visits, so the figure "verified before the
  visit" (at or before the scheduled start) is given beside it.
- **Cost to collect**: not computable: no cost data (the platform sees no costs).

Rollups: an episode's contribution to each counter is a function of its facts alone;
a change of facts moves the difference (`Delta`) into the rollups, in the decision that
changed the facts. A redelivered event changes no fact (the port skips it), so it moves
nothing, and events in any order end at the same contribution.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from rcm_contracts.claims import (
    AckStage,
    ClaimAccepted,
    ClaimClosed,
    ClaimDenied,
    ClaimFrequency,
    ClaimPaid,
    ClaimRejected,
    ClaimResubmitted,
    ClaimSubmitted,
    DenialCategory,
)
from rcm_contracts.eligibility import EligibilityVerified
from rcm_contracts.payments import PatientPaymentReceived
from rcm_contracts.registration import (
    AppointmentCancelled,
    AppointmentScheduled,
    CoverageRank,
    CoverageUpdated,
    EncounterCompleted,
)
from rcm_shared.aggregates import Decision

SELF_PAY = "self-pay"
UNKNOWN_PAYER = "unknown"
AR_HISTORY_DAYS = 90
COST_TO_COLLECT = "not computable: no cost data"
# (label, first day, last day or None: no end), by days since first submission.
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-30", 0, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-120", 91, 120),
    ("120+", 121, None),
)

Counts = dict[str, int]


class ClaimFacts(BaseModel):
    """What the claims events said of one claim; any of them may come first."""

    claim_id: str
    payer_id: str | None = None
    primary: bool | None = None
    frequency: ClaimFrequency | None = None
    charge_cents: int | None = None
    submitted_at: datetime | None = None
    replaces: str | None = None
    accepted_by_payer: bool = False
    rejected: bool = False
    paid_at: datetime | None = None
    denied_at: datetime | None = None
    denial_category: DenialCategory | None = None
    closed: bool = False

    @property
    def submitted(self) -> bool:
        return self.submitted_at is not None and self.charge_cents is not None

    def first_adjudication(self) -> tuple[str, datetime] | None:
        """('paid' | 'denied', when) of the earliest adjudication, if any."""
        found = [
            (at, outcome)
            for outcome, at in (("denied", self.denied_at), ("paid", self.paid_at))
            if at is not None
        ]
        if not found:
            return None
        at, outcome = min(found)
        return outcome, at


class PatientPayment(BaseModel):
    payment_id: str
    amount_cents: int
    received_at: datetime


class Delta(BaseModel):
    """Counts to add to one rollup counter; `id` makes adding it idempotent."""

    id: str
    key: str
    day: date
    payer: str
    partition: int
    counts: Counts


class OpenClaim(BaseModel):
    """An open primary claim as the aged A/R reads it (no patient values)."""

    claim_id: str
    payer: str
    charge_cents: int
    first_submitted_at: datetime


class EpisodeFacts(BaseModel):
    """The KPI facts of one episode: ids, days, payers and money only."""

    episode_id: str
    partition: int
    scheduled_start: datetime | None = None
    date_of_service: date | None = None
    cancelled: bool = False
    coverage_payer: str | None = None  # primary coverage's payer; SELF_PAY when none
    verified_payer: str | None = None
    verified_at: datetime | None = None
    # Lists, not maps by id: an id may hold a dot, which a stored field name may not.
    claims: list[ClaimFacts] = Field(default_factory=list)
    patient_payments: list[PatientPayment] = Field(default_factory=list)
    # Derived, kept for the aged A/R query (an indexed flag and what it reads).
    open_ar: list[OpenClaim] = Field(default_factory=list)
    has_open_ar: bool = False
    # Rollup changes decided and, as far as this document knows, not yet added to the
    # counters; those the writer added are dropped at the episode's next write.
    uncounted: list[Delta] = Field(default_factory=list)

    def claim(self, claim_id: str) -> ClaimFacts | None:
        return next((claim for claim in self.claims if claim.claim_id == claim_id), None)

    @property
    def payer(self) -> str:
        return self.coverage_payer or self.verified_payer or UNKNOWN_PAYER

    @property
    def service_day(self) -> date | None:
        if self.date_of_service is not None:
            return self.date_of_service
        return self.scheduled_start.date() if self.scheduled_start is not None else None


class Rollup(BaseModel):
    """One counter: the contributions of the episodes of one Kafka partition, on one day,
    for one payer. Only the partition's owner writes it."""

    day: date
    payer: str
    partition: int
    counts: Counts = Field(default_factory=dict)


def rollup_key(day: date, payer: str, partition: int) -> str:
    return f"{day.isoformat()}|{payer}|p{partition}"


# --- facts: one function per event ---------------------------------------------------------


def _facts(current: EpisodeFacts | None, episode_id: str, partition: int) -> EpisodeFacts:
    if current is not None:
        return current.model_copy(deep=True)
    return EpisodeFacts(episode_id=episode_id, partition=partition)


def _claim(facts: EpisodeFacts, claim_id: str) -> ClaimFacts:
    claim = facts.claim(claim_id)
    if claim is None:
        claim = ClaimFacts(claim_id=claim_id)
        facts.claims.append(claim)
    return claim


def _earliest(known: datetime | None, arriving: datetime) -> datetime:
    return arriving if known is None else min(known, arriving)


def apply_event(facts: EpisodeFacts, event: object) -> None:
    """Record what `event` says in `facts` (in place). Order-independent: each field is
    set once, or to the earliest/most telling value."""
    match event:
        case AppointmentScheduled():
            facts.scheduled_start = event.scheduled_start
        case AppointmentCancelled():
            facts.cancelled = True
        case CoverageUpdated():
            primary = [c for c in event.coverages if c.rank is CoverageRank.PRIMARY]
            facts.coverage_payer = primary[0].payer_id if primary else SELF_PAY
        case EncounterCompleted():
            facts.date_of_service = event.date_of_service
        case EligibilityVerified():
            facts.verified_at = _earliest(facts.verified_at, event.verified_at)
            if event.rank is CoverageRank.PRIMARY:
                facts.verified_payer = event.payer_id
        case ClaimSubmitted():
            claim = _claim(facts, event.claim_id)
            claim.payer_id = event.payer_id
            claim.primary = event.rank is CoverageRank.PRIMARY
            claim.frequency = event.frequency
            claim.charge_cents = event.total_charge_cents
            claim.submitted_at = _earliest(claim.submitted_at, event.submitted_at)
        case ClaimAccepted():
            if event.stage is AckStage.PAYER:
                _claim(facts, event.claim_id).accepted_by_payer = True
        case ClaimRejected():
            _claim(facts, event.claim_id).rejected = True
        case ClaimResubmitted():
            _claim(facts, event.claim_id).replaces = event.replaces_claim_id
        case ClaimDenied():
            claim = _claim(facts, event.claim_id)
            claim.payer_id = claim.payer_id or event.payer_id
            if claim.denied_at is None or event.denied_at < claim.denied_at:
                claim.denied_at = event.denied_at
                claim.denial_category = event.category
        case ClaimPaid():
            claim = _claim(facts, event.claim_id)
            claim.payer_id = claim.payer_id or event.payer_id
            claim.paid_at = _earliest(claim.paid_at, event.paid_at)
        case ClaimClosed():
            _claim(facts, event.claim_id).closed = True
        case PatientPaymentReceived():
            if all(paid.payment_id != event.payment_id for paid in facts.patient_payments):
                facts.patient_payments.append(
                    PatientPayment(
                        payment_id=event.payment_id,
                        amount_cents=event.amount_cents,
                        received_at=event.received_at,
                    )
                )
        case _:
            raise TypeError(f"no KPI fact for {type(event).__name__}")


# --- contributions: what an episode adds to each (day, payer) counter ---------------------


def _replaced(facts: EpisodeFacts) -> set[str]:
    return {claim.replaces for claim in facts.claims if claim.replaces is not None}


def _chain_start(facts: EpisodeFacts, claim: ClaimFacts) -> datetime | None:
    """When the first claim of `claim`'s replacement chain was submitted."""
    start, seen = claim.submitted_at, {claim.claim_id}
    current = claim
    while current.replaces is not None and current.replaces not in seen:
        seen.add(current.replaces)
        earlier = facts.claim(current.replaces)
        if earlier is None:
            break
        if earlier.submitted_at is not None:
            start = earlier.submitted_at if start is None else min(start, earlier.submitted_at)
        current = earlier
    return start


def contributions(facts: EpisodeFacts) -> dict[tuple[date, str], Counts]:
    """The episode's counts per (day, payer), from its facts alone."""
    out: dict[tuple[date, str], Counts] = defaultdict(lambda: defaultdict(int))
    replaced = _replaced(facts)
    for claim in facts.claims:
        if not claim.submitted or claim.payer_id is None:
            continue
        assert claim.submitted_at is not None
        assert claim.charge_cents is not None
        submitted = out[claim.submitted_at.date(), claim.payer_id]
        if claim.replaces is None and claim.frequency is ClaimFrequency.ORIGINAL:
            submitted["claims_submitted"] += 1
            if claim.accepted_by_payer and not claim.rejected and claim.claim_id not in replaced:
                submitted["claims_clean"] += 1
            if claim.primary:
                submitted["gross_charges_cents"] += claim.charge_cents
        adjudication = claim.first_adjudication()
        if adjudication is not None:
            outcome, at = adjudication
            adjudicated = out[at.date(), claim.payer_id]
            adjudicated["claims_adjudicated"] += 1
            adjudicated["adjudicated_cents"] += claim.charge_cents
            if outcome == "denied" and claim.frequency is not ClaimFrequency.REPLACEMENT:
                category = (claim.denial_category or DenialCategory.OTHER).value
                adjudicated["claims_denied"] += 1
                adjudicated["denied_cents"] += claim.charge_cents
                adjudicated[f"denied:{category}"] += 1
                adjudicated[f"denied_cents:{category}"] += claim.charge_cents
    service_day = facts.service_day
    if service_day is not None:
        for payment in facts.patient_payments:
            paid = out[payment.received_at.date(), facts.payer]
            paid["patient_payments"] += 1
            paid["patient_paid_cents"] += payment.amount_cents
            if payment.received_at.date() <= service_day:
                paid["pos_payments"] += 1
                paid["pos_paid_cents"] += payment.amount_cents
    if facts.scheduled_start is not None and service_day is not None and not facts.cancelled:
        scheduled = out[service_day, facts.payer]
        scheduled["episodes_scheduled"] += 1
        if facts.verified_at is not None:
            scheduled["verified_before_day"] += facts.verified_at.date() < service_day
            scheduled["verified_before_visit"] += facts.verified_at <= facts.scheduled_start
    return {
        where: {name: value for name, value in counts.items() if value}
        for where, counts in out.items()
        if any(counts.values())
    }


def open_claims(facts: EpisodeFacts) -> list[OpenClaim]:
    """Open primary claims: submitted and not closed by claims."""
    found = []
    for claim in facts.claims:
        if not claim.submitted or claim.closed or not claim.primary or claim.payer_id is None:
            continue
        start = _chain_start(facts, claim)
        assert start is not None
        assert claim.charge_cents is not None
        found.append(
            OpenClaim(
                claim_id=claim.claim_id,
                payer=claim.payer_id,
                charge_cents=claim.charge_cents,
                first_submitted_at=start,
            )
        )
    return sorted(found, key=lambda open_claim: open_claim.claim_id)


def deltas(
    before: Mapping[tuple[date, str], Counts],
    after: Mapping[tuple[date, str], Counts],
    partition: int,
    cause: str,
) -> list[Delta]:
    """What moves from `before` to `after`, one Delta per counter that changes."""
    found = []
    for day, payer in sorted(set(before) | set(after)):
        old, new = before.get((day, payer), {}), after.get((day, payer), {})
        change = {
            name: new.get(name, 0) - old.get(name, 0)
            for name in sorted(set(old) | set(new))
            if new.get(name, 0) != old.get(name, 0)
        }
        if change:
            key = rollup_key(day, payer, partition)
            found.append(
                Delta(
                    id=f"{cause}|{key}",
                    key=key,
                    day=day,
                    payer=payer,
                    partition=partition,
                    counts=change,
                )
            )
    return found


def record(
    current: EpisodeFacts | None,
    episode_id: str,
    partition: int,
    event: object,
    cause: str,
    counted: Container[str] = (),
) -> Decision[EpisodeFacts, list[Delta]]:
    """The decision for one event: the new facts and, pending inside them, the rollup
    changes they make, without the earlier ones the writer says are `counted` already.
    Facts that do not change change nothing."""
    facts = _facts(current, episode_id, partition)
    apply_event(facts, event)
    if current is not None and facts == current:
        return Decision()
    before = contributions(current) if current is not None else {}
    moved = deltas(before, contributions(facts), facts.partition, cause)
    facts.open_ar = open_claims(facts)
    facts.has_open_ar = bool(facts.open_ar)
    left = [delta for delta in facts.uncounted if delta.id not in counted]
    facts.uncounted = [*left, *moved]
    return Decision(state=facts, result=moved)


def add_to_rollup(current: Rollup | None, delta: Delta) -> Decision[Rollup, None]:
    rollup = current or Rollup(day=delta.day, payer=delta.payer, partition=delta.partition)
    counts = dict(rollup.counts)
    for name, change in delta.counts.items():
        counts[name] = counts.get(name, 0) + change
    return Decision(state=rollup.model_copy(update={"counts": counts}))


# --- figures: what GET /kpis and the metrics say --------------------------------------------


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def figures(counts: Mapping[str, int]) -> dict[str, Any]:
    """The KPIs of summed counts (one payer, one day, or all)."""

    def n(name: str) -> int:
        return int(counts.get(name, 0))

    categories = sorted(
        name.split(":", 1)[1] for name in counts if name.startswith("denied:") and counts[name]
    )
    return {
        "clean_claim_rate": {
            "clean": n("claims_clean"),
            "submitted": n("claims_submitted"),
            "rate": rate(n("claims_clean"), n("claims_submitted")),
        },
        "denial_rate": {
            "denied": n("claims_denied"),
            "adjudicated": n("claims_adjudicated"),
            "rate": rate(n("claims_denied"), n("claims_adjudicated")),
            "denied_cents": n("denied_cents"),
            "adjudicated_cents": n("adjudicated_cents"),
            "dollar_rate": rate(n("denied_cents"), n("adjudicated_cents")),
            "by_category": {
                category: {
                    "denied": n(f"denied:{category}"),
                    "denied_cents": n(f"denied_cents:{category}"),
                    "rate": rate(n(f"denied:{category}"), n("claims_adjudicated")),
                }
                for category in categories
            },
        },
        "pos_collections": {
            "pos_paid_cents": n("pos_paid_cents"),
            "patient_paid_cents": n("patient_paid_cents"),
            "rate": rate(n("pos_paid_cents"), n("patient_paid_cents")),
            "pos_payments": n("pos_payments"),
            "patient_payments": n("patient_payments"),
        },
        "insurance_verification_rate": {
            "scheduled": n("episodes_scheduled"),
            "verified_before_day": n("verified_before_day"),
            "rate": rate(n("verified_before_day"), n("episodes_scheduled")),
            "verified_before_visit": n("verified_before_visit"),
            "before_visit_rate": rate(n("verified_before_visit"), n("episodes_scheduled")),
        },
        "gross_charges_cents": n("gross_charges_cents"),
        "cost_to_collect": {"value": None, "status": COST_TO_COLLECT},
    }


def summed(rollups: Iterable[Rollup]) -> dict[str, Any]:
    """Rollups summed in total, per payer and per day (the partitions added up)."""
    total: Counts = defaultdict(int)
    by_payer: dict[str, Counts] = defaultdict(lambda: defaultdict(int))
    by_day: dict[str, Counts] = defaultdict(lambda: defaultdict(int))
    for rollup in rollups:
        for name, value in rollup.counts.items():
            total[name] += value
            by_payer[rollup.payer][name] += value
            by_day[rollup.day.isoformat()][name] += value
    return {
        "totals": figures(total),
        "by_payer": {payer: figures(by_payer[payer]) for payer in sorted(by_payer)},
        "by_day": {day: figures(by_day[day]) for day in sorted(by_day)},
    }


def history_days(first_charge_day: date | None, today: date) -> int:
    """Days the average daily charges are taken over: 90, or fewer with less history."""
    if first_charge_day is None:
        return 0
    return max(1, min(AR_HISTORY_DAYS, (today - first_charge_day).days + 1))


def age_bucket(first_submitted: datetime, today: date) -> str:
    age = max(0, (today - first_submitted.date()).days)
    for label, _, last in AGE_BUCKETS:
        if last is None or age <= last:
            return label
    raise AssertionError("the last bucket has no end")


def _empty_buckets() -> dict[str, dict[str, int]]:
    return {label: {"claims": 0, "cents": 0} for label, _, _ in AGE_BUCKETS}


def receivables(
    open_ar: Iterable[OpenClaim],
    charges_by_payer: Mapping[str, int],
    first_charge_day: date | None,
    today: date,
) -> dict[str, Any]:
    """Days in A/R and aged A/R, in total and per payer, as of `today`.

    `charges_by_payer`: gross charges of the history window (`history_days` long)."""
    days = history_days(first_charge_day, today)
    total_buckets = _empty_buckets()
    buckets: dict[str, dict[str, dict[str, int]]] = defaultdict(_empty_buckets)
    for claim in open_ar:
        label = age_bucket(claim.first_submitted_at, today)
        for where in (total_buckets, buckets[claim.payer]):
            where[label]["claims"] += 1
            where[label]["cents"] += claim.charge_cents

    def days_in_ar(ar_cents: int, charges_cents: int) -> dict[str, Any]:
        daily = charges_cents / days if days else 0
        return {
            "ar_cents": ar_cents,
            "gross_charges_cents": charges_cents,
            "average_daily_charges_cents": round(daily) if days else None,
            "days": round(ar_cents / daily, 1) if daily else None,
        }

    def ar_of(where: Mapping[str, Mapping[str, int]]) -> int:
        return sum(bucket["cents"] for bucket in where.values())

    payers = sorted(set(buckets) | {p for p, c in charges_by_payer.items() if c})
    return {
        "as_of": today.isoformat(),
        "history_days": days,
        "days_in_ar": {
            "total": days_in_ar(ar_of(total_buckets), sum(charges_by_payer.values())),
            "by_payer": {
                payer: days_in_ar(ar_of(buckets[payer]), charges_by_payer.get(payer, 0))
                for payer in payers
            },
        },
        "aged_ar": {
            "buckets": [label for label, _, _ in AGE_BUCKETS],
            "total": total_buckets,
            "by_payer": {payer: buckets[payer] for payer in payers if payer in buckets},
        },
    }


def history_window(today: date) -> tuple[date, date]:
    return today - timedelta(days=AR_HISTORY_DAYS - 1), today
