"""Seeded synthetic episodes: made-up patients, their insurance and a documented visit.

Everything comes from one `random.Random(seed)`: the same seed and start day give the
same episodes, byte for byte. Codes are only those in docs/flow.md (what the payer
simulator and the chargemaster know). The documentation carries the EHR's code hints
as a clinic's would: mostly right, sometimes missing (the coder codes from the
description), and for low back pain the non-billable parent code M54.5.

Some episodes carry what payers deny when the claim does not answer it: a visit on the
same day as a minor procedure, separately identifiable only in the note's words (the
visit needs modifier 25); imaging a plan authorizes first; a coverage the payer ended
retroactively; a visit billed months late. Nothing here is what the right codes are
for a bot to read: the coder codes from the documentation (ops/rcm_ops/bots.py).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from rcm_contracts.registration import (
    Address,
    ClinicalDocumentation,
    Coverage,
    CoverageRank,
    DocumentedDiagnosis,
    DocumentedProcedure,
    Person,
    Relationship,
    Sex,
)
from rcm_payer_simulator.adjudication import member_status, retro_termination
from rcm_payer_simulator.rules import PAYER_RULES

PAYERS = (
    ("ACME01", "Acme Health Plan"),
    ("SUMMIT", "Summit Mutual"),
    ("BLUEPK", "Blue Peak Insurance"),
    ("MERIDN", "Meridian Care"),
)
RENDERING_NPIS = ("1234567893", "1987654328", "1543219871", "1678901236")
PLACE_OF_SERVICE = "11"

# Shares of coverage situations (docs/flow.md ask: ~15% self-pay, ~20% of the insured
# with a secondary payer).
SELF_PAY_SHARE = 0.15
SECONDARY_SHARE = 0.20
MISSING_DIAGNOSIS_HINT_SHARE = 0.15
MISSING_PROCEDURE_HINT_SHARE = 0.10
CHILD_SHARE = 0.15
# Adults insured only through their spouse's plan (a dependent, like every insured child).
SPOUSE_PLAN_SHARE = 0.10
# Visits documented and billed late (a chart found in an audit): past the timely-filing
# limit of the payers with the shorter ones (docs/flow.md, payer simulator).
LATE_BILLED_SHARE = 0.04
LATE_BILLED_DAYS = 150
# Primary coverages the payer terminated retroactively on or before the visit: its 271
# said active, its claims system denies (CO-27).
LAPSED_COVERAGE_SHARE = 0.04
# A service the primary payer authorizes first: the front desk mostly has the number at
# registration, sometimes finds it only after the visit (a fax, the payer's portal), and
# sometimes never asked for one.
AUTHORIZED_AT_REGISTRATION_SHARE = 0.6
AUTHORIZED_LATER_SHARE = 0.2
MEMBER_ID_TRIES = 5000

FEMALE_NAMES = (
    "Alice", "Beatrice", "Carmen", "Dana", "Elena", "Fiona", "Grace", "Hannah", "Iris",
    "Julia", "Keiko", "Laura", "Maya", "Nora", "Olivia", "Priya", "Quinn", "Rosa", "Sofia",
    "Tessa", "Uma", "Vera", "Wendy", "Yara", "Zoe",
)  # fmt: skip
MALE_NAMES = (
    "Aaron", "Bruno", "Caleb", "Darius", "Elliot", "Felix", "Gavin", "Hugo", "Isaac",
    "Jonah", "Kenji", "Liam", "Marco", "Nikhil", "Omar", "Pavel", "Rafael", "Samuel",
    "Theo", "Victor", "Wesley", "Xavier", "Yusuf", "Zane",
)  # fmt: skip
LAST_NAMES = (
    "Abernathy", "Baptiste", "Castellano", "Delacroix", "Eriksen", "Fairbanks", "Galloway",
    "Hollister", "Iverson", "Jankowski", "Kowalczyk", "Lindqvist", "Montague", "Nakamura",
    "Okonkwo", "Pemberton", "Quintero", "Rasmussen", "Salazar", "Thornbury", "Underhill",
    "Valdivia", "Whitcombe", "Yamamoto", "Zielinski", "Ashdown", "Brightwater", "Coldwell",
    "Dunmore", "Everhart",
)  # fmt: skip
STREETS = (
    "Maple Ave", "Oak Street", "Cedar Lane", "Birch Road", "Willow Way", "Elm Court",
    "Juniper Drive", "Hawthorn Blvd", "Aspen Circle", "Sycamore Place", "Linden Terrace",
    "Magnolia Row",
)  # fmt: skip
# City, state, the first three ZIP digits of that area (the last two are made up).
CITIES = (
    ("Springfield", "IL", "627"), ("Franklin", "TN", "370"), ("Fairview", "OR", "970"),
    ("Madison", "WI", "537"), ("Georgetown", "TX", "786"), ("Salem", "MA", "019"),
    ("Clinton", "IA", "527"), ("Greenville", "SC", "296"), ("Bristol", "CT", "060"),
    ("Riverside", "CA", "925"), ("Arlington", "VA", "222"), ("Dayton", "OH", "454"),
)  # fmt: skip


@dataclass(frozen=True)
class Dx:
    """A documented diagnosis: what the note says, the right code, the EHR's hint."""

    description: str
    code: str  # billable ICD-10-CM, with the dot as the EHR shows it
    hint: str | None = None  # None: the hint is the code itself


