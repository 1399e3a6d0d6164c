"""A dependent's claims: the subscriber in 2000B (SBR02 blank), the patient in 2000C."""

from __future__ import annotations

from datetime import date

import pytest
from rcm_claims import domain, edi
from rcm_claims.app import Settings
from rcm_contracts.registration import Address, Coverage, Person, Relationship, Sex
from rcm_x12 import ProfessionalClaim, parse_837p, validate_with_pyx12

from .builders import (
    CONFIG,
    EPISODE,
    NOW,
    PRIMARY_COVERAGE,
    SECONDARY_COVERAGE,
    Memory,
    coded,
    coverages,
    paid_posting,
    registered,
    submit,
    verified,
)

CHILD = Person(
    first_name="Lucía",
    last_name="Roe",
    birth_date=date(2015, 7, 9),
    sex=Sex.FEMALE,
    address=Address(line1="40 Oak St", city="Newton", state="MA", postal_code="02459"),
)
FATHER = Person(
    first_name="Marco",
    last_name="Roe",
    birth_date=date(1978, 3, 12),
    sex=Sex.MALE,
    address=Address(line1="40 Oak St", city="Newton", state="MA", postal_code="02459"),
)
MOTHER = FATHER.model_copy(
    update={"first_name": "Elena", "last_name": "Vidal", "birth_date": date(1981, 2, 20)}
)


def on_plan_of(base: Coverage, relationship: Relationship, holder: Person) -> Coverage:
    return base.model_copy(update={"relationship": relationship, "subscriber": holder})


def claims_of(primary: Coverage, secondary: Coverage) -> list[ProfessionalClaim]:
    """The child's primary claim and, after its payment, the secondary one."""
    memory = Memory()
    memory.apply(domain.patient_registered, registered(CHILD), CONFIG, NOW)
    memory.apply(domain.coverage_updated, coverages(primary, secondary), CONFIG, NOW)
    for item in (primary, secondary):
        memory.apply(domain.eligibility_verified, verified(item), CONFIG, NOW)
    memory.apply(domain.coding_completed, coded(), CONFIG, NOW)
    submit(memory)
    memory.apply(domain.payment_posted, paid_posting(f"{EPISODE}-1"), CONFIG, NOW)
    assert [c.x12 is not None for c in memory.episode.claims] == [True, True]
    return [ProfessionalClaim.model_validate(c.x12) for c in memory.episode.claims]


def test_a_child_on_both_parents_plans_is_billed_in_the_patient_loop() -> None:
    primary = on_plan_of(PRIMARY_COVERAGE, Relationship.CHILD, FATHER)
    secondary = on_plan_of(SECONDARY_COVERAGE, Relationship.CHILD, MOTHER)
    first, second = claims_of(primary, secondary)
    text = edi.interchange(Settings().partners(), 9, NOW, [("0001", first), ("0002", second)])
    ok, errors = validate_with_pyx12(text)
    assert ok, errors

    segments = text.split("~\n")
    assert "HL*2*1*22*1" in segments  # the subscriber has a patient loop under it
    assert "SBR*P**GRP10001******CI" in segments  # SBR02 blank: not the patient
    assert "NM1*IL*1*ROE*MARCO****MI*AB123456789" in segments
    assert "HL*3*2*23*0" in segments
    assert "PAT*19" in segments
    assert "NM1*QC*1*ROE*LUCIA" in segments
    assert "DMG*D8*20150709*F" in segments
    assert "NM1*IL*1*VIDAL*ELENA****MI*CD987654321" in segments  # the secondary's holder

    batch = parse_837p(text)
    read_first, read_second = (t.claims[0] for t in batch.transactions)
    assert (read_first, read_second) == (first, second)
    assert read_first.subscriber.relationship is None
    assert read_first.patient is not None
    assert (read_first.patient.relationship, read_first.patient.first_name) == ("19", "LUCIA")
    assert read_first.subscriber.birth_date == FATHER.birth_date
    # The secondary claim's 2320/2330A: the child of the primary plan's holder, the father.
    (prior,) = read_second.prior_payers
    assert (prior.relationship, prior.subscriber_first_name) == ("19", "MARCO")
    assert prior.subscriber_member_id == "AB123456789"


def test_a_patient_on_their_own_plan_stays_the_subscriber() -> None:
    spouse_secondary = on_plan_of(SECONDARY_COVERAGE, Relationship.SPOUSE, FATHER)
    first, second = claims_of(PRIMARY_COVERAGE, spouse_secondary)
    assert (first.subscriber.relationship, first.patient) == ("18", None)
    assert first.subscriber.first_name == "LUCIA"
    # Billed to the spouse's plan, the patient is the spouse: loop 2000C with PAT01 = 01.
    assert second.subscriber.relationship is None
    assert second.patient is not None
    assert second.patient.relationship == "01"
    (prior,) = second.prior_payers
    assert (prior.relationship, prior.subscriber_first_name) == ("18", "LUCIA")
    ok, errors = validate_with_pyx12(
        edi.interchange(Settings().partners(), 10, NOW, [("0001", first), ("0002", second)])
    )
    assert ok, errors


def test_a_dependent_coverage_without_its_subscriber_cannot_be_built() -> None:
    orphan = PRIMARY_COVERAGE.model_copy(update={"relationship": Relationship.CHILD})
    with pytest.raises(edi.ClaimBuildError, match="relationship 19 needs the subscriber"):
        edi._subscriber(orphan, CHILD, "P")