@dataclass(frozen=True)
class Px:
    """A documented procedure; `modifiers` are what a coder adds from the note."""

    description: str
    code: str
    units: int = 1
    modifiers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    visit_type: str
    note: str
    diagnoses: tuple[Dx, ...]
    procedures: tuple[Px, ...]
    weight: int = 10
    min_age: int = 0
    max_age: int = 120


DIABETES = Dx("Type 2 diabetes mellitus without complications", "E11.9")
HYPERTENSION = Dx("Essential (primary) hypertension", "I10")
PHARYNGITIS = Dx("Acute pharyngitis", "J02.9")
LOW_BACK_PAIN = Dx("Low back pain", "M54.50", hint="M54.5")
PHYSICAL = Dx("Encounter for general adult medical examination, normal findings", "Z00.00")
IMMUNIZATION = Dx("Encounter for immunization", "Z23")
ANKLE_SPRAIN = Dx("Sprain of right ankle, initial encounter", "S93.401A")
UTI = Dx("Urinary tract infection, site not specified", "N39.0")
DEPRESSION = Dx("Depression, unspecified", "F32.A")
CHEST_PAIN = Dx("Chest pain, unspecified", "R07.9")

VENIPUNCTURE = Px("Venipuncture for blood draw", "36415")

SCENARIOS = (
    Scenario(
        "diabetes-follow-up",
        "office-visit-established",
        "{age}-year-old {person} with type 2 diabetes for follow-up. Home glucose readings "
        "110-160. No hypoglycemia. Feet intact. Assessment: type 2 diabetes, stable. "
        "Plan: HbA1c today, continue metformin, follow up in 3 months.",
        (DIABETES,),
        (
            Px("Office visit, established patient, moderate complexity", "99214"),
            Px("Hemoglobin A1c", "83036"),
            VENIPUNCTURE,
        ),
        weight=14,
        min_age=25,
    ),
    Scenario(
        "hypertension-check",
        "office-visit-established",
        "{age}-year-old {person} for blood pressure check. BP 138/86. Tolerating lisinopril. "
        "Assessment: essential hypertension, controlled. Plan: continue, recheck in 6 months.",
        (HYPERTENSION,),
        (Px("Office visit, established patient, low complexity", "99213"),),
        weight=12,
        min_age=30,
    ),
    Scenario(
        "sore-throat",
        "office-visit-established",
        "{age}-year-old {person} with 2 days of sore throat and fever 38.4 C. Tonsillar "
        "exudate. Rapid strep antigen negative. Assessment: acute pharyngitis. Plan: "
        "supportive care, fluids, return if worse.",
        (PHARYNGITIS,),
        (
            Px("Office visit, established patient, low complexity", "99213"),
            Px("Rapid streptococcus antigen test", "87880"),
        ),
        weight=10,
        min_age=3,
    ),
    Scenario(
        "low-back-pain",
        "office-visit-established",
        "{age}-year-old {person} with low back pain for one week after lifting boxes. No "
        "radiation, no red flags. Assessment: low back pain. Plan: NSAIDs, stretching, "
        "physical therapy referral if not better in 4 weeks.",
        (LOW_BACK_PAIN,),
        (Px("Office visit, established patient, low complexity", "99213"),),
        weight=9,
        min_age=18,
    ),
    Scenario(
        "annual-physical",
        "preventive-established",
        "{age}-year-old {person} for annual preventive examination. No complaints. Exam "
        "normal. Counseling on diet and exercise. Plan: lipid panel today.",
        (PHYSICAL,),
        (
            Px("Preventive visit, established patient, age 40-64", "99396"),
            Px("Lipid panel", "80061"),
            VENIPUNCTURE,
        ),
        weight=9,
        min_age=40,
        max_age=64,
    ),
    Scenario(
        "flu-vaccine",
        "nurse-visit",
        "{age}-year-old {person} for seasonal influenza vaccination. No contraindications. "
        "Quadrivalent vaccine given IM left deltoid, tolerated well.",
        (IMMUNIZATION,),
        (
            Px("Influenza vaccine, quadrivalent, IM", "90686"),
            Px("Administration of influenza vaccine", "G0008"),
        ),
        weight=9,
        min_age=3,
    ),
    Scenario(
        "ankle-sprain",
        "office-visit-new",
        "{age}-year-old {person}, new patient, twisted right ankle playing basketball today. "
        "Full history and exam of the injury, a significant evaluation beyond the decision "
        "to strap. Lateral swelling, able to bear weight. X-ray right ankle, 3 views: no "
        "fracture. Assessment: sprain of right ankle. Plan: strapping applied, RICE, "
        "recheck 2 weeks.",
        (ANKLE_SPRAIN,),
        (
            Px("Office visit, new patient, low complexity", "99203", modifiers=("25",)),
            Px("X-ray right ankle, 3 views", "73610", modifiers=("RT",)),
            Px("Strapping of ankle", "29540"),
        ),
        weight=7,
        min_age=8,
    ),
    Scenario(
        "urinary-infection",
        "office-visit-established",
        "{age}-year-old {person} with dysuria and frequency for 3 days. Urinalysis dipstick "
        "positive for nitrites and leukocytes. Assessment: urinary tract infection. Plan: "
        "nitrofurantoin 5 days.",
        (UTI,),
        (
            Px("Office visit, established patient, low complexity", "99213"),
            Px("Urinalysis by dipstick, non-automated, without microscopy", "81002"),
        ),
        weight=8,
        min_age=5,
    ),
    Scenario(
        "depression-screening",
        "office-visit-established",
        "{age}-year-old {person} with low mood and poor sleep for 2 months. PHQ-9 "
        "administered and scored: 14. Assessment: depression. Plan: start sertraline, "
        "counseling referral, follow up in 4 weeks.",
        (DEPRESSION,),
        (
            Px("Office visit, established patient, moderate complexity", "99214"),
            Px("Brief emotional/behavioral assessment (PHQ-9), scored", "96127"),
        ),
        weight=7,
        min_age=18,
    ),
    Scenario(
        "steroid-injection",
        "office-visit-established",
        "{age}-year-old {person} with acute low back pain flare. Separately identifiable "
        "evaluation performed. Dexamethasone 4 mg IM given. Assessment: low back pain. "
        "Plan: injection today, NSAIDs, return if not improved.",
        (LOW_BACK_PAIN,),
        (
            Px(
                "Office visit, established patient, low complexity",
                "99213",
                modifiers=("25",),
            ),
            Px("Injection, dexamethasone sodium phosphate, 1 mg", "J1100", units=4),
            Px("Therapeutic injection, intramuscular", "96372"),
        ),
        weight=6,
        min_age=18,
    ),
    Scenario(
        "chest-pain-ecg",
        "office-visit-established",
        "{age}-year-old {person} with intermittent chest pain at rest, no exertional "
        "component. 12-lead ECG with interpretation and report: normal sinus rhythm. "
        "Assessment: chest pain, unspecified. Plan: stress test referral.",
        (CHEST_PAIN,),
        (
            Px("Office visit, established patient, moderate complexity", "99214"),
            Px("Electrocardiogram, 12 leads, with interpretation and report", "93000"),
        ),
        weight=6,
        min_age=30,
    ),
)
SCENARIOS_BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


@dataclass(frozen=True)
class SyntheticEpisode:
    """One episode to drive: who comes, with what insurance, and what the visit documents."""

    number: int
    scenario: str
    visit_type: str
    scheduled_start: datetime
    rendering_provider_npi: str
    patient: Person
    guarantor: Person  # the patient, or a parent for a child
    coverages: tuple[Coverage, ...]
    documentation: ClinicalDocumentation
    place_of_service: str = PLACE_OF_SERVICE
    # (coverage id, number): an authorization the front desk records after the visit.
    late_authorization: tuple[str, str] | None = None

    @property
    def key(self) -> str:
        """The driver's name for the episode until registration gives it an id."""
        return f"syn-{self.number:05d}"

    @property
    def self_pay(self) -> bool:
        return not self.coverages

    def appointment_body(self) -> dict[str, Any]:
        return {
            "scheduled_start": self.scheduled_start.isoformat().replace("+00:00", "Z"),
            "rendering_provider_npi": self.rendering_provider_npi,
            "visit_type": self.visit_type,
        }

    def registration_body(self) -> dict[str, Any]:
        return {
            "patient": self.patient.model_dump(mode="json", exclude_none=True),
            "coverages": [
                coverage.model_dump(mode="json", exclude_none=True) for coverage in self.coverages
            ],
        }

    def encounter_body(self) -> dict[str, Any]:
        return {
            "place_of_service": self.place_of_service,
            "rendering_provider_npi": self.rendering_provider_npi,
            "documentation": self.documentation.model_dump(mode="json"),
        }


class EpisodeGenerator:
    """Deterministic stream of episodes for one seed and one clinic day."""

    def __init__(self, seed: int, day: date) -> None:
        self.seed = seed  # also the payer simulator's: they agree on its members
        self.random = random.Random(seed)
        self.day = day

    def episodes(self, count: int) -> list[SyntheticEpisode]:
        return [self.episode(number) for number in range(1, count + 1)]

    def __iter__(self) -> Iterator[SyntheticEpisode]:
        number = 0
        while True:
            number += 1
            yield self.episode(number)

    def episode(self, number: int) -> SyntheticEpisode:
        rng = self.random
        child = rng.random() < CHILD_SHARE
        age = rng.randint(3, 17) if child else rng.randint(18, 89)
        patient = self._person(age, last_name=None)
        guarantor = (
            self._person(rng.randint(28, 55), last_name=patient.last_name) if child else patient
        )
        scenario = self._scenario(age)
        late = rng.random() < LATE_BILLED_SHARE
        visit_day = self.day - timedelta(days=LATE_BILLED_DAYS) if late else self.day
        coverages = self._coverages(patient, guarantor, child)
        if coverages and rng.random() < LAPSED_COVERAGE_SHARE:
            coverages = (self._lapsed(coverages[0], visit_day), *coverages[1:])
        coverages, late_authorization = self._authorized(number, scenario, coverages)
        minutes = rng.randrange(8 * 60, 17 * 60, 15)  # office hours, quarter-hour slots
        start = datetime.combine(visit_day, time(0, 0), tzinfo=UTC) + timedelta(minutes=minutes)
        return SyntheticEpisode(
            number=number,
            scenario=scenario.name,
            visit_type=scenario.visit_type,
            scheduled_start=start,
            rendering_provider_npi=rng.choice(RENDERING_NPIS),
            patient=patient,
            guarantor=guarantor,
            coverages=coverages,
            documentation=self._documentation(scenario, age, patient.sex),
            late_authorization=late_authorization,
        )

    def _authorized(
        self, number: int, scenario: Scenario, coverages: tuple[Coverage, ...]
    ) -> tuple[tuple[Coverage, ...], tuple[str, str] | None]:
        """Whether the visit's prior authorization was obtained, and when. Its own
        generator (seed and episode number), so the rest of the stream stays as it was."""
        if not coverages:
            return coverages, None
        primary = coverages[0]
        rules = PAYER_RULES.get(primary.payer_id)
        codes = {px.code for px in scenario.procedures}
        if rules is None or not codes & rules.prior_authorization:
            return coverages, None
        rng = random.Random(f"{self.seed}|authorization|{number}")
        authorization = f"PA{rng.randrange(10**9):09d}"
        roll = rng.random()
        if roll < AUTHORIZED_AT_REGISTRATION_SHARE:
            authorized = primary.model_copy(update={"prior_authorization": authorization})
            return (authorized, *coverages[1:]), None
        if roll < AUTHORIZED_AT_REGISTRATION_SHARE + AUTHORIZED_LATER_SHARE:
            return coverages, (primary.coverage_id, authorization)
        return coverages, None

    def _scenario(self, age: int) -> Scenario:
        fitting = [s for s in SCENARIOS if s.min_age <= age <= s.max_age]
        return self.random.choices(fitting, weights=[s.weight for s in fitting])[0]

    def _person(self, age: int, last_name: str | None) -> Person:
        rng = self.random
        sex = rng.choice((Sex.FEMALE, Sex.MALE))
        first = rng.choice(FEMALE_NAMES if sex is Sex.FEMALE else MALE_NAMES)
        born = self.day - timedelta(days=age * 365 + rng.randrange(0, 365))
        return Person(
            first_name=first,
            last_name=last_name or rng.choice(LAST_NAMES),
            birth_date=born,
            sex=sex,
            address=self._address(),
        )

    def _address(self) -> Address:
        rng = self.random
        city, state, zip3 = rng.choice(CITIES)
        return Address(
            line1=f"{rng.randint(10, 9899)} {rng.choice(STREETS)}",
            line2=f"Apt {rng.randint(1, 40)}" if rng.random() < 0.2 else None,
            city=city,
            state=state,
            postal_code=f"{zip3}{rng.randint(0, 99):02d}",
        )

    def _coverages(self, patient: Person, guarantor: Person, child: bool) -> tuple[Coverage, ...]:
        rng = self.random
        if rng.random() < SELF_PAY_SHARE:
            return ()
        payers = rng.sample(PAYERS, 2)
        if not child and rng.random() < SPOUSE_PLAN_SHARE:
            spouse = self._person(rng.randint(25, 85), last_name=patient.last_name)
            spouse = spouse.model_copy(update={"address": patient.address})  # one household
            return (self._coverage(CoverageRank.PRIMARY, payers[0], Relationship.SPOUSE, spouse),)
        relationship = Relationship.CHILD if child else Relationship.SELF
        subscriber = guarantor if child else None
        coverages = [self._coverage(CoverageRank.PRIMARY, payers[0], relationship, subscriber)]
        if rng.random() < SECONDARY_SHARE:
            if child:
                coverages.append(
                    self._coverage(CoverageRank.SECONDARY, payers[1], relationship, subscriber)
                )
            else:  # an adult's second plan is usually the spouse's
                spouse = self._person(rng.randint(25, 85), last_name=patient.last_name)
                coverages.append(
                    self._coverage(CoverageRank.SECONDARY, payers[1], Relationship.SPOUSE, spouse)
                )
        return tuple(coverages)

    def _coverage(
        self,
        rank: CoverageRank,
        payer: tuple[str, str],
        relationship: Relationship,
        subscriber: Person | None,
    ) -> Coverage:
        rng = self.random
        letters = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
        return Coverage(
            coverage_id=f"V{rng.getrandbits(48):012x}",
            rank=rank,
            payer_id=payer[0],
            payer_name=payer[1],
            member_id=f"{letters}{rng.randrange(10**9):09d}",
            group_number=f"GRP{rng.randint(10000, 99999)}" if rng.random() < 0.7 else None,
            relationship=relationship,
            subscriber=subscriber,
        )

    def _lapsed(self, coverage: Coverage, visit_day: date) -> Coverage:
        """The coverage under a member id its payer terminated retroactively on or before
        the visit (the payer's enrollment, from the same seed as the simulator's)."""
        rng = self.random
        for _ in range(MEMBER_ID_TRIES):
            letters = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
            member_id = f"{letters}{rng.randrange(10**9):09d}"
            ended = retro_termination(self.seed, coverage.payer_id, member_id)
            if (
                ended is not None
                and ended <= visit_day
                and member_status(self.seed, coverage.payer_id, member_id) == "active"
            ):
                return coverage.model_copy(update={"member_id": member_id})
        return coverage  # none found (a visit before every termination): covered after all

    def _documentation(self, scenario: Scenario, age: int, sex: Sex) -> ClinicalDocumentation:
        rng = self.random
        person = {Sex.FEMALE: "female", Sex.MALE: "male"}.get(sex, "patient")
        if age < 18:
            person = {Sex.FEMALE: "girl", Sex.MALE: "boy"}.get(sex, "child")
        diagnoses = [
            DocumentedDiagnosis(
                description=dx.description,
                icd10_hint=None
                if rng.random() < MISSING_DIAGNOSIS_HINT_SHARE
                else (dx.hint or dx.code),
            )
            for dx in scenario.diagnoses
        ]
        procedures = [
            DocumentedProcedure(
                description=px.description,
                code_hint=None if rng.random() < MISSING_PROCEDURE_HINT_SHARE else px.code,
                units=px.units,
            )
            for px in scenario.procedures
        ]
        return ClinicalDocumentation(
            note=scenario.note.format(age=age, person=person),
            diagnoses=diagnoses,
            procedures=procedures,
        )
